package desk

import (
	"context"
	"testing"
)

// BenchmarkPost is the desk's share of every relayed message: a visitor's
// message and its agent's answer posted into an open conversation that a
// visitor session and the agents' desk-wide session follow, each notice
// taken off its queues as a session would. The store is bbolt without
// fsync, so allocs/op is the desk, the hub and the store's commit path;
// run with -benchmem and compare with benchstat.
func BenchmarkPost(b *testing.B) {
	e := newEnv(b, config{})
	e.online(ann.ID)
	v := e.visitor("vera")
	c, _ := e.start(v, "sales", Draft{Text: "hello"})
	vsub := e.bus.SubscribeVisitor(v.ID, 1024)
	defer vsub.Close()
	dsub := e.bus.SubscribeDesk(1024)
	defer dsub.Close()
	ctx := context.Background()
	reqs := []PostRequest{
		{Conv: c.ID, Author: visitorAuthor(v), Draft: Draft{Text: "bench|vera|1|1765000000000"}, Session: "v1"},
		{Conv: c.ID, Author: agentAuthor(ann.ID), Draft: Draft{Text: "ack|bench|vera|1|1765000000000"}, Session: "a1"},
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if _, _, err := e.d.Post(ctx, reqs[i%2]); err != nil {
			b.Fatal(err)
		}
		<-vsub.C()
		<-dsub.C()
	}
}
