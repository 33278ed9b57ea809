package rocketchat

// ddp_subs.go: subscriptions to Rocket.Chat's streamer publications (spec
// §6.5–6.8) and their fan-out from the desk's bus.
//
// Rules, as Rocket.Chat's streamer applies them:
//   - params are [eventName, options]; options is a boolean (useCollection)
//     or {useCollection, args}; args[0] is the visitor's extraData
//     ({token, visitorToken}); either key is accepted as the token;
//   - a token may follow only rooms of its own visitor (open or closed);
//     anything else, a missing token or an unknown room, is
//     nosub{error:"not-allowed"}, so a room's existence never leaks;
//   - every delivery is a `changed` frame {collection, id:"id",
//     fields:{eventName, args}} sent once per matching subscription (the
//     widget holds three stream-livechat-room subscriptions of one room and
//     gets three frames, as on Rocket.Chat);
//   - the requester gets its own messages too (the widget renders a sent
//     message only from the stream); agents-only events never leave the
//     desk; a visitor's own typing is not echoed to visitors.

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"chatgate/adapters/internal/ddp"
	"chatgate/core/hub"
	"chatgate/core/model"
)

// Stream publications served to visitors.
const (
	streamRoomMessages = "stream-room-messages"
	streamNotifyRoom   = "stream-notify-room"
	streamLivechatRoom = "stream-livechat-room"
)

// ddpSubKind is what a subscription delivers.
type ddpSubKind int

const (
	subMessages ddpSubKind = iota // stream-room-messages <rid>
	subTyping                     // stream-notify-room <rid>/typing
	subActivity                   // stream-notify-room <rid>/user-activity (newer clients)
	subDelete                     // stream-notify-room <rid>/deleteMessage
	subSilent                     // accepted, nothing chatgate emits (<rid>/webrtc ...)
	subLivechat                   // stream-livechat-room <rid>
)

// ddpSub is one live subscription of a session.
type ddpSub struct {
	id     string
	stream string
	event  string // the eventName as the client sent it
	kind   ddpSubKind
	conv   model.ConvID // the followed room; "" for subSilent
	// alias is the room id the client used when it is a legacy alias of
	// conv (messages then carry it as their rid).
	alias string
	// visitor is the visitor whose token opened the subscription: when
	// the room is given to another visitor (livechat/room.visitor) the
	// subscription ends (see dropMoved).
	visitor model.VisitorID
}

// ddpFeed is a session's bus subscription to one room, shared by all its
// DDP subscriptions of that room. The room's last known state is kept to
// notice what the bus does not carry: the serving agent's presence
// (agentStatus) and the room's place in the queue (queueData). All fields
// but bus are guarded by the session's mu.
type ddpFeed struct {
	bus  *hub.Sub
	conv model.ConvID
	subs map[*ddpSub]struct{}

	active bool
	queued bool
	agent  model.AgentID
	status string // last agent presence sent or seen
	spot   int    // last queue position sent or seen
	// visitor is the room's visitor and visitorSum the digest of its
	// record as last sent or seen ("" = not yet: send it).
	visitor    model.VisitorID
	visitorSum string
	// seen is the highest event seq of the notices delivered (a method
	// holding its answer for its message's stream frame: answer).
	seen uint64
}

// maxDDPSubs caps one connection's live subscriptions (the widget holds
// six); a sub beyond it is refused.
const maxDDPSubs = 64

var errDDPNotAllowed = ddp.NewError("not-allowed", "")

