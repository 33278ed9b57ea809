package hub

import (
	"errors"
	"runtime"
	"slices"
	"testing"

	"chatgate/core/model"
)

func notice(conv model.ConvID, seq uint64) Notice {
	return Notice{
		Conv:   model.Conversation{ID: conv, LastSeq: seq},
		Events: []model.Event{{Conv: conv, Seq: seq}},
	}
}

// take reads n queued notices from s, failing the test if fewer are queued.
func take(t *testing.T, s *Sub, n int) []Notice {
	t.Helper()
	out := make([]Notice, 0, n)
	// Publish is synchronous: everything published is already queued, so
	// C is read without waiting (and ahead of Done, which may be closed
	// for a subscriber cut off with notices still queued).
	for range n {
		select {
		case x := <-s.C():
			out = append(out, *x)
		default:
			t.Fatalf("only %d of %d notices queued", len(out), n)
		}
	}
	return out
}

func empty(t *testing.T, s *Sub) {
	t.Helper()
	select {
	case x := <-s.C():
		t.Fatalf("unexpected notice for %s seq %d", x.Conv.ID, x.Conv.LastSeq)
	default:
	}
}

func alive(t *testing.T, s *Sub) {
	t.Helper()
	select {
	case <-s.Done():
		t.Fatalf("subscription ended: %v", s.Err())
	default:
	}
}

func TestBusDeliversInPublishOrder(t *testing.T) {
	b := NewBus()
	const n = 50
	convA := b.SubscribeConv("A", n)
	convA2 := b.SubscribeConv("A", n)
	convB := b.SubscribeConv("B", n)
	desk := b.SubscribeDesk(2 * n)
	if got := b.Subscribers(); got != 4 {
		t.Fatalf("Subscribers = %d, want 4", got)
	}
	for i := 1; i <= n; i++ {
		b.Publish(notice("A", uint64(i)))
		b.Publish(notice("B", uint64(i)))
	}
	for _, tc := range []struct {
		name string
		sub  *Sub
		conv model.ConvID
	}{{"A", convA, "A"}, {"A second", convA2, "A"}, {"B", convB, "B"}} {
		got := take(t, tc.sub, n)
		for i, x := range got {
			if x.Conv.ID != tc.conv || x.Conv.LastSeq != uint64(i+1) || len(x.Events) != 1 || x.Events[0].Seq != uint64(i+1) {
				t.Fatalf("%s: notice %d is %s seq %d, want %s seq %d", tc.name, i, x.Conv.ID, x.Conv.LastSeq, tc.conv, i+1)
			}
		}
		empty(t, tc.sub)
		alive(t, tc.sub)
	}
	// The desk sees every conversation, interleaved as published.
	got := take(t, desk, 2*n)
	for i, x := range got {
		wantConv := model.ConvID("A")
		if i%2 == 1 {
			wantConv = "B"
		}
		if x.Conv.ID != wantConv || x.Conv.LastSeq != uint64(i/2+1) {
			t.Fatalf("desk notice %d is %s seq %d, want %s seq %d", i, x.Conv.ID, x.Conv.LastSeq, wantConv, i/2+1)
		}
	}
	empty(t, desk)
}

func TestBusNoSubscribers(t *testing.T) {
	b := NewBus()
	b.Publish(notice("nobody", 1)) // must not block or panic
	if got := b.Subscribers(); got != 0 {
		t.Fatalf("Subscribers = %d, want 0", got)
	}
}

func TestBusSlowSubscriberIsCutOff(t *testing.T) {
	for _, tc := range []struct {
		name string
		sub  func(b *Bus) *Sub
	}{
		{"conversation", func(b *Bus) *Sub { return b.SubscribeConv("A", 2) }},
		{"desk", func(b *Bus) *Sub { return b.SubscribeDesk(2) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := NewBus()
			slow := tc.sub(b)
			fastConv := b.SubscribeConv("A", 100)
			fastDesk := b.SubscribeDesk(100)
			if got := b.Subscribers(); got != 3 {
				t.Fatalf("Subscribers = %d, want 3", got)
			}
			b.Publish(notice("A", 1))
			b.Publish(notice("A", 2))
			alive(t, slow)
			b.Publish(notice("A", 3)) // queue of 2 is full: cut off
			select {
			case <-slow.Done():
			default:
				t.Fatal("slow subscriber not cut off")
			}
			if !errors.Is(slow.Err(), ErrSlow) {
				t.Fatalf("Err = %v, want ErrSlow", slow.Err())
			}
			if got := b.Subscribers(); got != 2 {
				t.Fatalf("Subscribers = %d after cut-off, want 2", got)
			}
			// What was queued before the cut-off can still be read; nothing
			// after it arrives.
			got := take(t, slow, 2)
			if got[0].Conv.LastSeq != 1 || got[1].Conv.LastSeq != 2 {
				t.Fatalf("slow subscriber got seqs %d,%d, want 1,2", got[0].Conv.LastSeq, got[1].Conv.LastSeq)
			}
			b.Publish(notice("A", 4))
			empty(t, slow)
			// Closing after the cut-off keeps the first reason.
			slow.Close()
			if !errors.Is(slow.Err(), ErrSlow) {
				t.Fatalf("Err after Close = %v, want ErrSlow", slow.Err())
			}
			// Others are unaffected.
			for _, s := range []*Sub{fastConv, fastDesk} {
				alive(t, s)
				for i, x := range take(t, s, 4) {
					if x.Conv.LastSeq != uint64(i+1) {
						t.Fatalf("fast subscriber notice %d has seq %d", i, x.Conv.LastSeq)
					}
				}
			}
		})
	}
}

