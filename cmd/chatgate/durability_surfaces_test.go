//go:build unix

package main

// durability_surfaces_test.go: the Rocket.Chat REST and LiveChat customer
// RTM load of TestKill9Durability. Each writer sends one message at a time
// with an id it chose (Rocket.Chat `_id`, LiveChat `custom_id`); a send the
// kill interrupted stays pending and is retried with the same id, first
// thing in the next round, so the stored history must be exactly the
// acknowledged ids in order, plus at most the last pending one.

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// idWriter is one writer's ids: acknowledged in order, and the one sent
// but not (yet) acknowledged.
type idWriter struct {
	name    string
	n       int
	acked   []string
	pending string
	retries int // sends of an id a kill left unacknowledged
	// onAck, if set, is called at every acknowledgement (killRound.acked).
	onAck func()
}

// next is the id to send: the pending one again, else a new one.
func (w *idWriter) next() string {
	if w.pending == "" {
		w.n++
		w.pending = fmt.Sprintf("kill-%s-%06d", w.name, w.n)
	} else {
		w.retries++
	}
	return w.pending
}

func (w *idWriter) ack(id string) {
	w.acked = append(w.acked, id)
	w.pending = ""
	if w.onAck != nil {
		w.onAck()
	}
}

// check compares the stored ids (in stored order) with what was
// acknowledged: every acknowledged id exactly once and in order, and
// nothing else but possibly the last pending id at the end.
func (w *idWriter) check(stored []string) error {
	seen := map[string]int{}
	for _, id := range stored {
		seen[id]++
		if seen[id] > 1 {
			return fmt.Errorf("%s: %s stored %d times", w.name, id, seen[id])
		}
	}
	if len(stored) < len(w.acked) {
		return fmt.Errorf("%s: %d stored, %d acknowledged", w.name, len(stored), len(w.acked))
	}
	for i, id := range w.acked {
		if stored[i] != id {
			return fmt.Errorf("%s: stored[%d] = %s, acknowledged %s", w.name, i, stored[i], id)
		}
	}
	switch extra := stored[len(w.acked):]; {
	case len(extra) == 0:
	case len(extra) == 1 && extra[0] == w.pending:
	default:
		return fmt.Errorf("%s: stored but never sent or acknowledged: %v (pending %q)", w.name, extra, w.pending)
	}
	return nil
}

// errRefused is a protocol answer other than success: a test failure, not
// a kill.
var errRefused = errors.New("refused")

// killTimeout bounds one request of the kill tests' writers. A kill ends
// the requests in flight at once (the kernel resets the sockets); this only
// bounds a request a loaded machine is slow to answer, which the writer
// then sends again.
const killTimeout = 30 * time.Second

// retryPause is a writer's pause after a transport error before it sends
// again: the gateway was killed (and the round's stop follows at once) or,
// on a loaded machine, a request timed out. It reports whether the round
// goes on.
func retryPause(stop <-chan struct{}) bool {
	select {
	case <-stop:
		return false
	case <-time.After(20 * time.Millisecond):
		return true
	}
}

// --- one round of load -------------------------------------------------------------

// Surfaces of the kill tests' writers, as killRound names them.
const (
	surfaceV2       = "LiveChat v2"
	surfaceRC       = "Rocket.Chat REST"
	surfaceCustomer = "LiveChat customer RTM"
)

// killRound is one round of a kill test's load: its writers send until
// stop closes, and it knows when each surface had its first message of the
// round acknowledged.
type killRound struct {
	stop    chan struct{}
	wg      sync.WaitGroup
	first   map[string]*latch
	refused *latch
	mu      sync.Mutex
	errs    []error
}

// latch is closed once, by the first fire.
type latch struct {
	once sync.Once
	c    chan struct{}
}

func newLatch() *latch { return &latch{c: make(chan struct{})} }
func (s *latch) fire() { s.once.Do(func() { close(s.c) }) }

