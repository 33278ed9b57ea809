// Package desk is chatgate's command side: start, post, close, assign,
// transfer and typing, each run on the conversation's actor, committed to
// the store in one batch (with whatever mappings and idempotency keys the
// caller adds), and only then published to subscribers and returned.
package desk

import (
	"chatgate/core/ratelimit"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/rs/zerolog"

	"chatgate/core/hub"
	"chatgate/core/model"
	"chatgate/core/routing"
	"chatgate/store"
)

// Limits bound what a command may carry.
type Limits struct {
	// MaxText is the largest message text in bytes.
	MaxText int
	// Starts limits the conversations visitors start, per client address
	// (ratelimit.AddrFrom of the request's context; none without one).
	// Messages limits the events visitors post, per visitor. Nil: no
	// limit. Refusals are ErrRateLimited.
	Starts, Messages *ratelimit.Keyed
}

// Options configure a Desk.
type Options struct {
	Store   store.Store
	Router  *routing.Router
	Bus     *hub.Bus
	Actors  *hub.Actors
	Limits  Limits
	Logger  zerolog.Logger
	Now     func() time.Time
	Departs []model.Department
	// OnEvents, if set, is told how many events each commit appended (for
	// metrics).
	OnEvents func(n int)
	// OnStale, if set, is told each time a command runs again because
	// another writer (another node) changed its conversation first.
	OnStale func()
	// Outbox, if set, is asked for the deliveries (webhooks) a change
	// owes: c is the conversation after the change, events the events it
	// appends, updated the events it changes in place. The rows are
	// committed in the same batch as the change, so that they exist
	// exactly when the change does. It runs on the conversation's actor,
	// before the commit: it must be quick and must not call the desk.
	//
	// visitors are the visitor records the same batch writes (a start that
	// sets chat properties): the store still holds their old state.
	// created tells whether the batch creates the conversation (a start,
	// with or without events).
	Outbox func(c model.Conversation, created bool, visitors []model.Visitor, events []model.Event, updated []model.Event) []store.OutboxRow
	// NoticeOutbox, if set, is asked for the deliveries a change without
	// events owes (property, member, tag and seen-marker changes; see
	// outbox.go), under the same rules as Outbox.
	NoticeOutbox func(n hub.Notice) []store.OutboxRow
	// Properties is the property configuration; nil means none declared
	// (every property write is refused).
	Properties *Properties
	// Route, if set, names the upstream connector that serves new
	// conversations of a department (owner, "" for the embedded desk) and
	// the connectors that get a read-only copy (mirrors).
	Route func(dept model.DeptID) (owner string, mirrors []string)
	// Relay, if set, adds to a change's batch what relaying it owes
	// (outbox rows, mappings), like Outbox; it runs for every change of a
	// conversation with an Owner or Mirrors. created is true for the
	// batch that creates the conversation.
	Relay func(b *store.Batch, c model.Conversation, created bool, events []model.Event)
	// Coordinator, if set, shares routing with other nodes (several
	// nodes on one store); nil on one node.
	Coordinator routing.Coordinator
}

// Desk executes commands on conversations.
type Desk struct {
	st      store.Store
	router  *routing.Router
	coord   routing.Coordinator
	bus     *hub.Bus
	actors  *hub.Actors
	limits  Limits
	log     zerolog.Logger
	now     func() time.Time
	departs map[model.DeptID]model.Department
	onEv    func(int)
	onStale func()
	outbox  func(model.Conversation, bool, []model.Visitor, []model.Event, []model.Event) []store.OutboxRow
	nOutbox func(hub.Notice) []store.OutboxRow
	kick    chan struct{}
	props   *Properties
	route   func(model.DeptID) (string, []string)
	relay   func(*store.Batch, model.Conversation, bool, []model.Event)

	activeMu sync.Mutex
	active   map[string]int // active conversations by source (ActiveBySource)
}

// New returns a desk; call Load before serving and Run for queue routing.
func New(o Options) *Desk {
	d := &Desk{st: o.Store, router: o.Router, coord: o.Coordinator, bus: o.Bus, actors: o.Actors, limits: o.Limits,
		log: o.Logger, now: o.Now, onEv: o.OnEvents, onStale: o.OnStale, outbox: o.Outbox, nOutbox: o.NoticeOutbox, kick: make(chan struct{}, 1),
		departs: make(map[model.DeptID]model.Department), props: o.Properties,
		route: o.Route, relay: o.Relay}
	if d.props == nil {
		d.props, _ = NewProperties(o.Store, nil)
	}
	if d.now == nil {
		d.now = time.Now
	}
	if d.limits.MaxText <= 0 {
		d.limits.MaxText = 16 * 1024
	}
	if d.actors == nil {
		d.actors = hub.NewActors(256)
	}
	if d.bus == nil {
		d.bus = hub.NewBus()
	}
	for _, dp := range o.Departs {
		d.departs[dp.ID] = dp
	}
	return d
}

// Store returns the desk's store, for surfaces' read paths.
func (d *Desk) Store() store.Store { return d.st }

// Bus returns the fan-out bus, for surfaces' subscriptions.
func (d *Desk) Bus() *hub.Bus { return d.bus }

// Router returns the router, for agent presence and status.
func (d *Desk) Router() *routing.Router { return d.router }

// Relayed reports whether new conversations of dept are served by an
// upstream desk (a relay route), whose availability chatgate cannot see:
// surfaces that refuse to start a chat with no agent online let these
// through.
func (d *Desk) Relayed(dept model.DeptID) bool {
	if d.route == nil {
		return false
	}
	owner, _ := d.route(dept)
	return owner != ""
}

// Limits returns the configured limits.
func (d *Desk) Limits() Limits { return d.limits }

// Department returns a configured department.
func (d *Desk) Department(id model.DeptID) (model.Department, bool) {
	dp, ok := d.departs[id]
	return dp, ok
}

// Now returns the desk's clock reading, at the precision stored events use.
func (d *Desk) Now() time.Time { return d.now().UTC().Truncate(time.Microsecond) }

// Load rebuilds the router's memory (open conversations per agent, the
// queue) from the store. Call once before serving.
func (d *Desk) Load(ctx context.Context) error {
	if err := d.props.Load(ctx); err != nil {
		return err
	}
	d.activeMu.Lock()
	d.active = make(map[string]int)
	d.activeMu.Unlock()
	err := d.st.Conversations(ctx, func(c model.Conversation) bool {
		if c.Active() {
			d.countActive(c, 1)
		}
		switch c.State {
		case model.StateOpen:
			d.router.Reserve(c.Agent)
		case model.StateQueued:
			if c.Owner == "" {
				d.router.Enqueue(c.ID, c.Department, c.CreatedAt)
			}
		}
		return true
	})
	if err != nil {
		return fmt.Errorf("load conversations: %w", err)
	}
	d.Kick()
	return nil
}