func TestBusPublishNeverBlocks(t *testing.T) {
	b := NewBus()
	// Subscribers that never read.
	subs := []*Sub{b.SubscribeConv("A", 1), b.SubscribeDesk(1), b.SubscribeConv("A", 0)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 10_000 {
			b.Publish(notice("A", uint64(i+1)))
		}
	}()
	recv(t, "publishes to return", done)
	for _, s := range subs {
		if !errors.Is(s.Err(), ErrSlow) {
			t.Fatalf("Err = %v, want ErrSlow", s.Err())
		}
	}
	if got := b.Subscribers(); got != 0 {
		t.Fatalf("Subscribers = %d, want 0", got)
	}
}

func TestBusClose(t *testing.T) {
	b := NewBus()
	conv := b.SubscribeConv("A", 4)
	other := b.SubscribeConv("A", 4)
	desk := b.SubscribeDesk(4)
	conv.Close()
	conv.Close() // idempotent
	desk.Close()
	select {
	case <-conv.Done():
	default:
		t.Fatal("Done not closed after Close")
	}
	if !errors.Is(conv.Err(), ErrUnsubscribed) || !errors.Is(desk.Err(), ErrUnsubscribed) {
		t.Fatalf("Err = %v / %v, want ErrUnsubscribed", conv.Err(), desk.Err())
	}
	if got := b.Subscribers(); got != 1 {
		t.Fatalf("Subscribers = %d, want 1", got)
	}
	b.Publish(notice("A", 1))
	empty(t, conv)
	empty(t, desk)
	take(t, other, 1)
	other.Close()
	if got := b.Subscribers(); got != 0 {
		t.Fatalf("Subscribers = %d, want 0", got)
	}
}

func TestBusConcurrentPublishAndSubscribe(t *testing.T) {
	// For -race: subscribers come and go while notices flow.
	b := NewBus()
	stop := make(chan struct{})
	pubDone := make(chan struct{})
	go func() {
		defer close(pubDone)
		for i := uint64(1); ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			b.Publish(notice(model.ConvID([]string{"A", "B", "C"}[i%3]), i))
			runtime.Gosched() // let the subscribers run on one CPU too
		}
	}()
	done := make(chan struct{})
	for w := range 4 {
		go func() {
			defer func() { done <- struct{}{} }()
			for range 200 {
				var s *Sub
				if w%2 == 0 {
					s = b.SubscribeConv("A", 2)
				} else {
					s = b.SubscribeDesk(2)
				}
				select {
				case <-s.C():
				case <-s.Done():
				}
				s.Close()
				if err := s.Err(); !errors.Is(err, ErrUnsubscribed) && !errors.Is(err, ErrSlow) {
					t.Errorf("Err = %v", err)
				}
			}
		}()
	}
	for range 4 {
		recv(t, "subscriber worker", done)
	}
	close(stop)
	recv(t, "publisher", pubDone)
	if got := b.Subscribers(); got != 0 {
		t.Fatalf("Subscribers = %d, want 0", got)
	}
}

// TestSubscribeVisitor: a visitor subscription gets the notices of every
// conversation of its visitor, including ones started after it, and no
// other visitor's.
func TestSubscribeVisitor(t *testing.T) {
	b := NewBus()
	sub := b.SubscribeVisitor("vera", 8)
	for _, n := range []Notice{
		{Conv: model.Conversation{ID: "c1", Visitor: "vera"}},
		{Conv: model.Conversation{ID: "c2", Visitor: "walt"}},
		{Conv: model.Conversation{ID: "c3", Visitor: "vera"}},
		{Conv: model.Conversation{ID: "c4"}},
	} {
		b.Publish(n)
	}
	var got []model.ConvID
	for len(sub.C()) > 0 {
		got = append(got, (<-sub.C()).Conv.ID)
	}
	if want := []model.ConvID{"c1", "c3"}; !slices.Equal(got, want) {
		t.Fatalf("visitor subscription got %v, want %v", got, want)
	}
	if n := b.Subscribers(); n != 1 {
		t.Fatalf("Subscribers = %d, want 1", n)
	}
	sub.Close()
	if n := b.Subscribers(); n != 0 {
		t.Fatalf("Subscribers after Close = %d, want 0", n)
	}
}

// TestNoticeSharedOncePerKey: subscribers of one published notice share
// what they render from it, one computation per key; a notice that was
// not published computes each time.
func TestNoticeSharedOncePerKey(t *testing.T) {
	b := NewBus()
	subs := []*Sub{b.SubscribeConv("c1", 4), b.SubscribeConv("c1", 4), b.SubscribeDesk(4)}
	b.Publish(Notice{Conv: model.Conversation{ID: "c1"}})
	calls := map[string]int{}
	for _, s := range subs {
		n := <-s.C()
		for _, key := range []string{"ddp", "rtm"} {
			got := n.Shared(key, func() any { calls[key]++; return []byte(key) }).([]byte)
			if string(got) != key {
				t.Fatalf("Shared(%q) = %q", key, got)
			}
		}
		copied := *n // copies share it too
		copied.Shared("ddp", func() any { calls["ddp"]++; return []byte("ddp") })
	}
	if calls["ddp"] != 1 || calls["rtm"] != 1 {
		t.Fatalf("computed %v, want once per key", calls)
	}
	var unpublished Notice
	unpublished.Shared("x", func() any { calls["x"]++; return nil })
	unpublished.Shared("x", func() any { calls["x"]++; return nil })
	if calls["x"] != 2 {
		t.Fatalf("unpublished notice computed %d times, want 2", calls["x"])
	}
}
