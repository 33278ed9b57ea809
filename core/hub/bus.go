package hub

import (
	"encoding/json"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"chatgate/core/model"
)

// ErrSlow is why a subscriber that let its queue fill up was cut off.
var ErrSlow = errors.New("subscriber too slow: queue full")

// ErrUnsubscribed is the reason of a subscription its owner closed.
var ErrUnsubscribed = errors.New("unsubscribed")

// Typing is an ephemeral typing indicator (never stored).
type Typing struct {
	Author model.Author
	On     bool
	// Text is the sneak peek of what is being typed, when the protocol
	// shares it.
	Text string
}

// Notice is one committed change of a conversation (or an ephemeral typing
// indicator) as it fans out. Conv is the conversation after the change;
// Events are the events the change appended, in order.
type Notice struct {
	Conv model.Conversation
	// Created: this change created the conversation (a start, with or
	// without events). Sessions tell a new thread by it, not by "the
	// first event has seq 1", which also holds for the first message of a
	// thread started without events.
	Created bool
	Events  []model.Event
	// Updated are existing events changed in place (edited, deleted).
	Updated []model.Event
	Typing  *Typing
	// Props, if set, is a property change of the conversation's chat
	// (Location "chat"), of the conversation itself ("thread") or of one
	// of its events ("event"); Events and Updated are then empty.
	Props *PropsChange
	// Tag, if set, is a tag added to or removed from the conversation
	// (Conv.Tags is the result); Events and Updated are then empty.
	Tag *TagChange
	// Follow, if set, is an agent starting or stopping to follow the
	// conversation (Conv.Followers is the result); Events and Updated are
	// then empty.
	Follow *FollowChange
	// Ban, if set, is a visitor being banned; Conv then only carries the
	// visitor (Conv.Visitor), not a conversation.
	Ban *BanChange
	// Member, if set, is an agent added to or removed from the
	// conversation (Conv.Members is the result); Events and Updated are
	// then empty.
	Member *MemberChange
	// Seen, if set, is a chat user's "seen up to" marker moving (Conv is
	// the chat's newest conversation); Events and Updated are then empty.
	Seen *SeenChange
	// PrevVisitor, if set, is the visitor the conversation belonged to
	// before this change gave it to Conv.Visitor (desk.ChangeVisitor);
	// Events and Updated are then empty. Sessions that followed the
	// conversation for that visitor must stop: it is no longer theirs.
	PrevVisitor model.VisitorID
	// Origin is an opaque tag of the session that caused the change, so
	// that a surface can recognise its own requests (e.g. to echo a
	// request_id on the push that answers it).
	Origin string

	// shared holds what subscribers rendered from this notice for each
	// other (see Shared); Publish sets it, copies share it.
	shared *sync.Map
}

// Shared returns f's result for key, computing it once for every
// subscriber that asks with the same key: sessions that send the same
// bytes for a notice (every DDP session following a room, say) encode
// it once between them instead of once each. key must name everything
// the result depends on besides the notice; f must not keep or modify
// the notice. Two subscribers asking at the same moment may both run f;
// one result is kept. A notice that was not published computes each
// time.
func (n *Notice) Shared(key any, f func() any) any {
	if n.shared == nil {
		return f()
	}
	if v, ok := n.shared.Load(key); ok {
		return v
	}
	v, _ := n.shared.LoadOrStore(key, f())
	return v
}

// PropsChange is a committed change of properties: Updated holds only the
// keys whose value changed ({ns: {name: value}}), Deleted the names
// removed ({ns: [names]}); one of them is set.
type PropsChange struct {
	// Location is "chat", "thread" or "event".
	Location string
	Visitor  model.VisitorID
	// Conv is the thread (location thread and event).
	Conv model.ConvID
	// Seq and Event identify the event (location event); Visibility is
	// the event's, so that surfaces hide changes of agents-only events
	// from visitors.
	Seq        uint64
	Event      string
	Visibility model.Visibility
	Updated    map[string]map[string]json.RawMessage
	Deleted    map[string][]string
}

// TagChange is a committed tag change of a conversation.
type TagChange struct {
	Tag   string
	Added bool
	By    model.Author
}

// FollowChange is a committed follow or unfollow of a conversation.
type FollowChange struct {
	Agent    model.AgentID
	Followed bool
}

