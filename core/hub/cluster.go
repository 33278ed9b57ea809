package hub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"chatgate/core/model"
	"chatgate/internal/jsondec"
)

// Broker carries notices between the nodes of one deployment, as
// centrifuge's Broker does for its channels: one node needs none (the Bus
// delivers locally), several share one (PostgreSQL LISTEN/NOTIFY in
// store/postgres; NATS would be another implementation of the same
// interface).
//
// A broker moves Wire pointers, not state: the store stays the only source
// of truth, and a node that receives a pointer to events it lacks reads them
// from the store by sequence. A broker is allowed to lose pointers (a
// listener that reconnects, a publish that fails): it then calls
// Resync, and the node catches up from the store.
type Broker interface {
	// Publish sends w to the other nodes. It must not block on the
	// network for long: brokers queue and batch.
	Publish(w *Wire)
	// Run receives the other nodes' pointers until ctx ends, calling
	// h.Receive for each in the order the broker delivers them and
	// h.Resync after every (re)connection that may have missed some.
	Run(ctx context.Context, h BrokerHandler) error
}

// BrokerHandler is what a Broker feeds (the Cluster).
type BrokerHandler interface {
	Receive(ctx context.Context, w *Wire)
	Resync(ctx context.Context)
}

// Source reads committed state, for a node catching up with commits made by
// other nodes (a store.Store is one).
type Source interface {
	Conversation(ctx context.Context, id model.ConvID) (model.Conversation, error)
	Events(ctx context.Context, conv model.ConvID, from uint64, limit int) ([]model.Event, error)
}

// Cache is an optional ability of a Source that keeps copies of what it
// reads (store/postgres): the cluster tells it of every change another node
// committed before delivering that change here (so that a session told of
// a change finds it when it reads), and to forget every copy when the
// broker may have lost pointers (Resync).
type Cache interface {
	// Committed gives the conversation as another node committed it,
	// at c.Rev.
	Committed(c model.Conversation)
	// Changed says that another node changed conv or its visitor (either
	// may be empty) in a way the notice does not carry whole.
	Changed(conv model.ConvID, visitor model.VisitorID)
	// Forget drops every copy.
	Forget()
}

// Wire is a notice as it crosses nodes: a pointer (the conversation and the
// sequence range the change appended, the sequences it changed in place),
// the change's own description when it has no events (typing, properties,
// tags, members, follow, ban, seen), and, when it fits, the notice's
// conversation and events inline so that the receiver need not read them
// back (Inline). Receivers trust an inline copy only when it continues
// exactly from what they delivered; otherwise they read the store.
type Wire struct {
	// Node is the publishing node (receivers skip their own).
	Node string `json:"n"`
	// N numbers a node's pointers (so that identical payloads stay
	// distinct: PostgreSQL folds duplicate notifications of one
	// transaction).
	N    uint64       `json:"i"`
	Conv model.ConvID `json:"c,omitempty"`
	// Visitor is set for a ban (no conversation).
	Visitor model.VisitorID `json:"v,omitempty"`
	// From..To is the appended events' sequence range (0 when none).
	From    uint64   `json:"f,omitempty"`
	To      uint64   `json:"t,omitempty"`
	Updated []uint64 `json:"u,omitempty"`
	// Rest is the notice without Conv, Events and Updated.
	Rest *Rest `json:"r,omitempty"`
	// Inline, when present, is the notice's conversation and events
	// (Events, then Updated) as committed.
	Inline *Inline `json:"x,omitempty"`
}

// Rest is what a notice says besides its conversation and events, as it
// crosses nodes. Its members keep the names Notice's fields had on the
// wire before (when Rest was a whole Notice), so that nodes of two
// versions read each other's pointers during a rolling deploy; what is
// empty is left out (a relayed message carries only its Origin, which
// took 60 bytes instead of 330).
type Rest struct {
	Created     bool            `json:"Created,omitempty"`
	Typing      *Typing         `json:"Typing,omitempty"`
	Props       *PropsChange    `json:"Props,omitempty"`
	Tag         *TagChange      `json:"Tag,omitempty"`
	Follow      *FollowChange   `json:"Follow,omitempty"`
	Ban         *BanChange      `json:"Ban,omitempty"`
	Member      *MemberChange   `json:"Member,omitempty"`
	Seen        *SeenChange     `json:"Seen,omitempty"`
	PrevVisitor model.VisitorID `json:"PrevVisitor,omitempty"`
	Origin      string          `json:"Origin,omitempty"`
}

func restOf(n *Notice) *Rest {
	return &Rest{Created: n.Created, Typing: n.Typing, Props: n.Props, Tag: n.Tag, Follow: n.Follow, Ban: n.Ban,
		Member: n.Member, Seen: n.Seen, PrevVisitor: n.PrevVisitor, Origin: n.Origin}
}