// sub handles a `sub` frame (worker goroutine).
func (ss *ddpSession) sub(ctx context.Context, m *ddp.Message) {
	id, okID := m.ID()
	name, okName := m.Str("name")
	params, okParams := m.Params()
	if !okID || !okName || !okParams {
		ss.send(ddp.ErrorFrame("Malformed subscription", m.Fields()))
		return
	}
	if _, dup := ss.subs[id]; dup {
		return // Meteor ignores a sub whose id is live (reconnect races)
	}
	if len(ss.subs) >= maxDDPSubs {
		ss.send(ddp.NoSub(id, ddp.NewError("error-too-many-subscriptions", fmt.Sprintf("At most %d subscriptions per connection", maxDDPSubs))))
		return
	}
	switch name {
	case streamRoomMessages, streamNotifyRoom, streamLivechatRoom:
	default:
		ss.send(ddp.NoSub(id, ddp.SubscriptionNotFound(name)))
		return
	}
	sub, useCollection, conv, err := ss.authorize(ctx, id, name, params)
	if err != nil {
		ss.send(ddp.NoSub(id, ss.s.meteorError(err, ss, "sub "+name)))
		return
	}
	ss.subs[id] = sub
	ss.attach(sub, conv, useCollection)
}

// authorize checks a subscription's params and the visitor token in them,
// and returns the room followed.
func (ss *ddpSession) authorize(ctx context.Context, id, name string, params []any) (*ddpSub, bool, model.Conversation, error) {
	var none model.Conversation
	event, _ := ddpParam(params, 0).(string)
	if event == "" {
		return nil, false, none, ddp.NewError("invalid-event-name", "")
	}
	useCollection := false
	var extra map[string]any
	switch opt := ddpParam(params, 1).(type) {
	case bool:
		useCollection = opt
	case map[string]any:
		useCollection, _ = opt["useCollection"].(bool)
		if args, ok := opt["args"].([]any); ok && len(args) > 0 {
			extra, _ = args[0].(map[string]any)
		}
	}
	sub := &ddpSub{id: id, stream: name, event: event}
	rid := event
	switch name {
	case streamRoomMessages:
		sub.kind = subMessages
	case streamLivechatRoom:
		sub.kind = subLivechat
	case streamNotifyRoom:
		var suffix string
		rid, suffix, _ = strings.Cut(event, "/")
		switch suffix {
		case "typing":
			sub.kind = subTyping
		case "user-activity":
			sub.kind = subActivity
		case "deleteMessage":
			sub.kind = subDelete
		case "webrtc":
			// Rocket.Chat lets anyone read <rid>/webrtc; chatgate has no
			// calls, so it never fires.
			sub.kind = subSilent
			return sub, useCollection, none, nil
		default:
			sub.kind = subSilent
		}
	}
	token := ddpExtraToken(extra)
	if token == "" {
		return nil, false, none, errDDPNotAllowed
	}
	convID, aliased := ss.s.resolveRoom(ctx, rid)
	v, conv, err := ss.s.visitorRoom(ctx, token, string(convID))
	if err != nil {
		if ddpClientError(err) {
			return nil, false, none, errDDPNotAllowed
		}
		return nil, false, none, err
	}
	if sub.kind != subSilent {
		sub.conv, sub.visitor = conv.ID, v.ID
	}
	if aliased {
		sub.alias = rid
	}
	return sub, useCollection, conv, nil
}

// ddpExtraToken is the visitor token of a subscription's extraData.
func ddpExtraToken(extra map[string]any) string {
	for _, k := range []string{"visitorToken", "token"} {
		if t, ok := extra[k].(string); ok && t != "" {
			return t
		}
	}
	return ""
}

func ddpParam(params []any, i int) any {
	if i < len(params) {
		return params[i]
	}
	return nil
}

// ddpClientError reports errors that mean "no such visitor or room for this
// token" (as opposed to the store failing).
func ddpClientError(err error) bool {
	var rc *rcError
	var de *ddp.Error
	return errors.As(err, &rc) || errors.As(err, &de)
}