// Kick asks Run to try to assign queued conversations.
func (d *Desk) Kick() {
	select {
	case d.kick <- struct{}{}:
	default:
	}
}

// Run assigns queued conversations whenever Kick says an agent may have
// become available. It returns when ctx ends.
func (d *Desk) Run(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-d.kick:
			d.drainQueue(ctx)
		}
	}
}

func (d *Desk) drainQueue(ctx context.Context) {
	// Departments whose oldest queued conversation found no agent in this
	// pass. Their younger conversations wait too: an agent who becomes
	// available during the pass kicks a new one, which starts again from
	// the oldest (FIFO per department).
	blocked := make(map[model.DeptID]bool)
	if d.coord != nil {
		// Other nodes' queued conversations count too: read the queue.
		if err := d.coord.Route(ctx, true, func(context.Context) error { return nil }); err != nil {
			if ctx.Err() == nil {
				d.log.Error().Err(err).Msg("read the deployment's queue")
			}
			return
		}
	}
	for _, id := range d.router.Queued() {
		if ctx.Err() != nil {
			return
		}
		err := d.onConv(ctx, id, d.routed(func(ctx context.Context) error {
			c, err := d.st.Conversation(ctx, id)
			if errors.Is(err, store.ErrNotFound) {
				// Queued by a Start whose commit is still in flight (or
				// failed, and Start dequeues it): its Kick comes after.
				return nil
			}
			if err != nil {
				return err
			}
			if c.State != model.StateQueued {
				d.router.Dequeue(id)
				return nil
			}
			if blocked[c.Department] {
				return nil
			}
			agent, ok := d.router.Pick(c.Department)
			if !ok {
				blocked[c.Department] = true
				return nil
			}
			if err := d.assignLocked(ctx, &c, agent, nil, ""); err != nil {
				d.router.Release(agent)
				return err
			}
			return nil
		}))
		if err != nil && ctx.Err() == nil {
			d.log.Error().Err(err).Str("conv", string(id)).Msg("assign queued conversation")
		}
	}
}

// routed wraps fn, which picks an agent and commits, so that it runs under
// the deployment's routing lock when there are several nodes.
func (d *Desk) routed(fn func(ctx context.Context) error) func(ctx context.Context) error {
	if d.coord == nil {
		return fn
	}
	return func(ctx context.Context) error { return d.coord.Route(ctx, false, fn) }
}

func convKey(id model.ConvID) hub.Key { return hub.Key{Space: "c", ID: string(id)} }

// maxStaleRetries bounds how often onConv runs a command again because
// another writer changed its conversation between read and commit.
// Two nodes posting into one hot conversation back to back collide often
// (on a loaded machine the loser may lose many rounds running), so the
// bound is generous and the pause after a loss grows with the losses.
const maxStaleRetries = 64

// onConv runs fn on the conversation's actor, which serializes the
// commands of this desk. Another desk on the same database (another node)
// has its own actor, so the store decides between them: fn reads the
// conversation, builds its batch on that read (the conversation's Rev
// makes the commit conditional) and commits; if another writer got in
// between, the store writes nothing and says store.ErrStale, and fn runs
// again on a fresh read. fn must therefore undo, on a commit error, what
// it changed in memory (the router), as every command here does. The
// client never sees the conflict, and seqs stay dense: a retried command
// draws its seq from the fresh LastSeq. Past maxStaleRetries (a
// conversation written without pause by other nodes) the error is
// returned.
func (d *Desk) onConv(ctx context.Context, id model.ConvID, fn func(ctx context.Context) error) error {
	return d.onActor(ctx, convKey(id), fn)
}

// onVisitor is onConv for commands on a visitor's actor: they write the
// visitor record (seen markers, profile, ban, chat properties) read at a
// revision, and run again when another node wrote it first.
func (d *Desk) onVisitor(ctx context.Context, id model.VisitorID, fn func(ctx context.Context) error) error {
	return d.onActor(ctx, visitorKey(id), fn)
}

func (d *Desk) onActor(ctx context.Context, key hub.Key, fn func(ctx context.Context) error) error {
	return d.actors.Run(ctx, key, hub.FuncJob(func(ctx context.Context) error { return d.retryStale(ctx, fn) }))
}

// retryStale runs fn, and again on store.ErrStale (see onConv). fn does
// not escape, so a command may pass its own method value without
// allocating.
func (d *Desk) retryStale(ctx context.Context, fn func(ctx context.Context) error) error {
	for attempt := 1; ; attempt++ {
		err := fn(ctx)
		if !errors.Is(err, store.ErrStale) || attempt > maxStaleRetries || ctx.Err() != nil {
			return err
		}
		if d.onStale != nil {
			d.onStale()
		}
		if attempt > 2 {
			// Two nodes in lockstep on one conversation: step
			// aside for a moment rather than collide again.
			t := time.NewTimer(time.Duration(rand.Int64N(int64(min(attempt, 20)) * int64(time.Millisecond))))
			select {
			case <-ctx.Done():
				t.Stop()
				return err
			case <-t.C:
			}
		}
	}
}

func visitorKey(id model.VisitorID) hub.Key { return hub.Key{Space: "v", ID: string(id)} }

// Draft is an event as a command proposes it; the desk fills in id, seq,
// author and time.
type Draft struct {
	Kind       model.EventKind
	Text       string
	Subtype    string
	Vars       map[string]string
	File       *model.File
	Form       *model.Form
	Custom     json.RawMessage
	Visibility model.Visibility
	// ClientKey is the client's own id for the event (kept and echoed).
	ClientKey string
	Props     map[string]map[string]json.RawMessage
}

