package webhooks

import (
	"bytes"
	"context"
	"net/http"
	"slices"
	"testing"

	"chatgate/core/desk"
	"chatgate/core/model"
)

// TestOfflineArchiveWebhooks (issue 11, item 5): a conversation that starts
// and ends with no agent connected, as a Rocket.Chat offline message does
// (desk.Start with the ticket form and the message, then Close by the
// system), fires incoming_chat (its thread holding the form) and
// chat_deactivated, like any chat.
func TestOfflineArchiveWebhooks(t *testing.T) {
	g := newGateway(t, gwOptions{})
	g.d.AgentConnected(ann.ID, false)
	rc := newReceiver(t, always(http.StatusOK))
	g.register(IncomingChat, rc.srv.URL, nil)
	g.register(ChatDeactivated, rc.srv.URL, nil)
	v := g.visitor("olga")
	form := &model.Form{Type: "ticket", Fields: []model.FormField{{ID: "message", Type: "textarea", Label: "Message", Answer: []byte(`"call me"`)}}}
	c, _, err := g.d.Start(context.Background(), desk.StartRequest{Visitor: v.ID, Origin: "rocketchat", Author: vAuthor(v),
		Events: []desk.Draft{{Kind: model.KindForm, Form: form, Visibility: model.VisibleAgents}, {Text: "call me"}}})
	if err != nil {
		t.Fatal(err)
	}
	if c.State != model.StateQueued {
		t.Fatalf("state %s with no agent connected", c.State)
	}
	if _, err := g.d.Close(context.Background(), c.ID, model.System, "offline message", ""); err != nil {
		t.Fatal(err)
	}
	g.deliverDue()
	var actions []string
	for _, d := range rc.ok() {
		actions = append(actions, d.Env.Action)
		if d.Env.Action == IncomingChat && !bytes.Contains(d.Raw, []byte(`"form_type":"ticket"`)) {
			t.Errorf("incoming_chat lacks the form: %s", d.Raw)
		}
	}
	if want := []string{IncomingChat, ChatDeactivated}; !slices.Equal(actions, want) {
		t.Fatalf("actions = %v, want %v", actions, want)
	}
}

// TestEventUpdatedOnDelete: webhooks follow the agent and customer APIs'
// rule for event_updated (wire.UpdatedEvents): an edit and a deletion each
// fire it, the deleted event without its text.
func TestEventUpdatedOnDelete(t *testing.T) {
	g := newGateway(t, gwOptions{})
	rc := newReceiver(t, always(http.StatusOK))
	g.register(EventUpdated, rc.srv.URL, nil)
	v := g.visitor("vic")
	c := g.start(v, "hello")
	ctx := context.Background()
	if _, err := g.d.EditEvent(ctx, c.ID, 1, vAuthor(v), "hello again", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := g.d.DeleteEvent(ctx, c.ID, 1, vAuthor(v), ""); err != nil {
		t.Fatal(err)
	}
	g.deliverDue()
	got := rc.ok()
	if len(got) != 2 || !bytes.Contains(got[0].Raw, []byte(`"text":"hello again"`)) || bytes.Contains(got[1].Raw, []byte(`"text":`)) {
		var raws []string
		for _, d := range got {
			raws = append(raws, string(d.Raw))
		}
		t.Fatalf("event_updated deliveries: %q", raws)
	}
}
