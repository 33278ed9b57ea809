//go:build unix

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The relay tests run real chatgate processes on loopback: an upstream
// gateway playing the external desk (its Rocket.Chat surface, or its
// LiveChat customer surface) with an agent on its agent RTM, and a front
// gateway relaying its visitors' conversations into it.

// TestServeRelayChild is a gateway process of the relay tests; it runs
// only when one of them starts it.
func TestServeRelayChild(t *testing.T) {
	cfg := os.Getenv("CHATGATE_RELAY_CHILD_CONFIG")
	if cfg == "" {
		t.Skip("started by the relay tests only")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		// Exit with the parent: a closed stdin means it is gone.
		_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
		cancel()
	}()
	err := serve(ctx, serveOptions{ConfigPath: cfg, DataPath: os.Getenv("CHATGATE_RELAY_CHILD_DATA"),
		Addr: os.Getenv("CHATGATE_RELAY_CHILD_ADDR"), Stderr: os.Stderr, Getenv: func(string) string { return "" },
		Listening: func(a string) { fmt.Printf("LISTENING %s\n", a) }})
	if err != nil {
		t.Fatal(err)
	}
}

// proc is one gateway process of a relay test.
type proc struct {
	t         *testing.T
	cmd       *exec.Cmd
	addr      string
	cfg, data string
	log       *syncBuffer
}

// startProc starts a gateway process on addr ("127.0.0.1:0" for any port)
// and waits until it listens. The test stops it (SIGKILL) at the latest
// in its cleanup.
func startProc(t *testing.T, cfg, data, addr string) *proc {
	t.Helper()
	p := &proc{t: t, cfg: cfg, data: data, log: &syncBuffer{}}
	cmd := exec.Command(os.Args[0], "-test.run=^TestServeRelayChild$", "-test.v=false")
	cmd.Env = append(os.Environ(), "CHATGATE_RELAY_CHILD_CONFIG="+cfg, "CHATGATE_RELAY_CHILD_DATA="+data,
		"CHATGATE_RELAY_CHILD_ADDR="+addr)
	if _, err := cmd.StdinPipe(); err != nil { // kept open while the child runs
		t.Fatal(err)
	}
	cmd.Stderr = p.log
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p.cmd = cmd
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			t.Logf("gateway %s log:\n%s", p.addr, p.log)
		}
	})
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if a, ok := strings.CutPrefix(sc.Text(), "LISTENING "); ok {
			p.addr = a
			go func() {
				for sc.Scan() {
				}
			}()
			return p
		}
	}
	t.Fatalf("gateway exited before listening: %v\n%s", sc.Err(), p.log)
	return nil
}

// kill stops the process with SIGKILL: no shutdown, nothing flushed.
func (p *proc) kill() {
	if p.cmd.ProcessState != nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	_ = p.cmd.Wait()
}

// restart starts the process again on the same data file and address.
func (p *proc) restart() *proc {
	p.t.Helper()
	p.kill()
	return startProc(p.t, p.cfg, p.data, p.addr)
}

// freeAddr returns a loopback address no one listens on (for a gateway
// that must come back on the same address after a kill).
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// deskConfig is a gateway playing the external desk: one agent.
func deskConfig(t *testing.T) string {
	// The front gateway's connector is one client on 127.0.0.1 carrying
	// every visitor: exempt from the desk's per-address limits, as an
	// operator would exempt a relaying gateway's address.
	return writeFile(t, "desk.yaml", "license:\n  id: \""+testLicence+"\"\n  organization_id: desk-org\n"+
		"rate_limits:\n  exempt: [\"127.0.0.1\"]\n"+
		"agents:\n  - id: jane@example.com\n    name: Jane Doe\n    token: "+agentToken+"\n")
}

// frontConfig is the gateway the visitors use: it relays every
// conversation by the given relay section.
func frontConfig(t *testing.T, relayYAML string) string {
	return writeFile(t, "front.yaml", "license:\n  id: \""+testLicence+"\"\nlivechat:\n  v2:\n    poll_timeout: 1h\n"+
		"agents:\n  - id: sam@example.com\n    name: Sam Support\n    token: front-agent-token-0123456789\n"+
		"relay:\n  min_backoff: 100ms\n  max_backoff: 1s\n"+relayYAML)
}

