//go:build unix

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestServeChild is the gateway process the kill -9 tests kill: one node on
// bbolt for TestKill9Durability (CHATGATE_KILL_CHILD_DATA), or one node of a
// PostgreSQL deployment for the multi-node tests (_STORE, _NODE). It runs
// only when such a test starts it.
func TestServeChild(t *testing.T) {
	cfg := os.Getenv("CHATGATE_KILL_CHILD_CONFIG")
	if cfg == "" {
		t.Skip("started by the kill -9 tests only")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		// Exit with the parent: a closed stdin means it is gone.
		_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
		cancel()
	}()
	err := serve(ctx, serveOptions{ConfigPath: cfg, DataPath: os.Getenv("CHATGATE_KILL_CHILD_DATA"),
		StoreURL: os.Getenv("CHATGATE_KILL_CHILD_STORE"), NodeID: os.Getenv("CHATGATE_KILL_CHILD_NODE"), Addr: "127.0.0.1:0",
		Stderr: os.Stderr, Getenv: func(string) string { return "" },
		Listening: func(a string) { fmt.Printf("LISTENING %s\n", a) }})
	if err != nil {
		t.Fatal(err)
	}
}

// child is one gateway process under test.
type child struct {
	cmd  *exec.Cmd
	addr string
}

func startChild(t *testing.T, cfg, data string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestServeChild$", "-test.v=false")
	cmd.Env = append(os.Environ(), "CHATGATE_KILL_CHILD_CONFIG="+cfg, "CHATGATE_KILL_CHILD_DATA="+data)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	_ = stdin // kept open until the child is killed
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd}
	t.Cleanup(c.kill)
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if a, ok := strings.CutPrefix(sc.Text(), "LISTENING "); ok {
			c.addr = a
			go func() {
				for sc.Scan() {
				}
			}()
			return c
		}
	}
	t.Fatalf("child exited before listening: %v", sc.Err())
	return nil
}

func (c *child) kill() {
	if c.cmd.ProcessState != nil {
		return
	}
	_ = c.cmd.Process.Signal(syscall.SIGKILL)
	_ = c.cmd.Wait()
}

// durabilityOrg is the organization id of TestKill9Durability's gateway.
const durabilityOrg = "org-kill9"

