package cluster

import (
	"testing"

	"github.com/rs/zerolog"

	"chatgate/core/ratelimit"
)

// TestThrottleDeploymentWide: failed logins noted on two nodes drain one
// bucket: with a burst of 4, two failures on each node block the address
// on both (with per-node buckets each node would allow 4, 8 in all); a
// key not noted stays open, and nothing refills at 0 per minute.
func TestThrottleDeploymentWide(t *testing.T) {
	a, b := twoNodes(t)
	rule := ratelimit.Rule{PerMinute: 0.0001, Burst: 4}
	var nodes [2]*ratelimit.Keyed
	var shared [2]*Throttle
	for i, s := range [2]*Throttle{NewThrottle(a.Pool(), "failed_logins", rule, zerolog.Nop()), NewThrottle(b.Pool(), "failed_logins", rule, zerolog.Nop())} {
		shared[i] = s
		nodes[i] = ratelimit.New("failed_logins", rule, nil)
		nodes[i].Share(s)
	}
	const addr = "203.0.113.7"
	for range 2 {
		nodes[0].Allow(addr)
		nodes[1].Allow(addr)
	}
	for i, n := range nodes {
		if n.Blocked(addr) {
			t.Fatalf("node %d blocked after 2 of its own failures, before any sync", i)
		}
	}
	for _, s := range shared {
		if err := s.Sync(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	// The second node's sync wrote its failures after the first read:
	// one more round and both see all four.
	for _, s := range shared {
		if err := s.Sync(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	for i, n := range nodes {
		if !n.Blocked(addr) {
			t.Errorf("node %d: address not blocked after 4 failures across the deployment (burst 4)", i)
		}
		if n.Blocked("198.51.100.1") {
			t.Errorf("node %d: an address with no failures is blocked", i)
		}
	}
}
