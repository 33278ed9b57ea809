package upstream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"chatgate/core/model"
	"chatgate/core/relay"
)

// ddpConn is one DDP socket to the server. Writes come from the read loop
// (pongs), the pinger and follow (subscriptions), so they are serialised.
type ddpConn struct {
	ws     *websocket.Conn
	wmu    sync.Mutex
	nextID atomic.Uint64
	// pending are subscriptions waiting for ready/nosub, by sub id.
	pmu     sync.Mutex
	pending map[string]chan struct{}
	// subs are the sub ids of each followed room, to unsubscribe.
	subs map[string][]string
}

func (d *ddpConn) send(v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	d.wmu.Lock()
	defer d.wmu.Unlock()
	_ = d.ws.SetWriteDeadline(time.Now().Add(10 * time.Second))
	return d.ws.WriteMessage(websocket.TextMessage, raw)
}

// ddpFrame is the part of a server frame the connector reads.
type ddpFrame struct {
	Msg        string          `json:"msg"`
	ID         string          `json:"id"`
	Subs       []string        `json:"subs"`
	Collection string          `json:"collection"`
	Fields     json.RawMessage `json:"fields"`
	Error      json.RawMessage `json:"error"`
}

type streamFields struct {
	EventName string            `json:"eventName"`
	Args      []json.RawMessage `json:"args"`
}

const (
	streamRoomMessages = "stream-room-messages"
	streamLivechatRoom = "stream-livechat-room"
	streamNotifyRoom   = "stream-notify-room"
)

// Run implements relay.Connector: it keeps a DDP socket up, following
// every active relayed room, and reconnects with backoff (jittered,
// doubling to ReconnectMax) when it drops.
func (c *Connector) Run(ctx context.Context, sink *relay.Sink) error {
	wait := c.cfg.ReconnectMin
	for ctx.Err() == nil {
		start := time.Now()
		err := c.session(ctx, sink)
		c.mu.Lock()
		c.live = nil
		c.status.Connected = false
		if ctx.Err() == nil {
			c.status.Reconnects++
			if err != nil {
				c.status.LastError, c.status.LastErrorAt = err.Error(), time.Now().UTC()
			}
		}
		c.mu.Unlock()
		if ctx.Err() != nil {
			break
		}
		c.log.Warn().Err(err).Dur("retry_in", wait).Msg("rocket.chat realtime connection lost")
		if time.Since(start) > time.Minute {
			wait = c.cfg.ReconnectMin // it had been up a while: start over
		}
		t := time.NewTimer(wait/2 + time.Duration(rand.Int64N(int64(wait/2)+1)))
		select {
		case <-ctx.Done():
			t.Stop()
		case <-t.C:
		}
		wait = min(wait*2, c.cfg.ReconnectMax)
	}
	return nil
}

func (c *Connector) wsURL() string {
	u := *c.base
	if u.Scheme == "https" {
		u.Scheme = "wss"
	} else {
		u.Scheme = "ws"
	}
	return u.JoinPath("websocket").String()
}

