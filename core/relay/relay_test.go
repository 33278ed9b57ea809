package relay

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"chatgate/core/desk"
	"chatgate/core/model"
	"chatgate/core/routing"
	"chatgate/store"
	"chatgate/store/bolt"
)

// failAfter bounds every wait; nothing here asserts how fast anything is.
const failAfter = 10 * time.Second

// fake is a connector that records deliveries and fails them on demand.
type fake struct {
	name string
	mu   sync.Mutex
	got  []string // "op" or "event:<text>"
	// fail makes the next n deliveries fail (transiently, or for good).
	fail      int
	permanent bool
	sink      *Sink
	ran       chan struct{}
}

func newFake(name string) *fake { return &fake{name: name, ran: make(chan struct{})} }

func (f *fake) Name() string { return f.name }

func (f *fake) Run(ctx context.Context, sink *Sink) error {
	f.mu.Lock()
	f.sink = sink
	f.mu.Unlock()
	close(f.ran)
	<-ctx.Done()
	return nil
}

func (f *fake) Deliver(_ context.Context, _ *Sink, d Delivery) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail > 0 {
		f.fail--
		if f.permanent {
			return fmt.Errorf("%w: refused", ErrPermanent)
		}
		return errors.New("upstream away")
	}
	s := string(d.Op)
	if d.Op == OpEvent {
		s = "event:" + d.Text()
	}
	f.got = append(f.got, s)
	return nil
}

func (f *fake) Status() Status { return Status{Connected: true} }

func (f *fake) deliveries() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.got)
}

type env struct {
	t     testing.TB
	st    *bolt.Store
	d     *desk.Desk
	svc   *Service
	conns map[string]*fake
	stop  func()
}

var sales = model.Department{ID: "sales", Name: "Sales"}