func rcRelay(name, addr string) string {
	return fmt.Sprintf("  connectors:\n    - name: %s\n      kind: rocketchat\n      url: http://%s\n      timeout: 5s\n", name, addr)
}

// deskAgent logs the desk's agent in on its agent RTM.
func deskAgent(t *testing.T, addr string) *agent {
	t.Helper()
	ag := dialAgent(t, addr)
	ag.call("login", map[string]any{"token": "Bearer " + agentToken})
	return ag
}

// customerTexts returns the texts of the customer's messages in the chat's
// newest thread, as the desk's agent reads them.
func customerTexts(ag *agent, chatID string) ([]string, map[string]any) {
	got := ag.call("get_chat", map[string]any{"chat_id": chatID})
	thread, _ := got["thread"].(map[string]any)
	var texts []string
	users := map[string]string{}
	for _, u := range got["users"].([]any) {
		um := u.(map[string]any)
		users[um["id"].(string)] = um["type"].(string)
	}
	evs, _ := thread["events"].([]any)
	for _, e := range evs {
		ev := e.(map[string]any)
		if ev["type"] == "message" && users[fmt.Sprint(ev["author_id"])] == "customer" {
			texts = append(texts, ev["text"].(string))
		}
	}
	return texts, thread
}

// waitFor retries cond until it holds or the time is up.
func waitFor(t *testing.T, what string, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// agentTexts are the texts of agent messages a v2 visitor has received.
func agentTexts(evs []map[string]any) []string {
	var out []string
	for _, e := range evs {
		if e["user_type"] == "agent" && e["type"] == "message" {
			out = append(out, fmt.Sprint(e["text"]))
		}
	}
	return out
}

// relayed returns the front gateway's view of its relayed conversations.
func relayed(t *testing.T, addr string) []map[string]any {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/relay/conversations", nil)
	req.Header.Set("Authorization", "Bearer front-agent-token-0123456789")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Conversations []map[string]any `json:"conversations"`
	}
	if resp.StatusCode != 200 || json.NewDecoder(resp.Body).Decode(&body) != nil {
		t.Fatalf("GET /relay/conversations: %d", resp.StatusCode)
	}
	return body.Conversations
}

// upstreamID is one upstream id (kind "room", "thread" …) a relayed
// conversation is bound to, as the relay view shows it.
func upstreamID(conv map[string]any, connector, kind string) string {
	up, _ := conv["upstream"].(map[string]any)
	l, _ := up[connector].(map[string]any)
	s, _ := l[kind].(string)
	return s
}

func upstreamRoom(conv map[string]any, connector string) string {
	return upstreamID(conv, connector, "room")
}

// TestRelayV2VisitorIntoRocketChatDesk: a LiveChat v2 visitor of the front
// gateway talks to an agent of the desk gateway, which sees a Rocket.Chat
// livechat visitor; the agent's answers and close come back.
func TestRelayV2VisitorIntoRocketChatDesk(t *testing.T) {
	desk := startProc(t, deskConfig(t), filepath.Join(t.TempDir(), "desk.db"), "127.0.0.1:0")
	ag := deskAgent(t, desk.addr)
	front := startProc(t, frontConfig(t, rcRelay("rc", desk.addr)+"  routes:\n    - upstream: rc\n"),
		filepath.Join(t.TempDir(), "front.db"), "127.0.0.1:0")

	v := &visitor{t: t, base: "http://" + front.addr, id: "relay-visitor-1"}
	v.start()
	v.send("hello upstream")
	inc := ag.next("push", "incoming_chat")
	chatID := inc["payload"].(map[string]any)["chat"].(map[string]any)["id"].(string)
	waitFor(t, "the visitor's message upstream", waitLimit, func() bool {
		texts, _ := customerTexts(ag, chatID)
		return slices.Equal(texts, []string{"hello upstream"})
	})

	ag.call("send_event", map[string]any{"chat_id": chatID, "event": map[string]any{"type": "message", "text": "Hi, Jane here"}})
	var evs []map[string]any
	waitFor(t, "the agent's answer at the visitor", waitLimit, func() bool {
		evs = v.poll()
		// The welcome message is the front gateway's own.
		return slices.Equal(agentTexts(evs), []string{"Welcome!", "Hi, Jane here"})
	})
	v.send("thanks")
	waitFor(t, "the second message upstream", waitLimit, func() bool {
		texts, _ := customerTexts(ag, chatID)
		return slices.Equal(texts, []string{"hello upstream", "thanks"})
	})

	convs := relayed(t, front.addr)
	if len(convs) != 1 || convs[0]["owner"] != "rc" || upstreamRoom(convs[0], "rc") == "" ||
		!strings.HasPrefix(fmt.Sprint(convs[0]["agent"]), "rc:") {
		t.Fatalf("relay view: %v", convs)
	}

	// The agent closes upstream: the visitor's chat ends.
	ag.call("deactivate_chat", map[string]any{"id": chatID})
	waitFor(t, "the close at the visitor", waitLimit, func() bool {
		evs = v.poll()
		return len(evs) > 0 && evs[len(evs)-1]["type"] == "chat_closed"
	})
}