// notice is the Notice r describes, without conversation or events.
func (r *Rest) notice() Notice {
	if r == nil {
		return Notice{}
	}
	return Notice{Created: r.Created, Typing: r.Typing, Props: r.Props, Tag: r.Tag, Follow: r.Follow, Ban: r.Ban,
		Member: r.Member, Seen: r.Seen, PrevVisitor: r.PrevVisitor, Origin: r.Origin}
}

// Inline is a committed notice's state carried with its pointer.
type Inline struct {
	Conv model.Conversation `json:"c"`
	// Rev is Conv's revision (model.Conversation.Rev is not in its JSON);
	// set for notices that carry events, whose Conv is the conversation
	// exactly as committed at Rev (the desk publishes the committed copy).
	Rev     uint64        `json:"r,omitempty"`
	Events  []model.Event `json:"e,omitempty"`
	Updated []model.Event `json:"u,omitempty"`
}

// WireOf describes n for other nodes (inline copy included; a broker whose
// payloads are bounded drops it with Slim when it does not fit).
func WireOf(node string, n *Notice) *Wire {
	w := &Wire{Node: node, Conv: n.Conv.ID, Visitor: n.Conv.Visitor}
	if len(n.Events) > 0 {
		w.From, w.To = n.Events[0].Seq, n.Events[len(n.Events)-1].Seq
	}
	for _, e := range n.Updated {
		w.Updated = append(w.Updated, e.Seq)
	}
	// Created crosses too: a start without an origin (a Rocket.Chat REST
	// room, a v2 start) that left the chat queued reached other nodes'
	// agents as bare events, never as incoming_chat, without it.
	if n.Created || n.Typing != nil || n.Props != nil || n.Tag != nil || n.Follow != nil || n.Ban != nil ||
		n.Member != nil || n.Seen != nil || n.PrevVisitor != "" || n.Origin != "" {
		w.Rest = restOf(n)
	}
	w.Inline = &Inline{Conv: n.Conv, Events: n.Events, Updated: n.Updated}
	if len(n.Events) > 0 || len(n.Updated) > 0 {
		w.Inline.Rev = n.Conv.Rev
	}
	return w
}

// Slim drops the inline copy (the receivers read the store instead).
func (w *Wire) Slim() { w.Inline = nil }

// ephemeral reports whether the notice is a typing indicator: it is never
// stored, so its whole meaning travels in the pointer.
func (w *Wire) ephemeral() bool { return w.Rest != nil && w.Rest.Typing != nil }

// Cluster makes a Bus deployment-wide: local commits are delivered here and
// published on the broker; other nodes' pointers are turned back into
// notices (from the inline copy or the store) and delivered here. Per
// conversation it remembers the last sequence delivered on this node, so
// that every session sees each event once and in order whichever node
// committed it: a notice that skips ahead first fetches the gap from the
// store, one that is behind loses the events already delivered.
type Cluster struct {
	bus    *Bus
	broker Broker
	src    Source
	cache  Cache // src's, when it has one
	node   string
	onErr  func(error)
	// started bounds deliverRecent: events committed before this node's
	// cluster existed were never this node's to deliver.
	started time.Time

	mu  sync.Mutex
	seq uint64

	shards [shardCount]seqShard
}

type seqShard struct {
	mu   sync.Mutex
	last map[model.ConvID]*cursor
}

type cursor struct {
	seq  uint64
	used time.Time
}

// cursorTTL is how long a conversation's delivery cursor is kept after its
// last notice. A pointer older than that (it would have to be delayed by
// minutes) could be delivered twice.
const cursorTTL = 10 * time.Minute

// NewCluster attaches a broker to bus: from then on bus.Publish goes
// through the cluster. onErr, if set, is told of store reads that failed
// (the notice is then delivered without the missing events).
func NewCluster(bus *Bus, broker Broker, src Source, node string, onErr func(error)) *Cluster {
	c := &Cluster{bus: bus, broker: broker, src: src, node: node, onErr: onErr, started: time.Now()}
	c.cache, _ = src.(Cache)
	for i := range c.shards {
		c.shards[i].last = make(map[model.ConvID]*cursor)
	}
	bus.cluster.Store(c)
	return c
}

// Run receives other nodes' notices and prunes old cursors until ctx ends.
func (c *Cluster) Run(ctx context.Context) error {
	go func() {
		t := time.NewTicker(cursorTTL / 4)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-t.C:
				c.prune(now)
			}
		}
	}()
	return c.broker.Run(ctx, c)
}

func (c *Cluster) prune(now time.Time) {
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		for id, cur := range sh.last {
			if now.Sub(cur.used) > cursorTTL {
				delete(sh.last, id)
			}
		}
		sh.mu.Unlock()
	}
}

