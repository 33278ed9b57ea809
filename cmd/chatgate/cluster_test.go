//go:build unix

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/jackc/pgx/v5"

	"chatgate/adapters/livechat/webhooks"
	"chatgate/store/postgres/pgtest"
)

// node is one gateway process of a multi-node test.
type node struct {
	name string
	cmd  *exec.Cmd
	addr string
	log  *os.File
}

// clusterStore returns a store URL for a fresh schema on the test server
// (the test is skipped without CHATGATE_TEST_PG).
func clusterStore(t *testing.T) string {
	t.Helper()
	base := pgtest.URL(t)
	schema := pgtest.Schema(t, base)
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("%s: %v", pgtest.Env, err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// startNode starts a gateway process on store; its log goes to a file in
// the test's directory, shown when the test fails.
func startNode(t *testing.T, name, cfg, store string) *node {
	t.Helper()
	logf, err := os.Create(filepath.Join(t.TempDir(), name+".log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestServeChild$", "-test.v=false")
	cmd.Env = append(os.Environ(), "CHATGATE_KILL_CHILD_CONFIG="+cfg, "CHATGATE_KILL_CHILD_STORE="+store,
		"CHATGATE_KILL_CHILD_NODE="+name)
	cmd.Stderr = logf
	if _, err := cmd.StdinPipe(); err != nil { // closed when the test process exits
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	n := &node{name: name, cmd: cmd, log: logf}
	t.Cleanup(func() {
		n.kill()
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("--- %s log (last 4 KiB) ---\n%s", name, tail(b, 4096))
		}
	})
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "LISTENING "); ok {
				lines <- a
			}
		}
		close(lines)
	}()
	select {
	case a, ok := <-lines:
		if !ok {
			b, _ := os.ReadFile(logf.Name())
			t.Fatalf("node %s exited before listening:\n%s", name, tail(b, 4096))
		}
		n.addr = a
	case <-time.After(60 * time.Second):
		t.Fatalf("node %s did not listen in time", name)
	}
	return n
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// kill ends the node with SIGKILL: no goodbye, no lease released.
func (n *node) kill() {
	if n.cmd.ProcessState != nil {
		return
	}
	_ = n.cmd.Process.Signal(syscall.SIGKILL)
	_ = n.cmd.Wait()
}

// clusterConfig is a gateway config with one agent and short leases.
func clusterConfig(t *testing.T, extra string) string {
	t.Helper()
	cfg := "license:\n  id: \"" + testLicence + "\"\n  organization_id: " + durabilityOrg + "\nstore:\n  lease_ttl: 3s\n" +
		"livechat:\n  v2:\n    poll_timeout: 1h\nlog:\n  level: info\n" +
		"agents:\n  - id: jane@example.com\n    name: Jane Doe\n    admin: true\n    token: " + agentToken + "\n    password: " + agentPassword + "\n" + extra
	p := filepath.Join(t.TempDir(), "chatgate.yaml")
	if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestClusterV2VisitorSurvivesNodeKill is the must-show of several nodes: two
// gateway processes on one PostgreSQL database; a v2 visitor started on
// node A is served by an agent logged in on node B (every message both
// ways crosses nodes); after kill -9 of node A the same v2 session goes on
// through node B with its history intact.
func TestClusterV2VisitorSurvivesNodeKill(t *testing.T) {
	store := clusterStore(t)
	cfg := clusterConfig(t, "")
	a := startNode(t, "node-a", cfg, store)
	b := startNode(t, "node-b", cfg, store)

	ag := dialAgent(t, b.addr)
	ag.call("login", map[string]any{"token": "Bearer " + agentToken})

	v := &visitor{t: t, base: "http://" + a.addr, id: "cluster-visitor-1"}
	v.start()
	// The chat reaches the agent on the other node (routed there at once
	// if node A already knew the agent online, else from the queue when it
	// learns).
	inc := ag.next("push", "incoming_chat")
	chat := inc["payload"].(map[string]any)["chat"].(map[string]any)
	chatID := chat["id"].(string)

	ag.call("send_event", map[string]any{"chat_id": chatID, "event": map[string]any{"type": "message", "text": "Hello from node B"}})
	waitV2Text(t, v, "Hello from node B")

	sent := []string{"one", "two", "three"}
	for _, m := range sent {
		v.send(m)
	}
	agentReceives(t, ag, sent)

	// Node A dies; the visitor's next requests land on node B.
	a.kill()
	v.base = "http://" + b.addr
	evs := v.poll()
	var texts []string
	for _, e := range evs {
		if e["type"] == "message" {
			texts = append(texts, e["text"].(string))
		}
	}
	want := []string{"Welcome!", "Hello from node B", "one", "two", "three"}
	if strings.Join(texts, "|") != strings.Join(want, "|") {
		t.Fatalf("history through node B: %q, want %q", texts, want)
	}
	v.send("four")
	agentReceives(t, ag, []string{"four"})
	ag.call("send_event", map[string]any{"chat_id": chatID, "event": map[string]any{"type": "message", "text": "still here"}})
	waitV2Text(t, v, "still here")
}

// waitV2Text polls until the visitor has seen a message with text.
func waitV2Text(t *testing.T, v *visitor, text string) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for time.Now().Before(deadline) {
		for _, e := range v.poll() {
			if e["type"] == "message" && e["text"] == text {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("visitor never saw %q", text)
}

// agentReceives waits for the visitor's messages, in order, as agent RTM
// incoming_event pushes.
func agentReceives(t *testing.T, ag *agent, want []string) {
	t.Helper()
	for _, w := range want {
		for {
			p := ag.next("push", "incoming_event")["payload"].(map[string]any)
			ev := p["event"].(map[string]any)
			if ev["type"] != "message" || ev["author_id"] == "jane@example.com" {
				continue
			}
			if ev["text"] != w {
				t.Fatalf("agent got %q, want %q", ev["text"], w)
			}
			break
		}
	}
}

// v2Post sends one v2 form request.
func v2Post(client *http.Client, base, vid, action string, form url.Values) (map[string]any, error) {
	form.Set("licence_id", testLicence)
	req, _ := http.NewRequest(http.MethodPost, base+"/visitors/"+vid+"/chat/"+action, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-API-Version", "2")
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var m map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		return nil, err
	}
	if resp.StatusCode != 200 {
		return nil, fmt.Errorf("%s: %d %v: %w", action, resp.StatusCode, m, errRefused)
	}
	return m, nil
}

// TestClusterKill9 runs a three-node deployment under load on every visitor
// surface (LiveChat v2 REST, Rocket.Chat REST, LiveChat customer RTM) and
// SIGKILLs a random node 20 times, restarting it each time. Every writer
// sends each round through a node that survives it... or not: writers pick
// any node, and a writer on the killed node carries on through another one
// in the next round (v2 sessions and customer tokens work on any node; a
// send the kill interrupted is retried with the same id). In the end every
// acknowledged message is present exactly once and in order, read through
// a node that was never the one it was sent to. Then the node of the only
// agent is killed: once its lease expires the agent is offline and a new
// chat is queued, not routed to it.
func TestClusterKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("kills nodes of a deployment 20 times")
	}
	store := clusterStore(t)
	cfg := clusterConfig(t, "")
	nodes := make([]*node, 3)
	for i := range nodes {
		nodes[i] = startNode(t, fmt.Sprintf("n%d", i), cfg, store)
	}
	const (
		rounds    = 20
		visitors  = 3
		rcWriters = 2
		lcWriters = 2
	)
	client := &http.Client{Timeout: killTimeout}
	// An agent online (on node 0), so that Rocket.Chat rooms open.
	ag := dialAgent(t, nodes[0].addr)
	ag.call("login", map[string]any{"token": "Bearer " + agentToken})
	for _, n := range nodes {
		waitAgentOnline(t, client, n)
	}
	rcs := make([]*rcWriter, rcWriters)
	for i := range rcs {
		rcs[i] = &rcWriter{idWriter: idWriter{name: fmt.Sprintf("rc%d", i)}, token: fmt.Sprintf("cluster-rc-visitor-token-%d", i)}
		if err := rcs[i].setup(client, "http://"+nodes[i%3].addr); err != nil {
			t.Fatalf("%s setup: %v", rcs[i].name, err)
		}
	}
	lcs := make([]*lcWriter, lcWriters)
	for i := range lcs {
		lcs[i] = &lcWriter{idWriter: idWriter{name: fmt.Sprintf("lc%d", i)}}
		if err := lcs[i].setup(client, "http://"+nodes[(i+1)%3].addr); err != nil {
			t.Fatalf("%s setup: %v", lcs[i].name, err)
		}
	}
	sessions := make([]string, visitors)
	acked := make([][]string, visitors)
	for i := range sessions {
		m, err := v2Post(client, "http://"+nodes[(i+2)%3].addr, fmt.Sprintf("cv%d", i), "start", url.Values{"welcome_message": {"hi"}})
		if err != nil {
			t.Fatalf("start: %v", err)
		}
		sessions[i] = m["secured_session_id"].(string)
	}

	var loadErrs []error
	next := 0
	var mu sync.Mutex
	nextText := func() string {
		mu.Lock()
		defer mu.Unlock()
		next++
		return fmt.Sprintf("m%d", next)
	}
	for round := 0; round < rounds; round++ {
		victim := rand.IntN(len(nodes))
		pick := func() string { return "http://" + nodes[rand.IntN(len(nodes))].addr }
		r := newKillRound()
		for i := 0; i < visitors; i++ {
			base := pick()
			v := &v2Sender{vid: fmt.Sprintf("cv%d", i), sid: sessions[i], next: nextText, mu: &mu, acked: &acked[i], onAck: r.acked(surfaceV2)}
			r.run(fmt.Sprintf("v2 visitor %d", i), func(stop <-chan struct{}) error { return v.send(client, base, stop) })
		}
		for _, w := range rcs {
			base := pick()
			w.onAck = r.acked(surfaceRC)
			r.run(w.name, func(stop <-chan struct{}) error { return w.send(client, base, stop) })
		}
		for _, w := range lcs {
			base := pick()
			w.onAck = r.acked(surfaceCustomer)
			r.run(w.name, func(stop <-chan struct{}) error { return w.send(base, stop) })
		}
		late := r.beforeKill(round, 100*time.Millisecond, 400*time.Millisecond)
		nodes[victim].kill()
		time.Sleep(50 * time.Millisecond) // the survivors' writers go on a little
		loadErrs = append(loadErrs, r.end()...)
		if late != nil {
			t.Fatalf("round %d: %v (refused: %v)", round, late, loadErrs)
		}
		nodes[victim] = startNode(t, fmt.Sprintf("n%d-r%d", victim, round), cfg, store)
	}
	for _, err := range loadErrs {
		t.Errorf("refused during load: %v", err)
	}
	// Read everything back through a node chosen at random.
	base := "http://" + nodes[rand.IntN(len(nodes))].addr
	total := checkV2Sessions(t, client, base, "cv", sessions, acked)
	rcTotal, lcTotal, retries := checkIDWriters(t, client, base, rcs, lcs)
	t.Logf("%d SIGKILLs of random nodes of 3; acknowledged messages, all present exactly once and in order: LiveChat v2 %d, Rocket.Chat REST %d, LiveChat customer RTM %d; %d sends retried with the same id",
		rounds, total, rcTotal, lcTotal, retries)

	// The only agent's node dies: after the lease, no chat goes to her.
	ag2 := dialAgent(t, nodes[1].addr)
	ag2.call("login", map[string]any{"token": "Bearer " + agentToken})
	ag.conn.Close()
	time.Sleep(200 * time.Millisecond)
	nodes[1].kill()
	killed := time.Now()
	// Offline on the survivors once the lease (3 s) expired: a killed
	// node sends no goodbye, the others' presence poll finds the lease
	// gone.
	waitFor(t, "the killed node's agent offline on the survivors", waitLimit, func() bool {
		return routingStatuses(t, nodes[0].addr)["jane@example.com"] == "offline" &&
			routingStatuses(t, nodes[2].addr)["jane@example.com"] == "offline"
	})
	t.Logf("the killed node's agent was offline everywhere %v after the kill (lease_ttl 3s)", time.Since(killed).Round(100*time.Millisecond))
	// Routing happens within the start: a chat given to her would show
	// her agent_details at once.
	m, err := v2Post(client, "http://"+nodes[2].addr, "after-kill", "start", url.Values{"welcome_message": {"anyone?"}})
	if err != nil {
		t.Fatal(err)
	}
	v := &visitor{t: t, base: "http://" + nodes[0].addr, id: "after-kill", sid: m["secured_session_id"].(string)}
	for _, e := range v.poll() {
		if e["type"] == "agent_details" {
			t.Fatalf("a chat started after the agent's node died and its lease expired was routed to her: %v", e)
		}
	}
}

// ddpConn is a bare DDP client (a Rocket.Chat widget's websocket).
type ddpConn struct {
	t      *testing.T
	conn   *websocket.Conn
	frames chan map[string]any
	n      int
}

func dialDDP(t *testing.T, addr string) *ddpConn {
	t.Helper()
	conn, _, err := websocket.DefaultDialer.Dial("ws://"+addr+"/websocket", nil)
	if err != nil {
		t.Fatal(err)
	}
	c := &ddpConn{t: t, conn: conn, frames: make(chan map[string]any, 512)}
	go func() {
		defer close(c.frames)
		for {
			var m map[string]any
			if err := conn.ReadJSON(&m); err != nil {
				return
			}
			if m["msg"] == "ping" {
				_ = conn.WriteJSON(map[string]any{"msg": "pong"})
				continue
			}
			c.frames <- m
		}
	}()
	t.Cleanup(func() { conn.Close() })
	c.send(map[string]any{"msg": "connect", "version": "1", "support": []string{"1"}})
	c.next(func(m map[string]any) bool { return m["msg"] == "connected" })
	return c
}

func (c *ddpConn) send(m map[string]any) {
	c.t.Helper()
	if err := c.conn.WriteJSON(m); err != nil {
		c.t.Fatal(err)
	}
}

func (c *ddpConn) next(ok func(map[string]any) bool) map[string]any {
	c.t.Helper()
	timeout := time.After(waitLimit)
	for {
		select {
		case m, open := <-c.frames:
			if !open {
				c.t.Fatal("DDP socket closed")
			}
			if ok(m) {
				return m
			}
		case <-timeout:
			c.t.Fatal("no matching DDP frame")
		}
	}
}

// sub subscribes to a visitor stream and waits for ready.
func (c *ddpConn) sub(name, event, token string) {
	c.t.Helper()
	c.n++
	id := fmt.Sprintf("s%d", c.n)
	c.send(map[string]any{"msg": "sub", "id": id, "name": name,
		"params": []any{event, map[string]any{"useCollection": false, "args": []any{map[string]any{"visitorToken": token}}}}})
	c.next(func(m map[string]any) bool {
		subs, _ := m["subs"].([]any)
		return m["msg"] == "ready" && len(subs) == 1 && subs[0] == id
	})
}

// streamArgs waits for a stream frame of name and event whose args satisfy ok.
func (c *ddpConn) streamArgs(name, event string, ok func(args []any) bool) {
	c.t.Helper()
	c.next(func(m map[string]any) bool {
		f, _ := m["fields"].(map[string]any)
		args, _ := f["args"].([]any)
		return m["msg"] == "changed" && m["collection"] == name && f["eventName"] == event && ok(args)
	})
}

// waitAgentOnline waits until node n sees an agent online (presence crosses
// nodes within about a second), as the Rocket.Chat widget's config says.
func waitAgentOnline(t *testing.T, client *http.Client, n *node) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for time.Now().Before(deadline) {
		m, err := rcJSON(client, "GET", "http://"+n.addr+"/api/v1/livechat/config", nil, nil)
		if err == nil {
			if c, _ := m["config"].(map[string]any); c["online"] == true {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("node %s never saw an agent online", n.name)
}

// pushOf waits for an agent push of action whose payload satisfies ok.
func pushOf(ag *agent, action string, ok func(p map[string]any) bool) map[string]any {
	ag.t.Helper()
	for {
		p, _ := ag.next("push", action)["payload"].(map[string]any)
		if ok(p) {
			return p
		}
	}
}

func eventText(p map[string]any) string {
	ev, _ := p["event"].(map[string]any)
	s, _ := ev["text"].(string)
	return s
}

// hookReceiver is an https webhook receiver recording deliveries.
type hookReceiver struct {
	mu  sync.Mutex
	got []hookDelivery
}

type hookDelivery struct {
	id, chat, text string
}

func (h *hookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Action  string `json:"action"`
		Payload struct {
			ChatID string `json:"chat_id"`
			Event  struct {
				Text string `json:"text"`
			} `json:"event"`
		} `json:"payload"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if body.Action == "incoming_event" {
		h.mu.Lock()
		h.got = append(h.got, hookDelivery{id: r.Header.Get(webhooks.HeaderDeliveryID), chat: body.Payload.ChatID, text: body.Payload.Event.Text})
		h.mu.Unlock()
	}
	w.WriteHeader(http.StatusOK)
}

func (h *hookReceiver) deliveries() []hookDelivery {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]hookDelivery(nil), h.got...)
}

// TestClusterWebhooksSurviveKill: two nodes deliver one deployment's
// webhooks, one node at a time (the webhooks lease). Messages are sent
// through both nodes while the delivering node is killed with SIGKILL
// (twice); the other node takes the deliveries over when the lease expires:
// every acknowledged message's incoming_event arrives, per chat in message
// order, under one delivery id (a delivery the killed node had sent but
// not yet marked done may arrive again with the same id, which receivers
// deduplicate on; never a second id for one event).
func TestClusterWebhooksSurviveKill(t *testing.T) {
	if testing.Short() {
		t.Skip("kills the delivering node")
	}
	recv := &hookReceiver{}
	ts := httptest.NewTLSServer(recv)
	defer ts.Close()
	pemPath := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(pemPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ts.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SSL_CERT_FILE", pemPath) // the nodes trust the receiver
	store := clusterStore(t)
	cfg := clusterConfig(t, "webhooks:\n  allow_private_networks: true\n")
	nodes := []*node{startNode(t, "w0", cfg, store), startNode(t, "w1", cfg, store)}
	client := &http.Client{Timeout: 5 * time.Second}
	ag := dialAgent(t, nodes[0].addr)
	ag.call("login", map[string]any{"token": "Bearer " + agentToken})
	code, body := httpJSON(t, http.MethodPost, "http://"+nodes[0].addr+"/v3.5/configuration/action/register_webhook",
		map[string]any{"action": "incoming_event", "url": ts.URL + "/hook", "secret_key": "s3cret", "owner_client_id": "cluster-test", "type": "license"},
		map[string]string{"Authorization": "Bearer " + agentToken})
	if code != 200 {
		t.Fatalf("register_webhook: %d %s", code, body)
	}
	time.Sleep(1500 * time.Millisecond) // both nodes have read the registration

	const visitors = 2
	sessions := make([]string, visitors)
	for i := range sessions {
		m, err := v2Post(client, "http://"+nodes[i].addr, fmt.Sprintf("wh%d", i), "start", url.Values{"welcome_message": {"hi"}})
		if err != nil {
			t.Fatal(err)
		}
		sessions[i] = m["secured_session_id"].(string)
	}
	acked := make([][]string, visitors)
	n := 0
	for round := 0; round < 3; round++ {
		for k := 0; k < 30; k++ {
			for i := range sessions {
				n++
				text := fmt.Sprintf("w%d-%d", i, n)
				// Through either node: whichever is up.
				for _, nd := range []*node{nodes[(k+i)%2], nodes[(k+i+1)%2]} {
					if _, err := v2Post(client, "http://"+nd.addr, fmt.Sprintf("wh%d", i), "send_message",
						url.Values{"secured_session_id": {sessions[i]}, "message": {text}}); err == nil {
						acked[i] = append(acked[i], text)
						break
					}
				}
			}
		}
		if round < 2 {
			// Kill the node holding the webhooks lease, mid-stream.
			victim := leaseHolder(t, store, "webhooks", nodes)
			nodes[victim].kill()
			nodes[victim] = startNode(t, fmt.Sprintf("w%d-r%d", victim, round), cfg, store)
		}
	}
	want := 0
	for _, a := range acked {
		want += len(a)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		ids := map[string]string{}
		for _, d := range recv.deliveries() {
			ids[d.text] = d.id
		}
		if len(ids) >= want {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d events delivered", len(ids), want)
		}
		time.Sleep(200 * time.Millisecond)
	}
	got := recv.deliveries()
	idOf := map[string]string{}
	firstAt := map[string]int{}
	resent := 0
	for i, d := range got {
		if prev, ok := idOf[d.text]; ok {
			if prev != d.id {
				t.Fatalf("event %q delivered under two ids: %s and %s", d.text, prev, d.id)
			}
			resent++
			continue
		}
		idOf[d.text] = d.id
		firstAt[d.text] = i
	}
	for v, texts := range acked {
		for j := 1; j < len(texts); j++ {
			if firstAt[texts[j]] < firstAt[texts[j-1]] {
				t.Fatalf("visitor %d: %q delivered before %q", v, texts[j], texts[j-1])
			}
		}
	}
	t.Logf("%d events, each delivered under one id and in order per chat across 2 kills of the delivering node; %d re-sent with the same id", want, resent)
}

// leaseHolder returns the index of the live node holding lease name,
// waiting for one to hold it.
func leaseHolder(t *testing.T, store, name string, nodes []*node) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, store)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for {
		var holder string
		err := conn.QueryRow(ctx, `SELECT node FROM cluster_leases WHERE name = $1 AND expires_at > now()`, name).Scan(&holder)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			t.Fatalf("lease %s: %v", name, err)
		}
		for i, n := range nodes {
			if n.name == holder {
				return i
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no live node took lease %s (held by %q)", name, holder)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// TestClusterRelayConnectorTakeover: two front nodes on PostgreSQL relay
// their visitor's conversation into an upstream desk (another chatgate
// process playing the desk), once through a Rocket.Chat connector and once
// through a LiveChat (customer RTM) connector. The node driving the
// connector (its lease, relay.<connector>) is killed with SIGKILL three
// times while the visitor writes through both nodes and the desk's agent
// answers. The other node takes the connector over: upstream holds every
// acknowledged message exactly once and in order, in one room and thread
// (never doubled), and the visitor gets every answer once, in order.
func TestClusterRelayConnectorTakeover(t *testing.T) {
	if testing.Short() {
		t.Skip("kills the node driving a connector")
	}
	for _, tc := range []struct {
		name, connector string
		relay           func(deskAddr string) string // the front's relay section
		// ids is what binds the conversation upstream: a Rocket.Chat
		// room; a LiveChat chat ("room") and thread.
		ids []string
	}{
		{"rocketchat", "rc", func(addr string) string { return rcRelay("rc", addr) + "  routes:\n    - upstream: rc\n" }, []string{"room"}},
		{"livechat", "lc", func(addr string) string { return lcRelay("lc", addr) }, []string{"room", "thread"}},
	} {
		t.Run(tc.name, func(t *testing.T) { clusterRelayTakeover(t, tc.connector, tc.relay, tc.ids) })
	}
}

func clusterRelayTakeover(t *testing.T, connector string, relay func(deskAddr string) string, ids []string) {
	store := clusterStore(t)
	desk := startProc(t, deskConfig(t), filepath.Join(t.TempDir(), "desk.db"), "127.0.0.1:0")
	ag := deskAgent(t, desk.addr)
	cfg := writeFile(t, "front-cluster.yaml", "license:\n  id: \""+testLicence+"\"\nlivechat:\n  v2:\n    poll_timeout: 1h\n"+
		"store:\n  lease_ttl: 3s\nlog:\n  level: info\n"+
		"agents:\n  - id: sam@example.com\n    name: Sam Support\n    token: front-agent-token-0123456789\n"+
		"relay:\n  min_backoff: 100ms\n  max_backoff: 1s\n"+relay(desk.addr))
	nodes := []*node{startNode(t, "f0", cfg, store), startNode(t, "f1", cfg, store)}

	v := &visitor{t: t, base: "http://" + nodes[0].addr, id: "cluster-relay-visitor"}
	v.start()
	v.send("m00000")
	inc := ag.next("push", "incoming_chat")
	chatID := inc["payload"].(map[string]any)["chat"].(map[string]any)["id"].(string)
	var before []map[string]any
	waitFor(t, "the conversation bound upstream", waitLimit, func() bool {
		before = relayed(t, nodes[0].addr)
		if len(before) != 1 {
			return false
		}
		for _, kind := range ids {
			if upstreamID(before[0], connector, kind) == "" {
				return false
			}
		}
		return true
	})

	var mu sync.Mutex
	stop := make(chan struct{})
	acked := []string{"m00000"}
	senderDone := make(chan struct{})
	go func() {
		defer close(senderDone)
		for i := 1; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			text := fmt.Sprintf("m%05d", i)
			mu.Lock()
			sv := &visitor{t: t, base: "http://" + nodes[i%2].addr, id: v.id, sid: v.sid}
			mu.Unlock()
			if sv.trySend(text) {
				acked = append(acked, text)
			} else {
				time.Sleep(20 * time.Millisecond)
			}
		}
	}()
	answered := answerEvery(ag, chatID, stop)
	for k := 0; k < 3; k++ {
		time.Sleep(time.Duration(300+rand.IntN(500)) * time.Millisecond)
		victim := leaseHolder(t, store, "relay."+connector, nodes)
		nodes[victim].kill()
		n := startNode(t, fmt.Sprintf("f%d-r%d", victim, k), cfg, store)
		mu.Lock()
		nodes[victim] = n
		mu.Unlock()
	}
	time.Sleep(500 * time.Millisecond)
	close(stop)
	<-senderDone
	answers := answered()
	t.Logf("%s connector: %d messages acknowledged, %d answers, 3 kills of the connector's node", connector, len(acked), len(answers))

	v.base = "http://" + nodes[0].addr
	checkRelayedOnce(t, ag, chatID, acked, answers, v.tryPoll)
	// Taken over, never re-bound: the same upstream room (and, for
	// LiveChat, thread) as before the kills.
	after := relayed(t, nodes[1].addr)
	for _, kind := range ids {
		if len(after) != 1 || upstreamID(after[0], connector, kind) != upstreamID(before[0], connector, kind) {
			t.Errorf("upstream %s changed across the takeovers: before %v, after %v", kind, before, after)
		}
	}
}
