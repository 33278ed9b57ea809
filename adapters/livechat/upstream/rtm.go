package upstream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"chatgate/adapters/livechat/wire"
	"chatgate/core/model"
	"chatgate/core/relay"
)

// maxAnswer bounds what is read of an answer or a frame.
const maxAnswer = 8 << 20

// errEnded: the follower stopped (its thread closed, or shutdown).
var errEnded = errors.New("livechat: chat no longer followed")

// rtm is one customer RTM socket. Requests come from deliveries, the
// pinger and resyncs at once, so writes are serialised; answers are
// matched to requests by request_id.
type rtm struct {
	ws     *websocket.Conn
	wmu    sync.Mutex
	nextID atomic.Uint64
	wait   time.Duration

	pmu     sync.Mutex
	pending map[string]chan rtmFrame
	err     error
	dead    chan struct{}
}

// rtmFrame is a server frame (§2.2): a response or a push.
type rtmFrame struct {
	RequestID string          `json:"request_id"`
	Action    string          `json:"action"`
	Type      string          `json:"type"`
	Success   bool            `json:"success"`
	Payload   json.RawMessage `json:"payload"`
}

func (r *rtm) write(v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	r.wmu.Lock()
	defer r.wmu.Unlock()
	_ = r.ws.SetWriteDeadline(time.Now().Add(r.wait))
	return r.ws.WriteMessage(websocket.TextMessage, raw)
}