// session runs one DDP connection until it fails or ctx ends.
func (c *Connector) session(ctx context.Context, sink *relay.Sink) error {
	dialer := websocket.Dialer{HandshakeTimeout: c.cfg.Timeout, Proxy: http.ProxyFromEnvironment}
	if t, ok := c.cfg.Client.Transport.(*http.Transport); ok && t.TLSClientConfig != nil {
		dialer.TLSClientConfig = t.TLSClientConfig
	}
	ws, _, err := dialer.DialContext(ctx, c.wsURL(), nil)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("dial: %w", err)
	}
	defer ws.Close()
	ws.SetReadLimit(maxResponse)
	conn := &ddpConn{ws: ws, pending: make(map[string]chan struct{}), subs: make(map[string][]string)}
	if err := conn.send(map[string]any{"msg": "connect", "version": "1", "support": []string{"1", "pre2", "pre1"}}); err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	_ = ws.SetReadDeadline(time.Now().Add(c.cfg.Timeout))
	for {
		var f ddpFrame
		if err := ws.ReadJSON(&f); err != nil {
			return fmt.Errorf("connect: %w", err)
		}
		if f.Msg == "connected" {
			break
		}
		if f.Msg == "failed" {
			return errors.New("connect: server refused the DDP version")
		}
	}

	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		<-sctx.Done()
		_ = ws.Close() // unblocks the read loop on shutdown
	}()
	c.mu.Lock()
	c.live = conn
	c.status.Connected = true
	c.mu.Unlock()
	c.log.Info().Msg("rocket.chat realtime connected")

	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	// Follow every active relayed room and catch up on what was missed
	// while disconnected, off the read loop (it needs the read loop to see
	// the subscriptions become ready).
	wg.Go(func() { c.followAll(sctx, sink, conn) })
	wg.Go(func() {
		t := time.NewTicker(c.cfg.PingInterval)
		defer t.Stop()
		for {
			select {
			case <-sctx.Done():
				return
			case <-t.C:
				if conn.send(map[string]any{"msg": "ping"}) != nil {
					cancel()
					return
				}
			}
		}
	})
	for {
		_ = ws.SetReadDeadline(time.Now().Add(2*c.cfg.PingInterval + c.cfg.Timeout))
		var f ddpFrame
		if err := ws.ReadJSON(&f); err != nil {
			if sctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("read: %w", err)
		}
		switch f.Msg {
		case "ping":
			pong := map[string]any{"msg": "pong"}
			if f.ID != "" {
				pong["id"] = f.ID
			}
			if err := conn.send(pong); err != nil {
				return fmt.Errorf("pong: %w", err)
			}
		case "ready":
			conn.settle(f.Subs...)
		case "nosub":
			conn.settle(f.ID)
			if len(f.Error) > 0 {
				c.log.Warn().Str("sub", f.ID).RawJSON("error", f.Error).Msg("rocket.chat refused a subscription")
			}
		case "changed":
			c.changed(sctx, sink, f)
		}
	}
}

// settle wakes whoever waits for these subscriptions.
func (d *ddpConn) settle(ids ...string) {
	d.pmu.Lock()
	defer d.pmu.Unlock()
	for _, id := range ids {
		if ch, ok := d.pending[id]; ok {
			close(ch)
			delete(d.pending, id)
		}
	}
}

