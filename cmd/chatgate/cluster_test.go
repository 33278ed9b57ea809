//go:build unix

package main

import (
	"bufio"
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"chatgate/store/postgres/pgtest"
)

// TestServeClusterChild is one node of the multi-node tests: a gateway on
// PostgreSQL, started as its own process so that a test can kill -9 it. It
// runs only when such a test starts it.
func TestServeClusterChild(t *testing.T) {
	cfg := os.Getenv("CHATGATE_CLUSTER_CHILD_CONFIG")
	if cfg == "" {
		t.Skip("started by the multi-node tests only")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
		cancel()
	}()
	err := serve(ctx, serveOptions{ConfigPath: cfg, StoreURL: os.Getenv("CHATGATE_CLUSTER_CHILD_STORE"),
		NodeID: os.Getenv("CHATGATE_CLUSTER_CHILD_NODE"), Addr: "127.0.0.1:0",
		Stderr: os.Stderr, Getenv: func(string) string { return "" },
		Listening: func(a string) { fmt.Printf("LISTENING %s\n", a) }})
	if err != nil {
		t.Fatal(err)
	}
}

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
	cmd := exec.Command(os.Args[0], "-test.run=^TestServeClusterChild$", "-test.v=false")
	cmd.Env = append(os.Environ(), "CHATGATE_CLUSTER_CHILD_CONFIG="+cfg, "CHATGATE_CLUSTER_CHILD_STORE="+store,
		"CHATGATE_CLUSTER_CHILD_NODE="+name)
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
	cfg := "license:\n  id: \"" + testLicence + "\"\n  organization_id: org-cluster\nstore:\n  lease_ttl: 3s\n" +
		"livechat:\n  v2:\n    poll_timeout: 1h\nlog:\n  level: info\n" +
		"agents:\n  - id: jane@example.com\n    name: Jane Doe\n    token: " + agentToken + "\n    password: " + agentPassword + "\n" + extra
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
	deadline := time.Now().Add(15 * time.Second)
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
