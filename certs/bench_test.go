package certs

import (
	"context"
	"testing"
)

// BenchmarkIssue10000 issues 10,000 device identities (key, certificate,
// password, all files written) into a fresh PKI per iteration.
func BenchmarkIssue10000(b *testing.B) {
	ids := DeviceIDs("dev-", 1, 10000)
	for b.Loop() {
		b.StopTimer()
		a, err := Init(InitOptions{Dir: b.TempDir(), Observers: []string{}, Backends: []string{}})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		res, err := a.IssueClients(context.Background(), ids)
		if err != nil {
			b.Fatal(err)
		}
		if len(res.Issued) != len(ids) {
			b.Fatalf("issued %d of %d", len(res.Issued), len(ids))
		}
	}
}
