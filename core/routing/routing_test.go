package routing

import (
	"slices"
	"sync"
	"testing"
	"time"

	"chatgate/core/model"
)

var t0 = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

// newRouter returns a router whose clock moves one second per reading, so
// that "picked longest ago" never depends on the machine's clock.
func newRouter(agents []model.Agent, accepting bool) *Router {
	r := New(agents, accepting)
	var mu sync.Mutex
	now := t0
	r.now = func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		now = now.Add(time.Second)
		return now
	}
	return r
}

func agent(id string, max int, depts ...model.DeptID) model.Agent {
	return model.Agent{ID: model.AgentID(id), Name: id, Departments: depts, MaxChats: max}
}

func TestPick(t *testing.T) {
	type setup struct {
		agents    []model.Agent
		online    []model.AgentID // connected once each
		notAccept []model.AgentID // online but not accepting
		open      map[model.AgentID]int
	}
	tests := []struct {
		name  string
		setup setup
		dept  model.DeptID
		want  model.AgentID // "" = none
	}{
		{
			name:  "nobody online",
			setup: setup{agents: []model.Agent{agent("a", 0), agent("b", 0)}},
			want:  "",
		},
		{
			name:  "only online agent",
			setup: setup{agents: []model.Agent{agent("a", 0), agent("b", 0)}, online: []model.AgentID{"b"}},
			want:  "b",
		},
		{
			name: "fewest open wins",
			setup: setup{agents: []model.Agent{agent("a", 0), agent("b", 0), agent("c", 0)},
				online: []model.AgentID{"a", "b", "c"}, open: map[model.AgentID]int{"a": 2, "b": 1, "c": 3}},
			want: "b",
		},
		{
			name: "not accepting skipped",
			setup: setup{agents: []model.Agent{agent("a", 0), agent("b", 0)},
				online: []model.AgentID{"a", "b"}, notAccept: []model.AgentID{"a"}, open: map[model.AgentID]int{"b": 5}},
			want: "b",
		},
		{
			name: "offline skipped even with fewer chats",
			setup: setup{agents: []model.Agent{agent("a", 0), agent("b", 0)},
				online: []model.AgentID{"b"}, open: map[model.AgentID]int{"b": 5}},
			want: "b",
		},
		{
			name: "department filter",
			setup: setup{agents: []model.Agent{agent("sales", 0, "sales"), agent("support", 0, "support")},
				online: []model.AgentID{"sales", "support"}, open: map[model.AgentID]int{"sales": 3}},
			dept: "sales",
			want: "sales",
		},
		{
			name: "agent without departments serves all",
			setup: setup{agents: []model.Agent{agent("support", 0, "support"), agent("any", 0)},
				online: []model.AgentID{"support", "any"}},
			dept: "sales",
			want: "any",
		},
		{
			name: "nobody serves department",
			setup: setup{agents: []model.Agent{agent("support", 0, "support")},
				online: []model.AgentID{"support"}},
			dept: "sales",
			want: "",
		},
		{
			name: "max chats reached skipped",
			setup: setup{agents: []model.Agent{agent("a", 2), agent("b", 0)},
				online: []model.AgentID{"a", "b"}, open: map[model.AgentID]int{"a": 2, "b": 7}},
			want: "b",
		},
		{
			name: "max chats reached by everyone",
			setup: setup{agents: []model.Agent{agent("a", 1), agent("b", 2)},
				online: []model.AgentID{"a", "b"}, open: map[model.AgentID]int{"a": 1, "b": 2}},
			want: "",
		},
		{
			name: "tie goes to configuration order when never picked",
			setup: setup{agents: []model.Agent{agent("a", 0), agent("b", 0)},
				online: []model.AgentID{"b", "a"}},
			want: "a",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newRouter(tc.setup.agents, true)
			for _, id := range tc.setup.online {
				r.Connect(id, +1)
			}
			for _, id := range tc.setup.notAccept {
				r.SetAccepting(id, false)
			}
			for id, n := range tc.setup.open {
				for range n {
					if !r.Reserve(id) {
						t.Fatalf("Reserve(%s) failed", id)
					}
				}
			}
			got, ok := r.Pick(tc.dept)
			if ok != (tc.want != "") || got != tc.want {
				t.Fatalf("Pick(%q) = %q, %v; want %q", tc.dept, got, ok, tc.want)
			}
			if ok && r.Open(got) != tc.setup.open[got]+1 {
				t.Fatalf("Open(%s) = %d after Pick, want %d", got, r.Open(got), tc.setup.open[got]+1)
			}
		})
	}
}