// trySend sends a v2 message without failing the test: the front gateway
// may be down (killed) at that moment. It reports whether the message was
// acknowledged.
func (v *visitor) trySend(text string) bool {
	form := url.Values{"licence_id": {testLicence}, "secured_session_id": {v.sid}, "message": {text}}
	req, _ := http.NewRequest(http.MethodPost, v.base+"/visitors/"+url.PathEscape(v.id)+"/chat/send_message", strings.NewReader(form.Encode()))
	req.Header.Set("X-API-Version", "2")
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	client := http.Client{Timeout: 5 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode == 200
}

// tryPoll reads the whole conversation, page by page (a poll answers
// at most 500 events), without failing the test; nil when the gateway is
// away.
func (v *visitor) tryPoll() []map[string]any {
	var all []map[string]any
	for from := 1; ; {
		u := v.base + "/visitors/" + url.PathEscape(v.id) + "/chat/get_pending_messages?" +
			url.Values{"licence_id": {testLicence}, "secured_session_id": {v.sid}, "last_message_id": {fmt.Sprint(from)}}.Encode()
		req, _ := http.NewRequest(http.MethodGet, u, nil)
		req.Header.Set("X-API-Version", "2")
		client := http.Client{Timeout: 5 * time.Second}
		resp, err := client.Do(req)
		if err != nil {
			return nil
		}
		var m struct {
			Events []map[string]any `json:"events"`
		}
		err = json.NewDecoder(resp.Body).Decode(&m)
		resp.Body.Close()
		if resp.StatusCode != 200 || err != nil {
			return nil
		}
		all = append(all, m.Events...)
		if len(m.Events) < 500 {
			return all
		}
		from = int(m.Events[len(m.Events)-1]["message_id"].(float64)) + 1
	}
}

// countEach counts each text.
func countEach(texts []string) map[string]int {
	n := make(map[string]int, len(texts))
	for _, s := range texts {
		n[s]++
	}
	return n
}

// TestRelayFrontKill9: the front gateway is killed with SIGKILL at random
// moments while its visitor writes and the upstream agent answers, and
// restarted each time on the same data file. In the end every message the
// front acknowledged is upstream exactly once and in order, every answer
// the desk acknowledged reached the visitor exactly once and in order, and
// the conversation is still joined to the same upstream room.
func TestRelayFrontKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("kills and restarts a gateway")
	}
	desk := startProc(t, deskConfig(t), filepath.Join(t.TempDir(), "desk.db"), "127.0.0.1:0")
	ag := deskAgent(t, desk.addr)
	front := startProc(t, frontConfig(t, rcRelay("rc", desk.addr)+"  routes:\n    - upstream: rc\n"),
		filepath.Join(t.TempDir(), "front.db"), freeAddr(t))

	v := &visitor{t: t, base: "http://" + front.addr, id: "relay-kill-visitor"}
	v.start()
	v.send("m00000")
	inc := ag.next("push", "incoming_chat")
	chatID := inc["payload"].(map[string]any)["chat"].(map[string]any)["id"].(string)
	room := ""
	waitFor(t, "the upstream room", waitLimit, func() bool {
		if convs := relayed(t, front.addr); len(convs) == 1 {
			room = upstreamRoom(convs[0], "rc")
		}
		return room != ""
	})

	// The visitor writes as fast as the front answers; the agent answers
	// every 50 ms; the front is killed 5 times meanwhile.
	stop := make(chan struct{})
	var acked []string
	sent := 0
	senderDone := make(chan struct{})
	go func() {
		defer close(senderDone)
		acked = append(acked, "m00000")
		for i := 1; ; i++ {
			select {
			case <-stop:
				sent = i
				return
			default:
			}
			text := fmt.Sprintf("m%05d", i)
			if v.trySend(text) {
				acked = append(acked, text)
			} else {
				time.Sleep(20 * time.Millisecond)
			}
		}
	}()
	answered := answerEvery(ag, chatID, stop)
	for k := 0; k < 5; k++ {
		time.Sleep(time.Duration(200+rand.IntN(600)) * time.Millisecond)
		front = front.restart()
	}
	time.Sleep(300 * time.Millisecond)
	close(stop)
	<-senderDone
	answers := answered()
	t.Logf("%d messages acknowledged of %d sent, %d answers, 5 kills", len(acked), sent, len(answers))

	checkRelayedOnce(t, ag, chatID, acked, answers, v.tryPoll)
	convs := relayed(t, front.addr)
	if len(convs) != 1 || upstreamRoom(convs[0], "rc") != room {
		t.Errorf("after the kills the conversation is joined to %v, want room %s", convs, room)
	}
}

