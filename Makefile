# mqttstack: the README's two commands are `make demo` and `make test`.
SHELL := /bin/bash
GO ?= go
BIN := bin/mqttstack
OUT ?= results
export GOFLAGS := -buildvcs=false

.PHONY: all build deps demo test test-short vet bench scale security-tier2 rehearsal pulumi html-check fuzz clean

all: build

deps:
	@bash scripts/install-deps.sh

build:
	$(GO) build -o $(BIN) ./cmd/mqttstack

# The main job on the local stack: real Mosquitto + nginx on 127.0.0.1, a
# private PKI, a smoke load with 1,000 mTLS devices, the security checks, and
# the reports (console, JSON, HTML).
demo: deps build
	bash scripts/demo.sh

# Every test, including the ones against real daemons (started by the tests).
test: deps vet
	$(GO) test -count=1 -timeout 25m ./...

test-short: deps
	$(GO) test -count=1 -short ./...

vet:
	$(GO) vet ./...

# Benchmarks (numbers, not pass/fail): PKI issuance, recorder, connects,
# per-device memory and CPU against the local Mosquitto.
bench: deps
	bash scripts/bench.sh

clean:
	rm -rf bin build results
