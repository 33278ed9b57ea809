package upstream

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/gorilla/websocket"
)

// fakeLiveChat is a small in-memory LiveChat customer side with the
// semantics where LiveChat and chatgate's own customer surface differ:
// start_chat always makes a new chat, custom_id is only echoed (no
// deduplication), a customer may have several chats. Tests can make it
// drop an answer and the pushes it causes (the action is still
// performed), refuse an action once, or keep an agent's event from being
// pushed.
type fakeLiveChat struct {
	t   *testing.T
	srv *httptest.Server

	mu        sync.Mutex
	n         int
	customers map[string]bool
	tokens    map[string]string // token → customer
	chats     []*fakeChat
	calls     map[string]int
	drop      map[string]bool // answer of the next such action not sent
	refuse    map[string]bool // next such action refused (validation)
	socks     map[*fakeSock]bool
	banned    map[string]bool // customers refused at login
	// afterGetChat, if set, runs once right after the next get_chat is
	// answered (e.g. an agent writing while the connector applies it).
	afterGetChat func()
}

type fakeChat struct {
	id       string
	customer string
	threads  []*fakeThread
}

type fakeThread struct {
	id     string
	active bool
	events []map[string]any
}

type fakeSock struct {
	ws       *websocket.Conn
	wmu      sync.Mutex
	customer string
}

func (s *fakeSock) send(v any) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	_ = s.ws.WriteJSON(v)
}

const fakeAgentID = "agent@example.com"

func newFakeLiveChat(t *testing.T) *fakeLiveChat {
	f := &fakeLiveChat{t: t, customers: map[string]bool{}, tokens: map[string]string{}, calls: map[string]int{},
		drop: map[string]bool{}, refuse: map[string]bool{}, socks: map[*fakeSock]bool{}, banned: map[string]bool{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v2/customer/token", f.token)
	mux.HandleFunc("GET /v3.5/customer/rtm/ws", f.rtm)
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.close)
	return f
}

func (f *fakeLiveChat) close() {
	f.kickAll()
	f.srv.Close()
}

func (f *fakeLiveChat) id(prefix string) string {
	f.n++
	return fmt.Sprintf("%s%d", prefix, f.n)
}

func (f *fakeLiveChat) token(w http.ResponseWriter, r *http.Request) {
	var body struct {
		GrantType string `json:"grant_type"`
		EntityID  string `json:"entity_id"`
	}
	_ = json.NewDecoder(r.Body).Decode(&body)
	if body.GrantType != "agent_token" || r.Header.Get("Authorization") != "Bearer agent-secret" {
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"oauth_exception":"invalid_request"}`))
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	cust := body.EntityID
	if cust == "" {
		cust = f.id("cust-")
		f.customers[cust] = true
	} else if !f.customers[cust] {
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"identity_exception":"entity not found"}`))
		return
	}
	tok := f.id("tok-")
	f.tokens[tok] = cust
	_ = json.NewEncoder(w).Encode(map[string]any{"access_token": tok, "entity_id": cust, "expires_in": 3600, "token_type": "Bearer"})
}

func (f *fakeLiveChat) rtm(w http.ResponseWriter, r *http.Request) {
	if r.URL.Query().Get("organization_id") != "org-1" {
		http.Error(w, "no organization", http.StatusBadRequest)
		return
	}
	ws, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
	if err != nil {
		return
	}
	s := &fakeSock{ws: ws}
	f.mu.Lock()
	f.socks[s] = true
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		delete(f.socks, s)
		f.mu.Unlock()
		ws.Close()
	}()
	for {
		var req struct {
			RequestID string          `json:"request_id"`
			Action    string          `json:"action"`
			Payload   json.RawMessage `json:"payload"`
		}
		if ws.ReadJSON(&req) != nil {
			return
		}
		payload, pushes, errType := f.handle(s, req.Action, req.Payload)
		f.mu.Lock()
		drop := f.drop[req.Action]
		delete(f.drop, req.Action)
		f.mu.Unlock()
		if !drop {
			resp := map[string]any{"request_id": req.RequestID, "action": req.Action, "type": "response", "success": errType == ""}
			if errType != "" {
				resp["payload"] = map[string]any{"error": map[string]any{"type": errType, "message": errType}}
			} else {
				resp["payload"] = payload
			}
			s.send(resp)
			for _, p := range pushes {
				f.push(p.customer, p.action, p.payload)
			}
			if req.Action == "get_chat" {
				f.mu.Lock()
				hook := f.afterGetChat
				f.afterGetChat = nil
				f.mu.Unlock()
				if hook != nil {
					hook()
				}
			}
		}
	}
}