func newKillRound() *killRound {
	r := &killRound{stop: make(chan struct{}), refused: newLatch(), first: map[string]*latch{}}
	for _, s := range []string{surfaceV2, surfaceRC, surfaceCustomer} {
		r.first[s] = newLatch()
	}
	return r
}

// acked is the callback a writer of surface calls at each acknowledgement.
func (r *killRound) acked(surface string) func() { return r.first[surface].fire }

// run runs one writer until it returns; an error (a refusal) is kept for
// errors.
func (r *killRound) run(name string, writer func(stop <-chan struct{}) error) {
	r.wg.Go(func() {
		if err := writer(r.stop); err != nil {
			r.mu.Lock()
			r.errs = append(r.errs, fmt.Errorf("%s: %w", name, err))
			r.mu.Unlock()
			r.refused.fire()
		}
	})
}

// awaitEverySurface waits until every surface had a message acknowledged
// in this round, or a writer was refused (the test fails on that later),
// for at most within. On a loaded machine dialling and logging in can take
// longer than a kill test's random delay before the kill, and a surface
// whose writers never get an acknowledgement proves nothing.
func (r *killRound) awaitEverySurface(within time.Duration) error {
	deadline := time.After(within)
	for _, s := range []string{surfaceV2, surfaceRC, surfaceCustomer} {
		select {
		case <-r.first[s].c:
		case <-r.refused.c:
			return nil
		case <-deadline:
			return fmt.Errorf("no %s message acknowledged in %v", s, within)
		}
	}
	return nil
}

// beforeKill decides when round's kill comes: in every other round only
// after every surface had a message acknowledged (awaitEverySurface, at
// most waitLimit), then, as in the other rounds, after a random delay of
// least plus up to spread, so that logins and handshakes are killed too.
// It returns awaitEverySurface's error; the kill then comes at once.
func (r *killRound) beforeKill(round int, least, spread time.Duration) error {
	if round%2 == 1 {
		if err := r.awaitEverySurface(waitLimit); err != nil {
			return err
		}
	}
	time.Sleep(least + time.Duration(rand.Int64N(int64(spread))))
	return nil
}

// end stops the writers and waits for them; it returns their refusals.
func (r *killRound) end() []error {
	close(r.stop)
	r.wg.Wait()
	return r.errs
}

// --- LiveChat v2 -------------------------------------------------------------------

// v2Sender is a LiveChat v2 visitor of a kill test (id vid, session sid):
// it sends new texts (from next) until the round stops, and appends each
// acknowledged one to acked.
type v2Sender struct {
	vid, sid string
	next     func() string
	mu       *sync.Mutex // guards acked
	acked    *[]string
	onAck    func()
}

// send sends through base until stop closes. A transport error (the kill,
// or a timeout on a loaded machine) leaves that text unacknowledged and the
// visitor goes on with a new one; a refusal is returned.
func (v *v2Sender) send(client *http.Client, base string, stop <-chan struct{}) error {
	for {
		select {
		case <-stop:
			return nil
		default:
		}
		text := v.next()
		_, err := v2Post(client, base, v.vid, "send_message", url.Values{"secured_session_id": {v.sid}, "message": {text}})
		if errors.Is(err, errRefused) {
			return err
		}
		if err != nil {
			if !retryPause(stop) {
				return nil
			}
			continue
		}
		v.mu.Lock()
		*v.acked = append(*v.acked, text)
		v.mu.Unlock()
		v.onAck()
	}
}

// --- Rocket.Chat REST ---------------------------------------------------------------

type rcWriter struct {
	idWriter
	token, rid string
}

func rcJSON(client *http.Client, method, u string, hdr map[string]string, body any) (map[string]any, error) {
	var rd *strings.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("encode: %w", err)
		}
		rd = strings.NewReader(string(b))
	} else {
		rd = strings.NewReader("")
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		return nil, fmt.Errorf("request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, u, err)
	}
	defer resp.Body.Close()
	var m map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		return nil, fmt.Errorf("%s %s: body: %w", method, u, err)
	}
	if resp.StatusCode != 200 {
		return m, fmt.Errorf("%s %s: %d %v: %w", method, u, resp.StatusCode, m, errRefused)
	}
	return m, nil
}

