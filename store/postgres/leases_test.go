package postgres

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestLeaseTakenOverWhenHolderStops(t *testing.T) {
	sa, sb := twoNodes(t)
	if _, err := sa.Pool().Exec(t.Context(), `INSERT INTO cluster_leases (name, node, expires_at)
VALUES ('job', 'dead', now() + interval '1 second')`); err != nil {
		t.Fatal(err)
	}
	var running atomic.Int32
	var maxRunning atomic.Int32
	var runs atomic.Int32
	job := func(ctx context.Context) {
		n := running.Add(1)
		runs.Add(1)
		if n > maxRunning.Load() {
			maxRunning.Store(n)
		}
		<-ctx.Done()
		running.Add(-1)
	}
	ctxA, stopA := context.WithCancel(context.Background())
	ctxB, stopB := context.WithCancel(context.Background())
	defer stopB()
	la := NewLeases(sa.Pool(), "a", time.Second, zerolog.Nop())
	lb := NewLeases(sb.Pool(), "b", time.Second, zerolog.Nop())
	var wg sync.WaitGroup
	wg.Go(func() { la.Hold(ctxA, "job", job) })
	wg.Go(func() { lb.Hold(ctxB, "job", job) })
	waitFor(t, "a node to take the expired lease", func() bool { return runs.Load() == 1 })
	time.Sleep(1500 * time.Millisecond)
	if runs.Load() != 1 || maxRunning.Load() != 1 {
		t.Fatalf("%d runs, %d at once; want one", runs.Load(), maxRunning.Load())
	}
	// The holder (whichever) stops: the other takes over.
	var holder string
	if err := sa.Pool().QueryRow(t.Context(), `SELECT node FROM cluster_leases WHERE name = 'job'`).Scan(&holder); err != nil {
		t.Fatal(err)
	}
	if holder == "a" {
		stopA()
	} else {
		stopB()
	}
	waitFor(t, "the other node to take over", func() bool { return runs.Load() == 2 })
	stopA()
	stopB()
	wg.Wait()
	if maxRunning.Load() != 1 {
		t.Fatalf("%d holders at once", maxRunning.Load())
	}
}