type fakePush struct {
	customer, action string
	payload          any
}

func (f *fakeLiveChat) push(customer, action string, payload any) {
	f.mu.Lock()
	var to []*fakeSock
	for s := range f.socks {
		if s.customer == customer {
			to = append(to, s)
		}
	}
	f.mu.Unlock()
	for _, s := range to {
		s.send(map[string]any{"type": "push", "action": action, "payload": payload})
	}
}

func (f *fakeLiveChat) handle(s *fakeSock, action string, raw json.RawMessage) (any, []fakePush, string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls[action]++
	if f.refuse[action] {
		delete(f.refuse, action)
		return nil, nil, "validation"
	}
	var p struct {
		Token  string `json:"token"`
		ID     string `json:"id"`
		ChatID string `json:"chat_id"`
		Thread string `json:"thread_id"`
		Chat   struct {
			ID string `json:"id"`
		} `json:"chat"`
		Event map[string]any `json:"event"`
	}
	_ = json.Unmarshal(raw, &p)
	if action == "login" {
		cust, ok := f.tokens[strings.TrimPrefix(p.Token, "Bearer ")]
		if !ok {
			return nil, nil, "authentication"
		}
		if f.banned[cust] {
			return nil, nil, "customer_banned"
		}
		s.customer = cust
		return map[string]any{"customer": map[string]any{"id": cust}}, nil, ""
	}
	if s.customer == "" {
		return nil, nil, "authentication"
	}
	chat := func(id string) *fakeChat {
		for _, c := range f.chats {
			if c.id == id && c.customer == s.customer {
				return c
			}
		}
		return nil
	}
	switch action {
	case "ping":
		return map[string]any{}, nil, ""
	case "list_chats":
		var sums []map[string]any
		for i := len(f.chats) - 1; i >= 0; i-- {
			c := f.chats[i]
			if c.customer == s.customer {
				last := c.threads[len(c.threads)-1]
				sums = append(sums, map[string]any{"id": c.id, "last_thread_id": last.id, "active": last.active})
			}
		}
		return map[string]any{"chats_summary": sums, "total_chats": len(sums)}, nil, ""
	case "start_chat":
		c := &fakeChat{id: f.id("CHAT"), customer: s.customer}
		c.threads = []*fakeThread{{id: f.id("TH"), active: true}}
		f.chats = append(f.chats, c)
		return map[string]any{"chat_id": c.id, "thread_id": c.threads[0].id}, nil, ""
	case "resume_chat":
		c := chat(p.Chat.ID)
		if c == nil {
			return nil, nil, "not_found"
		}
		if c.threads[len(c.threads)-1].active {
			return nil, nil, "validation"
		}
		th := &fakeThread{id: f.id("TH"), active: true}
		c.threads = append(c.threads, th)
		return map[string]any{"thread_id": th.id}, nil, ""
	case "get_chat":
		c := chat(p.ChatID)
		if c == nil {
			return nil, nil, "not_found"
		}
		for _, th := range c.threads {
			if th.id == p.Thread {
				return map[string]any{"id": c.id, "thread": map[string]any{"id": th.id, "active": th.active, "events": th.events},
					"users": []any{map[string]any{"id": s.customer, "type": "customer"},
						map[string]any{"id": fakeAgentID, "type": "agent", "name": "Agent Smith"}}}, nil, ""
			}
		}
		return nil, nil, "not_found"
	case "send_event":
		c := chat(p.ChatID)
		if c == nil {
			return nil, nil, "not_found"
		}
		th := c.threads[len(c.threads)-1]
		if !th.active {
			return nil, nil, "chat_inactive"
		}
		ev := map[string]any{"id": fmt.Sprintf("%s_%d", th.id, len(th.events)+1), "type": p.Event["type"],
			"text": p.Event["text"], "custom_id": p.Event["custom_id"], "author_id": s.customer}
		th.events = append(th.events, ev)
		return map[string]any{"event_id": ev["id"]}, []fakePush{{s.customer, "incoming_event",
			map[string]any{"chat_id": c.id, "thread_id": th.id, "event": ev}}}, ""
	case "deactivate_chat":
		c := chat(p.ID)
		if c == nil {
			return nil, nil, "not_found"
		}
		th := c.threads[len(c.threads)-1]
		if !th.active {
			return nil, nil, "chat_inactive"
		}
		th.active = false
		return map[string]any{}, []fakePush{{s.customer, "chat_deactivated",
			map[string]any{"chat_id": c.id, "thread_id": th.id, "user_id": s.customer}}}, ""
	}
	return nil, nil, "validation"
}