// attach registers a subscription with its room's feed (starting the feed
// on first use) and answers ready. Both happen under the session lock, so
// no `changed` of this subscription can precede its `ready`.
func (ss *ddpSession) attach(sub *ddpSub, conv model.Conversation, useCollection bool) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if sub.conv != "" {
		f := ss.feeds[sub.conv]
		if f == nil {
			f = &ddpFeed{bus: ss.s.d.Bus().SubscribeConv(sub.conv, ddpBusQueue), conv: sub.conv,
				subs: make(map[*ddpSub]struct{})}
			ss.s.feedSaw(f, conv)
			// What the room held when read never streams to this feed:
			// a method answering with such a message (a retried _id)
			// must not wait for its frame (answer).
			f.seen = conv.LastSeq
			f.visitorSum = ss.s.visitorSum(context.Background(), f.visitor)
			if f.queued {
				// The client knows it (config.queueInfo): only changes
				// are sent.
				f.spot = ss.s.d.Router().Position(f.conv)
			}
			ss.feeds[sub.conv] = f
			ss.pumpFeed(f)
		}
		f.subs[sub] = struct{}{}
	}
	if useCollection {
		// Collection compatibility (streamer.module.ts): one `added` with
		// the eventName before ready.
		if b, err := ddp.Added(sub.stream, "id", ddp.Obj{{Key: "eventName", Value: sub.event}}); err == nil {
			ss.send(b)
		}
	}
	ss.send(ddp.Ready(sub.id))
}

// unsub handles an `unsub` frame: the subscription stops and `nosub` is
// sent, for unknown ids too (Meteor does).
func (ss *ddpSession) unsub(m *ddp.Message) {
	id, ok := m.ID()
	if !ok {
		ss.send([]byte(`{"msg":"nosub"}`))
		return
	}
	sub := ss.subs[id]
	delete(ss.subs, id)
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if sub != nil && sub.conv != "" {
		if f := ss.feeds[sub.conv]; f != nil {
			delete(f.subs, sub)
			if len(f.subs) == 0 {
				f.bus.Close()
				delete(ss.feeds, sub.conv)
			}
		}
	}
	ss.send(ddp.NoSub(id, nil))
}

// closeFeeds ends every bus subscription (session teardown).
func (ss *ddpSession) closeFeeds() {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	for conv, f := range ss.feeds {
		f.bus.Close()
		delete(ss.feeds, conv)
	}
}

// pumpFeed turns the room's notices into frames, on a goroutine that runs
// only while notices are queued (subdrain: no goroutine, and no stack to
// grow back, per followed room between messages; the surface's pool of
// lingering drain goroutines runs them). A feed the bus cut off
// (the session fell behind) closes the session: the widget reconnects
// and reloads the history. What has no notice (agent presence, queue
// position, the visitor record) is looked at by the surface's poller
// (pollRooms). Called with ss.mu held.
func (ss *ddpSession) pumpFeed(f *ddpFeed) {
	ss.s.ddp.drains.Start(ss.workCtx, f.bus, func(_ context.Context, n *hub.Notice) { ss.deliver(f, *n) },
		func(err error) {
			if errors.Is(err, hub.ErrSlow) {
				ss.logger().Warn().Msg("ddp session fell behind the desk")
				ss.conn.Close(wsconnFellBehind)
			}
		}, &ss.pumps)
}

// pollRooms, every roomPoll until ctx ends, polls the rooms every
// session follows (poll): one goroutine and one timer for the surface,
// where each followed room had its own of both.
func (s *Surface) pollRooms(ctx context.Context) {
	every := s.ddp.roomPoll
	if every <= 0 {
		<-ctx.Done()
		return
	}
	t := time.NewTicker(every)
	defer t.Stop()
	var sessions []*ddpSession
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s.ddp.mu.Lock()
		sessions = sessions[:0]
		for ss := range s.ddp.sessions {
			sessions = append(sessions, ss)
		}
		s.ddp.mu.Unlock()
		for _, ss := range sessions {
			if ctx.Err() != nil {
				return
			}
			ss.pollFeeds()
		}
		clear(sessions) // hold no closed session until the next round
	}
}

// pollFeeds polls each room the session follows.
func (ss *ddpSession) pollFeeds() {
	ss.mu.Lock()
	feeds := make([]*ddpFeed, 0, len(ss.feeds))
	for _, f := range ss.feeds {
		feeds = append(feeds, f)
	}
	ss.mu.Unlock()
	for _, f := range feeds {
		ss.poll(f)
	}
}

