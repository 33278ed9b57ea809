//go:build unix

package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// lcRelay is a relay section with one LiveChat connector into the desk
// gateway at addr (its customer surface, organization desk-org), getting
// customer tokens with the desk agent's token.
func lcRelay(name, addr string) string {
	return fmt.Sprintf("  connectors:\n    - name: %s\n      kind: livechat\n      url: http://%s\n"+
		"      token_url: http://%s/v2/customer/token\n      agent_token: %s\n      organization_id: desk-org\n"+
		"      timeout: 5s\n  routes:\n    - upstream: %s\n", name, addr, addr, agentToken, name)
}

// connectorStatus is a connector's state as the gateway's /readyz shows it.
func connectorStatus(t *testing.T, addr, name string) map[string]any {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Relay map[string]map[string]any `json:"relay"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("/readyz: %v", err)
	}
	return body.Relay[name]
}

// threadOf is the upstream thread a relayed conversation is bound to.
func threadOf(conv map[string]any, connector string) string {
	return upstreamID(conv, connector, "thread")
}

// TestRelayV2VisitorIntoLiveChatDesk: a LiveChat v2 visitor of the front
// gateway talks to an agent of the desk gateway, which sees a LiveChat
// customer (Customer Chat API v3.5); the agent's answers and close come
// back.
func TestRelayV2VisitorIntoLiveChatDesk(t *testing.T) {
	desk := startProc(t, deskConfig(t), filepath.Join(t.TempDir(), "desk.db"), "127.0.0.1:0")
	ag := deskAgent(t, desk.addr)
	front := startProc(t, frontConfig(t, lcRelay("lc", desk.addr)), filepath.Join(t.TempDir(), "front.db"), "127.0.0.1:0")

	v := &visitor{t: t, base: "http://" + front.addr, id: "lc-visitor-1"}
	v.start()
	v.send("hello upstream")
	inc := ag.next("push", "incoming_chat")
	chat := inc["payload"].(map[string]any)["chat"].(map[string]any)
	chatID := chat["id"].(string)
	waitFor(t, "the visitor's message upstream", waitLimit, func() bool {
		texts, _ := customerTexts(ag, chatID)
		return slices.Equal(texts, []string{"hello upstream"})
	})
	got := ag.call("get_chat", map[string]any{"chat_id": chatID})
	for _, u := range got["users"].([]any) {
		if um := u.(map[string]any); um["type"] == "customer" && um["name"] != "Vera" {
			t.Errorf("upstream customer name %v, want Vera", um["name"])
		}
	}

	ag.call("send_event", map[string]any{"chat_id": chatID, "event": map[string]any{"type": "message", "text": "Hi, Jane here"}})
	var evs []map[string]any
	waitFor(t, "the agent's answer at the visitor", waitLimit, func() bool {
		evs = v.poll()
		return slices.Equal(agentTexts(evs), []string{"Welcome!", "Hi, Jane here"})
	})
	v.send("thanks")
	waitFor(t, "the second message upstream", waitLimit, func() bool {
		texts, _ := customerTexts(ag, chatID)
		return slices.Equal(texts, []string{"hello upstream", "thanks"})
	})

	waitFor(t, "the connector reporting its socket up", waitLimit, func() bool {
		return connectorStatus(t, front.addr, "lc")["connected"] == true
	})

	convs := relayed(t, front.addr)
	if len(convs) != 1 || convs[0]["owner"] != "lc" || !strings.HasPrefix(upstreamRoom(convs[0], "lc"), chatID+"/") ||
		threadOf(convs[0], "lc") == "" || !strings.HasPrefix(fmt.Sprint(convs[0]["agent"]), "lc:") {
		t.Fatalf("relay view: %v", convs)
	}

	// The agent closes upstream: the visitor's chat ends.
	ag.call("deactivate_chat", map[string]any{"id": chatID})
	waitFor(t, "the close at the visitor", waitLimit, func() bool {
		evs = v.poll()
		return len(evs) > 0 && evs[len(evs)-1]["type"] == "chat_closed"
	})

	// The visitor comes back: the same upstream customer resumes its chat
	// with a new thread.
	v.start()
	v.send("back again")
	waitFor(t, "the returning visitor's message upstream", waitLimit, func() bool {
		texts, _ := customerTexts(ag, chatID)
		return slices.Equal(texts, []string{"back again"})
	})
	convs = relayed(t, front.addr)
	if len(convs) != 2 || !strings.HasPrefix(upstreamRoom(convs[0], "lc"), chatID+"/") ||
		threadOf(convs[0], "lc") == threadOf(convs[1], "lc") || threadOf(convs[0], "lc") == "" {
		t.Fatalf("relay view after the return: %v", convs)
	}
}

// TestRelayLiveChatSurvivesKill9: the front gateway is killed with SIGKILL
// right after taking a visitor's message and while the agent writes; after
// a restart every message is upstream once, the agent's answer written
// meanwhile reaches the visitor once, and the conversation keeps its
// upstream chat and thread.
func TestRelayLiveChatSurvivesKill9(t *testing.T) {
	desk := startProc(t, deskConfig(t), filepath.Join(t.TempDir(), "desk.db"), "127.0.0.1:0")
	ag := deskAgent(t, desk.addr)
	front := startProc(t, frontConfig(t, lcRelay("lc", desk.addr)), filepath.Join(t.TempDir(), "front.db"), freeAddr(t))

	v := &visitor{t: t, base: "http://" + front.addr, id: "lc-visitor-2"}
	v.start()
	v.send("one")
	inc := ag.next("push", "incoming_chat")
	chatID := inc["payload"].(map[string]any)["chat"].(map[string]any)["id"].(string)
	waitFor(t, "the first message upstream", waitLimit, func() bool {
		texts, _ := customerTexts(ag, chatID)
		return slices.Equal(texts, []string{"one"})
	})
	ag.call("send_event", map[string]any{"chat_id": chatID, "event": map[string]any{"type": "message", "text": "answer one"}})
	waitFor(t, "the first answer at the visitor", waitLimit, func() bool {
		return slices.Equal(agentTexts(v.poll()), []string{"Welcome!", "answer one"})
	})
	before := relayed(t, front.addr)
	if len(before) != 1 || threadOf(before[0], "lc") == "" {
		t.Fatalf("relay view: %v", before)
	}
	room := upstreamRoom(before[0], "lc")

	// Killed right after the message is committed: its delivery may or
	// may not have gone out.
	v.send("two")
	front.kill()
	// Said while the front gateway is down: LiveChat does not push it
	// again, only the resync after the restart finds it.
	ag.call("send_event", map[string]any{"chat_id": chatID, "event": map[string]any{"type": "message", "text": "while you were away"}})
	front = front.restart()

	v.send("three")
	waitFor(t, "every message upstream", waitLimit, func() bool {
		texts, _ := customerTexts(ag, chatID)
		return slices.Contains(texts, "three")
	})
	texts, thread := customerTexts(ag, chatID)
	if !slices.Equal(texts, []string{"one", "two", "three"}) {
		t.Fatalf("upstream customer messages %q, want one, two, three once each", texts)
	}
	waitFor(t, "the answer written during the outage at the visitor", waitLimit, func() bool {
		return slices.Contains(agentTexts(v.poll()), "while you were away")
	})
	if got := agentTexts(v.poll()); !slices.Equal(got, []string{"Welcome!", "answer one", "while you were away"}) {
		t.Fatalf("agent messages at the visitor %q", got)
	}
	after := relayed(t, front.addr)
	if len(after) != 1 || upstreamRoom(after[0], "lc") != room || threadOf(after[0], "lc") != thread["id"] {
		t.Fatalf("upstream chat changed: before %v, after %v (desk thread %v)", before, after, thread["id"])
	}
}

// TestRelayLiveChatFollowsADeskRestart: the desk gateway is killed and
// restarted; the front gateway's customer socket reconnects, a message the
// visitor sent meanwhile gets through once, and the agent's answer after
// the restart reaches the visitor.
func TestRelayLiveChatFollowsADeskRestart(t *testing.T) {
	desk := startProc(t, deskConfig(t), filepath.Join(t.TempDir(), "desk.db"), freeAddr(t))
	ag := deskAgent(t, desk.addr)
	front := startProc(t, frontConfig(t, lcRelay("lc", desk.addr)), filepath.Join(t.TempDir(), "front.db"), "127.0.0.1:0")

	v := &visitor{t: t, base: "http://" + front.addr, id: "lc-visitor-3"}
	v.start()
	v.send("one")
	inc := ag.next("push", "incoming_chat")
	chatID := inc["payload"].(map[string]any)["chat"].(map[string]any)["id"].(string)
	waitFor(t, "the first message upstream", waitLimit, func() bool {
		texts, _ := customerTexts(ag, chatID)
		return slices.Equal(texts, []string{"one"})
	})

	desk.kill()
	v.send("two") // the desk is down: delivered after its restart
	desk = desk.restart()
	ag = deskAgent(t, desk.addr)
	waitFor(t, "the message sent during the outage upstream", waitLimit, func() bool {
		texts, _ := customerTexts(ag, chatID)
		return slices.Equal(texts, []string{"one", "two"})
	})
	ag.call("send_event", map[string]any{"chat_id": chatID, "event": map[string]any{"type": "message", "text": "back online"}})
	waitFor(t, "the agent's answer after the restart at the visitor", waitLimit, func() bool {
		return slices.Equal(agentTexts(v.poll()), []string{"Welcome!", "back online"})
	})
	waitFor(t, "the connector reporting the reconnect", waitLimit, func() bool {
		st := connectorStatus(t, front.addr, "lc")
		n, _ := st["reconnects"].(float64)
		return st["connected"] == true && n >= 1
	})
}