// agentSays appends an agent's message to the chat's active thread and
// pushes it, unless silent (a push lost, as LiveChat never retries one).
func (f *fakeLiveChat) agentSays(chatID, text string, silent bool) {
	f.mu.Lock()
	var c *fakeChat
	for _, x := range f.chats {
		if x.id == chatID {
			c = x
		}
	}
	if c == nil {
		f.mu.Unlock()
		f.t.Fatalf("no chat %s", chatID)
	}
	th := c.threads[len(c.threads)-1]
	ev := map[string]any{"id": fmt.Sprintf("%s_%d", th.id, len(th.events)+1), "type": "message", "text": text, "author_id": fakeAgentID}
	th.events = append(th.events, ev)
	cust := c.customer
	f.mu.Unlock()
	if !silent {
		f.push(cust, "incoming_event", map[string]any{"chat_id": c.id, "thread_id": th.id, "event": ev})
	}
}

// agentCloses deactivates the chat's thread as its agent.
func (f *fakeLiveChat) agentCloses(chatID string) {
	f.mu.Lock()
	var c *fakeChat
	for _, x := range f.chats {
		if x.id == chatID {
			c = x
		}
	}
	th := c.threads[len(c.threads)-1]
	th.active = false
	f.mu.Unlock()
	f.push(c.customer, "chat_deactivated", map[string]any{"chat_id": c.id, "thread_id": th.id, "user_id": fakeAgentID})
}

// banAll bans every customer: their next login is refused.
func (f *fakeLiveChat) banAll() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for c := range f.customers {
		f.banned[c] = true
	}
}

// kickAll closes every socket (a network blip).
func (f *fakeLiveChat) kickAll() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for s := range f.socks {
		s.ws.Close()
	}
}

// customerTexts lists, per chat (in creation order) and thread, the
// customer's messages.
func (f *fakeLiveChat) customerTexts() [][]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out [][]string
	for _, c := range f.chats {
		for _, th := range c.threads {
			var texts []string
			for _, ev := range th.events {
				if ev["author_id"] == c.customer {
					texts = append(texts, fmt.Sprint(ev["text"]))
				}
			}
			out = append(out, texts)
		}
	}
	return out
}

// shape describes the chats: "CHAT(thread states)" per chat.
func (f *fakeLiveChat) shape() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var parts []string
	for _, c := range f.chats {
		var st []string
		for _, th := range c.threads {
			if th.active {
				st = append(st, "active")
			} else {
				st = append(st, "closed")
			}
		}
		parts = append(parts, strings.Join(st, ","))
	}
	sort.Strings(parts)
	return strings.Join(parts, " | ")
}

func (f *fakeLiveChat) customerCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.customers)
}

func (f *fakeLiveChat) count(action string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[action]
}

func (f *fakeLiveChat) set(m map[string]bool, action string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	m[action] = true
}
