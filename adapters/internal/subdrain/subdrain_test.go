package subdrain

import (
	"bytes"
	"context"
	"errors"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"chatgate/core/hub"
	"chatgate/core/model"
)

// pools are the ways a Drainer runs its drains: a goroutine per drain,
// and a Pool's lingering goroutines.
func pools(t *testing.T) map[string]*Pool {
	p := NewPool(time.Minute)
	t.Cleanup(p.Close)
	return map[string]*Pool{"goroutine per drain": nil, "pool": p}
}

// TestOnDemand: notices are handed over in order, no drain is left
// running once the queue is empty, a subscription cut off as too slow is
// reported once, and nothing is handled once the context has ended.
func TestOnDemand(t *testing.T) {
	for name, p := range pools(t) {
		t.Run(name, func(t *testing.T) { testOnDemand(t, p) })
	}
}

func testOnDemand(t *testing.T, p *Pool) {
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
	d := p.Start(ctx, sub, func(_ context.Context, n *hub.Notice) {
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
	for name, p := range pools(t) {
		t.Run(name, func(t *testing.T) { testClosedReportsEnd(t, p) })
	}
}

func testClosedReportsEnd(t *testing.T, p *Pool) {
	bus := hub.NewBus()
	sub := bus.SubscribeConv("c1", 4)
	ended := make(chan error, 2)
	var wg sync.WaitGroup
	p.Start(t.Context(), sub, func(context.Context, *hub.Notice) {}, func(err error) { ended <- err }, &wg)
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

// TestPoolReusesGoroutines: many subscriptions drained through one pool
// each get their notices in order and once; the drains run on lingering
// goroutines (a drain that finds one idle starts none), which exit after
// the linger or at Close; a pool closed still drains, without lingering.
func TestPoolReusesGoroutines(t *testing.T) {
	const subs, per = 50, 40
	p := NewPool(time.Minute)
	bus := hub.NewBus()
	var (
		mu      sync.Mutex
		got     = map[model.ConvID][]uint64{}
		wg      sync.WaitGroup
		started = map[uint64]bool{} // goroutine ids that ran a drain
	)
	for i := range subs {
		conv := model.ConvID("c" + strconv.Itoa(i))
		sub := bus.SubscribeConv(conv, per+1)
		p.Start(t.Context(), sub, func(_ context.Context, n *hub.Notice) {
			mu.Lock()
			got[conv] = append(got[conv], n.Events[0].Seq)
			started[goid()] = true
			mu.Unlock()
		}, func(error) {}, &wg)
	}
	for seq := uint64(1); seq <= per; seq++ {
		for i := range subs {
			conv := model.ConvID("c" + strconv.Itoa(i))
			bus.Publish(hub.Notice{Conv: model.Conversation{ID: conv}, Events: []model.Event{{Conv: conv, Seq: seq}}})
		}
		if seq%4 == 0 {
			wg.Wait()
		}
	}
	wg.Wait()
	mu.Lock()
	for i := range subs {
		conv := model.ConvID("c" + strconv.Itoa(i))
		if len(got[conv]) != per {
			t.Fatalf("%s: %d notices handled, want %d", conv, len(got[conv]), per)
		}
		for j, seq := range got[conv] {
			if seq != uint64(j+1) {
				t.Fatalf("%s: notice %d has seq %d: out of order", conv, j, seq)
			}
		}
	}
	// At least 500 drains (every subscription is drained at least once
	// per wg.Wait); without the pool each ran on a goroutine of its own.
	// With it, about one goroutine per drain running at once (a goroutine
	// between its drain and going idle is not yet there to be reused).
	if n := len(started); n > 2*subs {
		t.Errorf("%d goroutines ran drains for %d subscriptions: idle ones were not reused", n, subs)
	}
	mu.Unlock()
	if p.Idle() == 0 {
		t.Fatal("no goroutine lingers after the drains")
	}

	// A short linger: idle goroutines exit by themselves.
	short := NewPool(10 * time.Millisecond)
	sub := bus.SubscribeConv("short", 4)
	short.Start(t.Context(), sub, func(context.Context, *hub.Notice) {}, func(error) {}, &wg)
	bus.Publish(hub.Notice{Conv: model.Conversation{ID: "short"}, Events: []model.Event{{Conv: "short", Seq: 1}}})
	wg.Wait()
	waitFor(t, func() bool { return short.Idle() == 0 })

	// Close: idle goroutines end; later drains still run.
	p.Close()
	if p.Idle() != 0 {
		t.Fatal("idle goroutines left after Close")
	}
	conv := model.ConvID("c0")
	bus.Publish(hub.Notice{Conv: model.Conversation{ID: conv}, Events: []model.Event{{Conv: conv, Seq: per + 1}}})
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if n := len(got[conv]); n != per+1 {
		t.Fatalf("after Close: %d notices handled, want %d", n, per+1)
	}
	if p.Idle() != 0 {
		t.Fatal("a goroutine lingers in a closed pool")
	}
}

func waitFor(t *testing.T, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10 s")
		}
		time.Sleep(time.Millisecond)
	}
}

// goid is the running goroutine's id, parsed from its stack header
// ("goroutine N [running]:").
func goid() uint64 {
	var buf [64]byte
	b := buf[:runtime.Stack(buf[:], false)]
	b = bytes.TrimPrefix(b, []byte("goroutine "))
	id, _ := strconv.ParseUint(string(b[:bytes.IndexByte(b, ' ')]), 10, 64)
	return id
}

// deepStack uses about n KiB of stack, as rendering and encoding a push
// does.
//
//go:noinline
func deepStack(n int) byte {
	var pad [1024]byte
	pad[n%1024] = byte(n)
	if n <= 1 {
		return pad[0]
	}
	return deepStack(n-1) + pad[n%1024]
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
// each handled by a handler that needs 16 KiB of stack. With a goroutine
// per drain every notice starts one whose stack grows again; a pool's
// lingering goroutine handles them all. It reports CPU per notice, not
// only wall time: on a loaded machine a fresh goroutine also waits to be
// scheduled.
func BenchmarkDrain(b *testing.B) {
	for _, bc := range []struct {
		name   string
		linger time.Duration // 0: no pool
	}{{"goroutine-per-drain", 0}, {"pool", time.Second}} {
		b.Run(bc.name, func(b *testing.B) {
			var pool *Pool
			if bc.linger > 0 {
				pool = NewPool(bc.linger)
				defer pool.Close()
			}
			bus := hub.NewBus()
			sub := bus.SubscribeConv("c1", 4)
			var wg sync.WaitGroup
			handled := make(chan struct{})
			d := pool.Start(b.Context(), sub, func(context.Context, *hub.Notice) {
				deepStack(16)
				handled <- struct{}{}
			}, func(error) {}, &wg)
			n := hub.Notice{Conv: model.Conversation{ID: "c1"}, Events: []model.Event{{Conv: "c1", Seq: 1}}}
			b.ReportAllocs()
			cpu0 := cpuTime(b)
			for b.Loop() {
				bus.Publish(n)
				<-handled
			}
			b.ReportMetric(float64(cpuTime(b)-cpu0)/float64(b.N), "cpu-ns/op")
			d.Stop()
			wg.Wait()
		})
	}
}
