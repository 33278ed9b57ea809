package desk

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/rs/zerolog"

	"chatgate/core/hub"
	"chatgate/core/model"
	"chatgate/core/routing"
	"chatgate/store"
	"chatgate/store/postgres"
	"chatgate/store/postgres/pgtest"
)

// interloper writes a conversation behind the desk's back, as another node
// would: before the desk's next commit, it appends one event to the
// conversation through the store (read, build, conditional commit).
type interloper struct {
	store.Store
	armed atomic.Int32 // commits still to cut in front of
	wrote atomic.Int32
	// armedVisitor: cut in front of checked visitor writes instead,
	// setting custom field "other-node" on the visitor.
	armedVisitor atomic.Int32
}

func (s *interloper) Commit(ctx context.Context, b *store.Batch) error {
	if len(b.Visitors) == 1 && b.Visitors[0].Rev > 0 && s.armedVisitor.Add(-1) >= 0 {
		v, err := s.Store.Visitor(ctx, b.Visitors[0].ID)
		if err != nil {
			return err
		}
		v.Fields = map[string]string{"other-node": fmt.Sprint(s.wrote.Load())}
		if err := s.Store.Commit(ctx, &store.Batch{Visitors: []model.Visitor{v}}); err != nil {
			return fmt.Errorf("interloper: %w", err)
		}
		s.wrote.Add(1)
	}
	if len(b.Convs) == 1 && b.Convs[0].Rev > 0 && s.armed.Add(-1) >= 0 {
		c, err := s.Store.Conversation(ctx, b.Convs[0].ID)
		if err != nil {
			return err
		}
		c.LastSeq++
		e := model.Event{Conv: c.ID, Seq: c.LastSeq, ID: model.NewID(), Kind: model.KindMessage, Text: "from another node",
			Author: model.Author{Kind: model.AuthorSystem}, Visibility: model.VisibleAll}
		if err := s.Store.Commit(ctx, &store.Batch{Convs: []model.Conversation{c}, Events: []model.Event{e}}); err != nil {
			return fmt.Errorf("interloper: %w", err)
		}
		s.wrote.Add(1)
	}
	return s.Store.Commit(ctx, b)
}

// TestStaleRetry: commands whose conversation another writer changed
// between their read and their commit run again on a fresh read, on every
// kind of command; the client sees success and the log stays dense.
func TestStaleRetry(t *testing.T) {
	e := newEnv(t, config{agents: []model.Agent{ann, dan}})
	il := &interloper{Store: e.bolt}
	var stale atomic.Int32
	e.d = New(Options{Store: il, Router: e.router, Bus: e.bus, Actors: hub.NewActors(64), Logger: zerolog.Nop(),
		Departs: departments, OnStale: func() { stale.Add(1) }})
	e.online("ann", "dan")
	v, w := e.visitor("vera"), e.visitor("walt")
	c, _ := e.start(v, "sales")
	ctx := t.Context()
	steps := []struct {
		name string
		run  func() error
	}{
		{"post", func() error {
			_, _, err := e.d.Post(ctx, PostRequest{Conv: c.ID, Author: visitorAuthor(v), Draft: Draft{Text: "hi"},
				IdemSystem: "test", IdemKey: "k1"})
			return err
		}},
		{"edit", func() error {
			_, err := e.d.EditEvent(ctx, c.ID, 3, visitorAuthor(v), "edited", "")
			return err
		}},
		{"tag", func() error { _, err := e.d.TagThread(ctx, c.ID, agentAuthor("ann"), "vip", true, ""); return err }},
		{"assign", func() error { return e.d.Assign(ctx, c.ID, "dan", agentAuthor("ann"), "") }},
		{"change visitor", func() error { _, err := e.d.ChangeVisitor(ctx, c.ID, v.ID, w.ID, agentAuthor("dan")); return err }},
		{"close", func() error { _, err := e.d.Close(ctx, c.ID, visitorAuthor(w), "", ""); return err }},
	}
	for _, st := range steps {
		before := il.wrote.Load()
		il.armed.Store(1)
		if err := st.run(); err != nil {
			t.Fatalf("%s with a concurrent writer: %v", st.name, err)
		}
		if il.wrote.Load() != before+1 {
			t.Fatalf("%s: the interloper did not cut in", st.name)
		}
	}
	if got := stale.Load(); got != int32(len(steps)) {
		t.Errorf("OnStale called %d times, want %d (one per step)", got, len(steps))
	}
	evs := e.checkLog(c.ID)
	if got := e.conv(c.ID); got.State != model.StateClosed || got.Agent != "dan" || !slices.Contains(got.Tags, "vip") || got.Visitor != w.ID {
		t.Errorf("conversation after the steps: state %s agent %s tags %v visitor %s", got.State, got.Agent, got.Tags, got.Visitor)
	}
	// The visitor's message exists once, under its key.
	idem, err := e.bolt.Idempotent(ctx, "test", "k1")
	if err != nil || evs[idem.Seq-1].Text == "" {
		t.Errorf("idempotency key k1 = %+v, %v", idem, err)
	}
}

