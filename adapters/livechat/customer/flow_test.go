package customer

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"chatgate/core/desk"
	"chatgate/core/model"
)

func startPayload(text string) map[string]any {
	return map[string]any{"active": true, "chat": map[string]any{"thread": map[string]any{
		"events": []any{map[string]any{"type": "message", "text": text}}}}}
}

// TestCustomerFlow runs the customer SDK's path: login, start_chat (the
// response, then incoming_chat with the request_id), an agent's reply,
// send_event (with custom_id idempotency), reads, typing, agents-only
// events, deactivate_chat and send_event on the inactive chat.
func TestCustomerFlow(t *testing.T) {
	h := newHarness(t, nil)
	h.d.AgentConnected(alice, true)
	c, me, _ := h.customer(t)

	rid := c.Send("start_chat", startPayload("hello"))
	resp := c.Response(rid)
	if !resp.Success {
		t.Fatalf("start_chat: %s", resp.Payload)
	}
	var started StartChatResponse
	mustUnmarshal(t, resp.Payload, &started)
	if started.ChatID != string(me) || started.ThreadID == "" || len(started.EventIDs) != 1 {
		t.Fatalf("start_chat payload %+v", started)
	}
	ic := c.Push("incoming_chat")
	if ic.RID() != rid {
		t.Fatalf("incoming_chat request_id = %q, want %q", ic.RID(), rid)
	}
	var chat IncomingChat
	mustUnmarshal(t, ic.Payload, &chat)
	if chat.Chat.ID != string(me) || chat.Chat.Thread.ID != started.ThreadID || len(chat.Chat.Thread.Events) != 2 {
		t.Fatalf("incoming_chat %s", ic.Payload)
	}

	// The agent answers; the customer gets incoming_event without request_id.
	conv := model.ConvID(started.ThreadID)
	agent := model.Author{Kind: model.AuthorAgent, ID: string(alice), Name: "Alice"}
	if _, _, err := h.d.Post(context.Background(), desk.PostRequest{Conv: conv, Author: agent,
		Draft: desk.Draft{Kind: model.KindMessage, Text: "hi, how can I help?"}}); err != nil {
		t.Fatal(err)
	}
	ie := c.Push("incoming_event")
	if ie.RID() != "" || !strings.Contains(string(ie.Payload), "how can I help") {
		t.Fatalf("agent reply push %s (rid %q)", ie.Payload, ie.RID())
	}
	// An agents-only event never reaches the customer.
	if _, _, err := h.d.Post(context.Background(), desk.PostRequest{Conv: conv, Author: agent,
		Draft: desk.Draft{Kind: model.KindMessage, Text: "secret note", Visibility: model.VisibleAgents}}); err != nil {
		t.Fatal(err)
	}
	// Agent typing reaches the customer.
	if err := h.d.Typing(context.Background(), conv, agent, true, "", ""); err != nil {
		t.Fatal(err)
	}
	ti := c.Push("incoming_typing_indicator")
	if !strings.Contains(string(ti.Payload), `"is_typing":true`) {
		t.Fatalf("typing %s", ti.Payload)
	}

	// send_event: response first, then the push with the request_id.
	ev := map[string]any{"chat_id": string(me), "event": map[string]any{"type": "message", "text": "thanks", "custom_id": "c-1"}}
	rid = c.Send("send_event", ev)
	f := c.Recv()
	for f.Type == "push" && f.RID() != rid { // unrelated pushes may come first
		f = c.Recv()
	}
	if f.Type != "response" || f.RID() != rid || !f.Success {
		t.Fatalf("want send_event response first, got %+v %s", f, f.Payload)
	}
	var sent SendEventResponse
	mustUnmarshal(t, f.Payload, &sent)
	p := c.Push("incoming_event")
	if p.RID() != rid || !strings.Contains(string(p.Payload), sent.EventID) {
		t.Fatalf("send_event push %s rid %q", p.Payload, p.RID())
	}
	// A retry with the same custom_id returns the same event, and the push again.
	rid = c.Send("send_event", ev)
	again := c.Response(rid)
	var sent2 SendEventResponse
	mustUnmarshal(t, again.Payload, &sent2)
	if sent2.EventID != sent.EventID {
		t.Fatalf("idempotent retry gave %s, want %s", sent2.EventID, sent.EventID)
	}
	if p := c.Push("incoming_event"); p.RID() != rid {
		t.Fatalf("retry push rid %q", p.RID())
	}

	// Reads.
	g := c.Call("get_chat", map[string]any{"chat_id": string(me)})
	if !g.Success || strings.Contains(string(g.Payload), "secret note") || !strings.Contains(string(g.Payload), "thanks") {
		t.Fatalf("get_chat %s", g.Payload)
	}
	l := c.Call("list_chats", map[string]any{"limit": 10})
	var lc ListChatsResponse
	mustUnmarshal(t, l.Payload, &lc)
	if lc.TotalChats != 1 || len(lc.ChatsSummary) != 1 || lc.ChatsSummary[0].LastThreadID != started.ThreadID || !lc.ChatsSummary[0].Active {
		t.Fatalf("list_chats %s", l.Payload)
	}
	if strings.Contains(string(l.Payload), "secret note") {
		t.Fatalf("list_chats leaks an agents-only event: %s", l.Payload)
	}
	lt := c.Call("list_threads", map[string]any{"chat_id": string(me)})
	var lth ListThreadsResponse
	mustUnmarshal(t, lt.Payload, &lth)
	if lth.FoundThreads != 1 || len(lth.Threads) != 1 || strings.Contains(string(lt.Payload), "secret note") {
		t.Fatalf("list_threads %s", lt.Payload)
	}

	// Sneak peek and seen marks.
	if r := c.Call("send_sneak_peek", map[string]any{"chat_id": string(me), "sneak_peek_text": "typ"}); !r.Success {
		t.Fatalf("send_sneak_peek %s", r.Payload)
	}
	rid = c.Send("mark_events_as_seen", map[string]any{"chat_id": string(me), "seen_up_to": "2026-01-01T00:00:00Z"})
	if r := c.Response(rid); !r.Success {
		t.Fatalf("mark_events_as_seen %s", r.Payload)
	}
	if p := c.Push("events_marked_as_seen"); p.RID() != rid {
		t.Fatalf("events_marked_as_seen rid %q", p.RID())
	}

	// Deactivate: the response, the system message and chat_deactivated.
	rid = c.Send("deactivate_chat", map[string]any{"id": string(me)})
	if r := c.Response(rid); !r.Success {
		t.Fatalf("deactivate_chat %s", r.Payload)
	}
	if sm := c.Push("incoming_event"); sm.RID() != "" || !strings.Contains(string(sm.Payload), "system_message") {
		t.Fatalf("closing system message must carry no request_id: %s rid %q", sm.Payload, sm.RID())
	}
	cd := c.Push("chat_deactivated")
	if cd.RID() != rid || !strings.Contains(string(cd.Payload), `"user_id":"`+string(me)) {
		t.Fatalf("chat_deactivated %s rid %q", cd.Payload, cd.RID())
	}
	if r := c.Call("send_event", map[string]any{"chat_id": string(me), "attach_to_last_thread": false,
		"event": map[string]any{"type": "message", "text": "late"}}); r.Success || r.ErrType() != "chat_inactive" {
		t.Fatalf("send_event on inactive chat: %s", r.Payload)
	}
	// resume_chat opens a second thread.
	rid = c.Send("resume_chat", map[string]any{"chat": map[string]any{"id": string(me), "thread": map[string]any{
		"events": []any{map[string]any{"type": "message", "text": "back again"}}}}})
	if r := c.Response(rid); !r.Success {
		t.Fatalf("resume_chat %s", r.Payload)
	}
	if p := c.Push("incoming_chat"); p.RID() != rid {
		t.Fatalf("resume incoming_chat rid %q", p.RID())
	}
	lt = c.Call("list_threads", map[string]any{"chat_id": string(me), "limit": 1})
	mustUnmarshal(t, lt.Payload, &lth)
	if lth.FoundThreads != 2 || len(lth.Threads) != 1 || lth.NextPageID == "" {
		t.Fatalf("list_threads page %s", lt.Payload)
	}
	lt = c.Call("list_threads", map[string]any{"chat_id": string(me), "page_id": lth.NextPageID})
	mustUnmarshal(t, lt.Payload, &lth)
	if len(lth.Threads) != 1 || lth.Threads[0].ID != started.ThreadID {
		t.Fatalf("list_threads second page %s", lt.Payload)
	}
}