// newEnv runs a desk with a relay of the named fake connectors: department
// sales goes to "up" mirrored to "shadow"; the default route stays on the
// embedded desk.
func newEnv(t testing.TB, path string) *env {
	t.Helper()
	if path == "" {
		path = filepath.Join(t.TempDir(), "relay.db")
	}
	st, err := bolt.Open(path, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	conns := map[string]*fake{"up": newFake("up"), "shadow": newFake("shadow")}
	svc, err := New(Config{Routes: []Route{{Department: "sales", Upstream: "up", Mirrors: []string{"shadow"}}},
		MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond, PollInterval: 10 * time.Millisecond},
		[]Connector{conns["up"], conns["shadow"]}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	router := routing.New([]model.Agent{{ID: "emb", Name: "Embedded"}}, true)
	d := desk.New(desk.Options{Store: st, Router: router, Departs: []model.Department{sales},
		Route: svc.Route, Relay: svc.Hook, Logger: zerolog.Nop()})
	svc.Attach(d)
	if err := svc.Load(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := d.Load(t.Context()); err != nil {
		t.Fatal(err)
	}
	d.AgentConnected("emb", true)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = d.Run(ctx) })
	wg.Go(func() { _ = svc.Run(ctx) })
	for _, f := range conns {
		<-f.ran
	}
	e := &env{t: t, st: st, d: d, svc: svc, conns: conns}
	e.stop = func() {
		cancel()
		wg.Wait()
		st.Close()
	}
	t.Cleanup(func() { e.stop() })
	return e
}

func (e *env) visitor(name string) model.Visitor {
	e.t.Helper()
	v, err := e.d.EnsureVisitor(e.t.Context(), store.MapKey{System: "test", Kind: "visitor", Foreign: name}, model.Visitor{Name: name})
	if err != nil {
		e.t.Fatal(err)
	}
	return v
}

func (e *env) start(v model.Visitor, dept model.DeptID) model.Conversation {
	e.t.Helper()
	c, _, err := e.d.Start(e.t.Context(), desk.StartRequest{Visitor: v.ID, Department: dept, Author: vAuthor(v)})
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

func vAuthor(v model.Visitor) model.Author {
	return model.Author{Kind: model.AuthorVisitor, ID: string(v.ID), Name: v.Name}
}

func (e *env) post(c model.ConvID, by model.Author, text string) {
	e.t.Helper()
	if _, _, err := e.d.Post(e.t.Context(), desk.PostRequest{Conv: c, Author: by, Draft: desk.Draft{Text: text}}); err != nil {
		e.t.Fatal(err)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(failAfter)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestRoutes(t *testing.T) {
	e := newEnv(t, "")
	v, w := e.visitor("vera"), e.visitor("walt")
	relayed := e.start(v, "sales")
	local := e.start(w, "")
	if relayed.Owner != "up" || !slices.Equal(relayed.Mirrors, []string{"shadow"}) || relayed.State != model.StateQueued || relayed.Agent != "" {
		t.Fatalf("relayed conversation %+v: want owner up, mirror shadow, queued, no agent", relayed)
	}
	if local.Owner != "" || local.Agent != "emb" {
		t.Fatalf("default route %+v: want the embedded agent", local)
	}
	// An embedded agent neither gets nor takes a relayed conversation.
	_, _, err := e.d.Post(t.Context(), desk.PostRequest{Conv: relayed.ID, Author: model.Author{Kind: model.AuthorAgent, ID: "emb"}, Draft: desk.Draft{Text: "mine"}})
	if !errors.Is(err, desk.ErrForbidden) {
		t.Fatalf("embedded agent writing in a relayed conversation: %v, want forbidden", err)
	}
	if err := e.d.Transfer(t.Context(), relayed.ID, "", vAuthor(v), ""); !errors.Is(err, desk.ErrInvalid) {
		t.Fatalf("transfer of a relayed conversation: %v, want invalid", err)
	}
}

func TestDeliveriesInOrderToOwnerAndMirror(t *testing.T) {
	e := newEnv(t, "")
	v := e.visitor("vera")
	c := e.start(v, "sales")
	for i := range 5 {
		e.post(c.ID, vAuthor(v), fmt.Sprintf("m%d", i))
	}
	want := []string{"open", "event:m0", "event:m1", "event:m2", "event:m3", "event:m4"}
	for _, n := range []string{"up", "shadow"} {
		waitFor(t, n+" deliveries", func() bool { return len(e.conns[n].deliveries()) == len(want) })
		if got := e.conns[n].deliveries(); !slices.Equal(got, want) {
			t.Errorf("%s got %v, want %v", n, got, want)
		}
	}
}

func TestRetryKeepsOrderAndPermanentIsKept(t *testing.T) {
	e := newEnv(t, "")
	up := e.conns["up"]
	up.mu.Lock()
	up.fail = 3
	up.mu.Unlock()
	v := e.visitor("vera")
	c := e.start(v, "sales")
	e.post(c.ID, vAuthor(v), "a")
	e.post(c.ID, vAuthor(v), "b")
	waitFor(t, "retried deliveries", func() bool { return len(up.deliveries()) == 3 })
	if got := up.deliveries(); !slices.Equal(got, []string{"open", "event:a", "event:b"}) {
		t.Fatalf("after retries: %v", got)
	}

	up.mu.Lock()
	up.fail, up.permanent = 1, true
	up.mu.Unlock()
	e.post(c.ID, vAuthor(v), "refused")
	e.post(c.ID, vAuthor(v), "after")
	waitFor(t, "the queue to go on", func() bool { return len(up.deliveries()) == 4 })
	if got := up.deliveries(); got[3] != "event:after" {
		t.Fatalf("after a permanent failure: %v", got)
	}
	dead, err := e.st.OutboxExhausted(t.Context(), target("up"), 0)
	if err != nil || len(dead) != 1 || dead[0].LastError == "" {
		t.Fatalf("exhausted rows: %v %v", dead, err)
	}
}

func TestInboundMessagesOnceAndMirrorIgnored(t *testing.T) {
	e := newEnv(t, "")
	v := e.visitor("vera")
	c := e.start(v, "sales")
	e.post(c.ID, vAuthor(v), "hello")
	up, shadow := e.conns["up"].sink, e.conns["shadow"].sink
	jane := Agent{ID: "u-jane", Name: "Jane"}
	ctx := t.Context()

	for _, tc := range []struct {
		name    string
		sink    *Sink
		id      string
		wantNew bool
	}{
		{"first answer", up, "m-1", true},
		{"the same answer again (resync)", up, "m-1", false},
		{"our own message echoed", up, lastEventID(t, e, c.ID, "hello"), false},
		{"the mirror's agent", shadow, "s-1", false},
		{"second answer", up, "m-2", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			isNew, err := tc.sink.Message(ctx, c.ID, jane, tc.id, "text "+tc.id)
			if err != nil || isNew != tc.wantNew {
				t.Fatalf("Message = %v, %v; want new=%v", isNew, err, tc.wantNew)
			}
		})
	}
	evs, err := e.st.Events(ctx, c.ID, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	var texts []string
	for _, ev := range evs {
		if ev.Kind == model.KindMessage && ev.Author.Kind == model.AuthorAgent {
			texts = append(texts, ev.Text)
		}
	}
	if !slices.Equal(texts, []string{"text m-1", "text m-2"}) {
		t.Fatalf("agent messages %v", texts)
	}
	conv, _ := e.st.Conversation(ctx, c.ID)
	if conv.Agent != AgentID("up", "u-jane") || conv.State != model.StateOpen {
		t.Fatalf("conversation %+v: want served by up:u-jane", conv)
	}
	// The mirror got the upstream agent's answers, named; the owner did not.
	waitFor(t, "mirror copies", func() bool { return len(e.conns["shadow"].deliveries()) == 4 })
	if got := e.conns["shadow"].deliveries(); !slices.Equal(got, []string{"open", "event:hello", "event:[Jane] text m-1", "event:[Jane] text m-2"}) {
		t.Fatalf("mirror got %v", got)
	}
	if got := e.conns["up"].deliveries(); !slices.Equal(got, []string{"open", "event:hello"}) {
		t.Fatalf("owner got %v", got)
	}

	// Closed upstream: the conversation closes, the owner is not told
	// back, the mirror is.
	if err := up.Closed(ctx, c.ID, &jane); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "mirror close", func() bool { return len(e.conns["shadow"].deliveries()) == 5 })
	if got := e.conns["up"].deliveries(); len(got) != 2 {
		t.Fatalf("owner told of its own close: %v", got)
	}
}

func lastEventID(t *testing.T, e *env, c model.ConvID, text string) string {
	t.Helper()
	evs, err := e.st.Events(t.Context(), c, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i := len(evs) - 1; i >= 0; i-- {
		if evs[i].Text == text {
			return evs[i].ID
		}
	}
	t.Fatalf("no event %q", text)
	return ""
}

// TestUpstreamAgentSurvivesRestart: the upstream agent's name is stored,
// so after a restart the conversation still shows who serves it.
func TestUpstreamAgentSurvivesRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "relay.db")
	e := newEnv(t, path)
	v := e.visitor("vera")
	c := e.start(v, "sales")
	if err := e.conns["up"].sink.AgentJoined(t.Context(), c.ID, Agent{ID: "u-jane", Name: "Jane Upstream"}); err != nil {
		t.Fatal(err)
	}
	e.stop()
	e.stop = func() {}
	e2 := newEnv(t, path)
	a, ok := e2.d.Router().Agent(AgentID("up", "u-jane"))
	if !ok || a.Name != "Jane Upstream" {
		t.Fatalf("after restart the upstream agent is %+v, %v", a, ok)
	}
	if _, err := e2.conns["up"].sink.Resolve(t.Context(), KindAgent, "u-jane"); err != nil {
		t.Fatalf("agent mapping: %v", err)
	}
}

func TestNewRejectsBadRoutes(t *testing.T) {
	for _, tc := range []struct {
		name   string
		conns  []string
		routes []Route
	}{
		{"unknown upstream", []string{"a"}, []Route{{Upstream: "b"}}},
		{"unknown mirror", []string{"a"}, []Route{{Upstream: "a", Mirrors: []string{"b"}}}},
		{"mirror is the upstream", []string{"a"}, []Route{{Upstream: "a", Mirrors: []string{"a"}}}},
		{"department twice", []string{"a"}, []Route{{Upstream: "a"}, {Upstream: "a"}}},
		{"two connectors, one name", []string{"a", "a"}, nil},
		{"bad name", []string{"a/b"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var cs []Connector
			for _, n := range tc.conns {
				cs = append(cs, newFake(n))
			}
			if _, err := New(Config{Routes: tc.routes}, cs, zerolog.Nop()); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}
