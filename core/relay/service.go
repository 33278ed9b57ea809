package relay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"chatgate/core/desk"
	"chatgate/core/model"
	"chatgate/core/outbox"
	"chatgate/store"
)

// Config configures the relay.
type Config struct {
	Routes []Route
	// MinBackoff and MaxBackoff bound the wait between attempts of a
	// delivery the upstream desk did not take.
	MinBackoff, MaxBackoff time.Duration
	// PollInterval is how often due retries are looked for.
	PollInterval time.Duration
	// Concurrency is how many conversations of one connector are
	// delivered at once.
	Concurrency int
	// OnDelivery, if set, counts delivery outcomes (delivered, retry,
	// exhausted) per connector.
	OnDelivery func(connector, outcome string)
	// OnInbound, if set, counts what the upstream desks said, per
	// connector: posted (new), duplicate (seen before: a resync or an
	// echo of our own) and ignored (a mirror's agents, never shown to the
	// visitor).
	OnInbound func(connector, outcome string)
	Now       func() time.Time
	// Exclusive, if set (several nodes), runs a connector only while this
	// node holds the lease name, so that each upstream session (and its
	// delivery loop) lives on one node of the deployment at a time and
	// another node takes it over when the holder dies. fn's context ends
	// when the lease is lost. Nil: every connector runs here.
	Exclusive func(ctx context.Context, name string, fn func(ctx context.Context))
}

// Service owns the connectors: it routes new conversations, writes their
// outbox rows, delivers them and takes the upstream desks' answers in.
type Service struct {
	cfg    Config
	desk   *desk.Desk
	st     store.Store
	log    zerolog.Logger
	conns  map[string]Connector
	order  []string
	routes map[model.DeptID]Route
	kicks  map[string]chan struct{}
	sinks  map[string]*Sink
	// agentsMu serialises the registration of upstream agents.
	agentsMu sync.Mutex
	// typingSlots bounds the typing indicators in flight.
	typingSlots chan struct{}
}

// New checks the routes against the connectors and returns the service.
// Wire Route and Hook into the desk's options, then call Load and Run.
func New(cfg Config, conns []Connector, log zerolog.Logger) (*Service, error) {
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = 250 * time.Millisecond
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		cfg.MaxBackoff = max(cfg.MinBackoff, 5*time.Second)
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = time.Second
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 16
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Service{cfg: cfg, log: log, conns: make(map[string]Connector), routes: make(map[model.DeptID]Route),
		kicks: make(map[string]chan struct{}), sinks: make(map[string]*Sink), typingSlots: make(chan struct{}, 64)}
	for _, c := range conns {
		if err := validName(c.Name()); err != nil {
			return nil, err
		}
		if _, dup := s.conns[c.Name()]; dup {
			return nil, fmt.Errorf("relay: two connectors named %q", c.Name())
		}
		s.conns[c.Name()] = c
		s.order = append(s.order, c.Name())
		s.kicks[c.Name()] = make(chan struct{}, 1)
	}
	for _, r := range cfg.Routes {
		if _, dup := s.routes[r.Department]; dup {
			return nil, fmt.Errorf("relay: two routes for department %q", r.Department)
		}
		for _, n := range append([]string{r.Upstream}, r.Mirrors...) {
			if _, ok := s.conns[n]; !ok && n != "" {
				return nil, fmt.Errorf("relay: route for department %q names unknown connector %q", r.Department, n)
			}
		}
		for _, m := range r.Mirrors {
			if m == r.Upstream {
				return nil, fmt.Errorf("relay: route for department %q mirrors to its own upstream %q", r.Department, m)
			}
		}
		s.routes[r.Department] = r
	}
	return s, nil
}

// Attach gives the service its desk (built with Route and Hook in its
// options, so it comes after New).
func (s *Service) Attach(d *desk.Desk) {
	s.desk, s.st = d, d.Store()
	for _, n := range s.order {
		s.sinks[n] = &Sink{s: s, name: n}
	}
}

// Route is the desk's Options.Route: the department's route, else the
// default route.
func (s *Service) Route(dept model.DeptID) (string, []string) {
	r, ok := s.routes[dept]
	if !ok {
		r = s.routes[""]
	}
	return r.Upstream, r.Mirrors
}

// Connector returns a connector by name.
func (s *Service) Connector(name string) (Connector, bool) {
	c, ok := s.conns[name]
	return c, ok
}

// Sink returns a connector's sink (after Attach); tests of connectors use
// it to drive them without Run.
func (s *Service) Sink(name string) *Sink { return s.sinks[name] }

