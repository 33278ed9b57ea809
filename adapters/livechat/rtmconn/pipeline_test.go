package rtmconn

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"chatgate/adapters/internal/gopool"
)

// keyOf reads test frames "key/n": "" key for frames without a slash.
func keyOf(frame []byte) string {
	k, _, ok := strings.Cut(string(frame), "/")
	if !ok {
		return ""
	}
	return k
}

// recorder serves test frames, records the order they were served in per
// key and the most requests ever running at once.
type recorder struct {
	mu      sync.Mutex
	served  map[string][]string
	running atomic.Int32
	peak    atomic.Int32
	// hold, when set, blocks every keyed request until closed.
	hold chan struct{}
	// overlap is set when an unkeyed request ran alongside another one.
	overlap atomic.Bool
}

func (r *recorder) serve(_ context.Context, frame []byte) error {
	n := r.running.Add(1)
	defer r.running.Add(-1)
	for {
		p := r.peak.Load()
		if n <= p || r.peak.CompareAndSwap(p, n) {
			break
		}
	}
	k := keyOf(frame)
	if k == "" && n > 1 {
		r.overlap.Store(true)
	}
	if k != "" && r.hold != nil {
		<-r.hold
	}
	// Give other goroutines a chance to overtake, so that a missing
	// ordering shows up as a wrong order.
	for range 3 {
		runtime.Gosched()
	}
	r.mu.Lock()
	r.served[k] = append(r.served[k], string(frame))
	r.mu.Unlock()
	return nil
}

func TestPipelineKeepsOrderPerKey(t *testing.T) {
	r := &recorder{served: map[string][]string{}}
	p := newPipeline(8, keyOf, r.serve, func() { t.Error("fail called") }, nil)
	ctx := context.Background()
	const keys, per = 5, 200
	var want []string
	for i := range per {
		for k := range keys {
			f := fmt.Sprintf("k%d/%d", k, i)
			if i%50 == 49 && k == 0 {
				f = fmt.Sprintf("barrier-%d", i) // served alone
			}
			want = append(want, f)
			if err := p.submit(ctx, keyOf([]byte(f)), []byte(f)); err != nil {
				t.Fatal(err)
			}
		}
	}
	p.wait()
	for k := range keys {
		key := fmt.Sprintf("k%d", k)
		var exp []string
		for _, f := range want {
			if keyOf([]byte(f)) == key {
				exp = append(exp, f)
			}
		}
		if got := r.served[key]; strings.Join(got, ",") != strings.Join(exp, ",") {
			t.Fatalf("key %s served out of order:\n got %v\nwant %v", key, got, exp)
		}
	}
	if len(r.served[""]) != per/50 {
		t.Fatalf("unkeyed requests served: %v", r.served[""])
	}
	if r.overlap.Load() {
		t.Fatal("an unkeyed request ran alongside another request")
	}
	if r.peak.Load() > 8 {
		t.Fatalf("%d requests ran at once, bound is 8", r.peak.Load())
	}
}