// checkRelayedOnce checks what a relay promises through kills and
// takeovers: upstream holds every acknowledged visitor message exactly
// once and in order; the visitor, polling, gets the welcome and every
// answer exactly once and in order; and the desk upstream has one chat
// (the conversation was not started twice).
func checkRelayedOnce(t *testing.T, ag *agent, chatID string, acked, answers []string, poll func() []map[string]any) {
	t.Helper()
	var texts []string
	waitFor(t, "every acknowledged message upstream", waitLimit, func() bool {
		texts, _ = customerTexts(ag, chatID)
		n := countEach(texts)
		for _, a := range acked {
			if n[a] == 0 {
				return false
			}
		}
		return true
	})
	for s, n := range countEach(texts) {
		if n != 1 {
			t.Errorf("upstream has %q %d times", s, n)
		}
	}
	if !slices.IsSorted(texts) {
		t.Errorf("upstream order broken: %v", texts)
	}
	var got []string
	waitFor(t, "every answer at the visitor", waitLimit, func() bool {
		got = agentTexts(poll())
		return len(got) >= len(answers)+1
	})
	if want := append([]string{"Welcome!"}, answers...); !slices.Equal(got, want) {
		t.Errorf("visitor got answers %v, want %v", got, want)
	}
	chats := ag.call("list_chats", map[string]any{})
	if n := len(chats["chats_summary"].([]any)); n != 1 {
		t.Errorf("the desk has %d chats, want 1 (the conversation was doubled upstream)", n)
	}
}

