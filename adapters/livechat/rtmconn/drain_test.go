package rtmconn

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"chatgate/core/hub"
	"chatgate/core/model"
)

type testPusher struct {
	Client
	sub   *hub.Sub
	mu    sync.Mutex
	got   []uint64
	ended chan error
}

func (p *testPusher) Pushes() (*hub.Sub, func(context.Context, *hub.Notice), func(error)) {
	return p.sub, func(_ context.Context, n *hub.Notice) {
		p.mu.Lock()
		p.got = append(p.got, n.Events[0].Seq)
		p.mu.Unlock()
	}, func(err error) { p.ended <- err }
}

// TestDrainerOnDemand: notices are handed over in order, no goroutine
// is left once the queue is empty (an idle connection holds none), and a
// subscription cut off as too slow is reported once.
func TestDrainerOnDemand(t *testing.T) {
	bus := hub.NewBus()
	p := &testPusher{sub: bus.SubscribeConv("c1", 4), ended: make(chan error, 2)}
	publish := func(seq uint64) {
		bus.Publish(hub.Notice{Conv: model.Conversation{ID: "c1"}, Events: []model.Event{{Conv: "c1", Seq: seq}}})
	}
	publish(1) // queued before the drainer starts
	var wg sync.WaitGroup
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	d := startDrainer(ctx, p, &wg)
	idle := func() {
		t.Helper()
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("a drain goroutine is still running with nothing queued")
		}
	}
	for seq := uint64(2); seq <= 200; seq++ {
		publish(seq)
		if seq%3 == 0 {
			idle()
		}
	}
	idle()
	p.mu.Lock()
	if len(p.got) != 200 {
		t.Fatalf("handled %d notices, want 200", len(p.got))
	}
	for i, seq := range p.got {
		if seq != uint64(i+1) {
			t.Fatalf("notice %d has seq %d: out of order", i, seq)
		}
	}
	p.mu.Unlock()
	d.mu.Lock()
	running := d.running
	d.mu.Unlock()
	if running {
		t.Fatal("drainer marked running while idle")
	}
	// Nobody drains while the queue is filled past its size: cut off.
	d.stop()
	for seq := uint64(201); seq <= 206; seq++ {
		publish(seq)
	}
	d.mu.Lock()
	d.stopped = false
	d.mu.Unlock()
	d.wake()
	select {
	case err := <-p.ended:
		if !errors.Is(err, hub.ErrSlow) {
			t.Fatalf("ended with %v, want ErrSlow", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("end of the subscription not reported")
	}
	idle()
	select {
	case err := <-p.ended:
		t.Fatalf("end reported twice (%v)", err)
	default:
	}
}