func (d *Desk) validate(dr *Draft) error {
	if dr.Kind == "" {
		dr.Kind = model.KindMessage
	}
	if !dr.Kind.Valid() {
		return fmt.Errorf("%w: unknown event kind %q", ErrInvalid, dr.Kind)
	}
	if len(dr.Text) > d.limits.MaxText {
		return fmt.Errorf("%w: text is %d bytes, limit %d", ErrTooLarge, len(dr.Text), d.limits.MaxText)
	}
	if !utf8.ValidString(dr.Text) {
		return fmt.Errorf("%w: text is not UTF-8", ErrInvalid)
	}
	switch dr.Kind {
	case model.KindMessage:
		if strings.TrimSpace(dr.Text) == "" {
			return fmt.Errorf("%w: empty message", ErrInvalid)
		}
	case model.KindFile:
		if dr.File == nil || dr.File.URL == "" {
			return fmt.Errorf("%w: file event without url", ErrInvalid)
		}
	case model.KindForm:
		if dr.Form == nil {
			return fmt.Errorf("%w: form event without fields", ErrInvalid)
		}
	}
	switch dr.Visibility {
	case "", model.VisibleAll, model.VisibleAgents:
	default:
		return fmt.Errorf("%w: unknown visibility %q", ErrInvalid, dr.Visibility)
	}
	return nil
}

func (d *Desk) event(c *model.Conversation, author model.Author, dr Draft, at time.Time) model.Event {
	c.LastSeq++
	e := model.Event{
		Conv: c.ID, Seq: c.LastSeq, ID: model.NewID(), Kind: dr.Kind, Author: author, At: at,
		Visibility: dr.Visibility, ClientKey: dr.ClientKey, Text: dr.Text, Subtype: dr.Subtype,
		Vars: dr.Vars, File: dr.File, Form: dr.Form, Custom: dr.Custom, Props: dr.Props,
	}
	if e.Visibility == "" {
		e.Visibility = model.VisibleAll
	}
	return e
}

func sysDraft(subtype, text string, vars map[string]string) Draft {
	return Draft{Kind: model.KindSystem, Subtype: subtype, Text: text, Vars: vars}
}

// commit writes the batch, then publishes the change. It is the only place
// that publishes committed state: fan-out never runs ahead of the disk.
func (d *Desk) commit(ctx context.Context, b *store.Batch, c model.Conversation, evs []model.Event, origin string) error {
	return d.commitWith(ctx, b, c, false, evs, origin)
}

// commitWith is commit, told whether the batch creates the conversation.
func (d *Desk) commitWith(ctx context.Context, b *store.Batch, c model.Conversation, created bool, evs []model.Event, origin string) error {
	return d.commitCreated(ctx, b, c, created, created, evs, origin)
}

// commitCreated is commitWith where the outbox (webhooks: incoming_chat)
// and the relay hook may be told apart: a conversation created closed
// (StartInactive: an offline message) is new to webhooks, and no live
// conversation for a relay to open upstream.
func (d *Desk) commitCreated(ctx context.Context, b *store.Batch, c model.Conversation, created, relayCreated bool, evs []model.Event, origin string) error {
	if d.outbox != nil {
		b.Outbox = append(b.Outbox, d.outbox(c, created, b.Visitors, evs, b.Updates)...)
	}
	if d.relay != nil && (c.Owner != "" || len(c.Mirrors) > 0) {
		d.relay(b, c, relayCreated, evs)
	}
	// Not cancelled with the caller: a store may write a batch yet report
	// the caller's ctx.Err() (store/bolt does once the batch is queued),
	// and the router's memory must follow what was really written.
	if err := d.st.Commit(context.WithoutCancel(ctx), b); err != nil {
		return err
	}
	for i := range b.Convs {
		if b.Convs[i].ID == c.ID {
			// The notice carries the conversation as committed, with
			// its new revision (other nodes' caches take it as is).
			c = b.Convs[i]
		}
	}
	if d.onEv != nil && len(evs) > 0 {
		d.onEv(len(evs))
	}
	d.logLifecycle(c, created, evs)
	d.bus.Publish(hub.Notice{Conv: c, Created: created, Events: evs, Updated: b.Updates, Origin: origin})
	return nil
}

// countActive moves the count of active conversations of c's source.
// SourceKey names where a conversation came from in ActiveBySource: the
// origin surface, and " → <connector>" when relayed.
func SourceKey(origin, owner string) string {
	if owner != "" {
		return origin + " → " + owner
	}
	return origin
}

func (d *Desk) countActive(c model.Conversation, delta int) {
	key := SourceKey(c.Origin, c.Owner)
	d.activeMu.Lock()
	defer d.activeMu.Unlock()
	if d.active == nil {
		d.active = make(map[string]int)
	}
	if d.active[key] += delta; d.active[key] <= 0 {
		delete(d.active, key)
	}
}

// ActiveBySource counts the active (queued or open) conversations by where
// they came from: the origin surface, and " → <connector>" when relayed.
// Counted at Load and kept by this node's commits (operator view).
func (d *Desk) ActiveBySource() map[string]int {
	d.activeMu.Lock()
	defer d.activeMu.Unlock()
	out := make(map[string]int, len(d.active))
	for k, v := range d.active {
		out[k] = v
	}
	return out
}

// logLifecycle says at info level what happened to a conversation once it
// is committed: started, assigned, transferred, closed. Messages are not
// logged (they would be every request, and they are the visitors' words).
func (d *Desk) logLifecycle(c model.Conversation, created bool, evs []model.Event) {
	if created && c.Active() {
		d.countActive(c, 1)
	}
	if created {
		d.log.Info().Str("conv", string(c.ID)).Str("origin", c.Origin).Str("department", string(c.Department)).
			Str("relayed_to", c.Owner).Msg("chat started")
	}
	for i := range evs {
		e := &evs[i]
		if e.Kind != model.KindSystem {
			continue
		}
		switch e.Subtype {
		case model.SysAssigned:
			d.log.Info().Str("conv", string(c.ID)).Str("agent", e.Vars["agent_id"]).Msg("chat assigned")
		case model.SysTransferred:
			d.log.Info().Str("conv", string(c.ID)).Str("department", string(c.Department)).Msg("chat transferred")
		case model.SysClosed:
			d.countActive(c, -1)
			d.log.Info().Str("conv", string(c.ID)).Str("by", e.Vars["by_kind"]).Msg("chat closed")
		}
	}
}

// --- visitors --------------------------------------------------------------