// call sends an action and decodes its response payload into out. A
// refusal comes back as *wire.Error.
func (r *rtm) call(ctx context.Context, action string, payload, out any) error {
	id := "cg" + strconv.FormatUint(r.nextID.Add(1), 36)
	ch := make(chan rtmFrame, 1)
	r.pmu.Lock()
	if r.err != nil {
		r.pmu.Unlock()
		return r.err
	}
	r.pending[id] = ch
	r.pmu.Unlock()
	defer func() {
		r.pmu.Lock()
		delete(r.pending, id)
		r.pmu.Unlock()
	}()
	if payload == nil {
		payload = map[string]any{}
	}
	if err := r.write(map[string]any{"request_id": id, "action": action, "payload": payload}); err != nil {
		return fmt.Errorf("%s: %w", action, err)
	}
	t := time.NewTimer(r.wait)
	defer t.Stop()
	select {
	case f := <-ch:
		if !f.Success {
			var body struct {
				Error wire.Error `json:"error"`
			}
			if json.Unmarshal(f.Payload, &body) != nil || body.Error.Type == "" {
				return fmt.Errorf("%s: refused without an error", action)
			}
			return &body.Error
		}
		if out != nil && len(f.Payload) > 0 {
			if err := json.Unmarshal(f.Payload, out); err != nil {
				return fmt.Errorf("%s: decode answer: %w", action, err)
			}
		}
		return nil
	case <-r.dead:
		return fmt.Errorf("%s: %w", action, r.failure())
	case <-t.C:
		return fmt.Errorf("%s: no answer in %s", action, r.wait)
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (r *rtm) answer(f rtmFrame) {
	r.pmu.Lock()
	ch, ok := r.pending[f.RequestID]
	r.pmu.Unlock()
	if ok {
		select {
		case ch <- f:
		default:
		}
	}
}

// fail ends every pending and future call with err.
func (r *rtm) fail(err error) {
	r.pmu.Lock()
	defer r.pmu.Unlock()
	if r.err == nil {
		r.err = fmt.Errorf("socket closed: %w", err)
		close(r.dead)
	}
}

func (r *rtm) failure() error {
	r.pmu.Lock()
	defer r.pmu.Unlock()
	return r.err
}

// follower keeps one relayed conversation's customer socket: logged in as
// the visitor's customer, resynced after every connect, reconnecting with
// backoff until its thread closes or the connector stops.
type follower struct {
	c       *Connector
	conv    model.ConvID
	visitor model.VisitorID
	cancel  context.CancelFunc
	done    chan struct{}
	kick    chan struct{}

	mu      sync.Mutex
	profile *model.Visitor
	chat    string
	thread  string
	live    *rtm
	// ready: logged in and resynced; stale: a send went unanswered, so
	// the thread must be read again before the next one.
	ready, stale bool
	// unsureN counts unanswered sends; a resync clears stale only if it
	// started after the last of them.
	unsureN uint64
	// changed is closed (and replaced) whenever the state changes.
	changed chan struct{}
	ended   bool
	me      string
	agents  map[string]relay.Agent
	// custom holds the custom_ids of our events seen in the thread.
	custom map[string]bool
	// syncing: a resync is under way, so the reader holds pushes (held,
	// in arrival order) for after it. Applied at once, a push could
	// overtake the events the resync is about to apply (those missed
	// while the socket was down): the visitor would see answers out of
	// order (seen on a relay connector taken over by another node).
	syncing bool
	held    []rtmFrame
}

// followerFor returns the conversation's follower, starting it if needed.
// It waits for Run: followers live in Run's context.
func (c *Connector) followerFor(ctx context.Context, conv model.Conversation, v *model.Visitor) (*follower, error) {
	select {
	case <-c.started:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if f, ok := c.follows[conv.ID]; ok {
		if v != nil {
			f.mu.Lock()
			if f.profile == nil {
				f.profile = v
			}
			f.mu.Unlock()
		}
		return f, nil
	}
	if c.stopped || c.runCtx.Err() != nil {
		return nil, fmt.Errorf("livechat connector stopping: %w", context.Canceled)
	}
	fctx, cancel := context.WithCancel(c.runCtx)
	f := &follower{c: c, conv: conv.ID, visitor: conv.Visitor, cancel: cancel, done: make(chan struct{}),
		kick: make(chan struct{}, 1), profile: v, changed: make(chan struct{}),
		agents: make(map[string]relay.Agent), custom: make(map[string]bool)}
	c.follows[conv.ID] = f
	c.wg.Go(func() { f.run(fctx) })
	return f, nil
}

// unfollow stops following a conversation.
func (c *Connector) unfollow(conv model.ConvID) {
	c.mu.Lock()
	f := c.follows[conv]
	c.mu.Unlock()
	if f != nil {
		f.end()
	}
}

// end stops the follower for good (its thread is closed).
func (f *follower) end() {
	f.mu.Lock()
	f.ended = true
	f.mu.Unlock()
	f.cancel()
	f.c.mu.Lock()
	if f.c.follows[f.conv] == f {
		delete(f.c.follows, f.conv)
	}
	f.c.mu.Unlock()
}

func (f *follower) up() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.ready
}

func (f *follower) room() (chat, thread string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.chat, f.thread
}

// setRoom names the followed thread; a new one is resynced at once.
func (f *follower) setRoom(chat, thread string) {
	f.mu.Lock()
	changed := f.thread != thread
	f.chat, f.thread = chat, thread
	f.mu.Unlock()
	if changed {
		f.resyncSoon()
	}
}

func (f *follower) resyncSoon() {
	select {
	case f.kick <- struct{}{}:
	default:
	}
}

func (f *follower) sent(customID string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.custom[customID]
}

func (f *follower) markSent(customID string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.custom[customID] = true
}

// wait returns the socket once it is logged in and resynced, waiting a
// bounded time for a (re)connect.
func (f *follower) wait(ctx context.Context) (*rtm, error) {
	t := time.NewTimer(2*f.c.cfg.Timeout + f.c.cfg.ReconnectMax)
	defer t.Stop()
	for {
		f.mu.Lock()
		if f.ended {
			f.mu.Unlock()
			return nil, errEnded
		}
		if f.ready && !f.stale && f.live != nil {
			live := f.live
			f.mu.Unlock()
			return live, nil
		}
		ch := f.changed
		f.mu.Unlock()
		select {
		case <-ch:
		case <-f.done:
			return nil, errEnded
		case <-t.C:
			return nil, errors.New("livechat: customer socket not connected")
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// run keeps the socket up, reconnecting with jittered backoff (doubling
// to ReconnectMax; back to ReconnectMin after a minute up).
func (f *follower) run(ctx context.Context) {
	defer close(f.done)
	c := f.c
	wait := c.cfg.ReconnectMin
	for ctx.Err() == nil {
		start := time.Now()
		err := f.session(ctx)
		if ctx.Err() != nil {
			return
		}
		if we := (*wire.Error)(nil); errors.As(err, &we) && we.Type == wire.CustomerBanned {
			// Banned upstream: no socket will ever log in again, so the
			// conversation ends here (its pending deliveries fail for
			// good instead of waiting forever).
			c.log.Warn().Str("conv", string(f.conv)).Msg("livechat customer is banned; closing the conversation")
			if cerr := c.sink.Closed(ctx, f.conv, nil); cerr != nil {
				c.setError(cerr)
			} else {
				f.end()
				return
			}
		}
		c.mu.Lock()
		c.reconnects++
		if err != nil {
			c.status.LastError, c.status.LastErrorAt = err.Error(), time.Now().UTC()
		}
		c.mu.Unlock()
		c.log.Warn().Err(err).Str("conv", string(f.conv)).Dur("retry_in", wait).Msg("livechat customer socket lost")
		if time.Since(start) > time.Minute {
			wait = c.cfg.ReconnectMin
		}
		t := time.NewTimer(wait/2 + time.Duration(rand.Int64N(int64(wait/2)+1)))
		select {
		case <-ctx.Done():
			t.Stop()
		case <-t.C:
		}
		wait = min(wait*2, c.cfg.ReconnectMax)
	}
}

// session runs one socket: dial, login, resync, then pings and resyncs on
// demand until it fails or ctx ends.
func (f *follower) session(ctx context.Context) error {
	c := f.c
	tok, err := c.token(ctx, c.sink, f.visitor)
	if err != nil {
		return err
	}
	dialer := websocket.Dialer{HandshakeTimeout: c.cfg.Timeout, Proxy: http.ProxyFromEnvironment}
	if t, ok := c.cfg.Client.Transport.(*http.Transport); ok && t.TLSClientConfig != nil {
		dialer.TLSClientConfig = t.TLSClientConfig
	}
	ws, resp, err := dialer.DialContext(ctx, c.rtmURL, nil)
	if err != nil {
		if resp != nil {
			return fmt.Errorf("dial: HTTP %d: %w", resp.StatusCode, err)
		}
		return fmt.Errorf("dial: %w", unwrapURL(err))
	}
	defer ws.Close()
	ws.SetReadLimit(maxAnswer)
	conn := &rtm{ws: ws, wait: c.cfg.Timeout, pending: make(map[string]chan rtmFrame), dead: make(chan struct{})}

	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		<-sctx.Done()
		_ = ws.Close() // unblocks the reader on shutdown
	}()
	f.hold() // until the first resync has applied what was missed
	readErr := make(chan error, 1)
	go func() { readErr <- f.read(sctx, conn) }()
	defer func() {
		cancel()
		conn.fail(errEnded)
		<-readErr
		f.down()
	}()

	login := map[string]any{"token": "Bearer " + tok.access}
	f.mu.Lock()
	if p := f.profile; p != nil {
		cust := map[string]any{"name": visitorName(*p)}
		if p.Email != "" {
			cust["email"] = p.Email
		}
		login["customer"] = cust
	}
	f.mu.Unlock()
	var lr struct {
		Customer struct {
			ID string `json:"id"`
		} `json:"customer"`
	}
	if err := conn.call(sctx, "login", login, &lr); err != nil {
		if we := (*wire.Error)(nil); errors.As(err, &we) && we.Type == wire.Authentication {
			c.dropToken(f.visitor)
		}
		return fmt.Errorf("login: %w", err)
	}
	me := lr.Customer.ID
	if me == "" {
		me = tok.entity
	}
	f.mu.Lock()
	f.live, f.me = conn, me
	f.mu.Unlock()
	gen := f.generation()
	if err := f.resync(sctx, conn); err != nil {
		return err
	}
	f.release(sctx)
	f.synced(true, gen)
	c.log.Debug().Str("conv", string(f.conv)).Msg("livechat customer socket up")

	ping := time.NewTicker(c.cfg.PingInterval)
	defer ping.Stop()
	for {
		select {
		case <-sctx.Done():
			return nil
		case err := <-readErr:
			readErr <- err // for the deferred wait
			return err
		case <-f.kick:
			gen := f.generation()
			f.hold()
			if err := f.resync(sctx, conn); err != nil {
				return err
			}
			f.release(sctx)
			f.synced(false, gen)
		case <-ping.C:
			if err := conn.call(sctx, "ping", nil, nil); err != nil {
				return fmt.Errorf("ping: %w", err)
			}
		}
	}
}

// hold makes the reader keep pushes for release (a resync starts).
func (f *follower) hold() {
	f.mu.Lock()
	f.syncing, f.held = true, nil
	f.mu.Unlock()
}

// holding keeps fr for release when a resync is under way.
func (f *follower) holding(fr rtmFrame) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.syncing {
		f.held = append(f.held, fr)
	}
	return f.syncing
}

// release applies the pushes held during a resync, in arrival order (those
// the resync applied already are dropped by their event ids), then lets
// the reader apply pushes itself again.
func (f *follower) release(ctx context.Context) {
	for {
		f.mu.Lock()
		held := f.held
		f.held = nil
		if len(held) == 0 {
			f.syncing = false
			f.mu.Unlock()
			return
		}
		f.mu.Unlock()
		for _, fr := range held {
			f.applyPush(ctx, fr)
		}
	}
}

// applyPush applies a push; one that fails is left to a resync.
func (f *follower) applyPush(ctx context.Context, fr rtmFrame) {
	if err := f.push(ctx, fr); err != nil && ctx.Err() == nil {
		// Not lost: the next resync applies it.
		f.c.setError(err)
		f.c.log.Warn().Err(err).Str("conv", string(f.conv)).Str("push", fr.Action).Msg("apply livechat push")
		f.resyncSoon()
	}
}

// notify wakes the waiters of a state change; f.mu is held.
func (f *follower) notify() {
	close(f.changed)
	f.changed = make(chan struct{})
}

func (f *follower) generation() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.unsureN
}

// synced records a completed resync (first: of a new socket) that started
// at generation gen.
func (f *follower) synced(first bool, gen uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if first {
		f.ready = true
	}
	if gen == f.unsureN {
		f.stale = false
	}
	f.notify()
}

// unsure records that a send went unanswered: deliveries wait for the
// resync it asks for.
func (f *follower) unsure() {
	f.mu.Lock()
	f.stale = true
	f.unsureN++
	f.notify()
	f.mu.Unlock()
	f.resyncSoon()
}

// down marks the socket gone; waiters wait for the next one.
func (f *follower) down() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.live, f.ready = nil, false
	f.notify()
}

func visitorName(v model.Visitor) string {
	if v.Name != "" {
		return v.Name
	}
	return "Visitor"
}

// read reads frames until the socket fails: responses go to their callers,
// pushes are applied here. The server's control pings are answered (and
// count as life, like any frame).
func (f *follower) read(ctx context.Context, conn *rtm) error {
	c := f.c
	deadline := func() { _ = conn.ws.SetReadDeadline(time.Now().Add(2*c.cfg.PingInterval + c.cfg.Timeout)) }
	conn.ws.SetPingHandler(func(data string) error {
		deadline()
		err := conn.ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(c.cfg.Timeout))
		if errors.Is(err, websocket.ErrCloseSent) {
			return nil
		}
		return err
	})
	for {
		deadline()
		_, raw, err := conn.ws.ReadMessage()
		if err != nil {
			conn.fail(err)
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("read: %w", err)
		}
		var fr rtmFrame
		if json.Unmarshal(raw, &fr) != nil {
			continue
		}
		switch fr.Type {
		case "response":
			conn.answer(fr)
		case "push":
			if !f.holding(fr) {
				f.applyPush(ctx, fr)
			}
		}
	}
}

