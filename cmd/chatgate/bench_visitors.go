package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"chatgate/internal/jsondec"
)

// --- LiveChat v2 REST --------------------------------------------------------

type v2Visitor struct {
	idx     int
	r       *benchRun
	base    string // .../visitors/<id>/chat/
	sid     string
	cursor  uint64 // highest message_id seen
	next    int64
	pending int
	// conn, when set, carries the visitor's requests over its own
	// keep-alive connection (the load loop); else they go through the
	// run's shared http.Client (start, and the idle-poll phase that is
	// held against gin's hello-world measured with an http.Client).
	conn *httpConn
}

func newV2Visitor(ctx context.Context, r *benchRun, i int) (benchVisitor, error) {
	v := &v2Visitor{idx: i, r: r, base: r.o.visitorTarget(i) + "/visitors/bench-" + randHex(8) + "/chat/"}
	var out struct {
		SID string `json:"secured_session_id"`
	}
	form := url.Values{"licence_id": {r.o.Licence}, "welcome_message": {"Welcome!"}, "name": {"Bench Visitor " + strconv.Itoa(i)}}
	if err := v.post(ctx, "start", form, &out); err != nil {
		return nil, err
	}
	if out.SID == "" {
		return nil, errors.New("start: no secured_session_id")
	}
	v.sid = out.SID
	return v, nil
}