// Names lists the connectors in configuration order.
func (s *Service) Names() []string { return s.order }

// Hook is the desk's Options.Relay: it adds to b the outbox rows a change
// of a relayed conversation owes each connector, and binds the ids our own
// messages will carry upstream (the event id itself), so that their echo
// is recognised.
func (s *Service) Hook(b *store.Batch, c model.Conversation, opened bool, evs []model.Event) {
	add := func(conn string, body rowBody) {
		b.Outbox = append(b.Outbox, store.OutboxRow{ID: model.NewID(), Target: target(conn), Conv: c.ID,
			Payload: body.encode(), CreatedAt: s.cfg.Now().UTC()})
	}
	for i, conn := range append([]string{c.Owner}, c.Mirrors...) {
		if conn == "" {
			continue
		}
		mirror := i > 0
		if opened {
			add(conn, rowBody{Op: OpOpen, Mirror: mirror})
		}
		for _, e := range evs {
			switch op := s.owed(conn, mirror, c, e); op {
			case OpEvent:
				add(conn, rowBody{Op: OpEvent, Seq: e.Seq, Mirror: mirror})
				b.Maps = append(b.Maps, store.Mapping{MapKey: store.MapKey{System: System(conn), Kind: KindEvent, Foreign: e.ID}, Core: e.ID})
			case OpClose:
				add(conn, rowBody{Op: OpClose, Mirror: mirror})
			}
		}
	}
}

// owed says what event e owes connector conn: the visitor's messages go to
// every connector; agents' answers only to mirrors (the owner wrote them);
// a close, unless this connector's desk closed it.
func (s *Service) owed(conn string, mirror bool, c model.Conversation, e model.Event) Op {
	if e.Visibility == model.VisibleAgents || e.Deleted {
		return ""
	}
	switch e.Kind {
	case model.KindSystem:
		if e.Subtype != model.SysClosed {
			return ""
		}
		by := e.Vars["by_id"]
		if by == System(conn) || strings.HasPrefix(by, conn+":") {
			return "" // the upstream desk closed it: it knows
		}
		return OpClose
	case model.KindMessage, model.KindFile, model.KindForm, model.KindCustom, model.KindRich:
	default:
		return ""
	}
	switch e.Author.Kind {
	case model.AuthorVisitor:
		return OpEvent
	case model.AuthorAgent:
		if mirror {
			return OpEvent
		}
	}
	return ""
}

// Load makes the upstream agents of open relayed conversations known to the
// router again (their names are stored at their first appearance). Call
// before serving.
func (s *Service) Load(ctx context.Context) error {
	router := s.desk.Router()
	var missing []model.AgentID
	err := s.st.Conversations(ctx, func(c model.Conversation) bool {
		if c.Owner != "" && c.Agent != "" {
			if _, ok := router.Agent(c.Agent); !ok {
				missing = append(missing, c.Agent)
			}
		}
		return true
	})
	if err != nil {
		return fmt.Errorf("relay: load conversations: %w", err)
	}
	for _, id := range missing {
		raw, err := s.st.Meta(ctx, agentMetaKey(id))
		if err != nil {
			continue // an agent we never stored: shown by id
		}
		var a model.Agent
		if json.Unmarshal(raw, &a) == nil {
			router.AddRemote(a)
		}
	}
	return nil
}

func agentMetaKey(id model.AgentID) string { return "relay/agent/" + string(id) }

// Run runs every connector and its delivery loop until ctx ends.
func (s *Service) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, n := range s.order {
		c := s.conns[n]
		sink := s.sinks[n]
		run := func(ctx context.Context) {
			var cwg sync.WaitGroup
			cwg.Go(func() {
				if err := c.Run(ctx, sink); err != nil && ctx.Err() == nil {
					s.log.Error().Err(err).Str("connector", n).Msg("relay connector stopped")
				}
			})
			cwg.Go(func() { s.deliverLoop(ctx, n) })
			cwg.Wait()
		}
		if s.cfg.Exclusive != nil {
			wg.Go(func() { s.cfg.Exclusive(ctx, "relay."+n, run) })
		} else {
			wg.Go(func() { run(ctx) })
		}
	}
	wg.Go(func() { s.follow(ctx) })
	wg.Wait()
	return nil
}