func TestPickRoundRobinOnTies(t *testing.T) {
	r := newRouter([]model.Agent{agent("a", 0), agent("b", 0), agent("c", 0)}, true)
	for _, id := range []model.AgentID{"a", "b", "c"} {
		r.Connect(id, +1)
	}
	var got []model.AgentID
	for range 6 {
		id, ok := r.Pick("")
		if !ok {
			t.Fatal("Pick failed")
		}
		got = append(got, id)
	}
	want := []model.AgentID{"a", "b", "c", "a", "b", "c"}
	if !slices.Equal(got, want) {
		t.Fatalf("picks = %v, want %v", got, want)
	}

	// a and c finish a chat each: both have 1 open, b has 2. Among a and c
	// (tied), a was picked longest ago.
	r.Release("a")
	r.Release("c")
	if id, _ := r.Pick(""); id != "a" {
		t.Fatalf("Pick = %s, want a (fewest open, then picked longest ago)", id)
	}
	if id, _ := r.Pick(""); id != "c" {
		t.Fatalf("Pick = %s, want c", id)
	}
}

func TestPickRespectsMaxChats(t *testing.T) {
	r := newRouter([]model.Agent{agent("a", 2)}, true)
	r.Connect("a", 1)
	for i := range 2 {
		if _, ok := r.Pick(""); !ok {
			t.Fatalf("Pick %d failed under MaxChats", i)
		}
	}
	if id, ok := r.Pick(""); ok {
		t.Fatalf("Pick = %s beyond MaxChats", id)
	}
	if r.Connect("a", 0) {
		t.Fatal("agent at MaxChats reported available")
	}
	r.Release("a")
	if id, ok := r.Pick(""); !ok || id != "a" {
		t.Fatalf("Pick after Release = %q, %v", id, ok)
	}
	// Reserve (manual assignment) may exceed MaxChats.
	if !r.Reserve("a") || r.Open("a") != 3 {
		t.Fatalf("Reserve beyond MaxChats: Open = %d, want 3", r.Open("a"))
	}
}

func TestReserveRelease(t *testing.T) {
	r := newRouter([]model.Agent{agent("a", 0)}, true)
	if r.Reserve("ghost") {
		t.Fatal("Reserve of unknown agent succeeded")
	}
	r.Release("ghost") // no panic
	if r.Open("ghost") != 0 {
		t.Fatal("unknown agent has open chats")
	}
	for range 3 {
		r.Reserve("a")
	}
	if got := r.Open("a"); got != 3 {
		t.Fatalf("Open = %d, want 3", got)
	}
	for range 5 {
		r.Release("a")
	}
	if got := r.Open("a"); got != 0 {
		t.Fatalf("Open = %d after releasing more than reserved, want 0", got)
	}
}

func TestStatus(t *testing.T) {
	r := newRouter([]model.Agent{agent("a", 1), agent("b", 0)}, true)
	steps := []struct {
		do        func() bool // returns the reported availability, if any
		status    Status
		available bool
	}{
		{nil, Offline, false},
		{func() bool { return r.Connect("a", +1) }, Accepting, true},
		{func() bool { return r.Connect("a", +1) }, Accepting, true},
		{func() bool { return r.SetAccepting("a", false) }, NotAccepting, false},
		{func() bool { return r.SetAccepting("a", true) }, Accepting, true},
		{func() bool { r.Reserve("a"); return r.Connect("a", 0) }, Accepting, false}, // at MaxChats
		{func() bool { r.Release("a"); return r.Connect("a", 0) }, Accepting, true},
		{func() bool { return r.Connect("a", -1) }, Accepting, true}, // one session left
		{func() bool { return r.Connect("a", -1) }, Offline, false},
		{func() bool { return r.Connect("a", -1) }, Offline, false}, // never below zero
		{func() bool { return r.Connect("a", +1) }, Accepting, true},
		// Offline keeps the chosen status for the next connection.
		{func() bool { r.SetAccepting("a", false); return r.Connect("a", -1) }, Offline, false},
		{func() bool { return r.Connect("a", +1) }, NotAccepting, false},
	}
	for i, s := range steps {
		if s.do != nil {
			if got := s.do(); got != s.available {
				t.Fatalf("step %d: available = %v, want %v", i, got, s.available)
			}
		}
		if got := r.Status("a"); got != s.status {
			t.Fatalf("step %d: Status = %q, want %q", i, got, s.status)
		}
	}
	if got := r.Status("b"); got != Offline {
		t.Fatalf("untouched agent Status = %q, want offline", got)
	}
	if got := r.Status("ghost"); got != Offline {
		t.Fatalf("unknown agent Status = %q, want offline", got)
	}
	if r.Connect("ghost", 1) || r.SetAccepting("ghost", true) {
		t.Fatal("unknown agent reported available")
	}

	notByDefault := newRouter([]model.Agent{agent("a", 0)}, false)
	notByDefault.Connect("a", 1)
	if got := notByDefault.Status("a"); got != NotAccepting {
		t.Fatalf("Status = %q with acceptingByDefault=false, want not accepting", got)
	}
	if _, ok := notByDefault.Pick(""); ok {
		t.Fatal("Pick chose an agent that is not accepting")
	}
}

