package desk

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"chatgate/core/hub"
	"chatgate/core/model"
	"chatgate/core/routing"
	"chatgate/store"
	"chatgate/store/bolt"
)

// failAfter bounds every wait in these tests. It is a failure timeout only:
// nothing here asserts how fast anything is.
const failAfter = 10 * time.Second

var departments = []model.Department{{ID: "sales", Name: "Sales"}, {ID: "support", Name: "Support"}}

// Ann and Cat serve sales, Bob serves support, Dan serves every department. Only
// the agents a test connects are online.
var (
	ann = model.Agent{ID: "ann", Name: "Ann", Departments: []model.DeptID{"sales"}}
	bob = model.Agent{ID: "bob", Name: "Bob", Departments: []model.DeptID{"support"}}
	cat = model.Agent{ID: "cat", Name: "Cat", Departments: []model.DeptID{"sales"}}
	dan = model.Agent{ID: "dan", Name: "Dan"}
)

func withMax(a model.Agent, n int) model.Agent { a.MaxChats = n; return a }

func agentAuthor(id model.AgentID) model.Author {
	return model.Author{Kind: model.AuthorAgent, ID: string(id), Name: string(id)}
}

func visitorAuthor(v model.Visitor) model.Author {
	return model.Author{Kind: model.AuthorVisitor, ID: string(v.ID), Name: v.Name}
}

type config struct {
	agents []model.Agent
	limits Limits
	// path reuses a data file (a restart); empty means a new one.
	path string
	// afterCommit, if set, is called after each Commit of the desk's store
	// with the batch and its result.
	afterCommit func(*store.Batch, error)
	// beforeRead, if set, is called before each Conversation read of the
	// desk's store.
	beforeRead func(model.ConvID)
	// onStale, if set, is the desk's OnStale.
	onStale func()
}

type env struct {
	t      testing.TB
	path   string
	bolt   *bolt.Store
	router *routing.Router
	bus    *hub.Bus
	d      *Desk
}

// hookStore lets a test observe (and interleave with) commits and reads.
type hookStore struct {
	store.Store
	after      func(*store.Batch, error)
	beforeRead func(model.ConvID)
}

func (h hookStore) Commit(ctx context.Context, b *store.Batch) error {
	err := h.Store.Commit(ctx, b)
	if h.after != nil {
		h.after(b, err)
	}
	return err
}

// CachedConvRev forwards to the bolt store (desk.cachedRevs).
func (h hookStore) CachedConvRev(id model.ConvID) (uint64, bool) {
	return h.Store.(cachedRevs).CachedConvRev(id)
}

func (h hookStore) Conversation(ctx context.Context, id model.ConvID) (model.Conversation, error) {
	if h.beforeRead != nil {
		h.beforeRead(id)
	}
	return h.Store.Conversation(ctx, id)
}

func newEnv(t testing.TB, cfg config) *env {
	t.Helper()
	path := cfg.path
	if path == "" {
		path = filepath.Join(t.TempDir(), "t.db")
	}
	st, err := bolt.Open(path, bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	agents := cfg.agents
	if agents == nil {
		agents = []model.Agent{ann, bob, cat}
	}
	e := &env{t: t, path: path, bolt: st, router: routing.New(agents, true), bus: hub.NewBus()}
	var s store.Store = st
	if cfg.afterCommit != nil || cfg.beforeRead != nil {
		s = hookStore{Store: st, after: cfg.afterCommit, beforeRead: cfg.beforeRead}
	}
	e.d = New(Options{
		Store: s, Router: e.router, Bus: e.bus, Actors: hub.NewActors(64), Limits: cfg.limits,
		Logger: zerolog.Nop(), Departs: departments, OnStale: cfg.onStale,
	})
	return e
}

// run starts the desk's queue routing until the test ends.
func (e *env) run() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.d.Run(ctx) }()
	e.t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				e.t.Errorf("Run: %v", err)
			}
		case <-time.After(failAfter):
			e.t.Error("Run did not return after its context ended")
		}
	})
}

func (e *env) online(ids ...model.AgentID) {
	for _, id := range ids {
		e.d.AgentConnected(id, true)
	}
}

func (e *env) visitor(name string) model.Visitor {
	e.t.Helper()
	v, err := e.d.EnsureVisitor(context.Background(), store.MapKey{System: "test", Tenant: "t", Kind: "visitor", Foreign: name},
		model.Visitor{Name: name})
	if err != nil {
		e.t.Fatalf("EnsureVisitor(%s): %v", name, err)
	}
	return v
}

