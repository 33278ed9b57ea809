package subdrain

import (
	"context"
	"errors"
	"sync"
	"syscall"
	"testing"
	"time"

	"chatgate/core/hub"
	"chatgate/core/model"
)

// TestOnDemand: notices are handed over in order, no goroutine is left
// once the queue is empty, a subscription cut off as too slow is reported
// once, and nothing is handled once the context has ended.
func TestOnDemand(t *testing.T) {
	bus := hub.NewBus()
	sub := bus.SubscribeConv("c1", 4)
	var (
		mu  sync.Mutex
		got []uint64
	)
	ended := make(chan error, 2)
	publish := func(seq uint64) {
		bus.Publish(hub.Notice{Conv: model.Conversation{ID: "c1"}, Events: []model.Event{{Conv: "c1", Seq: seq}}})
	}
	publish(1) // queued before the drainer starts
	var wg sync.WaitGroup
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	d := Start(ctx, sub, func(_ context.Context, n *hub.Notice) {
		mu.Lock()
		got = append(got, n.Events[0].Seq)
		mu.Unlock()
	}, func(err error) { ended <- err }, &wg)
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
	mu.Lock()
	if len(got) != 200 {
		t.Fatalf("handled %d notices, want 200", len(got))
	}
	for i, seq := range got {
		if seq != uint64(i+1) {
			t.Fatalf("notice %d has seq %d: out of order", i, seq)
		}
	}
	mu.Unlock()
	if d.Running() {
		t.Fatal("drainer marked running while idle")
	}
	// Nobody drains while the queue is filled past its size: cut off.
	d.Stop()
	for seq := uint64(201); seq <= 206; seq++ {
		publish(seq)
	}
	d.mu.Lock()
	d.stopped = false
	d.mu.Unlock()
	cancel() // what is still queued is dropped, not handled
	d.wake()
	select {
	case err := <-ended:
		if !errors.Is(err, hub.ErrSlow) {
			t.Fatalf("ended with %v, want ErrSlow", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("end of the subscription not reported")
	}
	idle()
	select {
	case err := <-ended:
		t.Fatalf("end reported twice (%v)", err)
	default:
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 200 {
		t.Fatalf("%d notices handled after the context ended", len(got)-200)
	}
}

// TestClosedReportsEnd: closing the subscription reports its end once,
// with ErrUnsubscribed.
func TestClosedReportsEnd(t *testing.T) {
	bus := hub.NewBus()
	sub := bus.SubscribeConv("c1", 4)
	ended := make(chan error, 2)
	var wg sync.WaitGroup
	Start(t.Context(), sub, func(context.Context, *hub.Notice) {}, func(err error) { ended <- err }, &wg)
	sub.Close()
	select {
	case err := <-ended:
		if !errors.Is(err, hub.ErrUnsubscribed) {
			t.Fatalf("ended with %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("end not reported")
	}
	wg.Wait()
}

// TestLinger: with a linger, the drain that emptied the queue stays for
// the next notice (the owner's WaitGroup never drops to zero between
// bursts: one goroutine handles them all), and exits at once on Stop;
// notices stay in order throughout.
func TestLinger(t *testing.T) {
	bus := hub.NewBus()
	sub := bus.SubscribeConv("c1", 8)
	var wg sync.WaitGroup
	handled := make(chan uint64, 8)
	d := StartLinger(t.Context(), sub, func(_ context.Context, n *hub.Notice) {
		handled <- n.Events[0].Seq
	}, func(error) {}, &wg, time.Hour)
	publish := func(seq uint64) {
		bus.Publish(hub.Notice{Conv: model.Conversation{ID: "c1"}, Events: []model.Event{{Conv: "c1", Seq: seq}}})
	}
	for seq := uint64(1); seq <= 5; seq++ {
		publish(seq)
		if got := <-handled; got != seq {
			t.Fatalf("handled %d, want %d", got, seq)
		}
		if !d.Running() {
			t.Fatalf("after notice %d: no drain lingers", seq)
		}
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
		t.Fatal("the lingering drain exited before Stop")
	case <-time.After(50 * time.Millisecond):
	}
	d.Stop()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("a lingering drain outlived Stop")
	}
}

// TestLingerEnds: a drain lingers no longer than asked, and the next
// notice after it exited starts a new one.
func TestLingerEnds(t *testing.T) {
	bus := hub.NewBus()
	sub := bus.SubscribeConv("c1", 8)
	var wg sync.WaitGroup
	handled := make(chan uint64, 8)
	d := StartLinger(t.Context(), sub, func(_ context.Context, n *hub.Notice) {
		handled <- n.Events[0].Seq
	}, func(error) {}, &wg, time.Millisecond)
	defer d.Stop()
	for seq := uint64(1); seq <= 3; seq++ {
		bus.Publish(hub.Notice{Conv: model.Conversation{ID: "c1"}, Events: []model.Event{{Conv: "c1", Seq: seq}}})
		if got := <-handled; got != seq {
			t.Fatalf("handled %d, want %d", got, seq)
		}
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("the drain lingered past its linger")
		}
		if d.Running() {
			t.Fatal("drainer marked running after its drain exited")
		}
	}
}

// deep uses about n KiB of stack, as rendering and encoding a push does.
//
//go:noinline
func deep(n int) byte {
	var pad [1024]byte
	pad[n%1024] = byte(n)
	if n <= 1 {
		return pad[0]
	}
	return deep(n-1) + pad[n%1024]
}

// cpuTime is the CPU (user and system) this process has used.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkDrain: one notice at a time (a conversing session's pushes),
// each handled by a handler that needs 16 KiB of stack. Without a linger
// every notice starts a drain goroutine whose stack grows again; with one,
// the same goroutine handles them all.
func BenchmarkDrain(b *testing.B) {
	for _, bc := range []struct {
		name   string
		linger time.Duration
	}{{"linger=0", 0}, {"linger=1s", time.Second}} {
		b.Run(bc.name, func(b *testing.B) {
			bus := hub.NewBus()
			sub := bus.SubscribeConv("c1", 4)
			var wg sync.WaitGroup
			handled := make(chan struct{})
			d := StartLinger(b.Context(), sub, func(context.Context, *hub.Notice) {
				deep(16)
				handled <- struct{}{}
			}, func(error) {}, &wg, bc.linger)
			n := hub.Notice{Conv: model.Conversation{ID: "c1"}, Events: []model.Event{{Conv: "c1", Seq: 1}}}
			b.ReportAllocs()
			cpu0 := cpuTime(b)
			for b.Loop() {
				bus.Publish(n)
				<-handled
			}
			// CPU, not wall time: on a loaded machine a fresh goroutine
			// also waits to be scheduled.
			b.ReportMetric(float64(cpuTime(b)-cpu0)/float64(b.N), "cpu-ns/op")
			d.Stop()
			wg.Wait()
		})
	}
}