// setup registers the visitor and opens its room (once).
func (w *rcWriter) setup(client *http.Client, base string) error {
	if w.rid != "" {
		return nil
	}
	if _, err := rcJSON(client, "POST", base+"/api/v1/livechat/visitor", nil, map[string]any{"visitor": map[string]any{"token": w.token, "name": w.name}}); err != nil {
		return err
	}
	m, err := rcJSON(client, "GET", base+"/api/v1/livechat/room?token="+url.QueryEscape(w.token), nil, nil)
	if err != nil {
		return err
	}
	room, _ := m["room"].(map[string]any)
	rid, _ := room["_id"].(string)
	if rid == "" {
		return fmt.Errorf("livechat/room: %v: %w", m, errRefused)
	}
	w.rid = rid
	return nil
}

// send sends until stop is closed or a request fails; a transport error
// (the kill) ends the round quietly, anything else is returned.
func (w *rcWriter) send(client *http.Client, base string, stop <-chan struct{}) error {
	for {
		select {
		case <-stop:
			return nil
		default:
		}
		id := w.next()
		m, err := rcJSON(client, "POST", base+"/api/v1/livechat/message", nil, map[string]any{"token": w.token, "rid": w.rid, "msg": id, "_id": id})
		if errors.Is(err, errRefused) {
			return err
		}
		if err != nil {
			// Killed mid-request or timed out: the id stays pending and
			// is sent again.
			if !retryPause(stop) {
				return nil
			}
			continue
		}
		if msg, _ := m["message"].(map[string]any); msg["_id"] != id {
			return fmt.Errorf("livechat/message %s answered %v", id, m)
		}
		w.ack(id)
	}
}

// stored reads the room's whole history as an agent (chat.syncMessages,
// every event in order) and returns the writer's ids.
func (w *rcWriter) stored(client *http.Client, base string, hdr map[string]string) ([]string, error) {
	m, err := rcJSON(client, "GET", base+"/api/v1/chat.syncMessages?roomId="+url.QueryEscape(w.rid)+"&lastUpdate=2000-01-01T00:00:00.000Z", hdr, nil)
	if err != nil {
		return nil, err
	}
	res, _ := m["result"].(map[string]any)
	upd, _ := res["updated"].([]any)
	var ids []string
	for _, x := range upd {
		msg, _ := x.(map[string]any)
		id, _ := msg["_id"].(string)
		if strings.HasPrefix(id, "kill-") {
			if msg["msg"] != id {
				return nil, fmt.Errorf("message %s has text %v", id, msg["msg"])
			}
			ids = append(ids, id)
		}
	}
	return ids, nil
}

// --- LiveChat customer RTM -------------------------------------------------------------

type lcWriter struct {
	idWriter
	token, chatID, threadID string
}

// lcConn is one customer RTM connection; call sends a request and waits
// for its response, skipping pushes.
type lcConn struct {
	conn *websocket.Conn
	n    int
}

func dialKillCustomer(base, token string) (*lcConn, error) {
	ws := "ws" + strings.TrimPrefix(base, "http") + "/v3.5/customer/rtm/ws?organization_id=" + durabilityOrg
	conn, _, err := websocket.DefaultDialer.Dial(ws, nil)
	if err != nil {
		return nil, fmt.Errorf("dial: %w", err)
	}
	c := &lcConn{conn: conn}
	if _, err := c.call("login", map[string]any{"token": "Bearer " + token}); err != nil {
		conn.Close()
		return nil, err
	}
	return c, nil
}

