// Package routing decides which agent serves a conversation: the embedded
// desk auto-assigns to the accepting, online agent of the department with
// the fewest open conversations, and keeps the rest in a per-department
// queue (oldest first) until an agent can take them.
package routing

import (
	"context"
	"slices"
	"sort"
	"sync"
	"time"

	"chatgate/core/model"
)

// Coordinator shares routing with the other nodes of a deployment (nil on
// one node, where the Router's memory is the whole truth).
type Coordinator interface {
	// Route runs fn holding the deployment-wide routing lock, with the
	// router's open counts (and, if queue, its queue) refreshed from the
	// store first, so that the Pick and commit inside fn cannot race
	// another node's.
	Route(ctx context.Context, queue bool, fn func(ctx context.Context) error) error
	// AgentConnected and SetAccepting share a local agent session's
	// change with the other nodes.
	AgentConnected(id model.AgentID, up bool)
	SetAccepting(id model.AgentID, accepting bool)
}

// Status is an agent's routing status, named as LiveChat names them.
type Status string

const (
	Accepting    Status = "accepting_chats"
	NotAccepting Status = "not_accepting_chats"
	Offline      Status = "offline"
)

type agentState struct {
	agent     model.Agent
	sessions  int  // connected sessions on this node
	remote    int  // live sessions on other nodes (Coordinator)
	accepting bool // the agent's chosen status while online
	open      int  // open conversations served (including reservations)
	lastPick  time.Time
}

// Router holds agent availability and the queue. It is safe for concurrent
// use; it is memory only and rebuilt from the store at start-up (Track,
// Enqueue) because everything it derives from is stored.
type Router struct {
	mu     sync.Mutex
	agents map[model.AgentID]*agentState
	order  []model.AgentID // configuration order, for stable ties
	queue  []queued
	now    func() time.Time
}

type queued struct {
	conv model.ConvID
	dept model.DeptID
	at   time.Time
}

// New returns a router over the configured agents. Agents start offline;
// acceptingByDefault is the status they take when they connect.
func New(agents []model.Agent, acceptingByDefault bool) *Router {
	r := &Router{agents: make(map[model.AgentID]*agentState, len(agents)), now: time.Now}
	for _, a := range agents {
		r.agents[a.ID] = &agentState{agent: a, accepting: acceptingByDefault}
		r.order = append(r.order, a.ID)
	}
	return r
}

// AddRemote makes an agent of an external desk known (or renames it): it
// can be shown as serving a relayed conversation and write in it, but it
// never connects here, so routing never picks it.
func (r *Router) AddRemote(a model.Agent) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if st, ok := r.agents[a.ID]; ok {
		st.agent = a
		return
	}
	r.agents[a.ID] = &agentState{agent: a}
}

// Agent returns a configured agent.
func (r *Router) Agent(id model.AgentID) (model.Agent, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	st, ok := r.agents[id]
	if !ok {
		return model.Agent{}, false
	}
	return st.agent, true
}

// Agents lists the configured agents in configuration order.
func (r *Router) Agents() []model.Agent {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]model.Agent, 0, len(r.order))
	for _, id := range r.order {
		out = append(out, r.agents[id].agent)
	}
	return out
}

// Connect records a session of the agent going up (+1) or down (-1) and
// reports whether the agent is now available to take conversations.
func (r *Router) Connect(id model.AgentID, delta int) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	st, ok := r.agents[id]
	if !ok {
		return false
	}
	st.sessions = max(0, st.sessions+delta)
	return st.available()
}

// SetAccepting sets the agent's chosen status and reports whether the agent
// is now available.
func (r *Router) SetAccepting(id model.AgentID, accepting bool) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	st, ok := r.agents[id]
	if !ok {
		return false
	}
	st.accepting = accepting
	return st.available()
}

// Status returns the agent's routing status.
func (r *Router) Status(id model.AgentID) Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	st, ok := r.agents[id]
	switch {
	case !ok || st.sessions+st.remote == 0:
		return Offline
	case st.accepting:
		return Accepting
	default:
		return NotAccepting
	}
}

// Open returns how many open conversations the agent serves.
func (r *Router) Open(id model.AgentID) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if st, ok := r.agents[id]; ok {
		return st.open
	}
	return 0
}

func (st *agentState) available() bool {
	return st.sessions+st.remote > 0 && st.accepting && (st.agent.MaxChats == 0 || st.open < st.agent.MaxChats)
}