// TestCustomerProfile covers update_customer, set_customer_session_fields,
// get_customer and the customer_updated push on every connection.
func TestCustomerProfile(t *testing.T) {
	h := newHarness(t, nil)
	tok, me := h.token(t)
	a := h.dial(t, rtmPath)
	login := a.loginWith(map[string]any{"token": "Bearer " + tok, "customer": map[string]any{"name": "Ann"}})
	if login.Customer.ID != string(me) || login.Customer.Name != "Ann" || login.Customer.Statistics == nil || login.Chats == nil {
		t.Fatalf("login %+v", login)
	}
	b := h.dial(t, rtmPath)
	b.login(tok)
	rid := a.Send("update_customer", map[string]any{"email": "ann@example.org"})
	if r := a.Response(rid); !r.Success {
		t.Fatalf("update_customer %s", r.Payload)
	}
	if p := a.Push("customer_updated"); p.RID() != rid || !strings.Contains(string(p.Payload), "ann@example.org") {
		t.Fatalf("customer_updated %s", p.Payload)
	}
	if p := b.Push("customer_updated"); p.RID() != "" || strings.Contains(string(p.Payload), `"name"`) {
		t.Fatalf("customer_updated on the other connection %s", p.Payload)
	}
	if r := a.Call("set_customer_session_fields", map[string]any{"session_fields": []any{map[string]any{"plan": "gold"}}}); !r.Success {
		t.Fatalf("set_customer_session_fields %s", r.Payload)
	}
	g := a.Call("get_customer", nil)
	var p Profile
	mustUnmarshal(t, g.Payload, &p)
	if p.Name != "Ann" || p.Email != "ann@example.org" || len(p.SessionFields) != 1 || p.SessionFields[0]["plan"] != "gold" {
		t.Fatalf("get_customer %s", g.Payload)
	}
}