// EnsureVisitor returns the visitor bound to a foreign id, creating it (and
// the binding, in one commit) the first time. Non-empty name and email in
// profile update the stored visitor.
func (d *Desk) EnsureVisitor(ctx context.Context, key store.MapKey, profile model.Visitor) (model.Visitor, error) {
	for attempt := 0; attempt < 3; attempt++ {
		id, err := d.st.Resolve(ctx, key)
		switch {
		case err == nil:
			var v model.Visitor
			err := d.onVisitor(ctx, model.VisitorID(id), func(ctx context.Context) error {
				var err error
				v, err = d.st.Visitor(ctx, model.VisitorID(id))
				if err != nil {
					return fmt.Errorf("visitor %s: %w", id, err)
				}
				changed := false
				if profile.Name != "" && profile.Name != v.Name {
					v.Name, changed = profile.Name, true
				}
				if profile.Email != "" && profile.Email != v.Email {
					v.Email, changed = profile.Email, true
				}
				if !changed {
					return nil
				}
				return d.st.Commit(ctx, &store.Batch{Visitors: []model.Visitor{v}})
			})
			if errors.Is(err, store.ErrNotFound) {
				// Deleted as an idle anonymous visitor between the two
				// reads (store.Store.ForgetIdleVisitors), its mapping
				// with it: the next attempt makes a new one.
				continue
			}
			return v, err
		case !errors.Is(err, store.ErrNotFound):
			return model.Visitor{}, fmt.Errorf("resolve visitor: %w", err)
		}
		v := profile
		v.ID = model.VisitorID(model.NewID())
		v.CreatedAt = d.Now()
		err = d.st.Commit(ctx, &store.Batch{
			Visitors: []model.Visitor{v},
			Maps:     []store.Mapping{{MapKey: key, Core: string(v.ID)}},
		})
		if err == nil {
			return v, nil
		}
		if !errors.Is(err, store.ErrConflict) {
			return model.Visitor{}, fmt.Errorf("create visitor: %w", err)
		}
		// Another request bound the foreign id first: use its visitor.
	}
	return model.Visitor{}, fmt.Errorf("create visitor: %w", store.ErrConflict)
}

// --- conversations ---------------------------------------------------------

// StartRequest opens a conversation.
type StartRequest struct {
	Visitor    model.VisitorID
	Department model.DeptID
	// Origin names the surface or connector.
	Origin string
	// Events are appended after the start (a welcome message, a form).
	// Their Author is Author, unless the draft is a system message.
	Events []Draft
	Author model.Author
	// Maps are committed with the conversation; an empty Core means the
	// new conversation's id.
	Maps []store.Mapping
	// Session tags the notices this command publishes (see hub.Notice).
	Session string
	// Agent, if set, is the agent the conversation is assigned to right
	// away (an agent starting a chat), whatever routing would pick; its
	// "agent joined" event comes before Events.
	Agent model.AgentID
	// ChatProps and ThreadProps are initial properties of the visitor's
	// chat and of the new conversation, checked like property updates by
	// Author and committed with the start; Members are agents added to it
	// from the start besides Agent (see start_props.go).
	ChatProps, ThreadProps map[string]map[string]json.RawMessage
	Members                []model.AgentID
}

// checkStart checks a start request before anything is read or written.
func (d *Desk) checkStart(req *StartRequest) error {
	if req.Author.Kind == model.AuthorVisitor && req.Author.ID != string(req.Visitor) {
		return fmt.Errorf("%w: a visitor starts only its own conversation", ErrForbidden)
	}
	if req.Department != "" {
		if _, ok := d.departs[req.Department]; !ok {
			return fmt.Errorf("%w: unknown department %q", ErrInvalid, req.Department)
		}
	}
	for i := range req.Events {
		if err := d.validate(&req.Events[i]); err != nil {
			return err
		}
	}
	if err := d.checkDraftProps(req.Author, req.Events...); err != nil {
		return err
	}
	if err := d.checkStartExtras(req); err != nil {
		return err
	}
	if req.Agent != "" {
		if _, ok := d.router.Agent(req.Agent); !ok {
			return fmt.Errorf("agent %s: %w", req.Agent, ErrNotFound)
		}
	}
	return nil
}

// startingVisitor reads the visitor a start is for, on the visitor's
// actor: ErrBanned for a banned visitor starting its own, ErrVisitorBusy
// (with the open conversation) when it has one.
func (d *Desk) startingVisitor(ctx context.Context, req *StartRequest) (model.Visitor, model.Conversation, error) {
	v, err := d.st.Visitor(ctx, req.Visitor)
	if err != nil {
		return v, model.Conversation{}, fmt.Errorf("visitor %s: %w", req.Visitor, errNotFound(err))
	}
	if req.Author.Kind == model.AuthorVisitor && v.Banned(d.Now()) {
		return v, model.Conversation{}, ErrBanned
	}
	if open, ok, err := d.openConversation(ctx, req.Visitor); err != nil {
		return v, model.Conversation{}, err
	} else if ok {
		return v, open, ErrVisitorBusy
	}
	return v, model.Conversation{}, nil
}

// Start opens a conversation for a visitor with no open conversation
// (ErrVisitorBusy otherwise, with the open one returned), routes it to an
// agent or the queue, and returns it with the events it appended.
func (d *Desk) Start(ctx context.Context, req StartRequest) (model.Conversation, []model.Event, error) {
	if err := d.checkStart(&req); err != nil {
		return model.Conversation{}, nil, err
	}
	if addr := ratelimit.AddrFrom(ctx); req.Author.Kind == model.AuthorVisitor && addr != "" && !d.limits.Starts.Allow(addr) {
		return model.Conversation{}, nil, ErrRateLimited
	}
	var (
		conv model.Conversation
		evs  []model.Event
	)
	err := d.onVisitor(ctx, req.Visitor, d.routed(func(ctx context.Context) error {
		v, open, err := d.startingVisitor(ctx, &req)
		if errors.Is(err, ErrVisitorBusy) {
			conv = open
		}
		if err != nil {
			return err
		}
		now := d.Now()
		conv = model.Conversation{ID: model.ConvID(model.NewID()), Visitor: req.Visitor, Department: req.Department,
			State: model.StateQueued, Origin: req.Origin, CreatedAt: now}
		if d.route != nil && req.Agent == "" {
			conv.Owner, conv.Mirrors = d.route(req.Department)
		}
		d.applyStartExtras(&v, &conv, &req, now)
		agent, picked := req.Agent, req.Agent != ""
		if picked {
			d.router.Reserve(agent)
			d.setAgent(&conv, agent, now, &evs)
		}
		for _, dr := range req.Events {
			author := req.Author
			if dr.Kind == model.KindSystem {
				author = model.System
			}
			evs = append(evs, d.event(&conv, author, dr, now))
		}
		if !picked && conv.Owner == "" {
			agent, picked = d.router.Pick(req.Department)
			if picked {
				d.setAgent(&conv, agent, now, &evs)
			}
		}
		// A relayed conversation waits for the upstream desk's agent, not
		// in the embedded queue.
		queue := !picked && conv.Owner == ""
		b := &store.Batch{Convs: []model.Conversation{conv}, Events: evs}
		// The visitor is written with every start, under its revision
		// check, even when unchanged: so the start and the expiry of an
		// idle anonymous visitor (store.Store.ForgetIdleVisitors) exclude
		// one another, whichever commits first.
		b.Visitors = append(b.Visitors, v)
		for _, m := range req.Maps {
			if m.Core == "" {
				m.Core = string(conv.ID)
			}
			b.Maps = append(b.Maps, m)
		}
		// Queue before the commit publishes, so that subscribers told of the
		// new conversation can already read its queue position.
		if queue {
			d.router.Enqueue(conv.ID, conv.Department, conv.CreatedAt)
		}
		if err := d.commitWith(ctx, b, conv, true, evs, req.Session); err != nil {
			if picked {
				d.router.Release(agent)
			} else {
				d.router.Dequeue(conv.ID)
			}
			return err
		}
		if queue {
			// An agent may have become available since Pick, and Run may
			// already have drained a queue that did not hold this one yet.
			d.Kick()
		}
		return nil
	}))
	return conv, evs, err
}

