package upstream

import (
	"context"
	"errors"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/rs/zerolog"

	"chatgate/adapters/rocketchat"
	"chatgate/core/desk"
	"chatgate/core/hub"
	"chatgate/core/model"
	"chatgate/core/relay"
	"chatgate/core/routing"
	"chatgate/store"
	"chatgate/store/bolt"
)

// upstreamDesk is a chatgate desk with its Rocket.Chat surface on an
// httptest server (loopback): the external desk the connector talks to.
type upstreamDesk struct {
	d   *desk.Desk
	url string
}

func newUpstreamDesk(t *testing.T) *upstreamDesk {
	t.Helper()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "upstream.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	router := routing.New([]model.Agent{{ID: "jane", Name: "Jane", Username: "jane"}}, true)
	d := desk.New(desk.Options{Store: st, Router: router, Logger: zerolog.Nop()})
	d.AgentConnected("jane", true)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = d.Run(ctx) })
	s := rocketchat.New(d, rocketchat.Config{MaxBody: 1 << 20, MaxFrame: 1 << 16}, zerolog.Nop())
	gin.SetMode(gin.ReleaseMode)
	e := gin.New()
	s.Mount(e)
	srv := httptest.NewServer(e)
	t.Cleanup(func() {
		srv.Close()
		cancel()
		wg.Wait()
		st.Close()
	})
	return &upstreamDesk{d: d, url: srv.URL}
}

// conversations lists the upstream desk's conversations.
func (u *upstreamDesk) conversations(t *testing.T) []model.Conversation {
	t.Helper()
	var out []model.Conversation
	if err := u.d.Store().Conversations(t.Context(), func(c model.Conversation) bool { out = append(out, c); return true }); err != nil {
		t.Fatal(err)
	}
	return out
}