func (e *env) start(v model.Visitor, dept model.DeptID, drafts ...Draft) (model.Conversation, []model.Event) {
	e.t.Helper()
	c, evs, err := e.d.Start(context.Background(), StartRequest{Visitor: v.ID, Department: dept, Origin: "test",
		Author: visitorAuthor(v), Events: drafts})
	if err != nil {
		e.t.Fatalf("Start(%s, %q): %v", v.Name, dept, err)
	}
	return c, evs
}

func (e *env) post(conv model.ConvID, by model.Author, text string) model.Event {
	e.t.Helper()
	ev, dup, err := e.d.Post(context.Background(), PostRequest{Conv: conv, Author: by, Draft: Draft{Text: text}})
	if err != nil || dup {
		e.t.Fatalf("Post(%q) = dup %v, %v", text, dup, err)
	}
	return ev
}

func (e *env) conv(id model.ConvID) model.Conversation {
	e.t.Helper()
	c, err := e.bolt.Conversation(context.Background(), id)
	if err != nil {
		e.t.Fatalf("Conversation(%s): %v", id, err)
	}
	return c
}

func (e *env) events(id model.ConvID) []model.Event {
	e.t.Helper()
	evs, err := e.bolt.Events(context.Background(), id, 1, 0)
	if err != nil {
		e.t.Fatalf("Events(%s): %v", id, err)
	}
	return evs
}

// checkLog checks that a conversation's stored log is dense (1..LastSeq)
// and returns it.
func (e *env) checkLog(id model.ConvID) []model.Event {
	e.t.Helper()
	c := e.conv(id)
	evs := e.events(id)
	if uint64(len(evs)) != c.LastSeq {
		e.t.Fatalf("conversation %s: %d events stored, LastSeq %d", id, len(evs), c.LastSeq)
	}
	for i, ev := range evs {
		if ev.Seq != uint64(i+1) || ev.Conv != id {
			e.t.Fatalf("conversation %s: event %d has seq %d conv %s", id, i, ev.Seq, ev.Conv)
		}
	}
	return evs
}

// waitFor reads s until a notice satisfies ok, failing on timeout or if s
// ends.
func waitFor(t *testing.T, s *hub.Sub, what string, ok func(hub.Notice) bool) hub.Notice {
	t.Helper()
	timeout := time.After(failAfter)
	for {
		select {
		case n := <-s.C():
			if ok(*n) {
				return *n
			}
		case <-s.Done():
			t.Fatalf("subscription ended waiting for %s: %v", what, s.Err())
		case <-timeout:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func assignedTo(conv model.ConvID, agent model.AgentID) func(hub.Notice) bool {
	return func(n hub.Notice) bool {
		return n.Conv.ID == conv && n.Conv.State == model.StateOpen && n.Conv.Agent == agent
	}
}

// kinds summarises events as "kind/subtype" strings.
func kinds(evs []model.Event) []string {
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[i] = string(ev.Kind)
		if ev.Subtype != "" {
			out[i] += "/" + ev.Subtype
		}
	}
	return out
}

func (e *env) wantOpen(counts map[model.AgentID]int) {
	e.t.Helper()
	for id, n := range counts {
		if got := e.router.Open(id); got != n {
			e.t.Fatalf("router.Open(%s) = %d, want %d", id, got, n)
		}
	}
}

func (e *env) wantQueued(ids ...model.ConvID) {
	e.t.Helper()
	got := e.router.Queued()
	if fmt.Sprint(got) != fmt.Sprint(ids) {
		e.t.Fatalf("router.Queued = %v, want %v", got, ids)
	}
}

// eventuallyQueued waits for the router's queue to become ids. The
// router is updated after the notice of a change is published, so a test
// that learns of an assignment from a notice waits here.
func (e *env) eventuallyQueued(ids ...model.ConvID) {
	e.t.Helper()
	deadline := time.Now().Add(failAfter)
	for fmt.Sprint(e.router.Queued()) != fmt.Sprint(ids) {
		if time.Now().After(deadline) {
			e.t.Fatalf("router.Queued = %v, want %v", e.router.Queued(), ids)
		}
		time.Sleep(time.Millisecond)
	}
}

// counter counts, concurrently safely.
type counter struct {
	mu sync.Mutex
	n  int
}

func (c *counter) add(n int) { c.mu.Lock(); c.n += n; c.mu.Unlock() }
func (c *counter) get() int  { c.mu.Lock(); defer c.mu.Unlock(); return c.n }
