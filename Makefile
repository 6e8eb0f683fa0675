# mqttstack: the README's two commands are `make demo` and `make test`.
SHELL := /bin/bash
GO ?= go
BIN := bin/mqttstack
OUT ?= results
export GOFLAGS := -buildvcs=false

.PHONY: all build deps demo test test-pure test-short vet bench scale security-tier2 rehearsal pulumi html-check fuzz clean

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
# TESTFLAGS adds go test flags (e.g. TESTFLAGS=-cpu=1).
test: deps vet
	$(GO) test -count=1 -timeout 25m $(TESTFLAGS) ./...
	$(MAKE) test-pure

# The packages whose tests need no running stack, again on one CPU (an
# ordering race shows there: TestFetchCommand read an apply's value after
# RunErr and failed 100 of 100 runs with -cpu 1) and under the race detector.
PURE_PKGS := ./certs ./scenarios ./loadtest/result ./infra/hostconfig ./infra/broker ./infra/loadgen ./internal/shard \
	./infra/program ./infra/hostres ./infra/outputs ./internal/mqttwire ./host/procfs ./target
test-pure:
	$(GO) test -count=1 -cpu 1 -timeout 15m $(PURE_PKGS)
	$(GO) test -count=1 -race -timeout 20m $(PURE_PKGS)

test-short: deps
	$(GO) test -count=1 -short ./...

# staticcheck is pinned; installed into GOPATH/bin when missing or another
# version.
STATICCHECK_VERSION := 0.8.2
STATICCHECK = $(shell $(GO) env GOPATH)/bin/staticcheck
vet:
	$(GO) vet ./...
	$(GO) mod tidy -diff
	@$(STATICCHECK) -version 2>/dev/null | grep -q '($(STATICCHECK_VERSION))' || \
		$(GO) install honnef.co/go/tools/cmd/staticcheck@v$(STATICCHECK_VERSION)
	$(STATICCHECK) ./...

# Benchmarks (numbers, not pass/fail): PKI issuance, recorder, connects,
# per-device memory and CPU against the local Mosquitto.
bench: deps
	bash scripts/bench.sh

clean:
	rm -rf bin build results

# The pulumi CLI for this machine, built from the module proxy in its own
# module (tools/pulumi) so it stays out of mqttstack's dependency graph.
pulumi: bin/pulumi
bin/pulumi: tools/pulumi/go.mod tools/pulumi/go.sum
	cd tools/pulumi && $(GO) build -trimpath -ldflags "-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v3.259.0" -o ../../bin/pulumi github.com/pulumi/pulumi/pkg/v3/cmd/pulumi
	./bin/pulumi version

# mqttstack's own Pulumi resource provider (mqttstack:index:HostConfig) and
# its installation into the Pulumi plugin cache ($PULUMI_HOME or ~/.pulumi),
# so the engine finds exactly this build (--reinstall: a rebuilt binary keeps
# its version number, and install alone would keep the old one).
PROVIDER_VERSION := $(shell sed -n 's/^\tPluginVersion *= *"\(.*\)"/\1/p' infra/hostres/hostres.go)
.PHONY: provider provider-install
provider:
	$(GO) build -o bin/pulumi-resource-mqttstack ./cmd/pulumi-resource-mqttstack
provider-install: provider pulumi
	./bin/pulumi plugin install resource mqttstack $(PROVIDER_VERSION) --file bin/pulumi-resource-mqttstack --reinstall

# Deploy rehearsal (root): `mqttstack deploy` on the real Pulumi engine (file
# backend, our provider plugin, provider ssh) against a fresh Debian bookworm
# root file system (debootstrap, cached in .build/rehearsal) in its own
# network namespace: fresh up, security + smoke through the written target,
# no-change up, drift, a config change, a change the daemons reject, a wrong
# host key, an unreachable host, destroy (rehearsal/run.sh lists the steps).
.PHONY: deploy-rehearsal
deploy-rehearsal: deps pulumi
	bash scripts/install-deps.sh debootstrap openssl
	bash rehearsal/run.sh
rehearsal: deploy-rehearsal

# Tier-2 security checks (floods, broker reloads, slow-drip CONNECT: minutes).
security-tier2: deps
	MQTTSTACK_LONG=1 $(GO) test -count=1 -timeout 20m -run 'TestTier2' -v ./security/

goldens:
	$(GO) test ./infra/hostconfig -update
	$(GO) test ./infra/broker -run Golden -update

# 19,000 concurrent mTLS devices on the local stack from one load-generator
# process: connect rate, broker CPU, RSS per device, publish throughput.
scale: deps
	bash scripts/scale.sh

# The HTML report of a real run rendered by headless Chromium (Debian's
# package, installed when missing); prints where the PNG is.
html-check: deps
	bash scripts/html-check.sh