// rtmUser is a chat member.
type rtmUser struct {
	ID     string `json:"id"`
	Type   string `json:"type"`
	Name   string `json:"name"`
	Avatar string `json:"avatar"`
}

// rtmEvent is the part of an event the connector reads.
type rtmEvent struct {
	ID       string `json:"id"`
	CustomID string `json:"custom_id"`
	Type     string `json:"type"`
	AuthorID string `json:"author_id"`
	Text     string `json:"text"`
	Name     string `json:"name"`
	URL      string `json:"url"`
}

type rtmThread struct {
	ID     string     `json:"id"`
	Active bool       `json:"active"`
	Events []rtmEvent `json:"events"`
}

// rtmChat is a chat with one thread (get_chat, incoming_chat).
type rtmChat struct {
	ID     string    `json:"id"`
	Users  []rtmUser `json:"users"`
	Thread rtmThread `json:"thread"`
}

func agentOf(u rtmUser) relay.Agent {
	return relay.Agent{ID: u.ID, Name: u.Name, Avatar: u.Avatar}
}

// ours reports whether a push names the followed thread (a push without a
// thread id names the chat's current thread).
func (f *follower) ours(chat, thread string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.thread != "" && (thread == f.thread || (thread == "" && chat == f.chat))
}

// push applies one push (§2.6): an agent's event, an agent joining, the
// thread closing. Pushes of other threads (and those that come before the
// thread is bound) are left to the resync that follows binding.
func (f *follower) push(ctx context.Context, fr rtmFrame) error {
	sink := f.c.sink
	switch fr.Action {
	case "incoming_event":
		var p struct {
			ChatID   string   `json:"chat_id"`
			ThreadID string   `json:"thread_id"`
			Event    rtmEvent `json:"event"`
		}
		if json.Unmarshal(fr.Payload, &p) != nil || !f.ours(p.ChatID, p.ThreadID) {
			return nil
		}
		return f.apply(ctx, p.Event, false)
	case "incoming_chat":
		var p struct {
			Chat rtmChat `json:"chat"`
		}
		if json.Unmarshal(fr.Payload, &p) != nil || !f.ours(p.Chat.ID, p.Chat.Thread.ID) {
			return nil
		}
		return f.applyChat(ctx, p.Chat)
	case "user_added_to_chat":
		var p struct {
			ChatID   string  `json:"chat_id"`
			ThreadID string  `json:"thread_id"`
			User     rtmUser `json:"user"`
		}
		if json.Unmarshal(fr.Payload, &p) != nil || p.User.Type != "agent" || !f.ours(p.ChatID, p.ThreadID) {
			return nil
		}
		f.mu.Lock()
		f.agents[p.User.ID] = agentOf(p.User)
		f.mu.Unlock()
		return sink.AgentJoined(ctx, f.conv, agentOf(p.User))
	case "chat_deactivated":
		var p struct {
			ChatID   string `json:"chat_id"`
			ThreadID string `json:"thread_id"`
			UserID   string `json:"user_id"`
		}
		if json.Unmarshal(fr.Payload, &p) != nil || !f.ours(p.ChatID, p.ThreadID) {
			return nil
		}
		var by *relay.Agent
		f.mu.Lock()
		if a, ok := f.agents[p.UserID]; ok {
			by = &a
		}
		f.mu.Unlock()
		if err := sink.Closed(ctx, f.conv, by); err != nil {
			return err
		}
		f.end()
	case "customer_disconnected":
		var p struct {
			Reason string `json:"reason"`
		}
		_ = json.Unmarshal(fr.Payload, &p)
		if p.Reason == "access_token_expired" {
			f.c.dropToken(f.visitor)
		}
		f.c.log.Info().Str("conv", string(f.conv)).Str("reason", p.Reason).Msg("livechat disconnected the customer socket")
	}
	return nil
}

