package commitq

import (
	"context"
	"errors"
	"testing"
	"time"

	"chatgate/store"
)

type req struct{ errc chan error }

func newReq() req { return req{errc: make(chan error, 1)} }

func TestSubmit(t *testing.T) {
	done, cancel := context.WithCancel(context.Background())
	cancel()
	cases := []struct {
		name string
		// setup prepares the queue and returns the context to submit with.
		setup   func(q *Queue[req]) context.Context
		wantErr error
		// answered: a writer takes the request and answers nil; otherwise
		// the request must not have been queued.
		answered bool
	}{
		{"answered by the writer", func(q *Queue[req]) context.Context { return context.Background() }, nil, true},
		{"closed queue refuses", func(q *Queue[req]) context.Context { q.Close(); return context.Background() }, store.ErrClosed, false},
		// With a free slot, select could pick the send at random: a done
		// context must be refused before it.
		{"done context is not queued", func(q *Queue[req]) context.Context { return done }, context.Canceled, false},
		{"full queue and context ends", func(q *Queue[req]) context.Context {
			q.c <- newReq()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
			t.Cleanup(cancel)
			return ctx
		}, context.DeadlineExceeded, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			q := New[req](1)
			ctx := tc.setup(q)
			r := newReq()
			var got error
			if tc.answered {
				go func() {
					w := <-q.C()
					w.errc <- nil
				}()
				got = q.Submit(ctx, r, r.errc)
			} else {
				got = q.Submit(ctx, r, r.errc)
				for len(q.c) > 0 {
					if w := <-q.c; w.errc == r.errc {
						t.Error("refused request was queued")
					}
				}
			}
			if (tc.wantErr == nil) != (got == nil) || !errors.Is(got, tc.wantErr) {
				t.Fatalf("Submit = %v, want %v", got, tc.wantErr)
			}
		})
	}
}

// A caller that stops waiting after its request was queued gets its
// context's error, and the request stays queued for the writer: "nil"
// means committed, an error does not mean "not committed".
func TestSubmitQueuedThenCancelled(t *testing.T) {
	q := New[req](1)
	ctx, cancel := context.WithCancel(context.Background())
	r := newReq()
	errc := make(chan error, 1)
	go func() { errc <- q.Submit(ctx, r, r.errc) }()
	w := <-q.C()
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("Submit = %v, want context.Canceled", err)
	}
	if w.errc != r.errc {
		t.Fatal("writer received another request")
	}
}

func TestCloseWaitsForHold(t *testing.T) {
	q := New[req](1)
	q.c <- newReq()
	entered, release := make(chan struct{}), make(chan struct{})
	held := make(chan error, 1)
	go func() {
		held <- q.Hold(func() error { close(entered); <-release; return nil })
	}()
	<-entered
	closed := make(chan bool, 1)
	go func() { closed <- q.Close() }()
	select {
	case <-closed:
		t.Fatal("Close returned while Hold's work ran")
	case <-time.After(20 * time.Millisecond):
	}
	close(release)
	if !<-closed {
		t.Fatal("first Close reported the queue already closed")
	}
	if err := <-held; err != nil {
		t.Fatalf("Hold = %v", err)
	}
	if q.Close() {
		t.Fatal("second Close reported closing the queue")
	}
	if err := q.Hold(func() error { t.Error("ran after Close"); return nil }); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("Hold after Close = %v, want ErrClosed", err)
	}
	// What was queued before Close is still received, then C ends.
	if _, ok := <-q.C(); !ok {
		t.Fatal("queued request lost by Close")
	}
	if _, ok := <-q.C(); ok {
		t.Fatal("C not closed")
	}
	if !q.Closed() {
		t.Fatal("Closed = false after Close")
	}
}
