package hub

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// failAfter bounds every wait in these tests. It is a failure timeout only:
// nothing here asserts how fast anything is.
const failAfter = 10 * time.Second

// eventually polls cond until it holds, failing the test after failAfter.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(failAfter)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		runtime.Gosched()
		time.Sleep(time.Millisecond)
	}
}

// recv waits for a value on c, failing the test after failAfter.
func recv[T any](t *testing.T, what string, c <-chan T) T {
	t.Helper()
	select {
	case v := <-c:
		return v
	case <-time.After(failAfter):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

// queued reports how many jobs sit in key's mailbox (not counting a job
// being run), or -1 when key has no actor.
func queued(a *Actors, key string) int {
	for i := range a.shards {
		sh := &a.shards[i]
		sh.mu.Lock()
		act := sh.m[Key{ID: key}]
		n := -1
		if act != nil {
			n = len(act.mbox) // made under mu by the first job to queue
		}
		sh.mu.Unlock()
		if n >= 0 {
			return n
		}
	}
	return -1
}

// block occupies key's actor with a job that runs until release is closed,
// and returns once that job is running, with the channel its Do returns on.
func block(t *testing.T, a *Actors, key string, release <-chan struct{}) <-chan error {
	t.Helper()
	started := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- a.Do(context.Background(), key, func(context.Context) error {
			close(started)
			<-release
			return nil
		})
	}()
	recv(t, "blocking job to start", started)
	return done
}

func TestActorsFIFOPerKey(t *testing.T) {
	a := NewActors(64)
	const n = 20
	release := make(chan struct{})
	first := block(t, a, "k", release)

	var mu sync.Mutex
	var order []int
	errs := make(chan error, n)
	for i := range n {
		go func() {
			errs <- a.Do(context.Background(), "k", func(context.Context) error {
				mu.Lock()
				order = append(order, i)
				mu.Unlock()
				return nil
			})
		}()
		// Job i is in the mailbox before job i+1 is offered.
		eventually(t, fmt.Sprintf("job %d queued", i), func() bool { return queued(a, "k") == i+1 })
	}
	close(release)
	if err := recv(t, "blocking job", first); err != nil {
		t.Fatalf("blocking job: %v", err)
	}
	for range n {
		if err := recv(t, "job result", errs); err != nil {
			t.Fatalf("job: %v", err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for i, got := range order {
		if got != i {
			t.Fatalf("jobs ran in order %v, want 0..%d", order, n-1)
		}
	}
	eventually(t, "actor to exit", func() bool { return a.Len() == 0 })
}

func TestActorsParallelAcrossKeys(t *testing.T) {
	a := NewActors(4)
	const n = 8
	// Every job waits until all n have started: if keys were served one at
	// a time this would never finish.
	var startedWG sync.WaitGroup
	startedWG.Add(n)
	all := make(chan struct{})
	go func() { startedWG.Wait(); close(all) }()

	errs := make(chan error, n)
	for i := range n {
		go func() {
			errs <- a.Do(context.Background(), fmt.Sprintf("key-%d", i), func(context.Context) error {
				startedWG.Done()
				select {
				case <-all:
					return nil
				case <-time.After(failAfter):
					return errors.New("keys were not run in parallel")
				}
			})
		}()
	}
	for range n {
		if err := recv(t, "job result", errs); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "actors to exit", func() bool { return a.Len() == 0 })
}

func TestActorsReturnJobError(t *testing.T) {
	a := NewActors(0)
	want := errors.New("boom")
	if err := a.Do(context.Background(), "k", func(context.Context) error { return want }); !errors.Is(err, want) {
		t.Fatalf("Do = %v, want %v", err, want)
	}
	type ctxKey struct{}
	ctx := context.WithValue(context.Background(), ctxKey{}, "v")
	err := a.Do(ctx, "k", func(ctx context.Context) error {
		if ctx.Value(ctxKey{}) != "v" {
			return errors.New("job did not get the caller's context")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestActorsExitWhenIdle(t *testing.T) {
	a := NewActors(8)
	if a.Len() != 0 {
		t.Fatalf("Len = %d before any job", a.Len())
	}
	release := make(chan struct{})
	var done []<-chan error
	for _, k := range []string{"a", "b", "c"} {
		done = append(done, block(t, a, k, release))
	}
	if got := a.Len(); got != 3 {
		t.Fatalf("Len = %d with 3 busy keys, want 3", got)
	}
	close(release)
	for _, c := range done {
		if err := recv(t, "job", c); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "actors to exit", func() bool { return a.Len() == 0 })

	// A key whose actor went away gets a fresh one.
	if err := a.Do(context.Background(), "a", func(context.Context) error { return nil }); err != nil {
		t.Fatal(err)
	}
	eventually(t, "actor to exit again", func() bool { return a.Len() == 0 })
}

func TestActorsPanicBecomesError(t *testing.T) {
	a := NewActors(4)
	err := a.Do(context.Background(), "k", func(context.Context) error { panic("bad command") })
	if err == nil || !strings.Contains(err.Error(), "panicked") || !strings.Contains(err.Error(), "bad command") {
		t.Fatalf("Do with panicking job = %v, want a panic error", err)
	}
	// The actor (and others queued behind the panic) keep working.
	release := make(chan struct{})
	first := block(t, a, "k", release)
	panicked := make(chan error, 1)
	go func() {
		panicked <- a.Do(context.Background(), "k", func(context.Context) error { panic(fmt.Errorf("wrapped")) })
	}()
	eventually(t, "panicking job queued", func() bool { return queued(a, "k") == 1 })
	after := make(chan error, 1)
	go func() {
		after <- a.Do(context.Background(), "k", func(context.Context) error { return nil })
	}()
	eventually(t, "next job queued", func() bool { return queued(a, "k") == 2 })
	close(release)
	if err := recv(t, "first", first); err != nil {
		t.Fatal(err)
	}
	if err := recv(t, "panicking job", panicked); err == nil {
		t.Fatal("panicking job returned nil")
	}
	if err := recv(t, "job after panic", after); err != nil {
		t.Fatalf("job after panic: %v", err)
	}
	eventually(t, "actor to exit", func() bool { return a.Len() == 0 })
}

func TestActorsCancelledContext(t *testing.T) {
	t.Run("already cancelled", func(t *testing.T) {
		a := NewActors(4)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		ran := false
		err := a.Do(ctx, "k", func(context.Context) error { ran = true; return nil })
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Do = %v, want context.Canceled", err)
		}
		if ran {
			t.Fatal("job ran with a cancelled context")
		}
		eventually(t, "actor to exit", func() bool { return a.Len() == 0 })
	})

	t.Run("mailbox full", func(t *testing.T) {
		a := NewActors(1)
		release := make(chan struct{})
		first := block(t, a, "k", release)
		second := make(chan error, 1)
		go func() {
			second <- a.Do(context.Background(), "k", func(context.Context) error { return nil })
		}()
		eventually(t, "mailbox full", func() bool { return queued(a, "k") == 1 })

		// The mailbox is full, so this Do cannot be queued: it must give up
		// on its context, not wait.
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		ran := make(chan struct{}, 1)
		err := a.Do(ctx, "k", func(context.Context) error { ran <- struct{}{}; return nil })
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Do = %v, want context.Canceled", err)
		}

		// Cancelled while waiting for room.
		ctx2, cancel2 := context.WithCancel(context.Background())
		waiting := make(chan error, 1)
		go func() { waiting <- a.Do(ctx2, "k", func(context.Context) error { ran <- struct{}{}; return nil }) }()
		cancel2()
		if err := recv(t, "cancelled Do", waiting); !errors.Is(err, context.Canceled) {
			t.Fatalf("Do cancelled while waiting = %v, want context.Canceled", err)
		}

		close(release)
		if err := recv(t, "first", first); err != nil {
			t.Fatal(err)
		}
		if err := recv(t, "second", second); err != nil {
			t.Fatal(err)
		}
		// The given-up references are released: the actor goes away.
		eventually(t, "actor to exit", func() bool { return a.Len() == 0 })
		select {
		case <-ran:
			t.Fatal("a job whose context was cancelled before queueing ran")
		default:
		}
	})
}

func TestActorsManyKeysConcurrently(t *testing.T) {
	a := NewActors(2)
	const keys, callers, perCaller = 16, 4, 50
	// Each key's counter is touched only by that key's jobs, without a
	// lock: if two jobs of one key ever overlapped, -race would see it
	// (and updates could be lost).
	counts := make([]int, keys)
	var wg sync.WaitGroup
	for k := range keys {
		key := fmt.Sprintf("k%d", k)
		for range callers {
			wg.Go(func() {
				for range perCaller {
					if err := a.Do(context.Background(), key, func(context.Context) error {
						counts[k]++
						return nil
					}); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
	}
	wg.Wait()
	for k, c := range counts {
		if c != callers*perCaller {
			t.Fatalf("key %d ran %d jobs, want %d", k, c, callers*perCaller)
		}
	}
	eventually(t, "actors to exit", func() bool { return a.Len() == 0 })
}

// TestActorsInlineThenQueued: the first job of an idle key runs on its
// caller's goroutine; jobs arriving meanwhile queue behind it and run in
// order once it is done, and the key's actor goes away afterwards.
func TestActorsInlineThenQueued(t *testing.T) {
	a := NewActors(8)
	ctx := context.Background()
	var mu sync.Mutex
	var order []int
	record := func(i int) {
		mu.Lock()
		order = append(order, i)
		mu.Unlock()
	}
	release := make(chan struct{})
	running := make(chan struct{})
	first := make(chan error, 1)
	go func() {
		first <- a.Do(ctx, "k", func(context.Context) error {
			close(running)
			<-release
			record(0)
			return nil
		})
	}()
	<-running
	var wg sync.WaitGroup
	for i := 1; i <= 3; i++ {
		// Queue in a known order: each Do is queued before the next starts.
		queued := make(chan struct{})
		wg.Go(func() {
			close(queued)
			if err := a.Do(ctx, "k", func(context.Context) error { record(i); return nil }); err != nil {
				t.Error(err)
			}
		})
		<-queued
		for a.queued("k") < i {
			runtime.Gosched()
		}
	}
	close(release)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if fmt.Sprint(order) != "[0 1 2 3]" {
		t.Fatalf("order %v", order)
	}
	// The actor leaves the map after its last job's Do has returned:
	// wait for it (bounded, a failure timeout only).
	deadline := time.Now().Add(10 * time.Second)
	for a.Len() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d actors left", a.Len())
		}
		time.Sleep(time.Millisecond)
	}
}

// queued reports how many jobs wait in key's mailbox .
func (a *Actors) queued(key string) int {
	k := Key{ID: key}
	sh := &a.shards[maphash.Comparable(a.seed, k)%shardCount]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if act := sh.m[k]; act != nil {
		return len(act.mbox)
	}
	return 0
}