// deliver sends what one notice means to each subscription of the feed.
// Rendering runs outside the lock; sending under it, to the subscriptions
// still live. A rendering bug loses the notice, never the process.
func (ss *ddpSession) deliver(f *ddpFeed, n hub.Notice) {
	defer func() {
		if r := recover(); r != nil {
			ss.logger().Error().Interface("panic", r).Str("conv", string(f.conv)).Msg("ddp stream rendering panicked")
		}
	}()
	// A feed has a few subscriptions (the widget holds up to six of a
	// room): their list and frames live on the stack.
	var subsArr [8]*ddpSub
	var outArr [8][][]byte
	ss.mu.Lock()
	ss.dropMoved(f, n.Conv.Visitor)
	subs := subsArr[:0]
	for sub := range f.subs {
		subs = append(subs, sub)
	}
	if len(subs) == 0 {
		f.seen = max(f.seen, lastSeq(&n))
		if held := ss.takeHeld(f, true); held != nil {
			ss.sendAll(held...)
		}
		ss.mu.Unlock()
		return
	}
	ss.mu.Unlock()
	r := ddpNoticeRender{s: ss.s, n: n}
	out := outArr[:0]
	for _, sub := range subs {
		out = append(out, r.framesFor(sub))
	}
	if p := ss.queueNotice(f, &n, &r, subs, out); p != nil {
		ss.awaitAnswer(p)
	}
}

// queueNotice queues a notice's rendered frames (out[i] for subs[i]),
// after the method answer held for its message if any, with one SendAll,
// so one write. The frames of the running sendMessageLivechat's own
// message, rendered before its answer is ready, are parked for the answer
// to take along instead (the parked value returned: the caller waits for
// it, outside the lock).
func (ss *ddpSession) queueNotice(f *ddpFeed, n *hub.Notice, r *ddpNoticeRender, subs []*ddpSub, out [][][]byte) *parkedEcho {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.s.feedSaw(f, n.Conv)
	if r.sentSpot > 0 {
		f.spot = r.sentSpot
	}
	f.seen = max(f.seen, lastSeq(n))
	gone := ss.feeds[f.conv] != f
	var batchArr [8][]byte
	held := ss.takeHeld(f, gone)
	batch := append(batchArr[:0], held...)
	for i, sub := range subs {
		if _, live := f.subs[sub]; !live {
			continue
		}
		batch = append(batch, out[i]...)
	}
	switch {
	case len(batch) == 0:
	case held == nil && ss.posting && !gone && len(n.Events) > 0 && n.Origin == ss.originTag:
		p := &parkedEcho{frames: append([][]byte(nil), batch...), taken: make(chan struct{})}
		ss.parked = p
		return p
	default:
		ss.sendAll(batch...)
	}
	return nil
}

// lastSeq is the highest seq of the events a notice adds (0: none).
func lastSeq(n *hub.Notice) uint64 {
	var seq uint64
	for i := range n.Events {
		seq = max(seq, n.Events[i].Seq)
	}
	return seq
}

// dropMoved ends, with nosub error-not-allowed, the subscriptions of f
// opened by a visitor the room no longer belongs to (an agent gave it to
// another visitor: livechat/room.visitor), before anything of the notice
// that says so is sent: the previous visitor's token no longer opens the
// room, so its open subscriptions must not go on showing it, nor hand it
// the new visitor's record. Rocket.Chat keeps them and broadcasts
// visitorData with the new visitor to every subscriber of the room,
// the previous visitor's widget included; chatgate refuses that, as it
// would show one visitor's data to another (docs/rocketchat.md). Called
// with ss.mu held; the feed closes when no subscription is left. (The
// subscription id stays in the worker's ss.subs, which only the worker
// touches: a later unsub of it answers nosub as for any id.)
func (ss *ddpSession) dropMoved(f *ddpFeed, visitor model.VisitorID) {
	if visitor == "" {
		return
	}
	for sub := range f.subs {
		if sub.visitor == "" || sub.visitor == visitor {
			continue
		}
		delete(f.subs, sub)
		ss.send(ddp.NoSub(sub.id, errDDPNotAllowed))
	}
	if len(f.subs) == 0 {
		f.bus.Close()
		delete(ss.feeds, f.conv)
	}
}