// TestCustomerErrors: every action's validation, not_found and
// authentication errors (§2.9 types).
func TestCustomerErrors(t *testing.T) {
	h := newHarness(t, nil)
	c, me, _ := h.customer(t)
	other, _, _ := h.customer(t)
	if r := other.Call("start_chat", startPayload("other")); !r.Success {
		t.Fatal(string(r.Payload))
	}
	otherID := func() string {
		var l LoginResponse
		_ = l
		g := other.Call("get_customer", nil)
		var p Profile
		mustUnmarshal(t, g.Payload, &p)
		return p.ID
	}()
	long := strings.Repeat("x", 300)
	cases := []struct {
		name, action string
		payload      any
		want         string
	}{
		{"unknown action", "fly", map[string]any{}, "validation"},
		{"login twice", "login", map[string]any{"token": "Bearer x"}, "validation"},
		{"send_event no chat", "send_event", map[string]any{"event": map[string]any{"type": "message", "text": "x"}}, "validation"},
		{"send_event no event", "send_event", map[string]any{"chat_id": string(me)}, "validation"},
		{"send_event wrong type", "send_event", map[string]any{"chat_id": 5}, "validation"},
		{"send_event bad event type", "send_event", map[string]any{"chat_id": string(me), "event": map[string]any{"type": "bogus"}}, "validation"},
		{"send_event agents visibility", "send_event", map[string]any{"chat_id": string(me), "event": map[string]any{"type": "message", "text": "x", "visibility": "agents"}}, "validation"},
		{"send_event no thread yet", "send_event", map[string]any{"chat_id": string(me), "event": map[string]any{"type": "message", "text": "x"}}, "not_found"},
		{"send_event other's chat", "send_event", map[string]any{"chat_id": otherID, "event": map[string]any{"type": "message", "text": "x"}}, "not_found"},
		{"get_chat other's chat", "get_chat", map[string]any{"chat_id": otherID}, "not_found"},
		{"get_chat no id", "get_chat", map[string]any{}, "validation"},
		{"list_threads other's chat", "list_threads", map[string]any{"chat_id": otherID}, "not_found"},
		{"list_threads bad limit", "list_threads", map[string]any{"chat_id": string(me), "limit": 500}, "validation"},
		{"list_chats bad limit", "list_chats", map[string]any{"limit": 26}, "validation"},
		{"list_chats bad page", "list_chats", map[string]any{"page_id": "zz"}, "validation"},
		{"list_chats bad order", "list_chats", map[string]any{"sort_order": "up"}, "validation"},
		{"deactivate other's chat", "deactivate_chat", map[string]any{"id": otherID}, "not_found"},
		{"deactivate no id", "deactivate_chat", map[string]any{}, "validation"},
		{"resume other's chat", "resume_chat", map[string]any{"chat": map[string]any{"id": otherID}}, "not_found"},
		{"resume no id", "resume_chat", map[string]any{}, "validation"},
		{"start long custom_id", "start_chat", map[string]any{"chat": map[string]any{"thread": map[string]any{"events": []any{map[string]any{"type": "message", "text": "x", "custom_id": long}}}}}, "validation"},
		{"start oversized text", "start_chat", startPayload(strings.Repeat("y", 201)), "validation"},
		{"update_customer empty", "update_customer", map[string]any{}, "validation"},
		{"session fields not strings", "set_customer_session_fields", map[string]any{"session_fields": []any{map[string]any{"a": 1}}}, "validation"},
		{"session fields two keys", "set_customer_session_fields", map[string]any{"session_fields": []any{map[string]any{"a": "1", "b": "2"}}}, "validation"},
		{"session fields missing", "set_customer_session_fields", map[string]any{}, "validation"},
		{"sneak peek missing text", "send_sneak_peek", map[string]any{"chat_id": string(me)}, "validation"},
		{"sneak peek other's chat", "send_sneak_peek", map[string]any{"chat_id": otherID, "sneak_peek_text": "x"}, "not_found"},
		{"seen bad date", "mark_events_as_seen", map[string]any{"chat_id": string(me), "seen_up_to": "yesterday"}, "validation"},
		{"seen other's chat", "mark_events_as_seen", map[string]any{"chat_id": otherID, "seen_up_to": "2026-01-01T00:00:00Z"}, "not_found"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := c.Call(tc.action, tc.payload)
			if r.Success || r.ErrType() != tc.want {
				t.Fatalf("%s: got success=%v %s, want %s", tc.action, r.Success, r.Payload, tc.want)
			}
		})
	}
	// Customer B's chat is untouched.
	g := other.Call("get_chat", map[string]any{"chat_id": otherID})
	if !g.Success || !strings.Contains(string(g.Payload), `"active":true`) {
		t.Fatalf("other chat %s", g.Payload)
	}
	// Oversized frame: entity_too_large, the session goes on.
	big := `{"request_id":"big","action":"ping","payload":{"x":"` + strings.Repeat("z", 9<<10) + `"}}`
	c.SendRaw([]byte(big))
	if r := c.Response("big"); r.ErrType() != "entity_too_large" {
		t.Fatalf("big frame %s", r.Payload)
	}
	c.SendRaw([]byte(`not json`))
	if r := c.Recv(); r.ErrType() != "validation" {
		t.Fatalf("bad frame %s", r.Payload)
	}
	if r := c.Call("ping", nil); !r.Success {
		t.Fatalf("ping after errors %s", r.Payload)
	}
	// Started chats: a second start_chat while active is refused.
	if r := other.Call("start_chat", startPayload("again")); r.Success || r.ErrType() != "validation" {
		t.Fatalf("second start %s", r.Payload)
	}
}

