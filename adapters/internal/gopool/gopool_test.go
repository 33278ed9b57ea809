package gopool

import (
	"runtime"
	"sync"
	"testing"
	"time"
	"unsafe"
)

// TestPoolReusesGoroutines: jobs given one after the other run on the
// goroutine that ran the previous one, not on a fresh goroutine each.
func TestPoolReusesGoroutines(t *testing.T) {
	p := New(time.Minute)
	defer p.Close()
	for range 100 {
		done := make(chan struct{})
		p.Go(func() { close(done) })
		<-done
		// Let the worker get back to idle (on a loaded machine it may
		// not have yet: the bound below allows for that).
		for i := 0; i < 100 && p.Idle() == 0; i++ {
			runtime.Gosched()
		}
	}
	if n := p.Started(); n >= 50 {
		t.Fatalf("%d goroutines started for 100 jobs one after the other", n)
	}
}

// TestPoolNeverWaits: jobs that block do not hold up later jobs (a new
// goroutine takes them), and every job runs.
func TestPoolNeverWaits(t *testing.T) {
	p := New(time.Minute)
	defer p.Close()
	release := make(chan struct{})
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		p.Go(func() { defer wg.Done(); <-release })
	}
	ran := make(chan struct{})
	p.Go(func() { close(ran) })
	select {
	case <-ran:
	case <-time.After(10 * time.Second):
		t.Fatal("a job waited for blocked jobs")
	}
	close(release)
	wg.Wait()
	if n := p.Started(); n != 21 {
		t.Fatalf("%d goroutines started for 21 jobs running at once", n)
	}
}

// TestPoolLingerAndClose: an idle goroutine exits after its linger, and
// Close ends the idle ones; jobs after Close still run.
func TestPoolLingerAndClose(t *testing.T) {
	exited := func(p *Pool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for p.Running() > 0 {
			if time.Now().After(deadline) {
				t.Fatalf("%d goroutines still running", p.Running())
			}
			time.Sleep(time.Millisecond)
		}
	}
	short := New(10 * time.Millisecond)
	done := make(chan struct{})
	short.Go(func() { close(done) })
	<-done
	exited(short)
	if n := short.Idle(); n != 0 {
		t.Fatalf("%d idle after the linger", n)
	}

	long := New(time.Hour)
	done = make(chan struct{})
	long.Go(func() { close(done) })
	<-done
	for i := 0; i < 1000 && long.Idle() == 0; i++ {
		time.Sleep(time.Millisecond)
	}
	long.Close()
	exited(long)
	done = make(chan struct{})
	long.Go(func() { close(done) })
	<-done

	var nilPool *Pool
	done = make(chan struct{})
	nilPool.Go(func() { close(done) })
	<-done
}

// deep uses about n bytes of stack.
//
//go:noinline
func deep(n int) byte {
	var pad [512]byte
	pad[n%512] = byte(n)
	if n <= 512 {
		return pad[0]
	}
	return deep(n-512) + pad[n%512]
}

// stackAt is the address of a local of a job: the same from one job to
// the next on one goroutine as long as its stack has not been moved
// (shrunk by the collector, or grown by a copy).
//
//go:noinline
func stackAt() uintptr {
	var x byte
	return uintptr(unsafe.Pointer(&x))
}

// TestPoolKeepsGrownStacks: a lingering goroutine keeps the stack its jobs
// grew (up to 24 KiB here) across collections, instead of having it halved
// while it waits and copying it back up in its next job.
func TestPoolKeepsGrownStacks(t *testing.T) {
	p := New(time.Minute)
	defer p.Close()
	at := make(chan uintptr, 1)
	job := func() {
		deep(20 << 10)
		at <- stackAt()
	}
	p.Go(job)
	first := <-at
	for i := 0; i < 1000 && p.Idle() == 0; i++ {
		time.Sleep(time.Millisecond)
	}
	for range 4 {
		runtime.GC()
	}
	p.Go(job)
	if next := <-at; next != first {
		t.Fatalf("the goroutine's stack moved while it waited (a local at %#x, then %#x)", first, next)
	}
	if n := p.Started(); n != 1 {
		t.Fatalf("%d goroutines started", n)
	}
}

// TestPoolGrowsStacksOnce: a new goroutine's first job runs on a stack
// already grown (to 16 KiB; a job 8 KiB deep here): its stack does not
// move while the job runs.
func TestPoolGrowsStacksOnce(t *testing.T) {
	p := New(time.Minute)
	defer p.Close()
	moved := make(chan bool, 1)
	p.Go(func() {
		before := stackAt()
		deep(8 << 10)
		moved <- stackAt() != before
	})
	if <-moved {
		t.Fatal("the first job's stack moved: grown as it ran")
	}
}

// TestPoolReapsOnlyTheIdle: while one goroutine keeps being handed jobs,
// the goroutines left idle run out their linger and exit, and the busy
// one stays (the reaper ends the longest idle only, never one that went
// back to work).
func TestPoolReapsOnlyTheIdle(t *testing.T) {
	p := New(20 * time.Millisecond)
	defer p.Close()
	release := make(chan struct{})
	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		p.Go(func() { defer wg.Done(); <-release })
	}
	close(release)
	wg.Wait()
	deadline := time.Now().Add(10 * time.Second)
	for p.Running() > 1 {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines still running with one kept busy", p.Running())
		}
		done := make(chan struct{})
		p.Go(func() { close(done) })
		<-done
		time.Sleep(time.Millisecond)
	}
	if n := p.Started(); n != 3 {
		t.Fatalf("%d goroutines started: the busy one was reaped", n)
	}
	// Then the last one goes too, and the reaper stops.
	for p.Running() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines still running after the load", p.Running())
		}
		time.Sleep(time.Millisecond)
	}
	p.mu.Lock()
	armed := p.armed
	p.mu.Unlock()
	if armed {
		t.Fatal("the reaper still ticks with no goroutine idle")
	}
}
