package agentrtm

import (
	"bytes"
	"io"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"

	"chatgate/adapters/livechat/wire"
	"chatgate/core/model"
	"chatgate/store/files"
)

// web posts a JSON body to the agent Web API and returns status and body.
func (h *harness) web(t *testing.T, token, action, body string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, h.srv.URL+"/v3.5/agent/action/"+action, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func webErrType(t *testing.T, b []byte) string {
	t.Helper()
	var e struct {
		Error struct{ Type, Message string } `json:"error"`
	}
	mustUnmarshal(t, b, &e)
	if e.Error.Message == "" {
		t.Fatalf("error without message: %s", b)
	}
	return e.Error.Type
}

func withFiles(t *testing.T, max int64) func(*Config) {
	return func(c *Config) {
		fs, err := files.Open(t.TempDir(), max)
		if err != nil {
			t.Fatal(err)
		}
		c.Files = fs
	}
}

func TestWebAPIStatusesAndSharedHandlers(t *testing.T) {
	h := newHarness(t, withFiles(t, 64))
	a, tom, _ := h.aliceServesTom(t)

	cases := []struct {
		name, token, action, body string
		status                    int
		typ                       string
	}{
		{"no token", "", "list_chats", "{}", 401, "authentication"},
		{"bad token", "nope", "list_chats", "{}", 401, "authentication"},
		{"unknown action", "tok-alice", "fly", "{}", 400, "validation"},
		{"rtm-only login", "tok-alice", "login", "{}", 400, "validation"},
		{"rtm-only ping", "tok-alice", "ping", "{}", 400, "validation"},
		{"not json", "tok-alice", "list_chats", "[1]", 400, "validation"},
		{"broken json", "tok-alice", "get_chat", `{"chat_id":`, 400, "validation"},
		{"wrong type", "tok-alice", "get_chat", `{"chat_id":5}`, 400, "validation"},
		{"missing field", "tok-alice", "get_chat", `{}`, 400, "validation"},
		{"unknown chat", "tok-alice", "get_chat", `{"chat_id":"nope"}`, 404, "not_found"},
		{"other agent's chat", "tok-bob", "get_chat", `{"chat_id":"` + string(tom.ID) + `"}`, 404, "not_found"},
		{"too large", "tok-alice", "send_event", `{"chat_id":"x","event":{"type":"message","text":"` + strings.Repeat("a", 9<<10) + `"}}`, 413, "entity_too_large"},
		{"system_message reserved", "tok-alice", "send_event", `{"chat_id":"` + string(tom.ID) + `","event":{"type":"system_message","system_message_type":"chat_closed"}}`, 400, "validation"},
		{"file url foreign", "tok-alice", "send_event", `{"chat_id":"` + string(tom.ID) + `","event":{"type":"file","url":"https://evil.example/x.png"}}`, 400, "validation"},
	}
	for _, tc := range cases {
		st, b := h.web(t, tc.token, tc.action, tc.body)
		if st != tc.status || webErrType(t, b) != tc.typ {
			t.Errorf("%s: %d %s, want %d %s", tc.name, st, b, tc.status, tc.typ)
		}
	}

	// Success: a bare payload, and the RTM session gets the push without
	// a request_id.
	st, b := h.web(t, "tok-alice", "send_event", `{"chat_id":"`+string(tom.ID)+`","event":{"type":"message","text":"via web"}}`)
	if st != 200 {
		t.Fatalf("send_event: %d %s", st, b)
	}
	var se SendEventResponse
	mustUnmarshal(t, b, &se)
	f := a.Await(func(f frame) bool {
		return f.Action == "incoming_event" && strings.Contains(string(f.Payload), se.EventID)
	})
	if f.RID() != "" {
		t.Fatalf("web-caused push has request_id %q", f.RID())
	}
	st, b = h.web(t, "tok-alice", "list_chats", "")
	var lc ListChatsResponse
	mustUnmarshal(t, b, &lc)
	if st != 200 || lc.FoundChats != 1 || lc.ChatsSummary[0].ID != string(tom.ID) {
		t.Fatalf("list_chats: %d %s", st, b)
	}

	// Upload, then a file event with its URL.
	up := func(content string) (int, []byte) {
		var buf bytes.Buffer
		mw := multipart.NewWriter(&buf)
		fw, _ := mw.CreateFormFile("file", "a b.txt")
		_, _ = fw.Write([]byte(content))
		_ = mw.Close()
		req, _ := http.NewRequest(http.MethodPost, h.srv.URL+"/v3.5/agent/action/upload_file", &buf)
		req.Header.Set("Content-Type", mw.FormDataContentType())
		req.Header.Set("Authorization", "Bearer tok-alice")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		rb, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, rb
	}
	if st, b := up(strings.Repeat("x", 65)); st != 413 || webErrType(t, b) != "entity_too_large" {
		t.Fatalf("oversized upload: %d %s", st, b)
	}
	st, b = up("hello")
	var ur UploadResponse
	mustUnmarshal(t, b, &ur)
	if st != 200 || !strings.HasPrefix(ur.URL, h.srv.URL+"/file-upload/") || !strings.HasSuffix(ur.URL, "/a%20b.txt") {
		t.Fatalf("upload: %d %s", st, b)
	}
	// The same handler over RTM.
	r := a.Call("send_event", map[string]any{"chat_id": tom.ID, "event": map[string]any{"type": "file", "url": ur.URL}})
	if !r.Success {
		t.Fatalf("file event: %s", r.Payload)
	}
	var ie IncomingEvent
	mustUnmarshal(t, a.Push("incoming_event").Payload, &ie)
	for ie.Event.Type != "file" {
		mustUnmarshal(t, a.Push("incoming_event").Payload, &ie)
	}
	if ie.Event.Name != "a b.txt" || ie.Event.Size != 5 || ie.Event.URL != ur.URL {
		t.Fatalf("file event: %+v", ie.Event)
	}

	// Inactive chat: 422.
	if st, b := h.web(t, "tok-alice", "deactivate_chat", `{"id":"`+string(tom.ID)+`"}`); st != 200 || string(b) != "{}" {
		t.Fatalf("deactivate: %d %s", st, b)
	}
	if st, b := h.web(t, "tok-alice", "send_event", `{"chat_id":"`+string(tom.ID)+`","event":{"type":"message","text":"x"}}`); st != 422 || webErrType(t, b) != "chat_inactive" {
		t.Fatalf("inactive: %d %s", st, b)
	}
}

func TestMoreAgentActions(t *testing.T) {
	h := newHarness(t, nil)
	a, tom, conv := h.aliceServesTom(t)
	b := h.dial(t, "/v3.5/agent/rtm/ws")
	b.login("tok-bob")

	// Routing statuses and agents for transfer.
	r := a.Call("list_routing_statuses", map[string]any{})
	var rs []RoutingStatus
	mustUnmarshal(t, r.Payload, &rs)
	if len(rs) != 3 {
		t.Fatalf("routing statuses: %s", r.Payload)
	}
	r = a.Call("list_agents_for_transfer", map[string]any{"chat_id": tom.ID})
	var af []AgentForTransfer
	mustUnmarshal(t, r.Payload, &af)
	if len(af) != 1 || af[0].AgentID != string(bob) {
		t.Fatalf("agents for transfer: %s", r.Payload)
	}

	// Customer.
	r = a.Call("get_customer", map[string]any{"id": tom.ID})
	var cu CustomerResponse
	mustUnmarshal(t, r.Payload, &cu)
	if !r.Success || cu.Name != "Tom" || cu.Statistics.ThreadsCount != 1 {
		t.Fatalf("get_customer: %s", r.Payload)
	}
	if r := b.Call("get_customer", map[string]any{"id": tom.ID}); r.ErrType() != "not_found" {
		t.Fatalf("bob sees tom: %s", r.Payload)
	}
	r = a.Call("update_customer", map[string]any{"id": tom.ID, "name": "Thomas", "session_fields": []map[string]string{{"k": "v"}}})
	if !r.Success {
		t.Fatalf("update_customer: %s", r.Payload)
	}
	if p := a.Push("customer_updated"); p.RID() != r.RID() || !strings.Contains(string(p.Payload), `"Thomas"`) {
		t.Fatalf("customer_updated: %+v", p)
	}
	if r := a.Call("update_customer", map[string]any{"id": tom.ID}); r.ErrType() != "validation" {
		t.Fatalf("empty update: %s", r.Payload)
	}

	// Seen, multicast, custom and system_message events.
	if r := a.Call("mark_events_as_seen", map[string]any{"chat_id": tom.ID, "seen_up_to": "2026-01-01T00:00:00Z"}); !r.Success {
		t.Fatalf("mark seen: %s", r.Payload)
	}
	a.Push("events_marked_as_seen")
	if r := a.Call("mark_events_as_seen", map[string]any{"chat_id": tom.ID, "seen_up_to": 5}); r.ErrType() != "validation" {
		t.Fatalf("mark seen bad type: %s", r.Payload)
	}
	if r := a.Call("multicast", map[string]any{"recipients": map[string]any{"agents": map[string]any{"ids": []string{string(bob)}}},
		"content": map[string]any{"hi": 1}, "type": "note"}); !r.Success {
		t.Fatalf("multicast: %s", r.Payload)
	}
	var im IncomingMulticast
	mustUnmarshal(t, b.Push("incoming_multicast").Payload, &im)
	if im.AuthorID != string(alice) || string(im.Content) != `{"hi":1}` || im.Type != "note" {
		t.Fatalf("incoming_multicast: %+v", im)
	}
	if r := a.Call("multicast", map[string]any{"content": 1}); r.ErrType() != "validation" {
		t.Fatalf("multicast without recipients: %s", r.Payload)
	}
	for _, ev := range []map[string]any{
		{"type": "custom", "content": map[string]any{"x": 1}},
		{"type": "system_message", "system_message_type": "custom.note", "text": "note"},
	} {
		if r := a.Call("send_event", map[string]any{"chat_id": tom.ID, "event": ev}); !r.Success {
			t.Fatalf("send_event %v: %s", ev["type"], r.Payload)
		}
	}
	if r := a.Call("send_event", map[string]any{"chat_id": tom.ID, "event": map[string]any{"type": "system_message"}}); r.ErrType() != "validation" {
		t.Fatalf("system_message without type: %s", r.Payload)
	}

	// Transfer to bob: bob gets the chat, alice chat_transferred.
	for _, bad := range []map[string]any{
		{"id": tom.ID},
		{"id": tom.ID, "target": map[string]any{"type": "agent", "ids": []any{}}},
		{"id": tom.ID, "target": map[string]any{"type": "planet", "ids": []any{"x"}}},
		{"id": tom.ID, "target": map[string]any{"type": "group", "ids": []any{"x"}}},
	} {
		if r := a.Call("transfer_chat", bad); r.ErrType() != "validation" {
			t.Fatalf("transfer %v: %s", bad, r.Payload)
		}
	}
	if r := a.Call("transfer_chat", map[string]any{"id": tom.ID, "target": map[string]any{"type": "agent", "ids": []any{"nobody@x"}}}); r.ErrType() != "not_found" {
		t.Fatalf("transfer to unknown agent: %s", r.Payload)
	}
	r = a.Call("transfer_chat", map[string]any{"id": tom.ID, "target": map[string]any{"type": "agent", "ids": []any{string(bob)}}})
	if !r.Success {
		t.Fatalf("transfer: %s", r.Payload)
	}
	var ct ChatTransferred
	mustUnmarshal(t, a.Push("chat_transferred").Payload, &ct)
	if ct.ChatID != string(tom.ID) || ct.RequesterID != string(alice) || len(ct.TransferredTo.AgentIDs) != 1 || ct.TransferredTo.AgentIDs[0] != string(bob) {
		t.Fatalf("chat_transferred: %+v", ct)
	}
	b.Push("incoming_chat")
	b.Push("chat_transferred")
	if r := a.Call("get_chat", map[string]any{"chat_id": tom.ID}); r.ErrType() != "not_found" {
		t.Fatalf("alice still sees the chat: %s", r.Payload)
	}
	// Transfer to a group: sales (carol is offline, so it queues).
	r = b.Call("transfer_chat", map[string]any{"id": tom.ID, "target": map[string]any{"type": "group", "ids": []any{groupOf(t, h, "sales")}}})
	if !r.Success {
		t.Fatalf("group transfer: %s", r.Payload)
	}
	b.Push("chat_transferred")

	// Threads and archives: a chat alice served and closed.
	if _, err := h.d.Close(t.Context(), conv.ID, model.System, "", ""); err != nil {
		t.Fatal(err)
	}
	if r := b.Call("set_routing_status", map[string]any{"status": "not_accepting_chats"}); !r.Success {
		t.Fatalf("bob not accepting: %s", r.Payload)
	}
	sue, sconv := h.startChat(t, "Sue", "")
	a.Await(func(f frame) bool {
		return f.Action == "incoming_chat" && strings.Contains(string(f.Payload), string(sue.ID))
	})
	if r := a.Call("deactivate_chat", map[string]any{"id": sue.ID}); !r.Success {
		t.Fatalf("deactivate: %s", r.Payload)
	}
	r = a.Call("list_threads", map[string]any{"chat_id": sue.ID})
	var lt ListThreadsResponse
	mustUnmarshal(t, r.Payload, &lt)
	if lt.FoundThreads != 1 || lt.Threads[0].ID != string(sconv.ID) || lt.Threads[0].Active {
		t.Fatalf("list_threads: %s", r.Payload)
	}
	r = a.Call("list_archives", map[string]any{"filters": map[string]any{"query": "FROM SUE"}})
	var la ListArchivesResponse
	mustUnmarshal(t, r.Payload, &la)
	if la.FoundChats != 1 || la.Chats[0].ID != string(sue.ID) {
		t.Fatalf("list_archives: %s", r.Payload)
	}
	r = a.Call("list_archives", map[string]any{"filters": map[string]any{"query": "nothing like it"}})
	mustUnmarshal(t, r.Payload, &la)
	if la.FoundChats != 0 {
		t.Fatalf("list_archives no match: %s", r.Payload)
	}
	if r := a.Call("list_archives", map[string]any{"filters": map[string]any{"from": "yesterday"}}); r.ErrType() != "validation" {
		t.Fatalf("bad from: %s", r.Payload)
	}

	// Logout closes every connection of the agent after the response.
	r = a.Call("logout", nil)
	if !r.Success {
		t.Fatalf("logout: %s", r.Payload)
	}
	if p := a.Push("agent_disconnected"); !strings.Contains(string(p.Payload), "agent_logged_out_remotely") {
		t.Fatalf("disconnect: %s", p.Payload)
	}
}

func groupOf(t *testing.T, h *harness, dept model.DeptID) int {
	t.Helper()
	for _, d := range h.d.Departments() {
		if d.ID == dept {
			return wire.GroupID(d.ID)
		}
	}
	t.Fatalf("no department %s", dept)
	return 0
}