func TestPipelineBoundsInFlight(t *testing.T) {
	r := &recorder{served: map[string][]string{}, hold: make(chan struct{})}
	p := newPipeline(4, keyOf, r.serve, func() {}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Four distinct keys take the four slots and block in serve.
	for i := range 4 {
		f := []byte(fmt.Sprintf("k%d/0", i))
		if err := p.submit(ctx, keyOf(f), f); err != nil {
			t.Fatal(err)
		}
	}
	// Every slot is taken, so the fifth submit blocks on the slots
	// channel (backpressure on the reader) until one frees.
	if len(p.slots) != cap(p.slots) {
		t.Fatalf("%d of %d slots taken by 4 requests in flight", len(p.slots), cap(p.slots))
	}
	fifth := make(chan error, 1)
	go func() { f := []byte("k9/0"); fifth <- p.submit(ctx, keyOf(f), f) }()
	close(r.hold)
	if err := <-fifth; err != nil {
		t.Fatal(err)
	}
	p.wait()
	if got := r.peak.Load(); got > 4 {
		t.Fatalf("%d in flight, bound is 4", got)
	}
	if n := len(r.served["k9"]); n != 1 {
		t.Fatalf("fifth request served %d times", n)
	}
}

func TestPipelineSubmitEndsWithContext(t *testing.T) {
	r := &recorder{served: map[string][]string{}, hold: make(chan struct{})}
	p := newPipeline(1, keyOf, r.serve, func() {}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	if err := p.submit(ctx, "a", []byte("a/0")); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := p.submit(ctx, "b", []byte("b/0")); err == nil {
		t.Fatal("submit with every slot busy and ctx ended returned nil")
	}
	close(r.hold)
	p.wait()
}

func TestPipelineFailOnBrokenSocket(t *testing.T) {
	var failed atomic.Int32
	p := newPipeline(4, keyOf, func(context.Context, []byte) error { return fmt.Errorf("gone") }, func() { failed.Add(1) }, nil)
	for i := range 3 {
		f := []byte(fmt.Sprintf("k%d/0", i))
		if err := p.submit(context.Background(), keyOf(f), f); err != nil {
			t.Fatal(err)
		}
	}
	p.wait()
	if failed.Load() != 3 {
		t.Fatalf("fail called %d times, want 3", failed.Load())
	}
}

func TestOrderOutOfOrderAnswers(t *testing.T) {
	var o Order
	o.Init("conn#")
	t1, t2 := o.Begin(), o.Begin()
	n1, rid1, ok1 := o.RequestOf(t1.Origin("r1"))
	n2, rid2, ok2 := o.RequestOf(t2.Origin("r2"))
	if !ok1 || !ok2 || rid1 != "r1" || rid2 != "r2" || n1 == n2 {
		t.Fatalf("origins: %d %q %v, %d %q %v", n1, rid1, ok1, n2, rid2, ok2)
	}
	var pushed []string
	t2.AfterResponse(func() { pushed = append(pushed, "after r2") })
	// Request 2 is answered first: a push of request 2 no longer waits,
	// one of request 1 still does.
	t2.Answered()
	o.AwaitResponse(context.Background(), n2)
	o.mu.Lock()
	ch := o.open[n1]
	o.mu.Unlock()
	if ch == nil {
		t.Fatal("request 1 not open before it was answered")
	}
	select {
	case <-ch:
		t.Fatal("request 1 released before it was answered")
	default:
	}
	waiting := make(chan struct{})
	go func() { o.AwaitResponse(context.Background(), n1); close(waiting) }()
	t1.Answered()
	<-waiting
	if strings.Join(pushed, ",") != "after r2" {
		t.Fatalf("deferred pushes: %v", pushed)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	o.AwaitResponse(ctx, o.Begin().n) // an ended ctx releases the wait
}

// TestPipelineKeepsWorkers: requests that come one after the other are
// served by the pool's goroutine that served the previous one, instead of
// a fresh goroutine each (whose stack grows again every time), and the
// pool's goroutines exit when the registry closes it.
func TestPipelineKeepsWorkers(t *testing.T) {
	r := &recorder{served: map[string][]string{}}
	pool := gopool.New(time.Minute)
	p := newPipeline(4, keyOf, r.serve, func() { t.Error("fail called") }, pool)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	before := runtime.NumGoroutine()
	for i := range 100 {
		f := []byte(fmt.Sprintf("k%d/%d", i%3, i))
		if err := p.submit(ctx, keyOf(f), f); err != nil {
			t.Fatal(err)
		}
		p.wait()
		// Let the worker get back to waiting for work (on a loaded
		// machine it may not have, and the next request then starts a
		// worker of its own: the bound below allows for that).
		for range 10 {
			runtime.Gosched()
		}
	}
	if n := pool.Started(); n >= 50 {
		t.Fatalf("%d workers started for 100 requests one after the other: a goroutine per request", n)
	}
	pool.Close()
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines after the session's context ended, %d before", runtime.NumGoroutine(), before)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestPipelineSubmitReusesJobs: a keyed request costs the pipeline one
// allocation (the channel its successor of the same key waits on), not a
// closure for the pool besides.
func TestPipelineSubmitReusesJobs(t *testing.T) {
	pool := gopool.New(time.Minute)
	defer pool.Close()
	serve := func(context.Context, []byte) error { return nil }
	p := newPipeline(4, keyOf, serve, func() { t.Error("fail called") }, pool)
	ctx := context.Background()
	f := []byte("k0/0")
	if err := p.submit(ctx, "k0", f); err != nil { // the first job is made
		t.Fatal(err)
	}
	p.wait()
	allocs := testing.AllocsPerRun(200, func() {
		if err := p.submit(ctx, "k0", f); err != nil {
			t.Fatal(err)
		}
		p.wait()
	})
	if allocs > 1.5 {
		t.Fatalf("%.1f allocations per keyed request", allocs)
	}
}