func TestAgents(t *testing.T) {
	in := []model.Agent{agent("z", 0), agent("a", 3, "sales"), agent("m", 0)}
	r := newRouter(in, true)
	got := r.Agents()
	if len(got) != 3 || got[0].ID != "z" || got[1].ID != "a" || got[2].ID != "m" {
		t.Fatalf("Agents = %v, want configuration order", got)
	}
	a, ok := r.Agent("a")
	if !ok || a.MaxChats != 3 || !a.Serves("sales") || a.Serves("support") {
		t.Fatalf("Agent(a) = %+v, %v", a, ok)
	}
	if _, ok := r.Agent("nobody"); ok {
		t.Fatal("Agent(nobody) found")
	}
}

func TestQueue(t *testing.T) {
	r := newRouter(nil, true)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	// Enqueued out of order; listed oldest first.
	r.Enqueue("c3", "sales", at(3))
	r.Enqueue("c1", "sales", at(1))
	r.Enqueue("s2", "support", at(2))
	r.Enqueue("c5", "sales", at(5))
	r.Enqueue("s4", "support", at(4))
	r.Enqueue("c1", "support", at(9)) // already queued: ignored
	want := []model.ConvID{"c1", "s2", "c3", "s4", "c5"}
	if got := r.Queued(); !slices.Equal(got, want) {
		t.Fatalf("Queued = %v, want %v", got, want)
	}
	positions := map[model.ConvID]int{"c1": 1, "c3": 2, "c5": 3, "s2": 1, "s4": 2, "nope": 0}
	for id, p := range positions {
		if got := r.Position(id); got != p {
			t.Errorf("Position(%s) = %d, want %d", id, got, p)
		}
	}

	r.Dequeue("c3")
	r.Dequeue("nope") // not queued: no-op
	want = []model.ConvID{"c1", "s2", "s4", "c5"}
	if got := r.Queued(); !slices.Equal(got, want) {
		t.Fatalf("Queued after Dequeue = %v, want %v", got, want)
	}
	if r.Position("c5") != 2 || r.Position("c3") != 0 {
		t.Fatalf("Position(c5)=%d Position(c3)=%d after Dequeue, want 2 and 0", r.Position("c5"), r.Position("c3"))
	}
	// Dequeued, it may be queued again.
	r.Enqueue("c3", "sales", at(6))
	if got := r.Position("c3"); got != 3 {
		t.Fatalf("Position(c3) re-queued = %d, want 3", got)
	}
	// Queued returns a copy.
	q := r.Queued()
	q[0] = "mutated"
	if r.Queued()[0] != "c1" {
		t.Fatal("Queued exposed the router's slice")
	}
}

func TestQueueTiesKeepArrivalOrder(t *testing.T) {
	// Conversations stamped in the same instant (stored times have
	// microsecond precision) stay in the order they were queued.
	r := newRouter(nil, true)
	ids := []model.ConvID{"a", "b", "c", "d"}
	for _, id := range ids {
		r.Enqueue(id, "", t0)
	}
	r.Enqueue("early", "", t0.Add(-time.Second))
	r.Enqueue("late", "", t0.Add(time.Second))
	r.Enqueue("e", "", t0)
	want := []model.ConvID{"early", "a", "b", "c", "d", "e", "late"}
	if got := r.Queued(); !slices.Equal(got, want) {
		t.Fatalf("Queued = %v, want %v", got, want)
	}
	for i, id := range ids {
		if got := r.Position(id); got != i+2 {
			t.Fatalf("Position(%s) = %d, want %d", id, got, i+2)
		}
	}
}

func TestConcurrentUse(t *testing.T) {
	// For -race, and to check that reservations balance.
	agents := []model.Agent{agent("a", 0), agent("b", 0), agent("c", 0)}
	r := New(agents, true) // the real clock
	for _, a := range agents {
		r.Connect(a.ID, 1)
	}
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 100 {
				id, ok := r.Pick("")
				if !ok {
					t.Error("Pick failed")
					return
				}
				conv := model.ConvID(string(rune('A'+w)) + string(rune('0'+i%10)))
				r.Enqueue(conv, "", time.Now())
				_ = r.Position(conv)
				r.Dequeue(conv)
				_ = r.Status(id)
				r.Release(id)
			}
		})
	}
	wg.Wait()
	for _, a := range agents {
		if n := r.Open(a.ID); n != 0 {
			t.Fatalf("Open(%s) = %d after balanced Pick/Release", a.ID, n)
		}
	}
	if q := r.Queued(); len(q) != 0 {
		t.Fatalf("Queued = %v, want empty", q)
	}
}