// TestVisitorStaleRetry: a visitor command whose visitor another node wrote
// in between runs again and keeps both changes (no lost update).
func TestVisitorStaleRetry(t *testing.T) {
	e := newEnv(t, config{})
	il := &interloper{Store: e.bolt}
	var stale atomic.Int32
	e.d = New(Options{Store: il, Router: e.router, Bus: e.bus, Actors: hub.NewActors(64), Logger: zerolog.Nop(),
		Departs: departments, OnStale: func() { stale.Add(1) }})
	v := e.visitor("vera")
	il.armedVisitor.Store(1)
	name := "Vera Renamed"
	got, err := e.d.UpdateVisitor(t.Context(), v.ID, VisitorUpdate{Name: &name})
	if err != nil {
		t.Fatalf("UpdateVisitor with a concurrent writer: %v", err)
	}
	stored, err := e.bolt.Visitor(t.Context(), v.ID)
	if err != nil {
		t.Fatal(err)
	}
	if stored.Name != name || stored.Fields["other-node"] == "" || got.Fields["other-node"] == "" {
		t.Errorf("stored visitor %+v: want both the rename and the other node's field", stored)
	}
	if stale.Load() != 1 {
		t.Errorf("OnStale called %d times, want 1", stale.Load())
	}
}

// TestStaleRetryBounded: a conversation that some other writer changes
// before every commit eventually fails the command instead of spinning.
func TestStaleRetryBounded(t *testing.T) {
	e := newEnv(t, config{})
	il := &interloper{Store: e.bolt}
	e.d = New(Options{Store: il, Router: e.router, Bus: e.bus, Actors: hub.NewActors(64), Logger: zerolog.Nop(), Departs: departments})
	v := e.visitor("vera")
	c, _ := e.start(v, "sales")
	il.armed.Store(1 << 20)
	_, _, err := e.d.Post(t.Context(), PostRequest{Conv: c.ID, Author: visitorAuthor(v), Draft: Draft{Text: "hi"}})
	if !errors.Is(err, store.ErrStale) {
		t.Fatalf("Post against a writer that always wins = %v, want store.ErrStale", err)
	}
	if n := il.wrote.Load(); n != maxStaleRetries+1 {
		t.Errorf("%d attempts, want %d", n, maxStaleRetries+1)
	}
	e.checkLog(c.ID)
}