// setAgent assigns agent to c and appends the "agent joined" event.
func (d *Desk) setAgent(c *model.Conversation, agent model.AgentID, now time.Time, evs *[]model.Event) {
	a, _ := d.router.Agent(agent)
	c.Agent, c.State, c.AssignedAt = agent, model.StateOpen, now
	*evs = append(*evs, d.event(c, model.System, sysDraft(model.SysAssigned, a.Name+" joined the chat",
		map[string]string{"agent_id": string(a.ID), "agent_name": a.Name}), now))
}

// openConversation returns the visitor's open conversation, if any. Since
// Start refuses a second one, only the newest can be open.
func (d *Desk) openConversation(ctx context.Context, v model.VisitorID) (model.Conversation, bool, error) {
	ids, err := d.st.VisitorConversations(ctx, v)
	if err != nil || len(ids) == 0 {
		return model.Conversation{}, false, err
	}
	c, err := d.st.Conversation(ctx, ids[len(ids)-1])
	if err != nil {
		return model.Conversation{}, false, fmt.Errorf("conversation: %w", err)
	}
	return c, c.Active(), nil
}

// OpenConversation returns the visitor's open conversation, if any.
func (d *Desk) OpenConversation(ctx context.Context, v model.VisitorID) (model.Conversation, bool, error) {
	return d.openConversation(ctx, v)
}

func errNotFound(err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return ErrNotFound
	}
	return err
}

// PostRequest appends an event to a conversation.
type PostRequest struct {
	Conv   model.ConvID
	Author model.Author
	Draft  Draft
	// IdemSystem and IdemKey make the post idempotent: a second post with
	// the same pair returns the first one's event.
	IdemSystem, IdemKey string
	Session             string
	// Maps are committed with the event; an empty Core means the new
	// event's id (a connector binding an upstream message id).
	Maps []store.Mapping
	// Outbox are deliveries committed with the event (an e-mail the event
	// records), so that they exist exactly when it does.
	Outbox []store.OutboxRow
	// AfterClose lets a system author append to a closed conversation: a
	// record about it (a transcript sent), as Rocket.Chat saves such
	// system messages in closed rooms. Ignored for other authors.
	AfterClose bool
}

// Post appends an event. It returns the event and whether it already
// existed (an idempotent retry).
func (d *Desk) Post(ctx context.Context, req PostRequest) (model.Event, bool, error) {
	return d.post(ctx, req, nil)
}

// PostRead is Post of a conversation the caller has just read to find it
// (conv, whose ID is req.Conv; e.g. a customer's newest thread, read under
// store.MayBeStale): the first attempt decides on that copy instead of
// reading the conversation again. The copy is worth what the attempt's own
// cached read is: the commit holds the conversation to conv's revision,
// so a copy that changed since (even between the caller's read and the
// conversation's actor) fails it with store.ErrStale and the attempt runs
// again on the store's copy; a refusal is decided on a fresh read. Post
// takes conv's slices and maps over: the caller must not change them. A
// copy with no revision (Rev 0) is ignored and the conversation read.
func (d *Desk) PostRead(ctx context.Context, req PostRequest, conv *model.Conversation) (model.Event, bool, error) {
	return d.post(ctx, req, conv)
}

func (d *Desk) post(ctx context.Context, req PostRequest, read *model.Conversation) (model.Event, bool, error) {
	if err := d.validate(&req.Draft); err != nil {
		return model.Event{}, false, err
	}
	if err := d.checkDraftProps(req.Author, req.Draft); err != nil {
		return model.Event{}, false, err
	}
	// A repeated idempotency key is found when the commit refuses it
	// (the key is unique in the store) or the command fails otherwise,
	// rather than by a read before every post: a retry is rare, a post
	// is not.
	if req.Author.Kind == model.AuthorVisitor && !ratelimit.Exempt(ctx) && !d.limits.Messages.Allow(req.Author.ID) {
		if req.IdemKey != "" {
			if e, ok, err := d.replay(ctx, req.IdemSystem, req.IdemKey, req.Conv, req.Author); ok || err != nil {
				return e, ok, err
			}
		}
		return model.Event{}, false, ErrRateLimited
	}
	p := &postCmd{d: d, req: req, cached: true}
	// A copy without a revision (a conversation built in memory, not read
	// from the store) would commit unconditionally and could collide on
	// the event's seq instead of failing as stale: it is never used.
	if read != nil && read.ID == req.Conv && read.Rev > 0 {
		// Copied into the command (read does not escape): no allocation.
		p.convs[0], p.read = *read, true
	}
	err := d.actors.Run(ctx, convKey(req.Conv), p)
	ev := p.ev
	if err != nil && req.IdemKey != "" {
		// The key was used before (the commit's conflict), or the post
		// failed for a reason a first post of the key would not have
		// met (the conversation closed since): the original event is the
		// answer either way.
		if e, ok, rerr := d.replay(ctx, req.IdemSystem, req.IdemKey, req.Conv, req.Author); ok || rerr != nil {
			return e, ok, rerr
		}
	}
	return ev, false, err
}