// readyz returns the gateway's readiness body.
func readyz(t *testing.T, addr string) map[string]any {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestRelayUpstreamDown: the desk is away for 30 s; the visitor's messages
// are acknowledged by the front and queue (visible in /readyz), then reach
// the desk in order once it is back, and the conversation goes on.
func TestRelayUpstreamDown(t *testing.T) {
	if testing.Short() {
		t.Skip("keeps the upstream desk down through ten failed deliveries")
	}
	desk := startProc(t, deskConfig(t), filepath.Join(t.TempDir(), "desk.db"), freeAddr(t))
	ag := deskAgent(t, desk.addr)
	front := startProc(t, frontConfig(t, rcRelay("rc", desk.addr)+"  routes:\n    - upstream: rc\n"),
		filepath.Join(t.TempDir(), "front.db"), "127.0.0.1:0")
	v := &visitor{t: t, base: "http://" + front.addr, id: "relay-down-visitor"}
	v.start()
	v.send("before")
	inc := ag.next("push", "incoming_chat")
	chatID := inc["payload"].(map[string]any)["chat"].(map[string]any)["id"].(string)
	waitFor(t, "the first message upstream", waitLimit, func() bool {
		texts, _ := customerTexts(ag, chatID)
		return slices.Equal(texts, []string{"before"})
	})

	desk.kill()
	want := []string{"before"}
	for i := 1; i <= 5; i++ {
		text := fmt.Sprintf("while down %d", i)
		v.send(text) // acknowledged: committed by the front
		want = append(want, text)
	}
	waitFor(t, "the connector to see the desk gone", waitLimit, func() bool {
		rc := readyz(t, front.addr)["relay"].(map[string]any)["rc"].(map[string]any)
		return rc["connected"] == false && rc["queued"].(float64) >= 5
	})
	// A long outage: the desk stays down until the front has failed its
	// delivery ten times, the last ones at the longest backoff
	// (min_backoff 100ms doubles to max_backoff 1s by the fifth), about
	// 8 s; the queue must come through all of them whole and in order.
	waitFor(t, "ten failed deliveries", 2*time.Minute, func() bool {
		return metric(t, front.addr, `chatgate_relay_deliveries_total{connector="rc",outcome="retry"}`) >= 10
	})

	desk = startProc(t, desk.cfg, desk.data, desk.addr)
	ag = deskAgent(t, desk.addr)
	waitFor(t, "the queued messages upstream", waitLimit, func() bool {
		texts, _ := customerTexts(ag, chatID)
		return slices.Equal(texts, want)
	})
	ag.call("send_event", map[string]any{"chat_id": chatID, "event": map[string]any{"type": "message", "text": "back again"}})
	waitFor(t, "the answer after the outage", waitLimit, func() bool {
		return slices.Equal(agentTexts(v.tryPoll()), []string{"Welcome!", "back again"})
	})
	waitFor(t, "the connector reconnected and drained", waitLimit, func() bool {
		rc := readyz(t, front.addr)["relay"].(map[string]any)["rc"].(map[string]any)
		return rc["connected"] == true && rc["queued"].(float64) == 0 && rc["reconnects"].(float64) >= 1
	})
}

// TestRelayShadowMode: the front relays to a primary desk and mirrors to a
// second one. Both desks get the conversation (the mirror with the
// primary's answers, named); only the primary's answers reach the visitor.
func TestRelayShadowMode(t *testing.T) {
	primary := startProc(t, deskConfig(t), filepath.Join(t.TempDir(), "primary.db"), "127.0.0.1:0")
	shadow := startProc(t, deskConfig(t), filepath.Join(t.TempDir(), "shadow.db"), "127.0.0.1:0")
	pa, sa := deskAgent(t, primary.addr), deskAgent(t, shadow.addr)
	front := startProc(t, frontConfig(t, rcRelay("primary", primary.addr)+
		fmt.Sprintf("    - name: shadow\n      kind: rocketchat\n      url: http://%s\n", shadow.addr)+
		"  routes:\n    - upstream: primary\n      mirrors: [shadow]\n"),
		filepath.Join(t.TempDir(), "front.db"), "127.0.0.1:0")

	v := &visitor{t: t, base: "http://" + front.addr, id: "relay-shadow-visitor"}
	v.start()
	v.send("hello both")
	chatOf := func(ag *agent) string {
		inc := ag.next("push", "incoming_chat")
		return inc["payload"].(map[string]any)["chat"].(map[string]any)["id"].(string)
	}
	pChat, sChat := chatOf(pa), chatOf(sa)

	sa.call("send_event", map[string]any{"chat_id": sChat, "event": map[string]any{"type": "message", "text": "shadow says hi"}})
	pa.call("send_event", map[string]any{"chat_id": pChat, "event": map[string]any{"type": "message", "text": "primary says hi"}})
	waitFor(t, "the primary's answer at the visitor", waitLimit, func() bool {
		return slices.Contains(agentTexts(v.tryPoll()), "primary says hi")
	})
	waitFor(t, "the mirror copy with the primary's answer", waitLimit, func() bool {
		texts, _ := customerTexts(sa, sChat)
		return slices.Equal(texts, []string{"hello both", "[Jane Doe] primary says hi"})
	})
	// The front has seen the shadow's answer (and set it aside) ...
	waitFor(t, "the shadow's answer seen and ignored", waitLimit, func() bool {
		// Counted per arrival: a resync may see it again.
		return metric(t, front.addr, `chatgate_relay_inbound_total{connector="shadow",outcome="ignored"}`) >= 1
	})
	// ... and it never reached the visitor.
	if got := agentTexts(v.tryPoll()); !slices.Equal(got, []string{"Welcome!", "primary says hi"}) {
		t.Fatalf("visitor got %v", got)
	}
	if texts, _ := customerTexts(pa, pChat); !slices.Equal(texts, []string{"hello both"}) {
		t.Fatalf("primary desk got %v", texts)
	}

	// The primary closes: the visitor's chat ends and the mirror's too.
	pa.call("deactivate_chat", map[string]any{"id": pChat})
	sa.next("push", "chat_deactivated")
	waitFor(t, "the close at the visitor", waitLimit, func() bool {
		evs := v.tryPoll()
		return len(evs) > 0 && evs[len(evs)-1]["type"] == "chat_closed"
	})
}

// metric is the value of one series (name{labels}, as /metrics writes it)
// on the gateway at addr; 0 when it is not there (yet).
func metric(t *testing.T, addr, series string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %q: %v", series, line, err)
			}
			return f
		}
	}
	return 0
}

