package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// TestOfflineMessageReachesLiveChatAgents (issue 11, item 5): a Rocket.Chat
// widget visitor leaves an offline message while no agent is connected.
// After a restart, every LiveChat agent of its department lists it in
// list_archives (also by query and group), reads it with get_chat and
// list_chats, over the Web API; an agent of another department does not
// see it.
func TestOfflineMessageReachesLiveChatAgents(t *testing.T) {
	const otherToken = "other-agent-token-0123456789"
	cfg := "license:\n  id: \"" + testLicence + "\"\n" +
		"departments:\n  - {id: \"7\", name: Sales}\n  - {id: \"8\", name: Support}\n" +
		"agents:\n  - {id: jane@example.com, name: Jane, token: " + agentToken + ", departments: [\"7\"]}\n" +
		"  - {id: otto@example.com, name: Otto, token: " + otherToken + ", departments: [\"8\"]}\n"
	cfgPath := filepath.Join(t.TempDir(), "chatgate.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(t.TempDir(), "offline.db")
	g := startGateway(t, cfgPath, data)
	st, b := httpJSON(t, "POST", "http://"+g.addr+"/api/v1/livechat/offline.message",
		map[string]any{"name": "Olga", "email": "olga@example.org", "message": "Please call me back", "department": "7"}, nil)
	if st != 200 || !bytes.Contains(b, []byte(`"success":true`)) {
		t.Fatalf("offline.message: %d %s", st, b)
	}
	g.stop()

	g = startGateway(t, cfgPath, data)
	base := "http://" + g.addr + "/v3.5/agent/action/"
	jane := map[string]string{"Authorization": "Bearer " + agentToken}
	otto := map[string]string{"Authorization": "Bearer " + otherToken}
	type archives struct {
		Chats []struct {
			ID     string `json:"id"`
			Thread struct {
				Active bool              `json:"active"`
				Events []json.RawMessage `json:"events"`
			} `json:"thread"`
		} `json:"chats"`
		FoundChats int `json:"found_chats"`
	}
	list := func(hdr map[string]string, filters map[string]any) archives {
		t.Helper()
		st, b := httpJSON(t, "POST", base+"list_archives", map[string]any{"filters": filters}, hdr)
		var a archives
		if err := json.Unmarshal(b, &a); st != 200 || err != nil {
			t.Fatalf("list_archives: %d %s", st, b)
		}
		return a
	}
	all := list(jane, map[string]any{})
	if all.FoundChats != 1 || len(all.Chats) != 1 || all.Chats[0].Thread.Active {
		t.Fatalf("jane's archives: %+v", all)
	}
	chat := all.Chats[0].ID
	evs, _ := json.Marshal(all.Chats[0].Thread.Events)
	for _, want := range []string{`"type":"filled_form"`, `"form_type":"ticket"`, `"olga@example.org"`, `"text":"Please call me back"`} {
		if !bytes.Contains(evs, []byte(want)) {
			t.Errorf("archived thread lacks %s:\n%s", want, evs)
		}
	}
	for _, tc := range []struct {
		name    string
		filters map[string]any
		want    int
	}{
		{"query in the message", map[string]any{"query": "CALL me"}, 1},
		{"query in the form", map[string]any{"query": "olga@example"}, 1},
		{"its group", map[string]any{"group_ids": []int{7}}, 1},
		{"another group", map[string]any{"group_ids": []int{8}}, 0},
		{"no match", map[string]any{"query": "refund"}, 0},
	} {
		if got := list(jane, tc.filters).FoundChats; got != tc.want {
			t.Errorf("list_archives %s: %d chats, want %d", tc.name, got, tc.want)
		}
	}
	if st, b := httpJSON(t, "POST", base+"get_chat", map[string]any{"chat_id": chat}, jane); st != 200 || !bytes.Contains(b, []byte("Please call me back")) {
		t.Errorf("get_chat: %d %s", st, b)
	}
	if st, b := httpJSON(t, "POST", base+"list_chats", map[string]any{}, jane); st != 200 || !bytes.Contains(b, []byte(chat)) {
		t.Errorf("list_chats: %d %s", st, b)
	}
	// An agent of another department sees nothing of it.
	if a := list(otto, map[string]any{}); a.FoundChats != 0 {
		t.Errorf("otto's archives: %+v", a)
	}
	if st, b := httpJSON(t, "POST", base+"get_chat", map[string]any{"chat_id": chat}, otto); st != 404 {
		t.Errorf("otto get_chat: %d %s", st, b)
	}
}