// postCmd is one Post on its conversation's actor: the request, what the
// attempt decided, and room for the batch, so that a message costs one
// allocation here rather than one per closure, slice and batch. It is
// never reused: the notice it publishes keeps its events.
type postCmd struct {
	d   *Desk
	req PostRequest
	ev  model.Event
	// cached: the attempt may read a cached copy of the conversation. A
	// decision to write is written back with c under its revision, so a
	// stale copy fails the commit (store.ErrStale) and the command runs
	// again on a fresh read; a refusal is only made on a fresh read
	// (refuse).
	cached bool
	// read: convs[0] holds the conversation as the caller read it
	// (PostRead), for the first attempt only.
	read bool

	batch  store.Batch
	convs  [1]model.Conversation
	evs    [1]model.Event // an agent taking a queued conversation adds one: rare, appended
	expect [1]store.Expect
	idems  [1]store.Idem
}

// Run runs attempts of the command (see onConv).
func (p *postCmd) Run(ctx context.Context) error { return p.d.retryStale(ctx, p.attempt) }

func (p *postCmd) refuse(err error) error {
	if p.cached {
		p.cached = false
		return fmt.Errorf("%w: refusal checked on a fresh read", store.ErrStale)
	}
	return err
}

// cachedRevs is a store that can tell, without a read, the revision of a
// conversation it has cached (store/bolt).
type cachedRevs interface {
	CachedConvRev(id model.ConvID) (uint64, bool)
}

// overtaken reports whether the store already holds a newer revision of
// the caller's copy c than c (a commit came between the caller's read and
// the conversation's actor): committing on c would fail as stale after a
// whole commit (queue wait and fsync) and run again, so the attempt reads
// the store's copy at once instead. In the customer 100 x 4 open loop
// near saturation nearly every visitor message met this (a visitor
// posting while the agent's answer to its previous message waited for
// its commit): ~28,000 stale retries in 8 s (docs/performance.md, round 8).
func (d *Desk) overtaken(c *model.Conversation) bool {
	cr, ok := d.st.(cachedRevs)
	if !ok {
		return false
	}
	rev, ok := cr.CachedConvRev(c.ID)
	return ok && rev != c.Rev
}

func (p *postCmd) attempt(ctx context.Context) error {
	d, req := p.d, &p.req
	rctx := ctx
	if p.cached {
		rctx = store.MayBeStale(ctx)
	}
	var c model.Conversation
	if p.read && !d.overtaken(&p.convs[0]) {
		c, p.read = p.convs[0], false
	} else {
		p.read = false
		var err error
		if c, err = d.st.Conversation(rctx, req.Conv); err != nil {
			return fmt.Errorf("conversation %s: %w", req.Conv, errNotFound(err))
		}
	}
	if !c.Active() && !(req.AfterClose && req.Author.Kind == model.AuthorSystem) {
		return p.refuse(ErrInactive)
	}
	now := d.Now()
	evs := p.evs[:0]
	expect := p.expect[:0]
	reserved := model.AgentID("")
	switch req.Author.Kind {
	case model.AuthorVisitor:
		if req.Author.ID != string(c.Visitor) {
			return p.refuse(ErrForbidden)
		}
		// The ban check relies on the visitor as read: the commit
		// holds it to that revision (store.Batch.Expect).
		v, err := d.st.Visitor(rctx, c.Visitor)
		if err != nil {
			return fmt.Errorf("visitor %s: %w", c.Visitor, err)
		}
		if v.Banned(now) {
			return p.refuse(ErrBanned)
		}
		expect = append(expect, store.Expect{Visitor: v.ID, Rev: v.Rev})
	case model.AuthorAgent:
		agent := model.AgentID(req.Author.ID)
		a, ok := d.router.Agent(agent)
		switch {
		case !ok:
			return ErrForbidden
		case c.State == model.StateQueued && a.Serves(c.Department) && c.Owner == "":
			// An agent answering a queued conversation takes it.
			d.router.Reserve(agent)
			reserved = agent
			d.setAgent(&c, agent, now, &evs)
		case c.Agent != agent && !c.HasMember(agent):
			return p.refuse(ErrForbidden)
		}
	case model.AuthorSystem:
	default:
		// As mayAct: an author of no known kind may not write.
		return ErrForbidden
	}
	p.ev = d.event(&c, req.Author, req.Draft, now)
	evs = append(evs, p.ev)
	p.convs[0] = c
	p.batch = store.Batch{Convs: p.convs[:], Events: evs, Expect: expect}
	b := &p.batch
	if req.IdemKey != "" {
		p.idems[0] = store.Idem{System: req.IdemSystem, Key: req.IdemKey, Conv: c.ID, Seq: p.ev.Seq}
		b.Idems = p.idems[:]
	}
	b.Outbox = append(b.Outbox, req.Outbox...)
	for _, m := range req.Maps {
		if m.Core == "" {
			m.Core = p.ev.ID
		}
		b.Maps = append(b.Maps, m)
	}
	if err := d.commit(ctx, b, c, evs, req.Session); err != nil {
		if reserved != "" {
			d.router.Release(reserved)
		}
		return err
	}
	if reserved != "" {
		d.router.Dequeue(c.ID)
	}
	return nil
}

// replay returns the event an idempotency key produced, if any. A key that
// produced an event in another conversation, or another author's event, is a
// client error: replaying it would hand one client another's event.
func (d *Desk) replay(ctx context.Context, system, key string, conv model.ConvID, author model.Author) (model.Event, bool, error) {
	idem, err := d.st.Idempotent(ctx, system, key)
	if errors.Is(err, store.ErrNotFound) {
		return model.Event{}, false, nil
	}
	if err != nil {
		return model.Event{}, false, fmt.Errorf("idempotency key: %w", err)
	}
	if idem.Conv != conv {
		return model.Event{}, false, fmt.Errorf("%w: id already used in another conversation", ErrInvalid)
	}
	evs, err := d.st.Events(ctx, idem.Conv, idem.Seq, 1)
	if err != nil || len(evs) == 0 {
		return model.Event{}, false, fmt.Errorf("event of idempotency key: %w", errors.Join(err, ErrNotFound))
	}
	if evs[0].Author.Kind != author.Kind || evs[0].Author.ID != author.ID {
		return model.Event{}, false, fmt.Errorf("%w: id already used by another author", ErrInvalid)
	}
	return evs[0], true, nil
}