func TestLoginAndConnection(t *testing.T) {
	h := newHarness(t, nil)
	// Before login only login and ping.
	c := h.dial(t, rtmPath)
	if r := c.Call("get_customer", nil); r.ErrType() != "authentication" {
		t.Fatalf("before login %s", r.Payload)
	}
	if r := c.Call("login", map[string]any{"token": "Bearer nope"}); r.ErrType() != "authentication" {
		t.Fatalf("bad token %s", r.Payload)
	}
	if r := c.Call("login", map[string]any{"token": "nope"}); r.ErrType() != "authentication" {
		t.Fatalf("no bearer %s", r.Payload)
	}
	if r := c.Call("login", map[string]any{}); r.ErrType() != "validation" {
		t.Fatalf("no token %s", r.Payload)
	}
	// Wrong or missing organization: customer_disconnected, then close.
	for _, path := range []string{"/v3.5/customer/rtm/ws?organization_id=other", "/v3.5/customer/rtm/ws"} {
		w := h.dial(t, path)
		p := w.Push("customer_disconnected")
		if !strings.Contains(string(p.Payload), "license_not_found") {
			t.Fatalf("%s: %s", path, p.Payload)
		}
		_ = w.CloseErr()
	}
	// Token expiry: refused at login and on every request afterwards.
	tok, _ := h.token(t)
	live := h.dial(t, "/v3.6/customer/rtm/ws?organization_id=org-1")
	live.login(tok)
	// The session arms its expiry timer (from the clock) right after it
	// has served login, before it reads the next request: the ping's
	// answer shows the timer armed with the token's remaining 8 hours.
	// Advanced before, the clock would make the session end at once with
	// access_token_expired, which is right too but not what this checks.
	if r := live.Call("ping", nil); !r.Success {
		t.Fatalf("ping %s", r.Payload)
	}
	h.clock.advance(8*time.Hour + time.Second)
	if r := live.Call("get_customer", nil); r.ErrType() != "authentication" {
		t.Fatalf("expired token in session %s", r.Payload)
	}
	late := h.dial(t, rtmPath)
	if r := late.Call("login", map[string]any{"token": "Bearer " + tok}); r.ErrType() != "authentication" {
		t.Fatalf("expired token at login %s", r.Payload)
	}
	// Shutdown: customer_disconnected before close.
	c2, _, _ := h.customer(t)
	h.stop()
	if p := c2.Push("customer_disconnected"); !strings.Contains(string(p.Payload), reasonShutdown) {
		t.Fatalf("shutdown %s", p.Payload)
	}
}