func (u *upstreamDesk) texts(t *testing.T, c model.ConvID) []string {
	t.Helper()
	evs, err := u.d.Store().Events(t.Context(), c, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range evs {
		if e.Kind == model.KindMessage && e.Author.Kind == model.AuthorVisitor {
			out = append(out, e.Text)
		}
	}
	return out
}

// front is a desk relaying everything to the connector, whose deliveries
// the test makes itself (no delivery loop runs).
type front struct {
	d    *desk.Desk
	c    *Connector
	sink *relay.Sink
	svc  *relay.Service
}

func newFront(t *testing.T, upstreamURL string) *front {
	t.Helper()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "front.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	c, err := New(Config{Name: "rc", URL: upstreamURL}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	svc, err := relay.New(relay.Config{Routes: []relay.Route{{Upstream: "rc"}}}, []relay.Connector{c}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	d := desk.New(desk.Options{Store: st, Router: routing.New(nil, true), Route: svc.Route, Relay: svc.Hook, Logger: zerolog.Nop()})
	svc.Attach(d)
	return &front{d: d, c: c, sink: svc.Sink("rc"), svc: svc}
}

func (f *front) visitor(t *testing.T, name string) model.Visitor {
	t.Helper()
	v, err := f.d.EnsureVisitor(t.Context(), store.MapKey{System: "test", Kind: "v", Foreign: name}, model.Visitor{Name: name})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func (f *front) start(t *testing.T, v model.Visitor) model.Conversation {
	t.Helper()
	c, _, err := f.d.Start(t.Context(), desk.StartRequest{Visitor: v.ID, Author: model.Author{Kind: model.AuthorVisitor, ID: string(v.ID)}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (f *front) post(t *testing.T, c model.Conversation, text string) model.Event {
	t.Helper()
	e, _, err := f.d.Post(t.Context(), desk.PostRequest{Conv: c.ID, Author: model.Author{Kind: model.AuthorVisitor, ID: string(c.Visitor)},
		Draft: desk.Draft{Text: text}})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func (f *front) close(t *testing.T, c model.Conversation) model.Conversation {
	t.Helper()
	c, err := f.d.Close(t.Context(), c.ID, model.Author{Kind: model.AuthorVisitor, ID: string(c.Visitor)}, "", "")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (f *front) deliver(t *testing.T, d relay.Delivery) error {
	t.Helper()
	v, err := f.d.Store().Visitor(t.Context(), d.Conv.Visitor)
	if err != nil {
		t.Fatal(err)
	}
	d.Visitor = v
	return f.c.Deliver(t.Context(), f.sink, d)
}

// TestDeliverIsIdempotent: an open or a message delivered twice (a retry
// after a crash or a lost answer) makes one room and one message.
func TestDeliverIsIdempotent(t *testing.T) {
	up := newUpstreamDesk(t)
	f := newFront(t, up.url)
	v := f.visitor(t, "vera")
	c := f.start(t, v)
	e := f.post(t, c, "hello")
	for range 2 {
		if err := f.deliver(t, relay.Delivery{Op: relay.OpOpen, Conv: c}); err != nil {
			t.Fatal(err)
		}
		if err := f.deliver(t, relay.Delivery{Op: relay.OpEvent, Conv: c, Event: e}); err != nil {
			t.Fatal(err)
		}
	}
	convs := up.conversations(t)
	if len(convs) != 1 {
		t.Fatalf("upstream has %d rooms, want 1", len(convs))
	}
	if got := up.texts(t, convs[0].ID); !slices.Equal(got, []string{"hello"}) {
		t.Fatalf("upstream messages %v", got)
	}
	if rid, err := f.sink.Link(t.Context(), relay.KindRoom, string(c.ID)); err != nil || rid != string(convs[0].ID) {
		t.Fatalf("room binding %q, %v", rid, err)
	}
}

// TestOpenWithTheVisitorsRoomTaken covers the visitor's one open room
// upstream being bound to another of its conversations.
func TestOpenWithTheVisitorsRoomTaken(t *testing.T) {
	up := newUpstreamDesk(t)
	f := newFront(t, up.url)

	t.Run("by an ended conversation whose close never got through", func(t *testing.T) {
		v := f.visitor(t, "stale")
		old := f.start(t, v)
		if err := f.deliver(t, relay.Delivery{Op: relay.OpOpen, Conv: old}); err != nil {
			t.Fatal(err)
		}
		f.close(t, old) // its close delivery is never made
		cur := f.start(t, v)
		if err := f.deliver(t, relay.Delivery{Op: relay.OpOpen, Conv: cur}); err != nil {
			t.Fatal(err)
		}
		oldRid, _ := f.sink.Link(t.Context(), relay.KindRoom, string(old.ID))
		curRid, _ := f.sink.Link(t.Context(), relay.KindRoom, string(cur.ID))
		if oldRid == "" || curRid == "" || oldRid == curRid {
			t.Fatalf("rooms %q and %q", oldRid, curRid)
		}
		oc, err := up.d.Store().Conversation(t.Context(), model.ConvID(oldRid))
		if err != nil || oc.Active() {
			t.Fatalf("stale upstream room %+v, %v: want closed", oc, err)
		}
	})

	t.Run("by the live conversation, this one ended before it was opened", func(t *testing.T) {
		v := f.visitor(t, "late")
		early := f.start(t, v)
		e := f.post(t, early, "said while upstream was away")
		early = f.close(t, early)
		live := f.start(t, v)
		if err := f.deliver(t, relay.Delivery{Op: relay.OpOpen, Conv: live}); err != nil {
			t.Fatal(err)
		}
		err := f.deliver(t, relay.Delivery{Op: relay.OpEvent, Conv: early, Event: e})
		if !errors.Is(err, relay.ErrPermanent) {
			t.Fatalf("delivery into the live room: %v, want a permanent failure", err)
		}
		rid, _ := f.sink.Link(t.Context(), relay.KindRoom, string(live.ID))
		lc, err := up.d.Store().Conversation(t.Context(), model.ConvID(rid))
		if err != nil || !lc.Active() {
			t.Fatalf("live upstream room %+v, %v: want still open", lc, err)
		}
	})
}

// TestSendToARoomClosedUpstream: the visitor learns the chat ended; the
// message is a permanent failure (kept, not retried forever).
func TestSendToARoomClosedUpstream(t *testing.T) {
	up := newUpstreamDesk(t)
	f := newFront(t, up.url)
	v := f.visitor(t, "vera")
	c := f.start(t, v)
	if err := f.deliver(t, relay.Delivery{Op: relay.OpOpen, Conv: c}); err != nil {
		t.Fatal(err)
	}
	rid, _ := f.sink.Link(t.Context(), relay.KindRoom, string(c.ID))
	if _, err := up.d.Close(t.Context(), model.ConvID(rid), model.System, "", ""); err != nil {
		t.Fatal(err)
	}
	e := f.post(t, c, "anyone?")
	if err := f.deliver(t, relay.Delivery{Op: relay.OpEvent, Conv: c, Event: e}); !errors.Is(err, relay.ErrPermanent) {
		t.Fatalf("send to a closed room: %v, want permanent", err)
	}
	got, _ := f.d.Store().Conversation(t.Context(), c.ID)
	if got.Active() {
		t.Fatal("the front conversation is still open")
	}
}

// run runs the relay (delivery loop and the connector's DDP follow) until
// the test ends.
func (f *front) run(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = f.svc.Run(ctx) })
	t.Cleanup(func() { cancel(); wg.Wait() })
}

// nextTyping waits for a typing notice by an author of kind on sub.
func nextTyping(t *testing.T, sub interface{ C() <-chan *hub.Notice }, kind model.AuthorKind) *hub.Typing {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case n := <-sub.C():
			if n.Typing != nil && n.Typing.Author.Kind == kind {
				return n.Typing
			}
		case <-timeout:
			t.Fatalf("no typing indicator by a %s", kind)
			return nil
		}
	}
}

// TestTypingBothWays: the visitor's typing reaches the upstream room, and
// the upstream agent's typing reaches the visitor's conversation.
func TestTypingBothWays(t *testing.T) {
	up := newUpstreamDesk(t)
	f := newFront(t, up.url)
	f.run(t)
	v := f.visitor(t, "vera")
	c := f.start(t, v)
	f.post(t, c, "hi")
	var upConv model.Conversation
	deadline := time.Now().Add(10 * time.Second)
	for {
		if convs := up.conversations(t); len(convs) == 1 && slices.Equal(up.texts(t, convs[0].ID), []string{"hi"}) {
			upConv = convs[0]
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the message never reached the upstream room")
		}
		time.Sleep(20 * time.Millisecond)
	}
	for { // the front shows the upstream agent serving
		got, _ := f.d.Store().Conversation(t.Context(), c.ID)
		if got.Agent == relay.AgentID("rc", "jane") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("front conversation agent %q", got.Agent)
		}
		time.Sleep(20 * time.Millisecond)
	}

	frontSub := f.d.Bus().SubscribeConv(c.ID, 16)
	defer frontSub.Close()
	if err := up.d.Typing(t.Context(), upConv.ID, model.Author{Kind: model.AuthorAgent, ID: "jane", Name: "Jane"}, true, "", ""); err != nil {
		t.Fatal(err)
	}
	if ty := nextTyping(t, frontSub, model.AuthorAgent); !ty.On || ty.Author.ID != string(relay.AgentID("rc", "jane")) {
		t.Fatalf("front typing %+v", ty)
	}

	upSub := up.d.Bus().SubscribeConv(upConv.ID, 16)
	defer upSub.Close()
	if err := f.d.Typing(t.Context(), c.ID, model.Author{Kind: model.AuthorVisitor, ID: string(v.ID)}, true, "", ""); err != nil {
		t.Fatal(err)
	}
	if ty := nextTyping(t, upSub, model.AuthorVisitor); !ty.On {
		t.Fatalf("upstream typing %+v", ty)
	}
}