// TestTwoDesksOnePostgres: two desks (two nodes) on two store instances of
// one PostgreSQL database post into the same conversations at once. Every
// acknowledged message is stored exactly once, seqs are dense, and a
// client id (idempotency key) sent to both nodes yields one event.
func TestTwoDesksOnePostgres(t *testing.T) {
	url := pgtest.URL(t)
	schema := pgtest.Schema(t, url)
	var desks [2]*Desk
	var stale atomic.Int32
	for i := range desks {
		st, err := postgres.Open(t.Context(), url, postgres.Options{Schema: schema})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		desks[i] = New(Options{Store: st, Router: routing.New([]model.Agent{ann}, true), Bus: hub.NewBus(),
			Actors: hub.NewActors(64), Logger: zerolog.Nop(), Departs: departments, OnStale: func() { stale.Add(1) }})
	}
	ctx := t.Context()
	const convs, writers, perWriter = 3, 6, 15
	type chat struct {
		v model.Visitor
		c model.Conversation
	}
	chats := make([]chat, convs)
	for i := range chats {
		v, err := desks[0].EnsureVisitor(ctx, store.MapKey{System: "test", Kind: "visitor", Foreign: fmt.Sprint("v", i)}, model.Visitor{Name: "v"})
		if err != nil {
			t.Fatal(err)
		}
		c, _, err := desks[1].Start(ctx, StartRequest{Visitor: v.ID, Department: "sales", Origin: "test", Author: visitorAuthor(v)})
		if err != nil {
			t.Fatal(err)
		}
		chats[i] = chat{v, c}
	}
	var (
		mu    sync.Mutex
		acked = map[string]model.Event{} // idempotency key -> event acknowledged
		wg    sync.WaitGroup
	)
	errs := make(chan error, 2*writers*perWriter)
	for w := range writers {
		for k := range perWriter {
			ch := chats[(w+k)%convs]
			key := fmt.Sprintf("w%d-%d", w, k)
			// The same client message reaches both nodes (a client
			// retrying through the load balancer).
			for _, d := range desks {
				wg.Go(func() {
					ev, _, err := d.Post(ctx, PostRequest{Conv: ch.c.ID, Author: visitorAuthor(ch.v),
						Draft: Draft{Text: key}, IdemSystem: "test", IdemKey: key})
					if err != nil {
						errs <- fmt.Errorf("post %s: %w", key, err)
						return
					}
					mu.Lock()
					defer mu.Unlock()
					if prev, ok := acked[key]; ok && (prev.ID != ev.ID || prev.Seq != ev.Seq) {
						errs <- fmt.Errorf("key %s acknowledged as two events: %s/%d and %s/%d", key, prev.ID, prev.Seq, ev.ID, ev.Seq)
					}
					acked[key] = ev
				})
			}
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	st := desks[0].Store()
	seen := map[string]bool{}
	for _, ch := range chats {
		c, err := st.Conversation(ctx, ch.c.ID)
		if err != nil {
			t.Fatal(err)
		}
		evs, err := st.Events(ctx, c.ID, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		if uint64(len(evs)) != c.LastSeq {
			t.Errorf("conversation %s: %d events, LastSeq %d", c.ID, len(evs), c.LastSeq)
		}
		for i, ev := range evs {
			if ev.Seq != uint64(i+1) {
				t.Fatalf("conversation %s: event %d has seq %d", c.ID, i, ev.Seq)
			}
			if ev.Kind != model.KindMessage || ev.Author.Kind != model.AuthorVisitor {
				continue
			}
			if seen[ev.Text] {
				t.Errorf("message %s stored twice", ev.Text)
			}
			seen[ev.Text] = true
		}
	}
	for key, ev := range acked {
		if !seen[key] {
			t.Errorf("acknowledged message %s (seq %d) is not stored", key, ev.Seq)
		}
	}
	if len(acked) != writers*perWriter {
		t.Errorf("%d keys acknowledged, want %d", len(acked), writers*perWriter)
	}
	t.Logf("%d stale retries", stale.Load())
}

// TestCachedCopiesNeverWiden: each node's store keeps copies of the
// conversations and visitors its posts read (store/postgres, under
// store.MayBeStale). Another node's ban, close or takeover, of which this
// node heard nothing (no cluster notices here), must still hold on this
// node's next post: the post's commit finds its copies stale and the
// refusal is made on a fresh read.
func TestCachedCopiesNeverWiden(t *testing.T) {
	url := pgtest.URL(t)
	schema := pgtest.Schema(t, url)
	var (
		desks  [2]*Desk
		stores [2]*postgres.Store
	)
	for i := range desks {
		st, err := postgres.Open(t.Context(), url, postgres.Options{Schema: schema})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		stores[i] = st
		desks[i] = New(Options{Store: st, Router: routing.New([]model.Agent{ann, dan}, true), Bus: hub.NewBus(),
			Actors: hub.NewActors(64), Logger: zerolog.Nop(), Departs: departments})
	}
	a, b := desks[0], desks[1]
	ctx := t.Context()
	chat := func(name string) (model.Visitor, model.Conversation) {
		t.Helper()
		v, err := b.EnsureVisitor(ctx, store.MapKey{System: "test", Kind: "visitor", Foreign: name}, model.Visitor{Name: name})
		if err != nil {
			t.Fatal(err)
		}
		c, _, err := b.Start(ctx, StartRequest{Visitor: v.ID, Department: "sales", Origin: "test", Author: visitorAuthor(v)})
		if err != nil {
			t.Fatal(err)
		}
		return v, c
	}
	post := func(d *Desk, c model.Conversation, by model.Author) error {
		_, _, err := d.Post(ctx, PostRequest{Conv: c.ID, Author: by, Draft: Draft{Text: "hello"}})
		return err
	}
	// warm posts twice on node a, so that its second post reads copies.
	warm := func(c model.Conversation, by model.Author) {
		t.Helper()
		before := stores[0].CacheStats()
		for range 2 {
			if err := post(a, c, by); err != nil {
				t.Fatalf("post on a: %v", err)
			}
		}
		if after := stores[0].CacheStats(); after.Conversations == before.Conversations {
			t.Fatalf("node a's second post read no cached conversation (%+v)", after)
		}
	}

	t.Run("ban on the other node", func(t *testing.T) {
		v, c := chat("banned")
		warm(c, visitorAuthor(v))
		if _, err := b.Ban(ctx, v.ID, 1, model.Author{Kind: model.AuthorSystem}, ""); err != nil {
			t.Fatal(err)
		}
		if err := post(a, c, visitorAuthor(v)); !errors.Is(err, ErrBanned) {
			t.Fatalf("post after a ban on the other node = %v, want ErrBanned", err)
		}
	})
	t.Run("close on the other node", func(t *testing.T) {
		v, c := chat("closed")
		warm(c, visitorAuthor(v))
		if _, err := b.Close(ctx, c.ID, model.Author{Kind: model.AuthorSystem}, "test", ""); err != nil {
			t.Fatal(err)
		}
		if err := post(a, c, visitorAuthor(v)); !errors.Is(err, ErrInactive) {
			t.Fatalf("post after a close on the other node = %v, want ErrInactive", err)
		}
	})
	t.Run("takeover on the other node", func(t *testing.T) {
		// ann takes the chat on node a; node b transfers it to support,
		// which of the two only dan serves, and dan takes it there.
		_, c := chat("taken")
		warm(c, agentAuthor("ann"))
		if err := b.Transfer(ctx, c.ID, "support", model.Author{Kind: model.AuthorSystem}, ""); err != nil {
			t.Fatal(err)
		}
		if err := post(b, c, agentAuthor("dan")); err != nil {
			t.Fatalf("dan takes the chat on b: %v", err)
		}
		cv, err := stores[1].Conversation(ctx, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		if cv.Agent != "dan" {
			t.Fatalf("after the transfer the chat is %q's, want dan's", cv.Agent)
		}
		if err := post(a, c, agentAuthor("ann")); !errors.Is(err, ErrForbidden) {
			t.Fatalf("ann's post on a chat node b gave to dan = %v, want ErrForbidden", err)
		}
	})
}