func (c *lcConn) call(action string, payload any) (map[string]any, error) {
	c.n++
	rid := fmt.Sprintf("r%d", c.n)
	_ = c.conn.SetWriteDeadline(time.Now().Add(killTimeout))
	if err := c.conn.WriteJSON(map[string]any{"request_id": rid, "action": action, "payload": payload}); err != nil {
		return nil, fmt.Errorf("%s: write: %w", action, err)
	}
	for {
		_ = c.conn.SetReadDeadline(time.Now().Add(killTimeout))
		_, b, err := c.conn.ReadMessage()
		if err != nil {
			return nil, fmt.Errorf("%s: read: %w", action, err)
		}
		var f map[string]any
		if err := json.Unmarshal(b, &f); err != nil {
			return nil, fmt.Errorf("%s: frame: %w", action, err)
		}
		if f["type"] != "response" || f["request_id"] != rid {
			continue
		}
		p, _ := f["payload"].(map[string]any)
		if f["success"] != true {
			return p, fmt.Errorf("%s: %s: %w", action, b, errRefused)
		}
		return p, nil
	}
}

// setup gets a token and starts the customer's chat (once).
func (w *lcWriter) setup(client *http.Client, base string) error {
	if w.threadID != "" {
		return nil
	}
	if w.token == "" {
		m, err := rcJSON(client, "POST", base+"/v2/customer/token", nil, map[string]any{"grant_type": "cookie"})
		if err != nil {
			return err
		}
		w.token, _ = m["access_token"].(string)
		w.chatID, _ = m["entity_id"].(string)
	}
	c, err := dialKillCustomer(base, w.token)
	if err != nil {
		return err
	}
	defer c.conn.Close()
	p, err := c.call("start_chat", map[string]any{})
	if err != nil {
		return err
	}
	w.threadID, _ = p["thread_id"].(string)
	if p["chat_id"] != w.chatID || w.threadID == "" {
		return fmt.Errorf("start_chat: %v: %w", p, errRefused)
	}
	return nil
}

// send sends until stop closes, one connection after another: a
// transport error (the kill, or a timeout on a loaded machine) leaves the
// id pending, and the writer dials again and sends it again; a refusal is
// returned.
func (w *lcWriter) send(base string, stop <-chan struct{}) error {
	for {
		err := w.sendOn(base, stop)
		if errors.Is(err, errRefused) {
			return err
		}
		if err == nil || !retryPause(stop) {
			return nil
		}
	}
}

// sendOn sends on one connection until stop closes (nil) or it fails.
func (w *lcWriter) sendOn(base string, stop <-chan struct{}) error {
	c, err := dialKillCustomer(base, w.token)
	if err != nil {
		return err
	}
	defer c.conn.Close()
	for {
		select {
		case <-stop:
			return nil
		default:
		}
		id := w.next()
		p, err := c.call("send_event", map[string]any{"chat_id": w.chatID, "event": map[string]any{"type": "message", "text": id, "custom_id": id}})
		if err != nil {
			return err
		}
		if eid, _ := p["event_id"].(string); !strings.HasPrefix(eid, w.threadID+"_") {
			return fmt.Errorf("send_event %s answered %v: %w", id, p, errRefused)
		}
		w.ack(id)
	}
}

// stored reads the thread's events and returns the writer's custom ids;
// it also checks that event ids are unique.
func (w *lcWriter) stored(base string) ([]string, int, error) {
	c, err := dialKillCustomer(base, w.token)
	if err != nil {
		return nil, 0, err
	}
	defer c.conn.Close()
	p, err := c.call("get_chat", map[string]any{"chat_id": w.chatID, "thread_id": w.threadID})
	if err != nil {
		return nil, 0, err
	}
	th, _ := p["thread"].(map[string]any)
	evs, _ := th["events"].([]any)
	seen := map[string]bool{}
	var ids []string
	for _, x := range evs {
		e, _ := x.(map[string]any)
		eid, _ := e["id"].(string)
		if eid == "" || seen[eid] {
			return nil, 0, fmt.Errorf("%s: event id %q missing or repeated", w.name, eid)
		}
		seen[eid] = true
		if cid, _ := e["custom_id"].(string); strings.HasPrefix(cid, "kill-") {
			if e["text"] != cid {
				return nil, 0, fmt.Errorf("event %s has text %v", cid, e["text"])
			}
			ids = append(ids, cid)
		}
	}
	return ids, len(evs), nil
}