func (c *Cluster) shard(id model.ConvID) *seqShard {
	return &c.shards[fnv(string(id))%shardCount]
}

// local delivers a notice committed on this node and publishes it.
func (c *Cluster) local(n Notice) {
	ctx := context.Background()
	if c.cache != nil && n.PrevVisitor != "" {
		// This node's own commit moved the conversation away from that
		// visitor: its cached thread list still names it.
		c.cache.Changed("", n.PrevVisitor)
	}
	c.deliver(ctx, n.Conv.ID, func(uint64) (Notice, error) { return n, nil })
	c.mu.Lock()
	c.seq++
	w := WireOf(c.node, &n)
	w.N = c.seq
	c.mu.Unlock()
	c.broker.Publish(w)
}

// Receive turns another node's pointer into a local notice.
func (c *Cluster) Receive(ctx context.Context, w *Wire) {
	if w.Node == c.node {
		return
	}
	c.observe(w)
	rest := w.Rest.notice()
	if w.Conv == "" {
		// A ban: no conversation, nothing stored to read.
		rest.Conv = model.Conversation{Visitor: w.Visitor}
		c.bus.deliver(rest)
		return
	}
	if w.ephemeral() {
		conv := model.Conversation{ID: w.Conv, Visitor: w.Visitor}
		if w.Inline != nil {
			conv = w.Inline.Conv
		} else if cv, err := c.src.Conversation(ctx, w.Conv); err == nil {
			conv = cv
		}
		rest.Conv = conv
		c.bus.deliver(rest)
		return
	}
	c.deliver(ctx, w.Conv, func(from uint64) (Notice, error) {
		n := rest
		if w.Inline != nil {
			n.Conv, n.Events, n.Updated = w.Inline.Conv, w.Inline.Events, w.Inline.Updated
			return n, nil
		}
		cv, err := c.src.Conversation(ctx, w.Conv)
		if err != nil {
			return n, fmt.Errorf("cluster: read conversation %s: %w", w.Conv, err)
		}
		n.Conv = cv
		if w.To > 0 {
			// The whole range: deliver drops what was delivered
			// already and fills what lies before it.
			evs, err := c.src.Events(ctx, w.Conv, w.From, int(w.To-w.From+1))
			if err != nil {
				return n, fmt.Errorf("cluster: read events of %s: %w", w.Conv, err)
			}
			n.Events = evs
		}
		for _, s := range w.Updated {
			evs, err := c.src.Events(ctx, w.Conv, s, 1)
			if err != nil {
				return n, fmt.Errorf("cluster: read event %s/%d: %w", w.Conv, s, err)
			}
			n.Updated = append(n.Updated, evs...)
		}
		return n, nil
	})
}

// observe keeps the source's cache true before w is delivered: a notice
// with events carries its conversation as committed, anything else only
// says the conversation or its visitor changed (a ban names only the
// visitor). Typing indicators change nothing stored.
func (c *Cluster) observe(w *Wire) {
	if c.cache == nil || w.ephemeral() {
		return
	}
	if w.Rest != nil && w.Rest.PrevVisitor != "" {
		// The conversation left that visitor (desk.ChangeVisitor).
		c.cache.Changed("", w.Rest.PrevVisitor)
	}
	if w.Inline != nil && w.Inline.Rev > 0 && w.Conv != "" && w.Inline.Conv.ID == w.Conv {
		cv := w.Inline.Conv
		cv.Rev = w.Inline.Rev
		c.cache.Committed(cv)
		return
	}
	c.cache.Changed(w.Conv, w.Visitor)
}