func TestTokenEndpoint(t *testing.T) {
	h := newHarness(t, nil)
	body := `{"grant_type":"cookie","response_type":"token","client_id":"c","organization_id":"org-1"}`
	st, b, resp := h.post(t, "/v2/customer/token", "", body, nil)
	if st != 200 {
		t.Fatalf("%d %s", st, b)
	}
	var first TokenResponse
	mustUnmarshal(t, b, &first)
	if first.TokenType != "Bearer" || first.ExpiresIn != 8*3600 || first.OrganizationID != "org-1" || first.EntityID == "" || !strings.HasPrefix(first.AccessToken, "dal:") {
		t.Fatalf("token %s", b)
	}
	cookies := resp.Cookies()
	if len(cookies) != 2 {
		t.Fatalf("cookies %v", cookies)
	}
	// The same browser gets the same customer and a new token.
	tok2, id2 := h.tokenWith(t, cookies)
	if id2 != model.VisitorID(first.EntityID) || tok2 == first.AccessToken {
		t.Fatalf("same cookies gave %s/%s", id2, tok2)
	}
	// A forged secret makes a new customer.
	forged := []*http.Cookie{cookies[0], {Name: cookies[1].Name, Value: strings.Repeat("0", 32)}}
	if _, id3 := h.tokenWith(t, forged); id3 == id2 {
		t.Fatal("forged cookie reused the customer")
	}
	// Tokens survive in the store: a new surface on the same desk accepts them.
	other := New(h.d, Config{OrganizationID: "org-1", Now: h.clock.now}, h.surf.log)
	if id, _, err := other.Authenticate(context.Background(), first.AccessToken); err != nil || id != model.VisitorID(first.EntityID) {
		t.Fatalf("authenticate from store: %v %s", err, id)
	}

	// A customer alice minted herself: she may re-issue its tokens (the
	// relay connectors do); first she may not reach (issue 16, High 1).
	_, mintedBody, _ := h.post(t, "/v2/customer/token", "tok-alice", `{"grant_type":"agent_token"}`, nil)
	var minted TokenResponse
	if err := json.Unmarshal(mintedBody, &minted); err != nil || minted.EntityID == "" {
		t.Fatalf("mint: %s", mintedBody)
	}
	cases := []struct {
		name, bearer, body string
		status             int
		want               string
	}{
		{"bad json", "", `{`, 400, `"oauth_exception":"invalid_request"`},
		{"no grant", "", `{}`, 400, `"oauth_exception":"invalid_request"`},
		{"unknown grant", "", `{"grant_type":"password"}`, 400, `unsupported_grant_type`},
		{"wrong org", "", `{"grant_type":"cookie","organization_id":"x"}`, 400, `identity_exception`},
		{"agent grant without token", "", `{"grant_type":"agent_token"}`, 401, `identity_exception`},
		{"agent grant bad token", "nope", `{"grant_type":"agent_token"}`, 401, `identity_exception`},
		{"agent grant unknown entity", "tok-alice", `{"grant_type":"agent_token","entity_id":"nobody"}`, 401, `identity_exception`},
		{"agent grant new customer", "tok-alice", `{"grant_type":"agent_token"}`, 200, `"token_type":"Bearer"`},
		{"agent grant, a customer the agent may not reach", "tok-alice", `{"grant_type":"agent_token","entity_id":"` + first.EntityID + `"}`, 401, `identity_exception`},
		{"agent grant, a customer the agent minted", "tok-alice", `{"grant_type":"agent_token","entity_id":"` + minted.EntityID + `"}`, 200, `"entity_id":"` + minted.EntityID + `"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st, b, _ := h.post(t, "/v2/customer/token", tc.bearer, tc.body, nil)
			if st != tc.status || !strings.Contains(string(b), tc.want) {
				t.Fatalf("got %d %s, want %d %s", st, b, tc.status, tc.want)
			}
		})
	}
}

func TestWebAPI(t *testing.T) {
	h := newHarness(t, nil)
	tokA, a := h.token(t)
	tokB, _ := h.token(t)
	act := func(action, tok, body string) (int, []byte) {
		st, b, _ := h.post(t, "/v3.5/customer/action/"+action+"?organization_id=org-1", tok, body, nil)
		return st, b
	}
	st, b := act("start_chat", tokA, `{"chat":{"thread":{"events":[{"type":"message","text":"via web"}]}}}`)
	var started StartChatResponse
	if st != 200 {
		t.Fatalf("start_chat %d %s", st, b)
	}
	mustUnmarshal(t, b, &started)
	if st, b = act("send_event", tokA, `{"chat_id":"`+string(a)+`","event":{"type":"message","text":"more"}}`); st != 200 || !strings.Contains(string(b), "event_id") {
		t.Fatalf("send_event %d %s", st, b)
	}
	if st, b = act("get_customer", tokA, ``); st != 200 || !strings.Contains(string(b), string(a)) {
		t.Fatalf("get_customer %d %s", st, b)
	}
	cases := []struct {
		name, action, tok, body string
		status                  int
		want                    string
	}{
		{"no token", "get_customer", "", ``, 401, "authentication"},
		{"bad token", "get_customer", "x", ``, 401, "authentication"},
		{"login is rtm only", "login", tokA, `{"token":"Bearer x"}`, 400, "validation"},
		{"not an object", "get_chat", tokA, `[1]`, 400, "validation"},
		{"wrong type", "get_chat", tokA, `{"chat_id":1}`, 400, "validation"},
		{"other's chat", "get_chat", tokB, `{"chat_id":"` + string(a) + `"}`, 404, "not_found"},
		{"other's chat write", "send_event", tokB, `{"chat_id":"` + string(a) + `","event":{"type":"message","text":"x"}}`, 404, "not_found"},
		{"too big", "get_chat", tokA, `{"x":"` + strings.Repeat("a", 9<<10) + `"}`, 413, "entity_too_large"},
		{"unknown action", "fly", tokA, `{}`, 400, "validation"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st, b := act(tc.action, tc.tok, tc.body)
			if st != tc.status || !strings.Contains(string(b), `"type":"`+tc.want+`"`) {
				t.Fatalf("got %d %s, want %d %s", st, b, tc.status, tc.want)
			}
		})
	}
	if st, b, _ := h.post(t, "/v3.5/customer/action/get_customer?organization_id=zz", tokA, ``, nil); st != 404 || !strings.Contains(string(b), "license_not_found") {
		t.Fatalf("wrong org %d %s", st, b)
	}
	if st, b, _ := h.post(t, "/v3.5/customer/action/get_customer", tokA, ``, nil); st != 400 {
		t.Fatalf("no org %d %s", st, b)
	}
	// deactivate, then chat_inactive with 422.
	if st, b = act("deactivate_chat", tokA, `{"id":"`+string(a)+`"}`); st != 200 || string(b) != "{}" {
		t.Fatalf("deactivate %d %s", st, b)
	}
	if st, b = act("send_event", tokA, `{"chat_id":"`+string(a)+`","event":{"type":"message","text":"x"}}`); st != 422 || !strings.Contains(string(b), "chat_inactive") {
		t.Fatalf("inactive %d %s", st, b)
	}
	var e struct {
		Error struct{ Type, Message string } `json:"error"`
	}
	mustUnmarshal(t, b, &e)
	if e.Error.Message == "" {
		t.Fatalf("error body %s", b)
	}
	_ = json.Valid
}