// feedSaw records a room's state as a notice (or the subscription) showed
// it. A new serving agent's presence is taken as known (agentData carries
// it).
func (s *Surface) feedSaw(f *ddpFeed, c model.Conversation) {
	f.active, f.queued = c.Active(), c.State == model.StateQueued
	if c.Visitor != f.visitor {
		f.visitor, f.visitorSum = c.Visitor, ""
	}
	if c.Agent != f.agent {
		f.agent, f.status = c.Agent, ""
		if c.Agent != "" {
			f.status = s.agentStatus(c.Agent)
		}
	}
	if !f.queued {
		f.spot = 0
	}
}

// poll sends stream-livechat-room agentStatus when the serving agent's
// presence changed (Rocket.Chat emits it on presence changes of agents
// serving open rooms; the desk publishes no notice for them), queueData
// when a queued room's position moved (other rooms leaving the queue
// publish nothing on this room) and visitorData when the room's visitor
// record changed (an agent updated the customer, the visitor registered
// again: Rocket.Chat emits it then; the desk publishes no notice for
// visitor records, and a poll of the store sees changes made on any
// node). When the room is given to another visitor, the subscriptions of
// the previous one end instead (dropMoved).
func (ss *ddpSession) poll(f *ddpFeed) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.feeds[f.conv] != f {
		return // unsubscribed since
	}
	var payloads []any
	if f.visitor != "" {
		if v, sum, ok := ss.s.visitorRecord(context.Background(), f.visitor); ok && sum != f.visitorSum {
			f.visitorSum = sum
			payloads = append(payloads, ddp.Obj{{Key: "type", Value: "visitorData"}, {Key: "visitor", Value: ss.s.renderVisitor(&v, "")}})
		}
	}
	if f.active && f.agent != "" {
		if st := ss.s.agentStatus(f.agent); st != f.status {
			f.status = st
			payloads = append(payloads, ddp.Obj{{Key: "type", Value: "agentStatus"}, {Key: "status", Value: st}})
		}
	}
	if f.active && f.queued {
		if spot := ss.s.d.Router().Position(f.conv); spot > 0 && spot != f.spot {
			f.spot = spot
			payloads = append(payloads, ss.s.ddpQueueData(spot))
		}
	}
	if len(payloads) == 0 {
		return
	}
	for sub := range f.subs {
		if sub.kind != subLivechat {
			continue
		}
		for _, p := range payloads {
			b, err := ddp.StreamChanged(sub.stream, sub.event, []any{p})
			if err == nil {
				ss.send(b)
			}
		}
	}
}

// visitorRecord reads a visitor and the digest of its stored record (its
// presence is not part of it: status changes are not visitorData).
func (s *Surface) visitorRecord(ctx context.Context, id model.VisitorID) (model.Visitor, string, bool) {
	v, err := s.d.Store().Visitor(ctx, id)
	if err != nil {
		return model.Visitor{}, "", false
	}
	b, err := json.Marshal(v)
	if err != nil {
		return model.Visitor{}, "", false
	}
	sum := sha256.Sum256(append(b, s.username(ctx, id)...))
	return v, string(sum[:]), true
}

// visitorSum is visitorRecord's digest, "" when the visitor is unreadable.
func (s *Surface) visitorSum(ctx context.Context, id model.VisitorID) string {
	_, sum, _ := s.visitorRecord(ctx, id)
	return sum
}

// ddpQueueData is the stream-livechat-room queue notice.
func (s *Surface) ddpQueueData(spot int) ddp.Obj {
	return ddp.Obj{{Key: "type", Value: "queueData"}, {Key: "data", Value: s.queueInfo(spot)}}
}