// Close ends a conversation. by is who closed it; reason is free text kept
// in the closing event ("visitor left", "agent closed" ...).
func (d *Desk) Close(ctx context.Context, id model.ConvID, by model.Author, reason, session string) (model.Conversation, error) {
	var conv model.Conversation
	err := d.onConv(ctx, id, func(ctx context.Context) error {
		c, err := d.st.Conversation(ctx, id)
		if err != nil {
			return fmt.Errorf("conversation %s: %w", id, errNotFound(err))
		}
		conv = c
		if !c.Active() {
			return ErrInactive
		}
		if err := d.mayAct(c, by); err != nil {
			return err
		}
		now := d.Now()
		byCopy := by
		c.State, c.ClosedAt, c.ClosedBy = model.StateClosed, now, &byCopy
		vars := map[string]string{"by_kind": string(by.Kind), "by_id": by.ID}
		if reason != "" {
			vars["reason"] = reason
		}
		text := "Chat closed"
		if by.Name != "" {
			text = by.Name + " closed the chat"
		}
		evs := []model.Event{d.event(&c, model.System, sysDraft(model.SysClosed, text, vars), now)}
		if err := d.commit(ctx, &store.Batch{Convs: []model.Conversation{c}, Events: evs}, c, evs, session); err != nil {
			return err
		}
		conv = c
		if c.Agent != "" {
			d.router.Release(c.Agent)
		}
		d.router.Dequeue(c.ID)
		return nil
	})
	if err == nil {
		d.Kick()
	}
	return conv, err
}

// mayAct checks that an author may change a conversation: its visitor, its
// agent (or any agent of the department while it is queued), the system.
func (d *Desk) mayAct(c model.Conversation, by model.Author) error {
	switch by.Kind {
	case model.AuthorSystem:
		return nil
	case model.AuthorVisitor:
		if by.ID == string(c.Visitor) {
			return nil
		}
	case model.AuthorAgent:
		a, ok := d.router.Agent(model.AgentID(by.ID))
		if ok && (c.Agent == a.ID || (c.State == model.StateQueued && c.Owner == "" && a.Serves(c.Department))) {
			return nil
		}
	}
	return ErrForbidden
}

// Assign gives a queued (or another agent's) conversation to agent, even
// when routing would not pick it (manual assignment). session tags the
// notice (hub.Notice.Origin), so that the requesting connection's pushes
// of it follow its response.
func (d *Desk) Assign(ctx context.Context, id model.ConvID, agent model.AgentID, by model.Author, session string) error {
	if _, ok := d.router.Agent(agent); !ok {
		return fmt.Errorf("agent %s: %w", agent, ErrNotFound)
	}
	err := d.onConv(ctx, id, func(ctx context.Context) error {
		c, err := d.st.Conversation(ctx, id)
		if err != nil {
			return fmt.Errorf("conversation %s: %w", id, errNotFound(err))
		}
		if !c.Active() {
			return ErrInactive
		}
		if c.Agent == agent {
			return nil
		}
		d.router.Reserve(agent)
		if err := d.assignLocked(ctx, &c, agent, &by, session); err != nil {
			d.router.Release(agent)
			return err
		}
		return nil
	})
	if err == nil {
		// The previous agent, if any, has one conversation fewer and may
		// take a queued one.
		d.Kick()
	}
	return err
}

// assignLocked runs on the conversation's actor with agent already
// reserved. A conversation that had another agent becomes a transfer.
func (d *Desk) assignLocked(ctx context.Context, c *model.Conversation, agent model.AgentID, by *model.Author, session string) error {
	now := d.Now()
	prev := c.Agent
	var evs []model.Event
	if prev != "" {
		vars := map[string]string{"from_agent": string(prev), "to_agent": string(agent)}
		if by != nil {
			vars["by_kind"], vars["by_id"] = string(by.Kind), by.ID
		}
		evs = append(evs, d.event(c, model.System, sysDraft(model.SysTransferred, "Chat transferred", vars), now))
	}
	d.setAgent(c, agent, now, &evs)
	if err := d.commit(ctx, &store.Batch{Convs: []model.Conversation{*c}, Events: evs}, *c, evs, session); err != nil {
		return err
	}
	if prev != "" {
		d.router.Release(prev)
	}
	d.router.Dequeue(c.ID)
	return nil
}

// Transfer moves a conversation to another department: routing picks an
// agent there, or the conversation waits in that department's queue.
// session tags the notice as Assign's does.
func (d *Desk) Transfer(ctx context.Context, id model.ConvID, dept model.DeptID, by model.Author, session string) error {
	if _, ok := d.departs[dept]; !ok && dept != "" {
		return fmt.Errorf("%w: unknown department %q", ErrInvalid, dept)
	}
	err := d.onConv(ctx, id, d.routed(func(ctx context.Context) error {
		c, err := d.st.Conversation(ctx, id)
		if err != nil {
			return fmt.Errorf("conversation %s: %w", id, errNotFound(err))
		}
		if !c.Active() {
			return ErrInactive
		}
		if err := d.mayAct(c, by); err != nil {
			return err
		}
		if c.Owner != "" {
			return fmt.Errorf("%w: a relayed conversation is transferred by its upstream desk", ErrInvalid)
		}
		now := d.Now()
		prev, prevDept, wasQueued := c.Agent, c.Department, c.State == model.StateQueued
		vars := map[string]string{"from_department": string(c.Department), "to_department": string(dept),
			"from_agent": string(prev), "by_kind": string(by.Kind), "by_id": by.ID}
		c.Department = dept
		evs := []model.Event{d.event(&c, model.System, sysDraft(model.SysTransferred, "Chat transferred", vars), now)}
		agent, picked := d.router.Pick(dept)
		if picked && agent == prev {
			// Keep serving it; give back the extra reservation.
			d.router.Release(agent)
		} else if picked {
			d.setAgent(&c, agent, now, &evs)
		} else {
			c.Agent, c.State = "", model.StateQueued
		}
		// Move the queue entry before the commit publishes, so that
		// subscribers told of the transfer read the new queue position.
		// Dequeue first: Enqueue ignores a conversation already queued,
		// which would leave it under its old department.
		d.router.Dequeue(c.ID)
		if !picked {
			d.router.Enqueue(c.ID, dept, now)
		}
		if err := d.commit(ctx, &store.Batch{Convs: []model.Conversation{c}, Events: evs}, c, evs, session); err != nil {
			if picked && agent != prev {
				d.router.Release(agent)
			}
			d.router.Dequeue(c.ID)
			if wasQueued {
				d.router.Enqueue(c.ID, prevDept, c.CreatedAt)
			}
			return err
		}
		if prev != "" && (!picked || agent != prev) {
			d.router.Release(prev)
		}
		return nil
	}))
	if err == nil {
		d.Kick()
	}
	return err
}