// apply takes one event of the thread in: an agent's message is posted
// (the event id is the idempotency key, so a resync never doubles it); the
// customer's own events, echoed, only mark their custom_id as sent. An
// event of an agent not met yet asks for a resync (get_chat names it),
// unless this is the resync.
func (f *follower) apply(ctx context.Context, ev rtmEvent, resyncing bool) error {
	f.mu.Lock()
	me := f.me
	if ev.AuthorID == me && ev.CustomID != "" {
		f.custom[ev.CustomID] = true
	}
	a, known := f.agents[ev.AuthorID]
	f.mu.Unlock()
	if ev.AuthorID == "" || ev.AuthorID == me || ev.ID == "" {
		return nil
	}
	var text string
	switch ev.Type {
	case "message":
		text = ev.Text
	case "file":
		text = strings.TrimSpace(ev.Name + " " + ev.URL)
	default:
		return nil // system messages, forms, rich messages: nothing to post
	}
	if !known {
		if !resyncing {
			f.resyncSoon()
			return nil
		}
		a = relay.Agent{ID: ev.AuthorID}
	}
	_, err := f.c.sink.Message(ctx, f.conv, a, ev.ID, text)
	return err
}

// applyChat applies a chat's thread: its agents, events (oldest first),
// the current agent, and its end.
func (f *follower) applyChat(ctx context.Context, chat rtmChat) error {
	sink := f.c.sink
	var current *relay.Agent
	f.mu.Lock()
	for _, u := range chat.Users {
		if u.Type == "agent" {
			a := agentOf(u)
			f.agents[u.ID] = a
			current = &a
		}
	}
	f.mu.Unlock()
	for _, ev := range chat.Thread.Events {
		if err := f.apply(ctx, ev, true); err != nil {
			return err
		}
	}
	if !chat.Thread.Active {
		if err := sink.Closed(ctx, f.conv, nil); err != nil {
			return err
		}
		f.end()
		return nil
	}
	if current != nil {
		return sink.AgentJoined(ctx, f.conv, *current)
	}
	return nil
}