// queueInfo is Rocket.Chat EE's normalizeQueueInfo (ee/server/lib/Helper,
// checked): the room's place in its queue (spot, 1 = next), the waiting
// message (Livechat_waiting_queue_message, from rocket.cat) and, when
// configured (rocketchat.queue_wait_per_chat), the estimated wait:
// spot × that time.
func (s *Surface) queueInfo(spot int) map[string]any {
	m := map[string]any{"spot": spot,
		"message": map[string]any{"text": s.cfg.QueueMessage, "user": map[string]any{"_id": "rocket.cat", "username": "rocket.cat"}}}
	if s.cfg.QueueWaitPerChat > 0 {
		m["estimatedWaitTimeSeconds"] = int64(spot) * int64(s.cfg.QueueWaitPerChat/time.Second)
	}
	return m
}

// --- notices to stream events ------------------------------------------------------

type ddpFrameKey struct {
	kind  ddpSubKind
	event string
	alias string
}

// ddpNoticeRender renders one notice once and encodes its frames once per
// (kind, eventName).
type ddpNoticeRender struct {
	s      *Surface
	n      hub.Notice
	frames []ddpFrameSet // a few: looked up in order

	messages  []*message
	rendered  bool
	livechat  []any
	lcDone    bool
	deletions []string
	delDone   bool
	sentSpot  int // queue position a queueData of this notice carries
}

// ddpFrameSet is the frames of one ddpFrameKey.
type ddpFrameSet struct {
	key    ddpFrameKey
	frames [][]byte
}

func (r *ddpNoticeRender) framesFor(sub *ddpSub) [][]byte {
	key := ddpFrameKey{kind: sub.kind, event: sub.event, alias: sub.alias}
	for _, fs := range r.frames {
		if fs.key == key {
			return fs.frames
		}
	}
	if sub.kind == subLivechat {
		// Reads the session's queue position (sentSpot): its own.
		return r.encode(key, sub)
	}
	// The frames of the other streams depend on the notice, the surface
	// and key alone: every session following the room shares them.
	fr := r.n.Shared(sharedDDPFrames{s: r.s, key: key}, func() any { return r.encode(key, sub) }).([][]byte)
	r.keep(key, fr)
	return fr
}

// sharedDDPFrames keys a notice's DDP frames shared between sessions.
type sharedDDPFrames struct {
	s   *Surface
	key ddpFrameKey
}

// encode renders and encodes the frames of sub for the notice.
func (r *ddpNoticeRender) encode(key ddpFrameKey, sub *ddpSub) [][]byte {
	var argsList [][]any
	switch sub.kind {
	case subMessages:
		// One frame per message, each message's bytes written straight
		// into its frame (ddp.StreamChangedArg: no argument list).
		msgs := r.renderMessages()
		out := make([][]byte, 0, len(msgs))
		for _, m := range msgs {
			if sub.alias != "" {
				m = m.withRid(sub.alias)
			}
			b, err := ddp.StreamChangedArg(sub.stream, sub.event, m)
			if err != nil {
				r.s.log.Error().Err(err).Str("stream", sub.stream).Msg("encode stream event")
				continue
			}
			out = append(out, b)
		}
		r.keep(key, out)
		return out
	case subTyping, subActivity:
		if name, on, ok := r.s.agentTyping(r.n); ok {
			if sub.kind == subTyping {
				argsList = append(argsList, []any{name, on})
			} else {
				acts := []any{}
				if on {
					acts = append(acts, "user-typing")
				}
				argsList = append(argsList, []any{name, acts, map[string]any{}})
			}
		}
	case subDelete:
		for _, id := range r.renderDeletions() {
			argsList = append(argsList, []any{map[string]any{"_id": id}})
		}
	case subLivechat:
		for _, p := range r.renderLivechat() {
			argsList = append(argsList, []any{p})
		}
	}
	var out [][]byte
	for _, args := range argsList {
		b, err := ddp.StreamChanged(sub.stream, sub.event, args)
		if err != nil {
			r.s.log.Error().Err(err).Str("stream", sub.stream).Msg("encode stream event")
			continue
		}
		out = append(out, b)
	}
	r.keep(key, out)
	return out
}