// Kick tells a connector's delivery loop that rows may be due.
func (s *Service) Kick(conn string) {
	if ch, ok := s.kicks[conn]; ok {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// follow kicks the delivery loops after every committed change of a relayed
// conversation (its rows are committed before it is published).
func (s *Service) follow(ctx context.Context) {
	for ctx.Err() == nil {
		sub := s.desk.Bus().SubscribeDesk(1024)
	read:
		for {
			select {
			case <-ctx.Done():
				sub.Close()
				return
			case <-sub.Done():
				for _, n := range s.order {
					s.Kick(n)
				}
				break read
			case n := <-sub.C():
				if n.Typing != nil && n.Typing.Author.Kind == model.AuthorVisitor && n.Conv.Owner != "" {
					s.typing(ctx, n.Conv, n.Typing.On)
					continue
				}
				if len(n.Events) == 0 || (n.Conv.Owner == "" && len(n.Conv.Mirrors) == 0) {
					continue
				}
				s.Kick(n.Conv.Owner)
				for _, m := range n.Conv.Mirrors {
					s.Kick(m)
				}
			}
		}
	}
}

// typing hands the visitor's typing indicator to the owner, if it can show
// it, off the follow loop and bounded: when typingSlots are all taken the
// indicator is dropped (the next keystroke sends another).
func (s *Service) typing(ctx context.Context, c model.Conversation, on bool) {
	t, ok := s.conns[c.Owner].(Typer)
	if !ok {
		return
	}
	select {
	case s.typingSlots <- struct{}{}:
	default:
		return
	}
	go func() {
		defer func() { <-s.typingSlots }()
		tctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if err := t.Typing(tctx, s.sinks[c.Owner], c, on); err != nil && ctx.Err() == nil {
			s.log.Debug().Err(err).Str("connector", c.Owner).Msg("relay typing indicator")
		}
	}()
}

// deliverLoop hands the connector's due rows to up to Concurrency
// workers, one queue (conversation) per worker at a time, in order.
func (s *Service) deliverLoop(ctx context.Context, conn string) {
	outbox.Dispatcher{
		Store: s.st, Prefix: target(conn), Concurrency: s.cfg.Concurrency, PerQueue: 64,
		PollInterval: s.cfg.PollInterval, Now: s.cfg.Now, Kick: s.kicks[conn],
		Deliver: func(ctx context.Context, rows []store.OutboxRow) { s.deliverQueue(ctx, conn, rows) },
		OnReadError: func(err error) {
			s.log.Warn().Err(err).Str("connector", conn).Msg("relay: read due deliveries")
		},
	}.Run(ctx)
}

// deliverQueue delivers rows (one queue, in order) until one is not
// taken. Taken rows are recorded in one commit, before anything else is
// recorded about the queue (a retry or an exhaustion of a later row), so
// the queue's order holds in the store too. A crash before that commit
// only means the upstream sees those rows again: Deliver is idempotent.
func (s *Service) deliverQueue(ctx context.Context, conn string, rows []store.OutboxRow) {
	var taken []store.OutboxRow
	flush := func() bool {
		if len(taken) == 0 {
			return true
		}
		// Not cut short by a shutdown: rows the upstream took but not
		// marked would only go again, but why send them twice.
		err := s.st.OutboxDelivered(context.WithoutCancel(ctx), taken...)
		if err != nil {
			s.log.Warn().Err(err).Str("connector", conn).Int("rows", len(taken)).Msg("relay: delivered but not recorded")
			return false
		}
		for range taken {
			s.report(conn, "delivered")
		}
		taken = taken[:0]
		return true
	}
	defer flush()
	for _, r := range rows {
		if ctx.Err() != nil {
			return
		}
		d, err := s.resolve(ctx, r)
		if err == nil {
			err = s.conns[conn].Deliver(ctx, s.sinks[conn], d)
		}
		if err == nil {
			taken = append(taken, r)
			continue
		}
		if !flush() || !s.failed(ctx, conn, r, err) {
			return
		}
	}
}

// failed records a failed attempt at r and reports whether the queue may
// go on: after an exhaustion (a permanent failure, kept visible), not
// after a failure to be retried (order is kept).
func (s *Service) failed(ctx context.Context, conn string, r store.OutboxRow, err error) bool {
	wctx := context.WithoutCancel(ctx)
	if errors.Is(err, ErrPermanent) {
		r.LastError, r.NextAt = clip(err.Error()), s.cfg.Now().UTC()
		if err := s.st.OutboxExhaust(wctx, r); err != nil {
			s.log.Warn().Err(err).Str("connector", conn).Str("delivery", r.ID).Msg("relay: record exhausted delivery")
			return false
		}
		s.log.Warn().Str("connector", conn).Str("delivery", r.ID).Str("conv", string(r.Conv)).Str("error", r.LastError).
			Msg("relay delivery failed for good; kept as exhausted")
		s.report(conn, "exhausted")
		return true
	}
	if ctx.Err() != nil {
		return false // shutting down: the row stays as it was
	}
	r.Attempts++
	r.LastError = clip(err.Error())
	r.NextAt = s.cfg.Now().UTC().Add(s.backoff(r.Attempts))
	if err := s.st.OutboxRetry(wctx, r); err != nil {
		s.log.Warn().Err(err).Str("connector", conn).Str("delivery", r.ID).Msg("relay: record failed attempt")
		return false
	}
	s.log.Info().Str("connector", conn).Str("delivery", r.ID).Int("attempts", r.Attempts).Str("error", r.LastError).
		Msg("relay delivery failed; will retry")
	s.report(conn, "retry")
	return false
}

func (s *Service) report(conn, outcome string) {
	if s.cfg.OnDelivery != nil {
		s.cfg.OnDelivery(conn, outcome)
	}
}

func (s *Service) inbound(conn, outcome string) {
	if s.cfg.OnInbound != nil {
		s.cfg.OnInbound(conn, outcome)
	}
}

// backoff is MinBackoff·2^(n-1) capped at MaxBackoff, drawn from [d/2, d].
func (s *Service) backoff(n int) time.Duration {
	d := s.cfg.MinBackoff
	for i := 1; i < n && d < s.cfg.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, s.cfg.MaxBackoff)
	return d/2 + time.Duration(rand.Int64N(int64(d-d/2)+1))
}

// resolve reads what a row needs from the store.
func (s *Service) resolve(ctx context.Context, r store.OutboxRow) (Delivery, error) {
	var body rowBody
	if err := json.Unmarshal(r.Payload, &body); err != nil {
		return Delivery{}, fmt.Errorf("%w: outbox row is not a relay delivery", ErrPermanent)
	}
	c, err := s.st.Conversation(ctx, r.Conv)
	if err != nil {
		return Delivery{}, fmt.Errorf("conversation %s: %w", r.Conv, err)
	}
	v, err := s.st.Visitor(ctx, c.Visitor)
	if err != nil {
		return Delivery{}, fmt.Errorf("visitor %s: %w", c.Visitor, err)
	}
	d := Delivery{ID: r.ID, Op: body.Op, Conv: c, Visitor: v, Mirror: body.Mirror}
	switch body.Op {
	case OpOpen, OpClose:
	case OpEvent:
		evs, err := s.st.Events(ctx, r.Conv, body.Seq, 1)
		if err != nil {
			return Delivery{}, fmt.Errorf("event %d: %w", body.Seq, err)
		}
		if len(evs) == 0 || evs[0].Seq != body.Seq {
			return Delivery{}, fmt.Errorf("%w: event %d of %s is missing", ErrPermanent, body.Seq, r.Conv)
		}
		d.Event = evs[0]
		if d.Event.Author.Kind == model.AuthorAgent {
			d.AgentName = d.Event.Author.Name
			if a, ok := s.desk.Router().Agent(model.AgentID(d.Event.Author.ID)); ok && d.AgentName == "" {
				d.AgentName = a.Name
			}
		}
	default:
		return Delivery{}, fmt.Errorf("%w: unknown relay op %q", ErrPermanent, body.Op)
	}
	return d, nil
}

func clip(s string) string {
	if len(s) > 512 {
		s = strings.ToValidUTF8(s[:512], "")
	}
	return s
}

// Statuses reports every connector's health and queue depth.
func (s *Service) Statuses(ctx context.Context) map[string]ConnectorState {
	out := make(map[string]ConnectorState, len(s.order))
	for _, n := range s.order {
		st := ConnectorState{Status: s.conns[n].Status()}
		// Bounded, as readiness probes call it: a backlog beyond the
		// bound shows as the bound.
		if rows, err := s.st.OutboxDue(ctx, target(n), s.cfg.Now().Add(100*365*24*time.Hour), 1000, 100); err == nil {
			st.Queued = len(rows)
		}
		out[n] = st
	}
	return out
}

// ConnectorState is a connector's health plus its outbox depth.
type ConnectorState struct {
	Status
	// Queued counts deliveries not yet taken by the upstream desk (up to
	// 100 per conversation of 1,000 conversations).
	Queued int `json:"queued"`
}
