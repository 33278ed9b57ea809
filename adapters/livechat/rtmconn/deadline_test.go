package rtmconn

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestDeadlinesBoundEveryRequest: each context handed out ends no sooner
// than d and no later than d + d/deadlineSlack after it was asked for;
// requests close together share one; another parent gets its own, and a
// shared context ends with its parent.
func TestDeadlinesBoundEveryRequest(t *testing.T) {
	const d = time.Hour
	var dl Deadlines
	parent, cancel := context.WithCancel(context.Background())
	before := time.Now()
	a := dl.Context(parent, d)
	b := dl.Context(parent, d)
	after := time.Now()
	if a != b {
		t.Fatal("two requests a moment apart got contexts of their own")
	}
	for _, ctx := range []context.Context{a, b} {
		until, ok := ctx.Deadline()
		if !ok {
			t.Fatal("no deadline")
		}
		// Asked for between before and after: at least d left at after,
		// at most d + d/deadlineSlack from before, give or take the
		// clock reads in between (after).
		if until.Before(after.Add(d)) || until.After(after.Add(d+d/deadlineSlack)) || until.Before(before.Add(d+d/deadlineSlack)) {
			t.Fatalf("deadline %v outside [%v, %v]", until, after.Add(d), after.Add(d+d/deadlineSlack))
		}
	}
	other := dl.Context(context.Background(), d)
	if other == a {
		t.Fatal("a context under another parent was shared")
	}
	again := dl.Context(parent, d)
	if again == other {
		t.Fatal("a context under another parent was shared")
	}
	cancel()
	<-again.Done()
	if !errors.Is(again.Err(), context.Canceled) {
		t.Fatalf("err %v after the parent ended", again.Err())
	}
	if other.Err() != nil {
		t.Fatal("another parent's context ended")
	}
}

// TestDeadlinesRenewBeforeTooLittleIsLeft: once the shared context has
// less than d left, the next request gets a new one (a short d, so that
// the test sees it run down).
func TestDeadlinesRenewBeforeTooLittleIsLeft(t *testing.T) {
	const d = 40 * time.Millisecond
	var dl Deadlines
	first := dl.Context(context.Background(), d)
	time.Sleep(d/deadlineSlack + 5*time.Millisecond)
	next := dl.Context(context.Background(), d)
	if next == first {
		t.Fatal("a context with less than the timeout left was handed out")
	}
	<-first.Done()
	if !errors.Is(first.Err(), context.DeadlineExceeded) {
		t.Fatalf("err %v", first.Err())
	}
}