// subscribe subscribes to a room's messages and livechat events and waits
// (bounded) until the server has them in place.
func (d *ddpConn) subscribe(ctx context.Context, r room, timeout time.Duration) error {
	var waits []chan struct{}
	for _, stream := range []string{streamRoomMessages, streamLivechatRoom, streamNotifyRoom} {
		event := r.rid
		if stream == streamNotifyRoom {
			event = r.rid + "/typing" // the agent's typing indicator
		}
		id := "s" + strconv.FormatUint(d.nextID.Add(1), 10)
		ch := make(chan struct{})
		d.pmu.Lock()
		d.pending[id] = ch
		d.subs[r.rid] = append(d.subs[r.rid], id)
		d.pmu.Unlock()
		waits = append(waits, ch)
		extra := map[string]any{"token": r.token, "visitorToken": r.token}
		err := d.send(map[string]any{"msg": "sub", "id": id, "name": stream,
			"params": []any{event, map[string]any{"useCollection": false, "args": []any{extra}}}})
		if err != nil {
			return err
		}
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	for _, ch := range waits {
		select {
		case <-ch:
		case <-t.C:
			return errors.New("subscription not ready in time")
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

func (d *ddpConn) unsubscribe(rid string) {
	d.pmu.Lock()
	ids := d.subs[rid]
	delete(d.subs, rid)
	d.pmu.Unlock()
	for _, id := range ids {
		_ = d.send(map[string]any{"msg": "unsub", "id": id})
	}
}

// followAll follows the active relayed rooms after a (re)connect.
func (c *Connector) followAll(ctx context.Context, sink *relay.Sink, conn *ddpConn) {
	active, err := sink.Active(ctx)
	if err != nil {
		c.log.Warn().Err(err).Msg("list relayed conversations")
		return
	}
	for _, f := range active {
		if ctx.Err() != nil {
			return
		}
		rid, err := sink.Link(ctx, relay.KindRoom, string(f.Conv.ID))
		if err != nil {
			continue // not opened upstream yet: its open delivery follows it
		}
		tok, err := sink.Link(ctx, relay.KindVisitor, string(f.Conv.Visitor))
		if err != nil {
			continue
		}
		c.mu.Lock()
		c.rooms[rid] = room{conv: f.Conv.ID, rid: rid, token: tok}
		c.mu.Unlock()
	}
	c.mu.Lock()
	rooms := make([]room, 0, len(c.rooms))
	for _, r := range c.rooms {
		rooms = append(rooms, r)
	}
	c.mu.Unlock()
	for _, r := range rooms {
		if ctx.Err() != nil {
			return
		}
		c.subscribeAndResync(ctx, sink, conn, r)
	}
}

// follow starts following a room opened by a delivery, catching up on
// what the room said before the subscription was in place.
func (c *Connector) follow(ctx context.Context, sink *relay.Sink, r room) {
	c.mu.Lock()
	_, had := c.rooms[r.rid]
	c.rooms[r.rid] = r
	conn := c.live
	c.mu.Unlock()
	if had || conn == nil {
		return // followed already, or followAll will on connect
	}
	c.subscribeAndResync(ctx, sink, conn, r)
}

func (c *Connector) unfollow(rid string) {
	c.mu.Lock()
	delete(c.rooms, rid)
	conn := c.live
	c.mu.Unlock()
	if conn != nil {
		conn.unsubscribe(rid)
	}
}

// subscribeAndResync subscribes to a room, then reads its history so that
// nothing said while unsubscribed is missed (a message seen twice is
// posted once: its id is the idempotency key).
//
// While the history is read and applied, live messages of the room are
// held back and applied after it: a message said during the gap comes in
// the history, and must not be posted after a newer one the stream
// delivered meanwhile.
func (c *Connector) subscribeAndResync(ctx context.Context, sink *relay.Sink, conn *ddpConn, r room) {
	c.mu.Lock()
	hold := c.syncing[r.rid]
	if hold == nil {
		hold = &heldBack{}
		c.syncing[r.rid] = hold
	}
	hold.resyncs++
	c.mu.Unlock()
	if err := conn.subscribe(ctx, r, c.cfg.Timeout); err != nil {
		c.log.Warn().Err(err).Str("rid", r.rid).Msg("subscribe to relayed room")
	}
	if err := c.resync(ctx, sink, r); err != nil && ctx.Err() == nil {
		c.setError(err)
		c.log.Warn().Err(err).Str("rid", r.rid).Msg("resync relayed room")
	}
	for {
		c.mu.Lock()
		held, overflow := hold.msgs, hold.overflow
		hold.msgs, hold.overflow = nil, false
		c.mu.Unlock()
		if overflow {
			// More arrived meanwhile than are held back: read the history
			// again (it has them all, in order) instead of the stream.
			if err := c.resync(ctx, sink, r); err != nil && ctx.Err() == nil {
				c.setError(err)
				c.log.Warn().Err(err).Str("rid", r.rid).Msg("resync relayed room")
			}
			if ctx.Err() != nil {
				held = nil
			} else {
				continue
			}
		}
		c.mu.Lock()
		if len(held) == 0 && len(hold.msgs) == 0 {
			if hold.resyncs--; hold.resyncs == 0 {
				delete(c.syncing, r.rid)
			}
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
		for _, m := range held {
			if err := c.apply(ctx, sink, r, m); err != nil && ctx.Err() == nil {
				c.setError(err)
				c.log.Warn().Err(err).Str("rid", r.rid).Msg("apply upstream message")
			}
		}
	}
}

// resyncLimit is how many of the newest messages a resync reads.
const resyncLimit = 500

// resync reads the room's history (newest first, as the server gives it)
// and applies it oldest first.
func (c *Connector) resync(ctx context.Context, sink *relay.Sink, r room) error {
	var res struct {
		Messages []rcMessage `json:"messages"`
	}
	path := "livechat/messages.history/" + url.PathEscape(r.rid)
	err := c.call(ctx, http.MethodGet, path, url.Values{"token": {r.token}, "limit": {strconv.Itoa(resyncLimit)}}, nil, &res)
	var ae *apiError
	if errors.As(err, &ae) && (ae.is("invalid-room") || ae.is("room-closed")) {
		c.unfollow(r.rid)
		return sink.Closed(ctx, r.conv, nil)
	}
	if err != nil {
		return fmt.Errorf("history of %s: %w", r.rid, err)
	}
	for i := len(res.Messages) - 1; i >= 0; i-- {
		if err := c.apply(ctx, sink, r, res.Messages[i]); err != nil {
			return err
		}
	}
	return nil
}

// heldBack are the live messages of a room held back while it is
// resynced (by resyncs goroutines: a reconnect may start one while the
// previous connection's is still finishing).
type heldBack struct {
	resyncs int
	msgs    []rcMessage
	// overflow: more than maxHeld arrived; they were dropped and the
	// history is read again.
	overflow bool
}

// maxHeld bounds the live messages held back for one room.
const maxHeld = 1000

// changed handles a stream frame.
func (c *Connector) changed(ctx context.Context, sink *relay.Sink, f ddpFrame) {
	var sf streamFields
	if json.Unmarshal(f.Fields, &sf) != nil || len(sf.Args) == 0 {
		return
	}
	rid := sf.EventName
	if f.Collection == streamNotifyRoom {
		rid = strings.TrimSuffix(rid, "/typing")
	}
	c.mu.Lock()
	r, ok := c.rooms[rid]
	c.mu.Unlock()
	if !ok {
		return
	}
	var err error
	switch f.Collection {
	case streamRoomMessages:
		var m rcMessage
		if json.Unmarshal(sf.Args[0], &m) != nil {
			return
		}
		c.mu.Lock()
		hold, syncing := c.syncing[r.rid]
		if syncing {
			if len(hold.msgs) < maxHeld {
				hold.msgs = append(hold.msgs, m)
			} else {
				hold.overflow = true
			}
		}
		c.mu.Unlock()
		if !syncing {
			err = c.apply(ctx, sink, r, m)
		}
	case streamNotifyRoom:
		// "<rid>/typing" [username, isTyping]
		var username string
		var on bool
		if len(sf.Args) < 2 || json.Unmarshal(sf.Args[0], &username) != nil || json.Unmarshal(sf.Args[1], &on) != nil {
			return
		}
		err = sink.AgentTyping(ctx, r.conv, username, on)
	case streamLivechatRoom:
		var ev struct {
			Type string `json:"type"`
			Data rcUser `json:"data"`
		}
		if json.Unmarshal(sf.Args[0], &ev) == nil && ev.Type == "agentData" && ev.Data.ID != "" {
			err = sink.AgentJoined(ctx, r.conv, agentOf(ev.Data))
		}
	}
	if err != nil && ctx.Err() == nil {
		// Not lost: the next resync (after a reconnect) applies it.
		c.setError(err)
		c.log.Warn().Err(err).Str("rid", r.rid).Msg("apply upstream message")
	}
}

// apply takes one upstream message in: an agent's message is posted, the
// agent's joining recorded, a close closes the conversation; the visitor's
// own messages (ours, echoed) are skipped.
func (c *Connector) apply(ctx context.Context, sink *relay.Sink, r room, m rcMessage) error {
	switch {
	case m.T == "livechat-close":
		var by *relay.Agent
		if m.Token == "" && m.U.ID != "" {
			a := agentOf(m.U)
			by = &a
		}
		c.unfollow(r.rid)
		return sink.Closed(ctx, r.conv, by)
	case m.T == "command" && m.Msg == "connected" && m.U.ID != "":
		return sink.AgentJoined(ctx, r.conv, agentOf(m.U))
	case m.T != "":
		return nil // other system messages: nothing the visitor needs
	case m.Token != "":
		return nil // the visitor's own message
	case m.ID == "" || m.U.ID == "":
		return nil
	}
	_, err := sink.Message(ctx, r.conv, agentOf(m.U), m.ID, m.Msg)
	return err
}

// Typing implements relay.Typer: the visitor's typing indicator goes to
// the room as the widget sends it, a stream-notify-room write of
// "<rid>/typing" [name, isTyping, {token}]. Rocket.Chat answers nothing
// useful; the call is not waited for.
func (c *Connector) Typing(_ context.Context, sink *relay.Sink, conv model.Conversation, on bool) error {
	c.mu.Lock()
	conn := c.live
	var r room
	found := false
	for _, rm := range c.rooms {
		if rm.conv == conv.ID {
			r, found = rm, true
			break
		}
	}
	c.mu.Unlock()
	if conn == nil || !found {
		return nil // not connected, or the room is not open upstream yet
	}
	id := "t" + strconv.FormatUint(conn.nextID.Add(1), 10)
	return conn.send(map[string]any{"msg": "method", "method": "stream-notify-room", "id": id,
		"params": []any{r.rid + "/typing", "Visitor", on, map[string]any{"token": r.token}}})
}