// rcCall makes a Rocket.Chat REST call on a gateway and returns the body.
func rcCall(t *testing.T, method, u string, body any) map[string]any {
	t.Helper()
	var rd io.Reader
	if body != nil {
		raw, _ := json.Marshal(body)
		rd = strings.NewReader(string(raw))
	}
	req, _ := http.NewRequest(method, u, rd)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil || resp.StatusCode != 200 {
		t.Fatalf("%s %s: %d %v %v", method, u, resp.StatusCode, m, err)
	}
	return m
}

// TestRelayRocketChatVisitorIntoRocketChatDesk: a visitor of the front
// gateway's Rocket.Chat livechat API (as the widget calls it) is relayed
// into the desk gateway; the agent's answer is in the visitor's history.
func TestRelayRocketChatVisitorIntoRocketChatDesk(t *testing.T) {
	desk := startProc(t, deskConfig(t), filepath.Join(t.TempDir(), "desk.db"), "127.0.0.1:0")
	ag := deskAgent(t, desk.addr)
	front := startProc(t, frontConfig(t, rcRelay("rc", desk.addr)+"  routes:\n    - upstream: rc\n"),
		filepath.Join(t.TempDir(), "front.db"), "127.0.0.1:0")
	api := "http://" + front.addr + "/api/v1/livechat/"
	const token = "widget-visitor-token-1"
	rcCall(t, http.MethodPost, api+"visitor", map[string]any{"visitor": map[string]any{"token": token, "name": "Wanda"}})
	room := rcCall(t, http.MethodGet, api+"room?token="+token, nil)["room"].(map[string]any)
	rid := room["_id"].(string)
	rcCall(t, http.MethodPost, api+"message", map[string]any{"token": token, "rid": rid, "msg": "hi from the widget", "_id": "widget-msg-1"})

	inc := ag.next("push", "incoming_chat")
	chatID := inc["payload"].(map[string]any)["chat"].(map[string]any)["id"].(string)
	waitFor(t, "the widget's message upstream", waitLimit, func() bool {
		texts, _ := customerTexts(ag, chatID)
		return slices.Equal(texts, []string{"hi from the widget"})
	})
	ag.call("send_event", map[string]any{"chat_id": chatID, "event": map[string]any{"type": "message", "text": "hello Wanda"}})
	waitFor(t, "the answer in the widget's history", waitLimit, func() bool {
		h := rcCall(t, http.MethodGet, api+"messages.history/"+rid+"?token="+token, nil)
		for _, m := range h["messages"].([]any) {
			msg := m.(map[string]any)
			if msg["msg"] == "hello Wanda" && msg["u"].(map[string]any)["name"] == "Jane Doe" {
				return true
			}
		}
		return false
	})
	// The visitor closes the room: the desk's chat is deactivated.
	rcCall(t, http.MethodPost, api+"room.close", map[string]any{"rid": rid, "token": token})
	ag.next("push", "chat_deactivated")
}

// answerEvery has ag answer in chatID every 50 ms ("a00000", "a00001", …)
// until stop closes; the returned function waits for the answerer to end
// and returns what it sent, in order.
func answerEvery(ag *agent, chatID string, stop <-chan struct{}) func() []string {
	var answers []string
	done := make(chan struct{})
	go func() {
		defer close(done)
		for j := 0; ; j++ {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			text := fmt.Sprintf("a%05d", j)
			ag.call("send_event", map[string]any{"chat_id": chatID, "event": map[string]any{"type": "message", "text": text}})
			answers = append(answers, text)
		}
	}()
	return func() []string {
		<-done
		return answers
	}
}