// BanChange is a committed ban of a visitor.
type BanChange struct {
	Visitor model.VisitorID
	Days    int
	Until   time.Time
	By      model.Author
}

// MemberChange is a committed addition or removal of a conversation's
// agent member. Visibility "all" means the visitor is told too.
type MemberChange struct {
	Agent      model.AgentID
	Added      bool
	Visibility model.Visibility
	By         model.Author
}

// SeenChange is a chat user (the visitor, by its id, or an agent) having
// seen the chat's events up to UpTo (the stored marker after the change).
type SeenChange struct {
	User string
	Kind model.AuthorKind
	UpTo time.Time
}

// Sub is a bounded queue of notices.
type Sub struct {
	c    chan *Notice
	done chan struct{}
	once sync.Once
	err  error
	drop func(*Sub)
	wake atomic.Pointer[func()]
}

// SetWake makes f be called after each notice queued on s and once when
// s ends, so that its owner can drain s on demand instead of keeping a
// goroutine blocked on C for the whole life of an idle subscription. f
// is called from Publish (holding the bus's locks) or from whoever ends
// s: it must not block nor call the bus.
func (s *Sub) SetWake(f func()) {
	s.wake.Store(&f)
	select {
	case <-s.done:
		f()
	default:
	}
}

func (s *Sub) woken() {
	if f := s.wake.Load(); f != nil {
		(*f)()
	}
}

// C delivers notices. It is never closed: select on Done too.
func (s *Sub) C() <-chan *Notice { return s.c }

// Done is closed when the subscription ends (Close, or cut off as slow).
func (s *Sub) Done() <-chan struct{} { return s.done }

// Err says why the subscription ended; valid after Done is closed.
func (s *Sub) Err() error { <-s.done; return s.err }

// Close ends the subscription.
func (s *Sub) Close() { s.end(ErrUnsubscribed) }

func (s *Sub) end(err error) {
	s.once.Do(func() {
		s.err = err
		close(s.done)
		s.drop(s)
		s.woken()
	})
}

// Bus fans notices out to per-conversation and per-visitor subscribers,
// to agent sessions (the notices that may concern their agent, see
// agentIndex) and to desk-wide subscribers (webhooks, relays: every
// notice).
type Bus struct {
	shards [shardCount]busShard
	deskMu sync.RWMutex
	desk   map[*Sub]struct{}
	agents *agentIndex
	// cluster, when set (several nodes), sequences and relays what
	// Publish is given; nil on one node.
	cluster atomic.Pointer[Cluster]
}

type busShard struct {
	mu   sync.RWMutex
	subs map[model.ConvID]map[*Sub]struct{}
	// vsubs follow every conversation of one visitor (a LiveChat customer
	// session: its chat spans the visitor's conversations), sharded by
	// visitor id.
	vsubs map[model.VisitorID]map[*Sub]struct{}
}

// NewBus returns an empty bus.
func NewBus() *Bus {
	b := &Bus{desk: make(map[*Sub]struct{}), agents: newAgentIndex()}
	for i := range b.shards {
		b.shards[i].subs = make(map[model.ConvID]map[*Sub]struct{})
		b.shards[i].vsubs = make(map[model.VisitorID]map[*Sub]struct{})
	}
	return b
}

func (b *Bus) shard(id model.ConvID) *busShard { return b.shardOf(string(id)) }

func (b *Bus) shardOf(id string) *busShard { return &b.shards[fnv(id)%shardCount] }

// fnv is FNV-1a of s.
func fnv(s string) uint32 {
	var h uint32 = 2166136261
	for i := 0; i < len(s); i++ {
		h = (h ^ uint32(s[i])) * 16777619
	}
	return h
}

// SubscribeConv follows one conversation with a queue of size notices.
func (b *Bus) SubscribeConv(id model.ConvID, size int) *Sub {
	sh := b.shard(id)
	s := newSub(size, func(s *Sub) {
		sh.mu.Lock()
		if m := sh.subs[id]; m != nil {
			delete(m, s)
			if len(m) == 0 {
				delete(sh.subs, id)
			}
		}
		sh.mu.Unlock()
	})
	sh.mu.Lock()
	m := sh.subs[id]
	if m == nil {
		m = make(map[*Sub]struct{})
		sh.subs[id] = m
	}
	m[s] = struct{}{}
	sh.mu.Unlock()
	return s
}

