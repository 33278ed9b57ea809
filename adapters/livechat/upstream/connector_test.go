package upstream

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"chatgate/core/desk"
	"chatgate/core/model"
	"chatgate/core/relay"
	"chatgate/core/routing"
	"chatgate/store"
	"chatgate/store/bolt"
)

// harness is a gateway reduced to what relaying needs: a store, a desk
// whose conversations all go to the connector, and the relay service.
type harness struct {
	t    *testing.T
	st   *bolt.Store
	d    *desk.Desk
	c    *Connector
	stop func()
}

func startHarness(t *testing.T, f *fakeLiveChat, path string) *harness {
	t.Helper()
	return startHarnessRoute(t, f, path, relay.Route{Upstream: "lc"})
}

func startHarnessRoute(t *testing.T, f *fakeLiveChat, path string, route relay.Route) *harness {
	t.Helper()
	st, err := bolt.Open(path, bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(Config{Name: "lc", URL: f.srv.URL, TokenURL: f.srv.URL + "/v2/customer/token", OrganizationID: "org-1",
		AgentToken: "agent-secret", Timeout: 500 * time.Millisecond, ReconnectMin: 20 * time.Millisecond,
		ReconnectMax: 200 * time.Millisecond, PingInterval: time.Second}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	svc, err := relay.New(relay.Config{Routes: []relay.Route{route}, MinBackoff: 20 * time.Millisecond,
		MaxBackoff: 200 * time.Millisecond, PollInterval: 50 * time.Millisecond}, []relay.Connector{c}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	d := desk.New(desk.Options{Store: st, Router: routing.New([]model.Agent{{ID: "local-agent", Name: "Lou"}}, true), Route: svc.Route, Relay: svc.Hook, Logger: zerolog.Nop()})
	svc.Attach(d)
	ctx, cancel := context.WithCancel(context.Background())
	if err := svc.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if err := d.Load(ctx); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = svc.Run(ctx)
	}()
	h := &harness{t: t, st: st, d: d, c: c}
	stopped := false
	h.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		<-done
		_ = st.Close()
	}
	t.Cleanup(h.stop)
	return h
}

// start opens a conversation of the named visitor with a first message.
func (h *harness) start(name, text string) model.Conversation {
	h.t.Helper()
	ctx := context.Background()
	v, err := h.d.EnsureVisitor(ctx, store.MapKey{System: "test", Kind: "visitor", Foreign: name}, model.Visitor{Name: name})
	if err != nil {
		h.t.Fatal(err)
	}
	conv, _, err := h.d.Start(ctx, desk.StartRequest{Visitor: v.ID, Origin: "test",
		Author: model.Author{Kind: model.AuthorVisitor, ID: string(v.ID)},
		Events: []desk.Draft{{Kind: model.KindMessage, Text: text}}})
	if err != nil {
		h.t.Fatal(err)
	}
	return conv
}

func (h *harness) post(conv model.Conversation, text string) {
	h.t.Helper()
	_, _, err := h.d.Post(context.Background(), desk.PostRequest{Conv: conv.ID,
		Author: model.Author{Kind: model.AuthorVisitor, ID: string(conv.Visitor)},
		Draft:  desk.Draft{Kind: model.KindMessage, Text: text}})
	if err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) close(conv model.Conversation) {
	h.t.Helper()
	if _, err := h.d.Close(context.Background(), conv.ID, model.Author{Kind: model.AuthorVisitor, ID: string(conv.Visitor)}, "", ""); err != nil {
		h.t.Fatal(err)
	}
}

// agentTexts are the upstream agents' messages in the conversation.
func (h *harness) agentTexts(conv model.Conversation) []string {
	h.t.Helper()
	evs, err := h.st.Events(context.Background(), conv.ID, 1, 0)
	if err != nil {
		h.t.Fatal(err)
	}
	var out []string
	for _, e := range evs {
		if e.Kind == model.KindMessage && e.Author.Kind == model.AuthorAgent {
			out = append(out, e.Text)
		}
	}
	return out
}

func (h *harness) conv(id model.ConvID) model.Conversation {
	h.t.Helper()
	c, err := h.st.Conversation(context.Background(), id)
	if err != nil {
		h.t.Fatal(err)
	}
	return c
}

// chatOf is the upstream chat a conversation is bound to.
func (h *harness) chatOf(conv model.Conversation) string {
	h.t.Helper()
	room, err := h.st.Reverse(context.Background(), relay.System("lc"), "", relay.KindRoom, string(conv.ID))
	if err != nil {
		h.t.Fatalf("room of %s: %v", conv.ID, err)
	}
	chat, _, _ := splitRoom(room)
	return chat
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func equalTexts(got [][]string, want ...[]string) bool {
	return slices.EqualFunc(got, want, func(a, b []string) bool { return slices.Equal(a, b) })
}

// TestConnectorOnLiveChat: a conversation's life against LiveChat's
// semantics: messages out, the agent's answer in (also one whose push was
// lost, found by the resync after a reconnect), an unanswered send_event
// not doubled although LiveChat does not deduplicate custom_id, the
// agent's close, and the visitor's return resuming the same chat.
func TestConnectorOnLiveChat(t *testing.T) {
	f := newFakeLiveChat(t)
	h := startHarness(t, f, filepath.Join(t.TempDir(), "gw.db"))

	c1 := h.start("vera", "hello")
	eventually(t, "the first message upstream", func() bool { return equalTexts(f.customerTexts(), []string{"hello"}) })
	chat := h.chatOf(c1)

	f.agentSays(chat, "hi there", false)
	eventually(t, "the agent's answer", func() bool { return slices.Equal(h.agentTexts(c1), []string{"hi there"}) })
	if got := h.conv(c1.ID).Agent; got != relay.AgentID("lc", fakeAgentID) {
		t.Errorf("conversation agent %q", got)
	}

	f.agentSays(chat, "missed push", true)
	f.kickAll()
	eventually(t, "the unpushed answer after the reconnect", func() bool {
		return slices.Equal(h.agentTexts(c1), []string{"hi there", "missed push"})
	})

	f.set(f.drop, "send_event") // performed upstream, never answered
	h.post(c1, "second")
	h.post(c1, "third")
	eventually(t, "the later messages upstream", func() bool {
		return equalTexts(f.customerTexts(), []string{"hello", "second", "third"})
	})
	if n := f.count("start_chat"); n != 1 {
		t.Errorf("start_chat called %d times", n)
	}

	f.agentCloses(chat)
	eventually(t, "the agent's close", func() bool { c := h.conv(c1.ID); return !c.Active() })

	c2 := h.start("vera", "back again")
	eventually(t, "the returning visitor's message", func() bool {
		return equalTexts(f.customerTexts(), []string{"hello", "second", "third"}, []string{"back again"})
	})
	if got := h.chatOf(c2); got != chat || f.shape() != "closed,active" {
		t.Errorf("second conversation in chat %s (first %s), chats %q", got, chat, f.shape())
	}
	if n := f.customerCount(); n != 1 {
		t.Errorf("%d customers upstream", n)
	}
}

// TestConnectorAdoptsAndRecovers: a start_chat whose answer was lost is
// adopted, not started again; a thread left active by a close that never
// got through is deactivated before the visitor's next conversation
// resumes the chat; after a restart the same customer logs in again and
// the resync brings what the agent said meanwhile.
func TestConnectorAdoptsAndRecovers(t *testing.T) {
	f := newFakeLiveChat(t)
	path := filepath.Join(t.TempDir(), "gw.db")
	h := startHarness(t, f, path)

	f.set(f.drop, "start_chat")
	c1 := h.start("sam", "one")
	eventually(t, "the first message upstream", func() bool { return equalTexts(f.customerTexts(), []string{"one"}) })
	if n := f.count("start_chat"); n != 1 || f.shape() != "active" {
		t.Fatalf("start_chat called %d times, chats %q", n, f.shape())
	}

	f.set(f.refuse, "deactivate_chat") // the close is refused for good
	h.close(c1)
	eventually(t, "the refused close", func() bool { return f.count("deactivate_chat") == 1 })
	c2 := h.start("sam", "two")
	eventually(t, "the next conversation's message", func() bool {
		return equalTexts(f.customerTexts(), []string{"one"}, []string{"two"})
	})
	if f.shape() != "closed,active" || h.chatOf(c2) != h.chatOf(c1) {
		t.Fatalf("chats %q", f.shape())
	}

	chat := h.chatOf(c2)
	h.stop()
	f.agentSays(chat, "while you were down", true)
	h = startHarness(t, f, path)
	eventually(t, "the answer given during the downtime", func() bool {
		return slices.Equal(h.agentTexts(c2), []string{"while you were down"})
	})
	if n := f.customerCount(); n != 1 {
		t.Errorf("%d customers upstream, want the same one after the restart", n)
	}
	h.post(c2, "three")
	eventually(t, "a message after the restart", func() bool {
		return equalTexts(f.customerTexts(), []string{"one"}, []string{"two", "three"})
	})
}

// TestConnectorResyncKeepsUpstreamOrder: answers given while the gateway
// was down are found by the resync after the restart; an answer pushed
// live while the connector applies that resync (right after the get_chat
// response) must not overtake them: the visitor gets every answer in
// LiveChat's order. (Before the fix the push was applied as it came,
// concurrently with the resync's events: usually among the first of them.)
func TestConnectorResyncKeepsUpstreamOrder(t *testing.T) {
	f := newFakeLiveChat(t)
	path := filepath.Join(t.TempDir(), "gw.db")
	h := startHarness(t, f, path)
	c := h.start("sam", "one")
	eventually(t, "the first message upstream", func() bool { return equalTexts(f.customerTexts(), []string{"one"}) })
	chat := h.chatOf(c)
	h.stop()
	var want []string
	for i := range 30 {
		want = append(want, fmt.Sprintf("while you were down %02d", i))
		f.agentSays(chat, want[i], true)
	}
	f.mu.Lock()
	f.afterGetChat = func() { f.agentSays(chat, "said during the resync", false) }
	f.mu.Unlock()
	h = startHarness(t, f, path)
	want = append(want, "said during the resync")
	eventually(t, "both answers", func() bool { return len(h.agentTexts(c)) >= len(want) })
	if got := h.agentTexts(c); !slices.Equal(got, want) {
		t.Fatalf("answers at the visitor %q, want %q (LiveChat's order)", got, want)
	}
}

// TestConnectorAsMirror: in shadow mode the LiveChat chat gets a copy of
// the conversation (the local agent's answers with the agent's name in
// front), while what LiveChat's agents write never reaches the visitor.
func TestConnectorAsMirror(t *testing.T) {
	f := newFakeLiveChat(t)
	h := startHarnessRoute(t, f, filepath.Join(t.TempDir(), "gw.db"), relay.Route{Mirrors: []string{"lc"}})
	c := h.start("mia", "question")
	eventually(t, "the copy upstream", func() bool { return equalTexts(f.customerTexts(), []string{"question"}) })
	_, _, err := h.d.Post(context.Background(), desk.PostRequest{Conv: c.ID,
		Author: model.Author{Kind: model.AuthorAgent, ID: "local-agent", Name: "Lou"},
		Draft:  desk.Draft{Kind: model.KindMessage, Text: "answer"}})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "the local answer copied", func() bool {
		return equalTexts(f.customerTexts(), []string{"question", "[Lou] answer"})
	})
	f.agentSays(h.chatOf(c), "not for the visitor", false)
	h.post(c, "more")
	eventually(t, "the next copy", func() bool {
		return equalTexts(f.customerTexts(), []string{"question", "[Lou] answer", "more"})
	})
	if got := h.agentTexts(c); !slices.Equal(got, []string{"answer"}) {
		t.Errorf("agent messages in the conversation %q", got)
	}
}

// TestConnectorBannedCustomer: a customer banned upstream cannot log in
// again; the conversation is closed rather than retried forever.
func TestConnectorBannedCustomer(t *testing.T) {
	f := newFakeLiveChat(t)
	h := startHarness(t, f, filepath.Join(t.TempDir(), "gw.db"))
	c := h.start("ben", "hello")
	eventually(t, "the message upstream", func() bool { return equalTexts(f.customerTexts(), []string{"hello"}) })
	f.banAll()
	f.kickAll()
	eventually(t, "the conversation closed", func() bool { c := h.conv(c.ID); return !c.Active() })
}