func (v *v2Visitor) post(ctx context.Context, action string, form url.Values, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, v.base+action, strings.NewReader(form.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-API-Version", "2")
	return doJSON(v.r.client, req, out)
}

type v2Poll struct {
	Events []struct {
		MessageID uint64 `json:"message_id"`
		Type      string `json:"type"`
		UserType  string `json:"user_type"`
		Text      string `json:"text"`
	} `json:"events"`
}

// v2NoEvents is the answer of a poll that found nothing, which the
// visitor need not decode.
const v2NoEvents = `{"events":[]}`

func (v *v2Visitor) poll(ctx context.Context) (v2Poll, error) {
	var p v2Poll
	q := "licence_id=" + url.QueryEscape(v.r.o.Licence) + "&secured_session_id=" + url.QueryEscape(v.sid) +
		"&last_message_id=" + strconv.FormatUint(v.cursor+1, 10)
	if v.conn != nil {
		body, err := v.conn.do(http.MethodGet, "get_pending_messages?"+q, "")
		if err != nil || string(body) == v2NoEvents {
			return p, err
		}
		if err := json.Unmarshal(body, &p); err != nil {
			return p, fmt.Errorf("get_pending_messages: %w", err)
		}
		return p, nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, v.base+"get_pending_messages?"+q, nil)
	if err != nil {
		return v2Poll{}, err
	}
	req.Header.Set("X-API-Version", "2")
	err = doJSON(v.r.client, req, &p)
	return p, err
}

// send posts one visitor message, form-encoded as v2 clients send it.
func (v *v2Visitor) send(text string) error {
	_, err := v.conn.do(http.MethodPost, "send_message", "licence_id="+url.QueryEscape(v.r.o.Licence)+
		"&secured_session_id="+url.QueryEscape(v.sid)+"&message="+url.QueryEscape(text))
	return err
}

func (v *v2Visitor) loop(ctx context.Context, r *benchRun) []time.Duration {
	var lat []time.Duration
	c, err := newV2Conn(ctx, v.base)
	if err != nil {
		r.fail(ctx, fmt.Errorf("v2 visitor %d: %w", v.idx, err))
		return nil
	}
	defer c.close()
	v.conn = c
	for ctx.Err() == nil {
		sent := false
		for v.pending < r.o.Window && ctx.Err() == nil {
			v.next++
			if err := v.send(benchText("bench", v.idx, v.next)); err != nil {
				r.fail(ctx, fmt.Errorf("v2 send_message: %w", err))
				sleepCtx(ctx, 100*time.Millisecond)
				continue
			}
			r.sent.Add(1)
			v.pending++
			sent = true
		}
		if sent {
			// A poll at once could only bring the visitor's own message
			// back (its answer needs the agent's round trip): a polling
			// client polls on its interval, sending or not.
			sleepCtx(ctx, r.o.PollInterval)
		}
		p, err := v.poll(ctx)
		if err != nil {
			r.fail(ctx, fmt.Errorf("v2 get_pending_messages: %w", err))
			sleepCtx(ctx, 100*time.Millisecond)
			continue
		}
		r.polls.Add(1)
		got := 0
		for _, e := range p.Events {
			if e.MessageID <= v.cursor {
				continue
			}
			v.cursor = e.MessageID
			if e.Type == "chat_closed" {
				r.fail(ctx, fmt.Errorf("v2 visitor %d: chat closed", v.idx))
				return lat
			}
			if e.Type != "message" || e.UserType != "agent" {
				continue
			}
			if _, _, sent, ok := parseBenchText("ack", e.Text); ok {
				lat = append(lat, time.Since(sent))
				r.a2v.Add(1)
				v.pending--
				got++
			}
		}
		if got == 0 {
			sleepCtx(ctx, r.o.PollInterval)
		}
	}
	return lat
}

func (v *v2Visitor) close() {}

// runV2PollPhase has one visitor per --visitors poll an idle chat as fast
// as it answers for --baseline-duration and returns polls/s: the figure
// to hold against gin's hello-world.
func runV2PollPhase(ctx context.Context, o benchOptions) float64 {
	r := &benchRun{o: o, client: newBenchHTTPClient(o.Visitors)}
	defer r.client.CloseIdleConnections()
	vs := make([]*v2Visitor, 0, o.Visitors)
	for i := range o.Visitors {
		v, err := newV2Visitor(ctx, r, i)
		if err != nil {
			return 0
		}
		vs = append(vs, v.(*v2Visitor))
	}
	pctx, cancel := context.WithTimeout(ctx, o.BaselineDuration)
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	for _, v := range vs {
		v.cursor = 1 << 40 // nothing new: the common poll of an idle widget
		wg.Go(func() {
			for pctx.Err() == nil {
				if _, err := v.poll(pctx); err == nil {
					r.polls.Add(1)
				}
			}
		})
	}
	wg.Wait()
	return float64(r.polls.Load()) / time.Since(start).Seconds()
}

func sleepCtx(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// --- Rocket.Chat livechat REST + DDP ----------------------------------------------

// rcVisitor is a Rocket.Chat livechat visitor: it receives on a DDP
// websocket (stream-room-messages) and sends either with REST POST
// livechat/message or, with --rocketchat-send ddp, with the DDP method
// sendMessageLivechat on that websocket.
//
// Which clients send which way (their public sources, checked): the
// @rocket.chat/livechat widget (the React widget this repository pins in
// web/livechat) and @rocket.chat/sdk's ApiLivechat.sendMessage post
// livechat/message; the Meteor-era livechat app that Rocket.Chat served
// from packages/rocketchat-livechat (its client's chatMessages called
// Meteor.call('sendMessageLivechat', msgObject, agent)) and the older
// Rocket.Chat.js.SDK livechat driver (asyncCall('sendMessageLivechat',
// {_id, rid, msg, token})) call the method. Rocket.Chat's server still
// registers the method (app/livechat/server/methods/sendMessageLivechat).
type rcVisitor struct {
	idx        int
	token, rid string
	conn       *websocket.Conn // DDP
	http       *httpConn       // REST sends of the load phase, dialled at set-up
	once       sync.Once

	// With --rocketchat-send ddp: sends are method calls on conn, whose
	// results the reader hands to the sender; wmu serialises conn's
	// writers (the sender and the reader's pongs).
	ddpSend bool
	wmu     sync.Mutex
	results chan rcResult
}

// rcResult is what a method's result frame said.
type rcResult struct {
	id  string
	err json.RawMessage
}

func newRCVisitor(ctx context.Context, r *benchRun, i int) (benchVisitor, error) {
	v := &rcVisitor{idx: i, token: randHex(16), ddpSend: r.o.RocketChatSend == "ddp"}
	// The widget registers and finds its room over the connection it then
	// sends on (a keep-alive connection that has served no request yet
	// would be closed by the server's ReadHeaderTimeout while the other
	// visitors are set up); it is closed with ctx if the load phase never
	// starts, by the load phase otherwise.
	hc, err := newHTTPConn(ctx, r.o.visitorTarget(i)+"/api/v1/livechat/", "", "application/json")
	if err != nil {
		return nil, err
	}
	reg, err := json.Marshal(map[string]any{"visitor": map[string]any{"token": v.token, "name": "Bench Visitor " + strconv.Itoa(i)}})
	if err != nil {
		return nil, err
	}
	if _, err := hc.do(http.MethodPost, "visitor", string(reg)); err != nil {
		hc.close()
		return nil, err
	}
	body, err := hc.do(http.MethodGet, "room?token="+url.QueryEscape(v.token), "")
	if err != nil {
		hc.close()
		return nil, err
	}
	var room struct {
		Room struct {
			ID string `json:"_id"`
		} `json:"room"`
	}
	if err := json.Unmarshal(body, &room); err != nil {
		hc.close()
		return nil, fmt.Errorf("livechat/room: %w", err)
	}
	if v.rid = room.Room.ID; v.rid == "" {
		hc.close()
		return nil, errors.New("livechat/room: no room id")
	}
	conn, _, err := benchDialer.DialContext(ctx, wsBase(r.o.visitorTarget(i))+"/websocket", nil)
	if err != nil {
		hc.close()
		return nil, err
	}
	if err := ddpSetup(conn, v.token, v.rid); err != nil {
		conn.Close()
		hc.close()
		return nil, err
	}
	v.conn, v.http = conn, hc
	return v, nil
}

type ddpFrame struct {
	Msg    string          `json:"msg"`
	ID     string          `json:"id,omitempty"`
	Result json.RawMessage `json:"result,omitempty"`
	Subs   []string        `json:"subs,omitempty"`
	Error  json.RawMessage `json:"error,omitempty"`
	Fields struct {
		Args []struct {
			Msg string `json:"msg"`
			T   string `json:"t"`
		} `json:"args"`
	} `json:"fields"`
}

// ddpSetup connects and, if rid is set, subscribes to the room's messages.
func ddpSetup(conn *websocket.Conn, token, rid string) error {
	_ = conn.SetReadDeadline(time.Now().Add(15 * time.Second))
	defer conn.SetReadDeadline(time.Time{})
	if err := conn.WriteMessage(websocket.TextMessage, []byte(`{"msg":"connect","version":"1","support":["1","pre2","pre1"]}`)); err != nil {
		return err
	}
	for {
		_, b, err := conn.ReadMessage()
		if err != nil {
			return err
		}
		var f ddpFrame
		if json.Unmarshal(b, &f) != nil {
			continue
		}
		switch f.Msg {
		case "ping":
			_ = conn.WriteMessage(websocket.TextMessage, []byte(`{"msg":"pong"}`))
		case "failed", "error", "nosub":
			return fmt.Errorf("ddp: %.300s", b)
		case "ready":
			return nil
		case "connected":
			if rid == "" {
				return nil
			}
			sub, _ := json.Marshal(map[string]any{"msg": "sub", "id": "s1", "name": "stream-room-messages",
				"params": []any{rid, map[string]any{"useCollection": false, "args": []any{map[string]any{"token": token, "visitorToken": token}}}}})
			if err := conn.WriteMessage(websocket.TextMessage, sub); err != nil {
				return err
			}
		}
	}
}

func (v *rcVisitor) loop(ctx context.Context, r *benchRun) []time.Duration {
	slots := r.slotsFor()
	pace := r.pacer(v.idx)
	var lat []time.Duration
	done := make(chan struct{})
	// Room for a few stray results (of no call, or repeated) besides the
	// awaited one; more are a server fault, counted.
	v.results = make(chan rcResult, 8)
	go func() { // reader: agent replies arrive on stream-room-messages
		defer close(done)
		var buf bytes.Buffer // reused: frames are not kept
		for {
			b, err := readFrame(v.conn, &buf)
			if err != nil {
				r.fail(ctx, fmt.Errorf("ddp read: %w", err))
				return
			}
			// Only pings, room closes, the agent's answers and (sending
			// over DDP) method results matter; the echo of the visitor's
			// own message is skipped undecoded (see rtmWorth for why).
			if !bytes.Contains(b, []byte(`"ack|`)) && !bytes.Contains(b, []byte(`"msg":"ping"`)) && !bytes.Contains(b, []byte(`livechat-close`)) &&
				(!v.ddpSend || !bytes.Contains(b, []byte(`"msg":"result"`))) {
				continue
			}
			// jsondec: encoding/json's result (it validates with
			// encoding/json's scanner first) at a fraction of its cost; the
			// in-process bench shares the CPU with the gateway.
			var f ddpFrame
			if err := jsondec.Unmarshal(b, &f); err != nil {
				r.fail(ctx, fmt.Errorf("ddp: bad frame: %w", err))
				continue
			}
			switch f.Msg {
			case "ping":
				if err := v.write([]byte(`{"msg":"pong"}`)); err != nil {
					r.fail(ctx, err)
				}
			case "result":
				select {
				case v.results <- rcResult{id: f.ID, err: f.Error}:
				default:
					r.fail(ctx, fmt.Errorf("ddp: result %q of no call", f.ID))
				}
			case "changed":
				for _, m := range f.Fields.Args {
					if m.T == "livechat-close" {
						r.fail(ctx, fmt.Errorf("rocketchat visitor %d: room closed", v.idx))
					}
					if _, _, sent, ok := parseBenchText("ack", m.Msg); ok {
						lat = append(lat, time.Since(sent))
						r.a2v.Add(1)
						select {
						case <-slots:
						default:
						}
					}
				}
			}
		}
	}()
	hc := v.http
	hc.use(ctx)
	defer hc.close()
	// The end of the load phase closes the websocket under a sender or
	// reader blocked on it (a method frame's write has no deadline), as
	// hc.use does for the REST connection.
	stopClose := context.AfterFunc(ctx, v.close)
	defer stopClose()
	var n int64
	for ctx.Err() == nil {
		if !pace(ctx) {
			continue
		}
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			continue
		}
		n++
		var err error
		if v.ddpSend {
			err = v.sendDDP(ctx, n, benchText("bench", v.idx, n), done)
		} else {
			err = v.send(hc, benchText("bench", v.idx, n))
		}
		if err != nil {
			r.fail(ctx, fmt.Errorf("livechat/message: %w", err))
			<-slots
			sleepCtx(ctx, 100*time.Millisecond)
			continue
		}
		r.sent.Add(1)
	}
	v.close()
	<-done
	return lat
}

func (v *rcVisitor) close() { v.once.Do(func() { v.conn.Close() }) }

// write sends one frame on the visitor's websocket.
func (v *rcVisitor) write(b []byte) error {
	v.wmu.Lock()
	defer v.wmu.Unlock()
	return v.conn.WriteMessage(websocket.TextMessage, b)
}

// rcMethodSend is sendMessageLivechat's frame as the older clients send
// it: one message object with a client-chosen _id (Meteor's Random.id()).
type rcMethodSend struct {
	Msg    string   `json:"msg"`
	Method string   `json:"method"`
	Params []rcSend `json:"params"`
	ID     string   `json:"id"`
}

// sendDDP calls sendMessageLivechat for message n and waits for its
// result, which must not be an error: like a REST send, the next message
// goes out after the answer. done closes when the reader stops.
func (v *rcVisitor) sendDDP(ctx context.Context, n int64, text string, done <-chan struct{}) error {
	id := strconv.FormatInt(n, 10)
	frame, err := json.Marshal(rcMethodSend{Msg: "method", Method: "sendMessageLivechat", ID: id,
		Params: []rcSend{{MsgID: rcMessageID(), Token: v.token, RID: v.rid, Msg: text}}})
	if err != nil {
		return err
	}
	if err := v.write(frame); err != nil {
		return err
	}
	for {
		select {
		case res := <-v.results:
			if res.id != id {
				continue // an earlier call's late result
			}
			if len(res.err) > 0 {
				return fmt.Errorf("sendMessageLivechat: %.300s", res.err)
			}
			return nil
		case <-done:
			return errors.New("sendMessageLivechat: the DDP connection closed before the result")
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// rcMessageID is a message _id as Meteor's Random.id() makes them: 17
// characters of its alphabet.
func rcMessageID() string {
	const alphabet = "23456789ABCDEFGHJKLMNPQRSTWXYZabcdefghijkmnopqrstuvwxyz"
	var b [17]byte
	for i := range b {
		b[i] = alphabet[mrand.IntN(len(alphabet))]
	}
	return string(b[:])
}

// rcSend is the body of POST livechat/message as the widget sends it.
type rcSend struct {
	MsgID string `json:"_id,omitempty"` // DDP sends only: REST lets the server pick
	Token string `json:"token"`
	RID   string `json:"rid"`
	Msg   string `json:"msg"`
}

// rcSendOK is the end of a successful livechat/message answer as chatgate
// writes it (members in key order, as encoding/json: "message" then
// "success"). An answer that does not end so is decoded in full.
const rcSendOK = `,"success":true}`

// send posts one visitor message over the visitor's own connection and
// checks that the answer says success.
func (v *rcVisitor) send(hc *httpConn, text string) error {
	body, err := json.Marshal(rcSend{Token: v.token, RID: v.rid, Msg: text})
	if err != nil {
		return err
	}
	out, err := hc.do(http.MethodPost, "message", string(body))
	if err != nil || bytes.HasSuffix(out, []byte(rcSendOK)) {
		return err
	}
	var resp struct {
		Success bool `json:"success"`
	}
	if err := json.Unmarshal(out, &resp); err != nil {
		return fmt.Errorf("livechat/message: %w", err)
	}
	if !resp.Success {
		return fmt.Errorf("success false: %.200s", out)
	}
	return nil
}

// readFrame reads the next websocket message into buf (reset first) and
// returns its bytes, valid until the next call: a reader that keeps
// nothing of a frame need not allocate one per frame as ReadMessage does.
func readFrame(conn *websocket.Conn, buf *bytes.Buffer) ([]byte, error) {
	_, rd, err := conn.NextReader()
	if err != nil {
		return nil, err
	}
	buf.Reset()
	if _, err := buf.ReadFrom(rd); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// --- LiveChat customer RTM ------------------------------------------------------

type customerVisitor struct {
	idx    int
	id     string
	chatID string
	conn   *websocket.Conn
	once   sync.Once
}

// customerToken gets a fresh customer's access token (cookie grant).
func customerToken(ctx context.Context, r *benchRun, base string) (token, id string, err error) {
	var tok struct {
		AccessToken string `json:"access_token"`
		EntityID    string `json:"entity_id"`
	}
	err = postJSON(ctx, r.client, base+"/v2/customer/token", map[string]any{"grant_type": "cookie", "response_type": "token",
		"client_id": "chatgate-bench", "organization_id": r.o.OrganizationID}, &tok)
	if err == nil && tok.AccessToken == "" {
		err = errors.New("customer token: no access_token")
	}
	return tok.AccessToken, tok.EntityID, err
}

func dialCustomer(ctx context.Context, r *benchRun, base, token string) (*websocket.Conn, error) {
	conn, _, err := benchDialer.DialContext(ctx, wsBase(base)+"/v3.5/customer/rtm/ws?organization_id="+url.QueryEscape(r.o.OrganizationID), nil)
	if err != nil {
		return nil, err
	}
	if _, err := rtmCall(conn, "login", "login", map[string]any{"token": "Bearer " + token}); err != nil {
		conn.Close()
		return nil, err
	}
	return conn, nil
}

func newCustomerVisitor(ctx context.Context, r *benchRun, i int) (benchVisitor, error) {
	token, id, err := customerToken(ctx, r, r.o.visitorTarget(i))
	if err != nil {
		return nil, err
	}
	conn, err := dialCustomer(ctx, r, r.o.visitorTarget(i), token)
	if err != nil {
		return nil, err
	}
	p, err := rtmCall(conn, "start", "start_chat", map[string]any{"active": true, "chat": map[string]any{"thread": map[string]any{
		"events": []any{map[string]any{"type": "message", "text": "hello"}}}}})
	if err != nil {
		conn.Close()
		return nil, err
	}
	var started struct {
		ChatID string `json:"chat_id"`
	}
	if json.Unmarshal(p, &started); started.ChatID == "" {
		conn.Close()
		return nil, fmt.Errorf("start_chat: no chat_id in %.200s", p)
	}
	return &customerVisitor{idx: i, id: id, chatID: started.ChatID, conn: conn}, nil
}

func (v *customerVisitor) loop(ctx context.Context, r *benchRun) []time.Duration {
	slots := r.slotsFor()
	pace := r.pacer(v.idx)
	var lat []time.Duration
	done := make(chan struct{})
	go func() {
		defer close(done)
		rd := frameReader{conn: v.conn}
		for {
			b, err := rd.next()
			if err != nil {
				r.fail(ctx, fmt.Errorf("customer read: %w", err))
				return
			}
			if !rtmWorth(b, "ack", "chat_deactivated", "customer_disconnected") {
				continue
			}
			p, f, err := decodeRTMPush(b)
			switch {
			case err != nil:
				r.fail(ctx, fmt.Errorf("customer: bad frame: %w", err))
			case f.Type == "response":
				if f.Success != nil && !*f.Success {
					r.fail(ctx, fmt.Errorf("customer %s: %.200s", f.Action, f.Payload))
				}
			case p != nil:
				if p.Event.Type != "message" || p.Event.AuthorID == v.id {
					continue
				}
				if _, _, sent, ok := parseBenchText("ack", p.Event.Text); ok {
					lat = append(lat, time.Since(sent))
					r.a2v.Add(1)
					select {
					case <-slots:
					default:
					}
				}
			case f.Action == "chat_deactivated" || f.Action == "customer_disconnected":
				r.fail(ctx, fmt.Errorf("customer %d: %s %.200s", v.idx, f.Action, f.Payload))
			}
		}
	}()
	var n int64
	for ctx.Err() == nil {
		if !pace(ctx) {
			continue
		}
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			continue
		}
		n++
		if err := v.conn.WriteMessage(websocket.TextMessage, sendEventFrame("c"+strconv.FormatInt(n, 10), v.chatID, benchText("bench", v.idx, n))); err != nil {
			r.fail(ctx, fmt.Errorf("customer write: %w", err))
			break
		}
		r.sent.Add(1)
	}
	v.close()
	<-done
	return lat
}

func (v *customerVisitor) close() { v.once.Do(func() { v.conn.Close() }) }
