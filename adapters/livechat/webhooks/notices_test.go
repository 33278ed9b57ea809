package webhooks

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"testing"
	"time"

	"chatgate/adapters/livechat/wire"
	"chatgate/core/desk"
	"chatgate/core/model"
)

type props = map[string]map[string]json.RawMessage

// Changes without events reach their webhooks (§3.3 "Properties", "Chat
// users", "Thread tags", "Other"): payloads are the agent pushes', and
// property payloads and additional_data.chat_properties show only what
// agents may read; a change of nothing agents may read is not delivered.
func TestNoticeWebhooks(t *testing.T) {
	clk := newClock()
	g := newGateway(t, gwOptions{clock: clk}).withProps()
	for _, p := range []map[string]any{
		{"name": "score", "owner_client_id": "app1", "type": "int", "access": map[string]any{
			"chat":   map[string]any{"customer": []string{"read", "write"}, "agent": []string{"read", "write"}},
			"thread": map[string]any{"agent": []string{"read", "write"}},
			"event":  map[string]any{"agent": []string{"read", "write"}}}},
		{"name": "secret", "owner_client_id": "app1", "type": "string", "access": map[string]any{
			"chat": map[string]any{"customer": []string{"read", "write"}}}},
	} {
		if st, b := g.call("3.6", "register_property", annToken, p); st != 200 {
			t.Fatalf("register_property: %d %s", st, b)
		}
	}
	rc := newReceiver(t, always(http.StatusOK))
	for _, a := range supported[4:] {
		var extra map[string]any
		if a == ChatPropertiesUpdated {
			extra = map[string]any{"additional_data": []string{DataChatProperties}}
		}
		g.register(a, rc.srv.URL, extra)
	}
	ctx := context.Background()
	v := g.visitor("vera")
	g.d.AgentConnected(ann.ID, true)
	c := g.start(v, "hello")
	chat, thread := string(v.ID), string(c.ID)
	msg := g.post(c.ID, annAuthor, "hi")

	chatT := desk.PropTarget{Location: desk.LocChat, Visitor: v.ID}
	steps := []func() error{
		// Both keys set, only score readable by agents.
		func() error {
			return g.d.UpdateProperties(ctx, chatT, vAuthor(v), props{"app1": {"score": json.RawMessage(`3`), "secret": json.RawMessage(`"x"`)}}, "")
		},
		// Only the unreadable key: nothing delivered.
		func() error {
			return g.d.UpdateProperties(ctx, chatT, vAuthor(v), props{"app1": {"secret": json.RawMessage(`"y"`)}}, "")
		},
		func() error {
			return g.d.DeleteProperties(ctx, chatT, vAuthor(v), map[string][]string{"app1": {"score", "secret"}}, "")
		},
		func() error {
			return g.d.UpdateProperties(ctx, desk.PropTarget{Location: desk.LocThread, Conv: c.ID}, annAuthor, props{"app1": {"score": json.RawMessage(`1`)}}, "")
		},
		func() error {
			return g.d.DeleteProperties(ctx, desk.PropTarget{Location: desk.LocThread, Conv: c.ID}, annAuthor, map[string][]string{"app1": {"score"}}, "")
		},
		func() error {
			return g.d.UpdateProperties(ctx, desk.PropTarget{Location: desk.LocEvent, Conv: c.ID, Seq: msg.Seq}, annAuthor, props{"app1": {"score": json.RawMessage(`2`)}}, "")
		},
		func() error {
			return g.d.DeleteProperties(ctx, desk.PropTarget{Location: desk.LocEvent, Conv: c.ID, Seq: msg.Seq}, annAuthor, map[string][]string{"app1": {"score"}}, "")
		},
		func() error {
			_, err := g.d.SetMember(ctx, c.ID, ben.ID, true, model.VisibleAgents, annAuthor, "")
			return err
		},
		func() error {
			_, err := g.d.SetMember(ctx, c.ID, ben.ID, false, "", annAuthor, "")
			return err
		},
		func() error { _, err := g.d.TagThread(ctx, c.ID, annAuthor, "sales", true, ""); return err },
		func() error { _, err := g.d.TagThread(ctx, c.ID, annAuthor, "sales", false, ""); return err },
		func() error {
			_, err := g.d.MarkSeen(ctx, v.ID, annAuthor, time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), "")
			return err
		},
	}
	for i, s := range steps {
		if err := s(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	g.deliverDue()

	eventID := wire.EventID(c.ID, msg.Seq)
	want := []struct{ action, payload, extra string }{
		{ChatPropertiesUpdated, `{"chat_id":"` + chat + `","properties":{"app1":{"score":3}}}`, `{"chat_properties":{"app1":{"score":3}}}`},
		{ChatPropertiesDeleted, `{"chat_id":"` + chat + `","properties":{"app1":["score"]}}`, `{}`},
		{ThreadPropertiesUpdated, `{"chat_id":"` + chat + `","thread_id":"` + thread + `","properties":{"app1":{"score":1}}}`, `{}`},
		{ThreadPropertiesDeleted, `{"chat_id":"` + chat + `","thread_id":"` + thread + `","properties":{"app1":["score"]}}`, `{}`},
		{EventPropertiesUpdated, `{"chat_id":"` + chat + `","thread_id":"` + thread + `","event_id":"` + eventID + `","properties":{"app1":{"score":2}}}`, `{}`},
		{EventPropertiesDeleted, `{"chat_id":"` + chat + `","thread_id":"` + thread + `","event_id":"` + eventID + `","properties":{"app1":["score"]}}`, `{}`},
		{UserAddedToChat, `{"chat_id":"` + chat + `","thread_id":"` + thread + `","user":{"id":"ben@example.com","type":"agent","name":"Ben","email":"ben@example.com","present":true,"visibility":"all"},"reason":"manual","requester_id":"ann@example.com"}`, `{}`},
		{UserRemovedFromChat, `{"chat_id":"` + chat + `","thread_id":"` + thread + `","user_id":"ben@example.com","reason":"manual","requester_id":"ann@example.com"}`, `{}`},
		{ThreadTagged, `{"chat_id":"` + chat + `","thread_id":"` + thread + `","tag":"sales"}`, `{}`},
		{ThreadUntagged, `{"chat_id":"` + chat + `","thread_id":"` + thread + `","tag":"sales"}`, `{}`},
		{EventsMarkedAsSeen, `{"user_id":"ann@example.com","chat_id":"` + chat + `","seen_up_to":"2026-01-02T03:04:05.000000Z"}`, `{}`},
	}
	got := rc.ok()
	var actions []string
	for _, d := range got {
		actions = append(actions, d.Env.Action)
	}
	var wantActions []string
	for _, w := range want {
		wantActions = append(wantActions, w.action)
	}
	if !slices.Equal(actions, wantActions) {
		t.Fatalf("actions %v, want %v", actions, wantActions)
	}
	for i, w := range want {
		if p := string(got[i].Env.Payload); p != w.payload {
			t.Errorf("%s payload\n got %s\nwant %s", w.action, p, w.payload)
		}
		if a := string(got[i].Env.AdditionalData); a != w.extra {
			t.Errorf("%s additional_data %s, want %s", w.action, a, w.extra)
		}
	}
}

// TestIncomingChatCarriesStartProperties: a start that sets chat
// properties announces them in its incoming_chat webhook (the chat's
// properties and additional_data), though the store still held the old
// visitor record when the outbox row was written.
func TestIncomingChatCarriesStartProperties(t *testing.T) {
	g := newGateway(t, gwOptions{clock: newClock()}).withProps()
	if st, b := g.call("3.6", "register_property", annToken, map[string]any{"name": "score", "owner_client_id": "app1", "type": "int",
		"access": map[string]any{"chat": map[string]any{"customer": []string{"read", "write"}, "agent": []string{"read", "write"}}}}); st != 200 {
		t.Fatalf("register_property: %d %s", st, b)
	}
	rc := newReceiver(t, always(http.StatusOK))
	g.register(IncomingChat, rc.srv.URL, map[string]any{"additional_data": []string{DataChatProperties}})
	v := g.visitor("vera")
	_, _, err := g.d.Start(context.Background(), desk.StartRequest{Visitor: v.ID, Origin: "test", Author: vAuthor(v),
		Events: []desk.Draft{{Text: "hello"}}, ChatProps: props{"app1": {"score": json.RawMessage(`7`)}}})
	if err != nil {
		t.Fatal(err)
	}
	g.deliverDue()
	got := rc.ok()
	if len(got) != 1 || got[0].Env.Action != IncomingChat {
		t.Fatalf("deliveries %v", got)
	}
	var p struct {
		Chat struct {
			Properties map[string]map[string]json.RawMessage `json:"properties"`
		} `json:"chat"`
	}
	if err := json.Unmarshal(got[0].Env.Payload, &p); err != nil {
		t.Fatal(err)
	}
	if s := string(p.Chat.Properties["app1"]["score"]); s != "7" {
		t.Errorf("incoming_chat chat.properties app1.score = %q, want 7 (payload %s)", s, got[0].Env.Payload)
	}
	if a := string(got[0].Env.AdditionalData); a != `{"chat_properties":{"app1":{"score":7}}}` {
		t.Errorf("additional_data %s", a)
	}
}
