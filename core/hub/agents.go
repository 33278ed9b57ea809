package hub

import (
	"sync"

	"chatgate/core/model"
)

// agentIndex holds the agent sessions' subscriptions (SubscribeAgent) by
// what they can be concerned with, so that a notice is offered only to
// the sessions it may concern instead of to every agent session of the
// desk (at 1,000 conversations and 32 agents, each message woke 32 agent
// pumps and 31 dropped it).
//
// The index decides from the notice and each session's agent alone (its
// id, departments and supervisor/admin flag, fixed at login), never from
// session state, so it is exact by construction: what it keeps changes
// only when a subscription starts or ends, under mu. It is a superset
// filter: a session still checks each notice it gets (the pushes of
// package agentrtm decide by model.Agent.MaySee and friends); the index
// must only never leave out a session that would push something. What a
// notice can concern (see concerns):
//
//   - the agents it names: the conversation's serving agent, members
//     (hidden or not) and followers, the agent of a follow or member
//     change, the user of a seen marker, the agents a transfer moved the
//     conversation from and to (event vars from_agent, to_agent);
//   - every session serving the conversation's department when no agent
//     serves it (queued, an unserved archive, relayed to another desk);
//   - the supervisors and admins serving its department, always;
//   - every session for a ban (customer_banned goes to every agent).
type agentIndex struct {
	mu sync.RWMutex
	// all is every agent subscription with its agent.
	all map[*Sub]*model.Agent
	// byAgent: an agent's sessions (one agent may have several).
	byAgent map[model.AgentID]map[*Sub]struct{}
	// anyDept: sessions of agents with no departments (they serve all);
	// byDept: the others, under each department they serve.
	anyDept map[*Sub]struct{}
	byDept  map[model.DeptID]map[*Sub]struct{}
	// supervisors: sessions of supervisors and admins (few; filtered by
	// department when offered).
	supervisors map[*Sub]struct{}
}

func newAgentIndex() *agentIndex {
	return &agentIndex{
		all:         make(map[*Sub]*model.Agent),
		byAgent:     make(map[model.AgentID]map[*Sub]struct{}),
		anyDept:     make(map[*Sub]struct{}),
		byDept:      make(map[model.DeptID]map[*Sub]struct{}),
		supervisors: make(map[*Sub]struct{}),
	}
}

func addTo[K comparable](m map[K]map[*Sub]struct{}, k K, s *Sub) {
	set := m[k]
	if set == nil {
		set = make(map[*Sub]struct{})
		m[k] = set
	}
	set[s] = struct{}{}
}

func removeFrom[K comparable](m map[K]map[*Sub]struct{}, k K, s *Sub) {
	if set := m[k]; set != nil {
		delete(set, s)
		if len(set) == 0 {
			delete(m, k)
		}
	}
}

func (x *agentIndex) add(s *Sub, a *model.Agent) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.all[s] = a
	addTo(x.byAgent, a.ID, s)
	if len(a.Departments) == 0 {
		x.anyDept[s] = struct{}{}
	}
	for _, d := range a.Departments {
		addTo(x.byDept, d, s)
	}
	if a.Supervisor || a.Admin {
		x.supervisors[s] = struct{}{}
	}
}

func (x *agentIndex) remove(s *Sub) {
	x.mu.Lock()
	defer x.mu.Unlock()
	a := x.all[s]
	if a == nil {
		return
	}
	delete(x.all, s)
	removeFrom(x.byAgent, a.ID, s)
	delete(x.anyDept, s)
	for _, d := range a.Departments {
		removeFrom(x.byDept, d, s)
	}
	delete(x.supervisors, s)
}

// broad is which sessions a notice concerns by department, besides the
// agents it names.
type broad int

const (
	broadNone        broad = iota
	broadSupervisors       // supervisors and admins serving the department
	broadServing           // every session serving the department
	broadAll               // every session
)

// scope returns how broadly n concerns agent sessions.
func scope(n *Notice) broad {
	switch {
	case n.Ban != nil:
		return broadAll
	case n.Conv.Agent == "":
		return broadServing
	default:
		return broadSupervisors
	}
}

// inBroad reports whether a session of agent a is in n's broad set b.
func inBroad(b broad, a *model.Agent, dept model.DeptID) bool {
	switch b {
	case broadAll:
		return true
	case broadServing:
		return a.Serves(dept)
	case broadSupervisors:
		return (a.Supervisor || a.Admin) && a.Serves(dept)
	}
	return false
}

// maxNamed bounds the agents a notice names that are collected without
// allocating; more spill to the heap.
const maxNamed = 8

// named appends the agents n names (duplicates possible).
func named(n *Notice, out []model.AgentID) []model.AgentID {
	c := &n.Conv
	if c.Agent != "" {
		out = append(out, c.Agent)
	}
	out = append(out, c.Members...)
	out = append(out, c.HiddenMembers...)
	out = append(out, c.Followers...)
	if n.Follow != nil {
		out = append(out, n.Follow.Agent)
	}
	if n.Member != nil {
		out = append(out, n.Member.Agent)
	}
	if n.Seen != nil {
		out = append(out, model.AgentID(n.Seen.User))
	}
	for i := range n.Events {
		if v := n.Events[i].Vars; v != nil {
			if a := v["from_agent"]; a != "" {
				out = append(out, model.AgentID(a))
			}
			if a := v["to_agent"]; a != "" {
				out = append(out, model.AgentID(a))
			}
		}
	}
	return out
}

// offer calls f once for every agent session n may concern, holding the
// index's read lock (f must not call the bus).
func (x *agentIndex) offer(n *Notice, f func(*Sub)) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	if len(x.all) == 0 {
		return
	}
	b, dept := scope(n), n.Conv.Department
	switch {
	case b == broadAll || (b == broadServing && dept == ""):
		for s := range x.all {
			f(s)
		}
		return // every session had it
	case b == broadServing:
		for s := range x.anyDept {
			f(s)
		}
		for s := range x.byDept[dept] {
			f(s)
		}
	case b == broadSupervisors:
		for s := range x.supervisors {
			if inBroad(b, x.all[s], dept) {
				f(s)
			}
		}
	}
	var buf [maxNamed]model.AgentID
	names := named(n, buf[:0])
	for i, id := range names {
		if dup(names[:i], id) {
			continue
		}
		for s := range x.byAgent[id] {
			if !inBroad(b, x.all[s], dept) {
				f(s)
			}
		}
	}
}

func dup(seen []model.AgentID, id model.AgentID) bool {
	for _, x := range seen {
		if x == id {
			return true
		}
	}
	return false
}