// Typing publishes an ephemeral typing indicator; nothing is stored.
func (d *Desk) Typing(ctx context.Context, id model.ConvID, by model.Author, on bool, text, session string) error {
	c, err := d.st.Conversation(ctx, id)
	if err != nil {
		return fmt.Errorf("conversation %s: %w", id, errNotFound(err))
	}
	if !c.Active() {
		return ErrInactive
	}
	if err := d.mayAct(c, by); err != nil {
		return err
	}
	if len(text) > d.limits.MaxText {
		return ErrTooLarge
	}
	d.bus.Publish(hub.Notice{Conv: c, Typing: &hub.Typing{Author: by, On: on, Text: text}, Origin: session})
	return nil
}

// AgentConnected records an agent session going up or down, and routes
// queued conversations when the agent becomes available.
func (d *Desk) AgentConnected(id model.AgentID, up bool) {
	delta := -1
	if up {
		delta = 1
	}
	if d.coord != nil {
		d.coord.AgentConnected(id, up)
	}
	if d.router.Connect(id, delta) {
		d.Kick()
	}
}

// SetAccepting sets an agent's routing status.
func (d *Desk) SetAccepting(id model.AgentID, accepting bool) {
	if d.coord != nil {
		d.coord.SetAccepting(id, accepting)
	}
	if d.router.SetAccepting(id, accepting) {
		d.Kick()
	}
}

// --- visitor profile, edits, deletions ----------------------------------------

// VisitorUpdate changes a visitor's profile; nil fields stay as they are.
// Fields are merged: a key with an empty value is removed.
type VisitorUpdate struct {
	Name, Email, Phone *string
	Department         *model.DeptID
	Fields             map[string]string
}

// Limits on visitor profiles: a profile is small, client-written data.
const (
	maxProfileValue = 1024
	maxFields       = 100
)

// UpdateVisitor applies upd to the visitor and returns the result.
func (d *Desk) UpdateVisitor(ctx context.Context, id model.VisitorID, upd VisitorUpdate) (model.Visitor, error) {
	for _, p := range []*string{upd.Name, upd.Email, upd.Phone} {
		if p != nil && (len(*p) > maxProfileValue || !utf8.ValidString(*p)) {
			return model.Visitor{}, fmt.Errorf("%w: profile value too long or not UTF-8", ErrInvalid)
		}
	}
	if upd.Department != nil && *upd.Department != "" {
		if _, ok := d.departs[*upd.Department]; !ok {
			return model.Visitor{}, fmt.Errorf("%w: unknown department %q", ErrInvalid, *upd.Department)
		}
	}
	for k, v := range upd.Fields {
		if k == "" || len(k) > 256 || len(v) > maxProfileValue || !utf8.ValidString(k+v) {
			return model.Visitor{}, fmt.Errorf("%w: custom field %.40q too long or not UTF-8", ErrInvalid, k)
		}
	}
	var v model.Visitor
	err := d.onVisitor(ctx, id, func(ctx context.Context) error {
		var err error
		v, err = d.st.Visitor(ctx, id)
		if err != nil {
			return fmt.Errorf("visitor %s: %w", id, errNotFound(err))
		}
		set := func(dst *string, src *string) {
			if src != nil {
				*dst = *src
			}
		}
		set(&v.Name, upd.Name)
		set(&v.Email, upd.Email)
		set(&v.Phone, upd.Phone)
		if upd.Department != nil {
			v.Department = *upd.Department
		}
		if len(upd.Fields) > 0 {
			fields := make(map[string]string, len(v.Fields)+len(upd.Fields))
			for k, val := range v.Fields {
				fields[k] = val
			}
			for k, val := range upd.Fields {
				if val == "" {
					delete(fields, k)
				} else {
					fields[k] = val
				}
			}
			if len(fields) > maxFields {
				return fmt.Errorf("%w: more than %d custom fields", ErrInvalid, maxFields)
			}
			v.Fields = fields
		}
		v.UpdatedAt = d.Now()
		return d.st.Commit(context.WithoutCancel(ctx), &store.Batch{Visitors: []model.Visitor{v}})
	})
	return v, err
}

// EditEvent replaces the text of a message. Only its author may edit it,
// and only while the conversation is open.
func (d *Desk) EditEvent(ctx context.Context, conv model.ConvID, seq uint64, by model.Author, text, session string) (model.Event, error) {
	dr := Draft{Kind: model.KindMessage, Text: text}
	if err := d.validate(&dr); err != nil {
		return model.Event{}, err
	}
	return d.changeEvent(ctx, conv, seq, by, session, func(e *model.Event, now time.Time) {
		e.Text, e.EditedAt = text, now
		byCopy := by
		e.EditedBy = &byCopy
	})
}

// DeleteEvent marks a message deleted and drops its content. Only its
// author may delete it, and only while the conversation is open.
func (d *Desk) DeleteEvent(ctx context.Context, conv model.ConvID, seq uint64, by model.Author, session string) (model.Event, error) {
	return d.changeEvent(ctx, conv, seq, by, session, func(e *model.Event, now time.Time) {
		e.Deleted, e.Text, e.File, e.Form, e.Custom = true, "", nil, nil, nil
		e.EditedAt = now
		byCopy := by
		e.EditedBy = &byCopy
	})
}

func (d *Desk) changeEvent(ctx context.Context, conv model.ConvID, seq uint64, by model.Author, session string,
	change func(*model.Event, time.Time)) (model.Event, error) {
	var ev model.Event
	err := d.onConv(ctx, conv, func(ctx context.Context) error {
		c, err := d.st.Conversation(ctx, conv)
		if err != nil {
			return fmt.Errorf("conversation %s: %w", conv, errNotFound(err))
		}
		evs, err := d.st.Events(ctx, conv, seq, 1)
		if err != nil {
			return fmt.Errorf("event: %w", err)
		}
		if len(evs) == 0 || evs[0].Seq != seq {
			return fmt.Errorf("event %d: %w", seq, ErrNotFound)
		}
		ev = evs[0]
		switch {
		case !c.Active():
			return ErrInactive
		case ev.Kind != model.KindMessage || ev.Deleted:
			return fmt.Errorf("%w: only messages can be changed", ErrForbidden)
		case ev.Author.Kind != by.Kind || ev.Author.ID != by.ID:
			return fmt.Errorf("%w: only the author may change a message", ErrForbidden)
		}
		change(&ev, d.Now())
		// The conversation record rides along unchanged: its revision
		// check orders this change after any other node's change of the
		// same conversation (an edit racing a deletion elsewhere).
		return d.commit(ctx, &store.Batch{Convs: []model.Conversation{c}, Updates: []model.Event{ev}}, c, nil, session)
	})
	return ev, err
}
