package loadtest

// Procs is how many cores (GOMAXPROCS) the tool should run on, on a
// machine with cpus of them: all of them, except one left to the broker
// when the broker runs on the same machine (a local stack).
//
// Mosquitto runs on one thread. With as many Go processors as cores, a
// goroutine woken by the network often lands on the idle second processor,
// whose thread must be woken and then goes back to sleep, and that thread
// competes with the broker for the core the broker needs. On the 2-core
// machine, one processor took the tool's CPU per QoS 1 publish from
// 1.02-1.07× the broker's to 0.97-0.98× (docs/BENCHMARKS.md, "Tool cost,
// round four"). A connect ramp is still broker-bound on one processor:
// the tool spends ~0.9 ms of CPU per mTLS connect, where the broker
// spends ~1.3-1.8 ms. cmd/ applies it, unless GOMAXPROCS is set in the
// environment.
func Procs(cpus int, brokerHere bool) int {
	if brokerHere && cpus > 1 {
		return cpus - 1
	}
	return max(cpus, 1)
}