// TestKill9Durability: visitors on three surfaces send messages while the
// gateway is killed with SIGKILL at random moments and restarted, again and
// again: LiveChat v2 visitors (REST), Rocket.Chat visitors (REST, with
// client-chosen message _ids) and LiveChat customers (RTM, with custom_ids).
// A Rocket.Chat or customer send the kill interrupted is retried with the
// same id in the next round. In the end every acknowledged message is
// present exactly once: v2 message ids are dense, each Rocket.Chat room's
// whole history holds every acknowledged _id once and in order, each
// customer thread's event ids are unique and every acknowledged custom_id
// is there once and in order.
func TestKill9Durability(t *testing.T) {
	if testing.Short() {
		t.Skip("kills and restarts a gateway 20 times")
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "c.yaml")
	// Its visitors all come from 127.0.0.1 and send as fast as they can:
	// no rate limit cuts the load short (a 429 fails the test).
	if err := os.WriteFile(cfg, []byte("license:\n  id: \""+testLicence+"\"\n  organization_id: "+durabilityOrg+"\nlivechat:\n  v2:\n    poll_timeout: 1h\nlog:\n  level: error\n"+
		"rate_limits:\n  exempt: [\"127.0.0.1\"]\n"+
		"agents:\n  - id: jane@example.com\n    name: Jane Doe\n    token: "+agentToken+"\n    password: "+agentPassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "d.db")
	const (
		rounds    = 24
		visitors  = 4 // LiveChat v2
		rcWriters = 2 // Rocket.Chat REST
		lcWriters = 2 // LiveChat customer RTM
	)
	rcs := make([]*rcWriter, rcWriters)
	for i := range rcs {
		rcs[i] = &rcWriter{idWriter: idWriter{name: fmt.Sprintf("rc%d", i)}, token: fmt.Sprintf("kill9-rc-visitor-token-%d", i)}
	}
	lcs := make([]*lcWriter, lcWriters)
	for i := range lcs {
		lcs[i] = &lcWriter{idWriter: idWriter{name: fmt.Sprintf("lc%d", i)}}
	}
	var loadErrs []error
	client := &http.Client{Timeout: killTimeout}
	post := func(base, vid, action string, form url.Values) (map[string]any, error) {
		return v2Post(client, base, vid, action, form)
	}

	sessions := make([]string, visitors)
	acked := make([][]string, visitors)
	var mu sync.Mutex
	next := 0
	nextText := func() string {
		mu.Lock()
		defer mu.Unlock()
		next++
		return fmt.Sprintf("m%d", next)
	}
	for round := 0; round < rounds; round++ {
		c := startChild(t, cfg, data)
		base := "http://" + c.addr
		if round == 0 {
			// An agent online, so that the Rocket.Chat rooms open.
			ag := dialAgent(t, c.addr)
			ag.call("login", map[string]any{"token": "Bearer " + agentToken})
			for _, w := range rcs {
				if err := w.setup(client, base); err != nil {
					t.Fatalf("%s setup: %v", w.name, err)
				}
			}
			for _, w := range lcs {
				if err := w.setup(client, base); err != nil {
					t.Fatalf("%s setup: %v", w.name, err)
				}
			}
		}
		for i := range sessions {
			if sessions[i] == "" {
				m, err := post(base, fmt.Sprintf("kv%d", i), "start", url.Values{"welcome_message": {"hi"}})
				if err != nil {
					t.Fatalf("start: %v", err)
				}
				sessions[i] = m["secured_session_id"].(string)
			}
		}
		r := newKillRound()
		for i := 0; i < visitors; i++ {
			v := &v2Sender{vid: fmt.Sprintf("kv%d", i), sid: sessions[i], next: nextText, mu: &mu, acked: &acked[i], onAck: r.acked(surfaceV2)}
			r.run(v.vid, func(stop <-chan struct{}) error { return v.send(client, base, stop) })
		}
		for _, w := range rcs {
			w.onAck = r.acked(surfaceRC)
			r.run(w.name, func(stop <-chan struct{}) error { return w.send(client, base, stop) })
		}
		for _, w := range lcs {
			w.onAck = r.acked(surfaceCustomer)
			r.run(w.name, func(stop <-chan struct{}) error { return w.send(base, stop) })
		}
		// On a loaded machine logging in may take longer than the delay:
		// beforeKill makes every other round wait until each surface
		// proved something.
		late := r.beforeKill(round, 50*time.Millisecond, 250*time.Millisecond)
		c.kill()
		loadErrs = append(loadErrs, r.end()...)
		if late != nil {
			t.Fatalf("round %d: %v (refused: %v)", round, late, loadErrs)
		}
	}

	for _, err := range loadErrs {
		t.Errorf("refused during load: %v", err)
	}
	c := startChild(t, cfg, data)
	total := checkV2Sessions(t, client, "http://"+c.addr, "kv", sessions, acked)
	rcTotal, lcTotal, retries := checkIDWriters(t, client, "http://"+c.addr, rcs, lcs)
	t.Logf("%d rounds of SIGKILL; acknowledged messages, all present exactly once: LiveChat v2 %d, Rocket.Chat REST %d (history in order), LiveChat customer RTM %d (event ids unique); %d sends retried with the same id after a kill",
		rounds, total, rcTotal, lcTotal, retries)
}

// checkV2Sessions reads every v2 session's whole history through base and
// checks that message ids are dense and every acknowledged text is there
// exactly once (and nothing else from the visitor); it returns how many
// were acknowledged. Visitor i's id is prefix+i.
func checkV2Sessions(t *testing.T, client *http.Client, base, prefix string, sessions []string, acked [][]string) int {
	t.Helper()
	total := 0
	for i, sid := range sessions {
		type event struct {
			ID   uint64 `json:"message_id"`
			Text string `json:"text"`
			User string `json:"user_type"`
		}
		var all []event
		for {
			q := url.Values{"licence_id": {testLicence}, "secured_session_id": {sid}, "last_message_id": {fmt.Sprint(len(all) + 1)}}
			resp, err := client.Get(base + fmt.Sprintf("/visitors/%s%d/chat/get_pending_messages?", prefix, i) + q.Encode())
			if err != nil {
				t.Fatal(err)
			}
			var page struct {
				Events []event `json:"events"`
			}
			err = json.NewDecoder(resp.Body).Decode(&page)
			resp.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			if len(page.Events) == 0 {
				break
			}
			all = append(all, page.Events...)
		}
		count := map[string]int{}
		for j, e := range all {
			if e.ID != uint64(j+1) {
				t.Fatalf("visitor %d: message ids not dense at %d: %d", i, j, e.ID)
			}
			if e.User == "visitor" {
				count[e.Text]++
			}
		}
		for _, text := range acked[i] {
			if count[text] != 1 {
				t.Fatalf("visitor %d: acknowledged %q stored %d times", i, text, count[text])
			}
		}
		for text, n := range count {
			if n != 1 {
				t.Fatalf("visitor %d: %q stored %d times", i, text, n)
			}
		}
		total += len(acked[i])
	}
	if total == 0 {
		t.Fatal("no message was acknowledged: the test proved nothing")
	}
	return total
}

// checkIDWriters reads the Rocket.Chat rooms (as the agent) and customer
// threads through base and checks each writer's ids; it returns the
// acknowledged counts and the retried sends.
func checkIDWriters(t *testing.T, client *http.Client, base string, rcs []*rcWriter, lcs []*lcWriter) (rcTotal, lcTotal, retries int) {
	t.Helper()
	login, err := rcJSON(client, "POST", base+"/api/v1/login", nil, map[string]any{"user": "jane@example.com", "password": agentPassword})
	if err != nil {
		t.Fatal(err)
	}
	ld, _ := login["data"].(map[string]any)
	hdr := map[string]string{"X-User-Id": fmt.Sprint(ld["userId"]), "X-Auth-Token": fmt.Sprint(ld["authToken"])}
	for _, w := range rcs {
		ids, err := w.stored(client, base, hdr)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.check(ids); err != nil {
			t.Error(err)
		}
		rcTotal += len(w.acked)
		retries += w.retries
	}
	for _, w := range lcs {
		ids, _, err := w.stored(base)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.check(ids); err != nil {
			t.Error(err)
		}
		lcTotal += len(w.acked)
		retries += w.retries
	}
	if rcTotal == 0 || lcTotal == 0 {
		t.Fatalf("acknowledged: Rocket.Chat %d, customer %d: a surface proved nothing", rcTotal, lcTotal)
	}
	return rcTotal, lcTotal, retries
}