// SubscribeVisitor follows every conversation of one visitor, present and
// future, with a queue of size notices: a session that speaks for one
// visitor gets only that visitor's notices, instead of filtering the
// whole desk's (which costs every session every notice).
func (b *Bus) SubscribeVisitor(id model.VisitorID, size int) *Sub {
	sh := b.shardOf(string(id))
	s := newSub(size, func(s *Sub) {
		sh.mu.Lock()
		if m := sh.vsubs[id]; m != nil {
			delete(m, s)
			if len(m) == 0 {
				delete(sh.vsubs, id)
			}
		}
		sh.mu.Unlock()
	})
	sh.mu.Lock()
	m := sh.vsubs[id]
	if m == nil {
		m = make(map[*Sub]struct{})
		sh.vsubs[id] = m
	}
	m[s] = struct{}{}
	sh.mu.Unlock()
	return s
}

// SubscribeDesk follows every conversation with a queue of size notices.
func (b *Bus) SubscribeDesk(size int) *Sub {
	s := newSub(size, func(s *Sub) {
		b.deskMu.Lock()
		delete(b.desk, s)
		b.deskMu.Unlock()
	})
	b.deskMu.Lock()
	b.desk[s] = struct{}{}
	b.deskMu.Unlock()
	return s
}

// SubscribeAgent follows, with a queue of size notices, every notice
// that may concern a session of agent a (see agentIndex for which): a
// superset of what the agent may be told, decided when the notice is
// published from a and the notice alone, so that a message wakes the
// sessions of the agents it concerns instead of every agent session. a
// is the session's agent as it logged in; the subscription keeps a copy.
func (b *Bus) SubscribeAgent(a model.Agent, size int) *Sub {
	a.Departments = append([]model.DeptID(nil), a.Departments...)
	s := newSub(size, b.agents.remove)
	b.agents.add(s, &a)
	return s
}

func newSub(size int, drop func(*Sub)) *Sub {
	if size <= 0 {
		size = 64
	}
	return &Sub{c: make(chan *Notice, size), done: make(chan struct{}), drop: drop}
}

// Publish delivers n to its conversation's subscribers and the desk's, on
// every node of the deployment when a Cluster is attached. It never blocks:
// a subscriber whose queue is full is cut off with ErrSlow.
func (b *Bus) Publish(n Notice) {
	if c := b.cluster.Load(); c != nil {
		c.local(n)
		return
	}
	b.deliver(n)
}

// published is a delivered notice and the memo its subscribers share.
type published struct {
	n    Notice
	memo sync.Map
}

// deliver hands n to this node's subscribers.
func (b *Bus) deliver(n Notice) {
	var slow []*Sub
	// One copy, shared by every subscriber: queues hold pointers (a
	// Notice is ~450 bytes, and every session holds a queue). The copy
	// and its memo are one allocation.
	p := &published{n: n}
	np := &p.n
	np.shared = &p.memo
	offer := func(s *Sub) {
		select {
		case <-s.done:
		case s.c <- np:
			s.woken()
		default:
			slow = append(slow, s)
		}
	}
	sh := b.shard(n.Conv.ID)
	sh.mu.RLock()
	for s := range sh.subs[n.Conv.ID] {
		offer(s)
	}
	sh.mu.RUnlock()
	if n.Conv.Visitor != "" {
		vsh := b.shardOf(string(n.Conv.Visitor))
		vsh.mu.RLock()
		for s := range vsh.vsubs[n.Conv.Visitor] {
			offer(s)
		}
		vsh.mu.RUnlock()
	}
	b.agents.offer(np, offer)
	b.deskMu.RLock()
	for s := range b.desk {
		offer(s)
	}
	b.deskMu.RUnlock()
	for _, s := range slow {
		s.end(ErrSlow)
	}
}

// Subscribers counts live subscriptions (for metrics and tests).
func (b *Bus) Subscribers() int {
	n := 0
	for i := range b.shards {
		sh := &b.shards[i]
		sh.mu.RLock()
		for _, m := range sh.subs {
			n += len(m)
		}
		for _, m := range sh.vsubs {
			n += len(m)
		}
		sh.mu.RUnlock()
	}
	b.deskMu.RLock()
	n += len(b.desk)
	b.deskMu.RUnlock()
	b.agents.mu.RLock()
	n += len(b.agents.all)
	b.agents.mu.RUnlock()
	return n
}