// SetRemote replaces the agents' session counts on other nodes (agents
// absent from remote have none) and reports whether an agent became
// available.
func (r *Router) SetRemote(remote map[model.AgentID]int) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	became := false
	for id, st := range r.agents {
		was := st.available()
		st.remote = remote[id]
		became = became || (!was && st.available())
	}
	return became
}

// SetStatuses applies the agents' chosen statuses as another node set them
// and reports whether an agent became available.
func (r *Router) SetStatuses(accepting map[model.AgentID]bool) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	became := false
	for id, acc := range accepting {
		if st, ok := r.agents[id]; ok {
			was := st.available()
			st.accepting = acc
			became = became || (!was && st.available())
		}
	}
	return became
}

// SetOpen replaces the open conversation counts with the store's (agents
// absent from open serve none): under the deployment's routing lock every
// node's commits are visible, so these are the counts Pick must use.
func (r *Router) SetOpen(open map[model.AgentID]int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for id, st := range r.agents {
		st.open = open[id]
	}
}

// Entry is one queued conversation.
type Entry struct {
	Conv model.ConvID
	Dept model.DeptID
	At   time.Time
}

// SetQueue replaces the queue with the store's (any order; it is sorted
// oldest first, ties kept in the given order).
func (r *Router) SetQueue(entries []Entry) {
	q := make([]queued, len(entries))
	for i, e := range entries {
		q[i] = queued{conv: e.Conv, dept: e.Dept, at: e.At}
	}
	sort.SliceStable(q, func(i, j int) bool { return q[i].at.Before(q[j].at) })
	r.mu.Lock()
	r.queue = q
	r.mu.Unlock()
}

// Pick chooses and reserves an agent for a conversation of dept: among the
// available agents serving dept, the one with the fewest open conversations,
// then the one picked longest ago. The reservation counts as an open
// conversation until Release.
func (r *Router) Pick(dept model.DeptID) (model.AgentID, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var best *agentState
	for _, id := range r.order {
		st := r.agents[id]
		if !st.available() || !st.agent.Serves(dept) {
			continue
		}
		if best == nil || st.open < best.open || (st.open == best.open && st.lastPick.Before(best.lastPick)) {
			best = st
		}
	}
	if best == nil {
		return "", false
	}
	best.open++
	best.lastPick = r.now()
	return best.agent.ID, true
}

// Reserve counts one more open conversation for the agent (a manual
// assignment or transfer). It fails for an unknown agent.
func (r *Router) Reserve(id model.AgentID) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	st, ok := r.agents[id]
	if ok {
		st.open++
	}
	return ok
}

// Release gives back one open conversation of the agent.
func (r *Router) Release(id model.AgentID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if st, ok := r.agents[id]; ok && st.open > 0 {
		st.open--
	}
}

// Enqueue puts a conversation in its department's queue (once).
func (r *Router) Enqueue(conv model.ConvID, dept model.DeptID, at time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, q := range r.queue {
		if q.conv == conv {
			return
		}
	}
	// Insert after every entry not newer than at, so that entries stamped
	// in the same instant keep their arrival order (FIFO).
	i := sort.Search(len(r.queue), func(i int) bool { return r.queue[i].at.After(at) })
	r.queue = slices.Insert(r.queue, i, queued{conv: conv, dept: dept, at: at})
}

// Dequeue removes a conversation from the queue.
func (r *Router) Dequeue(conv model.ConvID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.queue = slices.DeleteFunc(r.queue, func(q queued) bool { return q.conv == conv })
}

// Queued lists the queued conversations, oldest first.
func (r *Router) Queued() []model.ConvID {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]model.ConvID, len(r.queue))
	for i, q := range r.queue {
		out[i] = q.conv
	}
	return out
}

// QueuedByDept counts the queued conversations of each department.
func (r *Router) QueuedByDept() map[model.DeptID]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[model.DeptID]int)
	for _, q := range r.queue {
		out[q.dept]++
	}
	return out
}

// Position returns a queued conversation's 1-based place in its
// department's queue, or 0 when it is not queued.
func (r *Router) Position(conv model.ConvID) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	var dept model.DeptID
	found := false
	for _, q := range r.queue {
		if q.conv == conv {
			dept, found = q.dept, true
			break
		}
	}
	if !found {
		return 0
	}
	n := 0
	for _, q := range r.queue {
		if q.dept == dept {
			n++
		}
		if q.conv == conv {
			return n
		}
	}
	return 0
}