// resync reads the followed thread (get_chat) and applies it: LiveChat
// never retries a push, so whatever happened while the socket was down is
// found here.
func (f *follower) resync(ctx context.Context, conn *rtm) error {
	chat, thread := f.room()
	if thread == "" {
		return nil // not opened yet: binding resyncs
	}
	var got rtmChat
	err := conn.call(ctx, "get_chat", map[string]any{"chat_id": chat, "thread_id": thread}, &got)
	if isNotFound(err) {
		f.c.log.Warn().Str("conv", string(f.conv)).Str("thread", thread).Msg("livechat thread is gone upstream")
		if err := f.c.sink.Closed(ctx, f.conv, nil); err != nil {
			return err
		}
		f.end()
		return nil
	}
	if err != nil {
		return fmt.Errorf("resync %s: %w", thread, err)
	}
	return f.applyChat(ctx, got)
}

// Run implements relay.Connector: it follows every active relayed
// conversation already opened upstream (one socket each), watches the
// token endpoint while it follows none, and returns when ctx ends and
// every socket is closed.
func (c *Connector) Run(ctx context.Context, sink *relay.Sink) error {
	c.mu.Lock()
	c.runCtx, c.sink = ctx, sink
	c.mu.Unlock()
	close(c.started)
	defer func() {
		// No follower starts after this (followerFor checks stopped
		// under mu), so the wait sees them all.
		c.mu.Lock()
		c.stopped = true
		c.mu.Unlock()
		c.wg.Wait()
	}()
	active, err := sink.Active(ctx)
	if err != nil {
		c.setError(err)
		c.log.Warn().Err(err).Msg("list relayed conversations")
	}
	for _, a := range active {
		room, err := sink.Link(ctx, relay.KindRoom, string(a.Conv.ID))
		if err != nil {
			continue // not opened upstream yet: its open delivery follows it
		}
		chat, thread, ok := splitRoom(room)
		if !ok {
			continue
		}
		f, err := c.followerFor(ctx, a.Conv, nil)
		if err != nil {
			break
		}
		f.setRoom(chat, thread)
	}
	t := time.NewTicker(c.cfg.PingInterval)
	defer t.Stop()
	for {
		c.mu.Lock()
		idle := len(c.follows) == 0
		for v, tok := range c.tokens {
			if time.Until(tok.expires) <= tokenMargin {
				delete(c.tokens, v) // of no use any more
			}
		}
		c.mu.Unlock()
		if idle {
			err := c.probe(ctx)
			c.mu.Lock()
			c.tokenOK = err == nil
			c.mu.Unlock()
			if err != nil && ctx.Err() == nil {
				c.setError(err)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
