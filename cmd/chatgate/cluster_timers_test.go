//go:build unix

package main

import (
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestClusterV2IdleCloseOnce: the LiveChat v2 poll timeout is one
// deployment-wide timer. Two nodes, poll_timeout 5 s; one holds the
// livechat.v2.sweeper lease (H), the other (O) takes every poll. Chat 1 is
// started on H, chat 2 on O; both are polled through O only for longer
// than the timeout: neither is closed (H's sweeper reads the poll times O records,
// not only its own). Chat 1's visitor stops polling: it is closed, once,
// with both nodes up. Then H is killed with SIGKILL and chat 2's visitor
// stops polling: O takes the sweeper over when the lease expires and
// closes chat 2, once. The agent (on O) is told each close.
func TestClusterV2IdleCloseOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("waits out v2 poll timeouts")
	}
	// Long enough that a loaded machine's polls (every 250 ms) never
	// leave a gap of it.
	const timeout = 5 * time.Second
	store := clusterStore(t)
	cfg := clusterConfig(t, "")
	b, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg = writeFile(t, "idle.yaml", strings.Replace(string(b), "poll_timeout: 1h", "poll_timeout: "+timeout.String(), 1))
	nodes := []*node{startNode(t, "i0", cfg, store), startNode(t, "i1", cfg, store)}
	hi := leaseHolder(t, store, "livechat.v2.sweeper", nodes)
	h, o := nodes[hi], nodes[1-hi]
	jane := dialAgent(t, o.addr)
	jane.call("login", map[string]any{"token": "Bearer " + agentToken})

	// Jane's login has been answered, so a chat started on either node
	// is routed to her at once (the node routing it reads presence under
	// the routing lock): her first incoming_chat of it is already hers,
	// and she gets no second one (a chat queued first, then assigned, made
	// two).
	start := func(n *node, id string) (*visitor, string) {
		v := &visitor{t: t, base: "http://" + n.addr, id: id}
		v.start()
		v.base = "http://" + o.addr // every later request through O
		chat := pushOf(jane, "incoming_chat", func(map[string]any) bool { return true })["chat"].(map[string]any)
		agentIn := false
		for _, u := range chat["users"].([]any) {
			agentIn = agentIn || u.(map[string]any)["type"] == "agent"
		}
		if !agentIn {
			t.Fatalf("chat started on %s reached jane queued, not assigned: %v", n.name, chat)
		}
		return v, chat["id"].(string)
	}
	v1, chat1 := start(h, "idle-1")
	v2, chat2 := start(o, "idle-2")

	// Both visitors poll through O; polling[i] false stops visitor i.
	var polling [2]atomic.Bool
	polling[0].Store(true)
	polling[1].Store(true)
	closedEarly := make(chan string, 2)
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		for {
			for i, v := range []*visitor{v1, v2} {
				if !polling[i].Load() {
					continue
				}
				for _, e := range v.tryPoll() {
					if e["type"] == "chat_closed" && polling[i].Load() {
						select {
						case closedEarly <- v.id:
						default: // told already
						}
					}
				}
			}
			select {
			case <-done:
				return
			case <-time.After(250 * time.Millisecond):
			}
		}
	}()
	defer func() { close(done); <-stopped }()
	deactivated := func(chatID string) {
		t.Helper()
		pushOf(jane, "chat_deactivated", func(p map[string]any) bool { return p["chat_id"] == chatID })
	}

	time.Sleep(timeout + 2*time.Second) // the visitors keep polling through O
	select {
	case id := <-closedEarly:
		t.Fatalf("%s was closed while its visitor polled through the other node", id)
	default:
	}

	// Chat 1's visitor leaves; both nodes up: one close.
	polling[0].Store(false)
	deactivated(chat1)

	// H dies; chat 2's visitor leaves: O takes the sweeper over.
	h.kill()
	polling[1].Store(false)
	deactivated(chat2)
	select {
	case id := <-closedEarly:
		t.Fatalf("%s was closed while its visitor polled", id)
	default:
	}

	for _, v := range []*visitor{v1, v2} {
		n := 0
		for _, e := range v.poll() {
			if e["type"] == "chat_closed" {
				n++
				if r, _ := e["reason"].(string); !strings.HasPrefix(r, "visitor left: no poll") {
					t.Errorf("%s closed with reason %q", v.id, r)
				}
			}
		}
		if n != 1 {
			t.Errorf("%s: %d chat_closed events, want exactly 1", v.id, n)
		}
	}
}

// TestClusterQueueNoticesAcrossNodes: Rocket.Chat widgets on node A whose
// rooms wait in the queue of an agent on node B (max_chats 1). The queued
// rooms reach the agent on B as incoming_chat; when she closes her chat on
// B the next room is hers (its widget on A gets agentData), the last
// room's widget on A is told its new place in the queue (queueData, spot
// 1); when she stops accepting chats on B, the widget of the room she
// serves is told on A (agentStatus away).
func TestClusterQueueNoticesAcrossNodes(t *testing.T) {
	store := clusterStore(t)
	// Continues jane's entry in the agents list: she takes one chat at a time.
	cfg := clusterConfig(t, "    max_chats: 1\n")
	a := startNode(t, "q-a", cfg, store)
	b := startNode(t, "q-b", cfg, store)
	client := &http.Client{Timeout: 5 * time.Second}
	jane := dialAgent(t, b.addr)
	jane.call("login", map[string]any{"token": "Bearer " + agentToken})
	waitAgentOnline(t, client, a)

	ws := make([]*rcWriter, 3)
	chats := make([]string, 3)
	for i := range ws {
		ws[i] = &rcWriter{idWriter: idWriter{name: "queued-" + string(rune('a'+i))}, token: "cluster-queue-token-" + string(rune('a'+i))}
		if err := ws[i].setup(client, "http://"+a.addr); err != nil {
			t.Fatal(err)
		}
		p := pushOf(jane, "incoming_chat", func(p map[string]any) bool { return customerName(p) == ws[i].name })
		chats[i] = p["chat"].(map[string]any)["id"].(string)
	}
	room := func(i int) *ddpConn {
		d := dialDDP(t, a.addr)
		d.sub("stream-livechat-room", ws[i].rid, ws[i].token)
		return d
	}
	d1, d2 := room(1), room(2)
	livechatRoom := func(d *ddpConn, rid string, ok func(m map[string]any) bool) {
		t.Helper()
		d.streamArgs("stream-livechat-room", rid, func(args []any) bool {
			m, _ := args[0].(map[string]any)
			return ok(m)
		})
	}

	jane.call("deactivate_chat", map[string]any{"id": chats[0]})
	livechatRoom(d1, ws[1].rid, func(m map[string]any) bool {
		ag, _ := m["data"].(map[string]any)
		return m["type"] == "agentData" && ag["_id"] == "jane@example.com"
	})
	livechatRoom(d2, ws[2].rid, func(m map[string]any) bool {
		q, _ := m["data"].(map[string]any)
		return m["type"] == "queueData" && q["spot"] == float64(1)
	})

	jane.call("set_routing_status", map[string]any{"status": "not_accepting_chats"})
	livechatRoom(d1, ws[1].rid, func(m map[string]any) bool {
		return m["type"] == "agentStatus" && m["status"] == "away"
	})
}