// keep records the frames of key (once: encode and framesFor may both
// get them).
func (r *ddpNoticeRender) keep(key ddpFrameKey, frames [][]byte) {
	for _, fs := range r.frames {
		if fs.key == key {
			return
		}
	}
	r.frames = append(r.frames, ddpFrameSet{key: key, frames: frames})
}

// renderMessages: new events and edited ones, as a visitor sees them.
// Deletions go to <rid>/deleteMessage instead (Rocket.Chat's default,
// Message_ShowDeletedStatus off).
func (r *ddpNoticeRender) renderMessages() []*message {
	if r.rendered {
		return r.messages
	}
	r.rendered = true
	for i := range r.n.Events {
		if m := r.s.renderMessage(&r.n.Events[i]); m != nil {
			r.messages = append(r.messages, m)
		}
	}
	for i := range r.n.Updated {
		e := &r.n.Updated[i]
		if e.Deleted {
			continue
		}
		if m := r.s.renderMessage(e); m != nil {
			r.messages = append(r.messages, m)
		}
	}
	return r.messages
}

func (r *ddpNoticeRender) renderDeletions() []string {
	if r.delDone {
		return r.deletions
	}
	r.delDone = true
	for i := range r.n.Updated {
		e := &r.n.Updated[i]
		if e.Deleted && e.VisibleToVisitor() {
			r.deletions = append(r.deletions, messageID(e))
		}
	}
	return r.deletions
}

// renderLivechat: stream-livechat-room payloads (§6.8). An agent joining
// (assignment, take-over, transfer) is agentData with the agent; a
// transfer that left the room queued is agentData without data (the agent
// is gone) and queueData; a room that starts queued gets queueData.
// Closing has no event here: the livechat-close message on
// stream-room-messages ends the chat in the widget.
func (r *ddpNoticeRender) renderLivechat() []any {
	if r.lcDone {
		return r.livechat
	}
	r.lcDone = true
	conv := r.n.Conv
	started, transferred := false, false
	for i := range r.n.Events {
		e := &r.n.Events[i]
		if e.Seq == 1 {
			started = true
		}
		if e.Kind != model.KindSystem {
			continue
		}
		switch e.Subtype {
		case model.SysTransferred:
			transferred = true
		case model.SysAssigned:
			if !e.VisibleToVisitor() {
				continue
			}
			if a, ok := r.s.d.Router().Agent(model.AgentID(e.Vars["agent_id"])); ok {
				r.livechat = append(r.livechat, ddp.Obj{{Key: "type", Value: "agentData"}, {Key: "data", Value: r.s.renderAgent(a)}})
			}
		}
	}
	queued := conv.State == model.StateQueued
	if transferred && queued && conv.Agent == "" {
		r.livechat = append(r.livechat, ddp.Obj{{Key: "type", Value: "agentData"}})
	}
	if queued && (started || transferred) {
		if spot := r.s.d.Router().Position(conv.ID); spot > 0 {
			r.sentSpot = spot
			r.livechat = append(r.livechat, r.s.ddpQueueData(spot))
		}
	}
	return r.livechat
}

// agentTyping is an agent's typing indicator in a notice: the agent's
// username and whether it types. Visitors' own indicators are not sent to
// visitors.
func (s *Surface) agentTyping(n hub.Notice) (string, bool, bool) {
	t := n.Typing
	if t == nil || t.Author.Kind != model.AuthorAgent {
		return "", false, false
	}
	a, ok := s.d.Router().Agent(model.AgentID(t.Author.ID))
	if !ok {
		return t.Author.ID, t.On, true
	}
	return agentUsername(a), t.On, true
}