// deliver publishes on the local bus, in sequence order, what a notice of
// conv adds. get builds the notice given the first sequence not yet
// delivered here (0 when this node has no cursor for conv). When the
// notice starts later than that (events committed elsewhere whose pointer
// has not arrived yet), the gap is read from the store and delivered
// first; events already delivered are dropped.
func (c *Cluster) deliver(ctx context.Context, conv model.ConvID, get func(from uint64) (Notice, error)) {
	sh := c.shard(conv)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	cur := sh.last[conv]
	if cur == nil {
		cur = &cursor{}
		sh.last[conv] = cur
	}
	cur.used = time.Now()
	var from uint64
	if cur.seq > 0 {
		from = cur.seq + 1
	}
	out, err := get(from)
	if err != nil {
		c.report(err)
		if out.Conv.ID == "" || !out.hasChange() {
			// Nothing to say until the store answers: the next notice
			// of conv fills the events in.
			return
		}
		out.Events, out.Updated = nil, nil
	}
	had := len(out.Events) > 0
	evs := out.Events
	for len(evs) > 0 && evs[0].Seq <= cur.seq {
		evs = evs[1:]
	}
	if had && len(evs) == 0 && !out.hasChange() {
		// Every event was delivered already (an earlier gap fill).
		return
	}
	if len(evs) > 0 && cur.seq == 0 && evs[0].Seq > 1 {
		// First events of conv on this node: earlier ones committed
		// elsewhere may still be on their way (this node's own commit
		// can overtake another node's pointer), and once this cursor
		// moves past them they would be dropped. Deliver the recent ones
		// now (found by TestBrokerCrossesNodes with writers on two nodes).
		c.deliverRecent(ctx, out.Conv, evs[0].Seq)
	}
	if len(evs) > 0 && cur.seq > 0 && evs[0].Seq > cur.seq+1 {
		gap, err := c.src.Events(ctx, conv, cur.seq+1, int(evs[0].Seq-cur.seq-1))
		if err != nil {
			c.report(fmt.Errorf("cluster: read gap of %s: %w", conv, err))
		} else if len(gap) > 0 {
			c.bus.deliver(Notice{Conv: out.Conv, Events: gap})
		}
	}
	out.Events = evs
	if len(evs) > 0 {
		cur.seq = evs[len(evs)-1].Seq
	}
	c.bus.deliver(out)
}

// recentGap bounds what deliverRecent reads.
const recentGap = 256

// deliverRecent delivers the events of conv before seq first that were
// committed within cursorTTL and since this node's cluster started: with
// no cursor here, none of them was delivered on this node (a delivery
// keeps the cursor at least that long), so they are the ones whose
// pointers have not arrived yet. Older events were delivered before this
// node's cursor was pruned, or before this node ran (its sessions read
// them as history). Called with conv's shard locked.
func (c *Cluster) deliverRecent(ctx context.Context, conv model.Conversation, first uint64) {
	from := uint64(1)
	if first > recentGap {
		from = first - recentGap
	}
	evs, err := c.src.Events(ctx, conv.ID, from, int(first-from))
	if err != nil {
		c.report(fmt.Errorf("cluster: read recent events of %s: %w", conv.ID, err))
		return
	}
	since := time.Now().Add(-cursorTTL)
	if c.started.After(since) {
		since = c.started
	}
	for len(evs) > 0 && evs[0].At.Before(since) {
		evs = evs[1:]
	}
	if len(evs) > 0 {
		c.bus.deliver(Notice{Conv: conv, Events: evs})
	}
}

// hasChange reports whether the notice says something besides its events.
func (n *Notice) hasChange() bool {
	return len(n.Updated) > 0 || n.Typing != nil || n.Props != nil || n.Tag != nil || n.Follow != nil ||
		n.Ban != nil || n.Member != nil || n.Seen != nil
}

// Resync catches up, from the store, every conversation this node has
// delivered recently: called when the broker may have lost pointers.
func (c *Cluster) Resync(ctx context.Context) {
	if c.cache != nil {
		c.cache.Forget()
	}
	type pending struct {
		id  model.ConvID
		seq uint64
	}
	var all []pending
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		for id, cur := range sh.last {
			all = append(all, pending{id, cur.seq})
		}
		sh.mu.Unlock()
	}
	for _, p := range all {
		if ctx.Err() != nil {
			return
		}
		cv, err := c.src.Conversation(ctx, p.id)
		if err != nil {
			if !errors.Is(err, context.Canceled) {
				c.report(fmt.Errorf("cluster: resync %s: %w", p.id, err))
			}
			continue
		}
		if cv.LastSeq <= p.seq {
			continue
		}
		c.Receive(ctx, &Wire{Conv: p.id, Visitor: cv.Visitor, From: p.seq + 1, To: cv.LastSeq})
	}
}

func (c *Cluster) report(err error) {
	if c.onErr != nil {
		c.onErr(err)
	}
}

// MarshalWire encodes a pointer for a broker (JSON: brokers such as
// PostgreSQL's NOTIFY carry text). encoding/json, not goccy: goccy
// ignores omitzero (and would write every zero time out) and may copy a
// string that is not valid UTF-8, which PostgreSQL refuses in a
// notification.
func MarshalWire(w *Wire) ([]byte, error) { return json.Marshal(w) }

// UnmarshalWire decodes a pointer a broker received, as encoding/json
// would (same result, same refusals: FuzzUnmarshalWire). Every node
// decodes every other node's pointers, once per relayed message, so it
// uses jsondec (goccy/go-json after encoding/json's validity scan).
func UnmarshalWire(b []byte) (*Wire, error) {
	var w Wire
	if err := jsondec.Unmarshal(b, &w); err != nil {
		return nil, fmt.Errorf("hub: bad wire notice: %w", err)
	}
	return &w, nil
}
