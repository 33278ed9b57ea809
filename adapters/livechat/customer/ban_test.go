package customer

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"chatgate/core/model"
)

func TestBannedCustomer(t *testing.T) {
	h := newHarness(t, nil)
	ctx := context.Background()
	c, id, tok := h.customer(t)
	act := func(action, body string) (int, []byte) {
		st, b, _ := h.post(t, "/v3.5/customer/action/"+action+"?organization_id=org-1", tok, body, nil)
		return st, b
	}
	st, b := act("start_chat", `{"chat":{"thread":{"events":[{"type":"message","text":"hi"}]}}}`)
	if st != 200 {
		t.Fatalf("start_chat before the ban: %d %s", st, b)
	}
	if _, err := h.d.Ban(ctx, id, 2, model.System, ""); err != nil {
		t.Fatal(err)
	}
	// The live session is told and closed.
	if p := c.Push("customer_disconnected"); !strings.Contains(string(p.Payload), `"customer_banned"`) {
		t.Fatalf("disconnect push %s", p.Payload)
	}
	_ = c.CloseErr()

	// In order: posting is refused, closing its chat still works, starting
	// or resuming one is refused.
	steps := []struct {
		name, action, body string
		status             int
		errType            string
	}{
		{"send_event", "send_event", fmt.Sprintf(`{"chat_id":%q,"event":{"type":"message","text":"x"}}`, id), 422, "customer_banned"},
		{"deactivate_chat", "deactivate_chat", fmt.Sprintf(`{"id":%q}`, id), 200, ""},
		{"start_chat", "start_chat", `{"chat":{"thread":{"events":[{"type":"message","text":"again"}]}}}`, 422, "customer_banned"},
		{"resume_chat", "resume_chat", fmt.Sprintf(`{"chat":{"id":%q,"thread":{"events":[{"type":"message","text":"again"}]}}}`, id), 422, "customer_banned"},
	}
	for _, s := range steps {
		st, b := act(s.action, s.body)
		if st != s.status || (s.errType != "" && !strings.Contains(string(b), `"`+s.errType+`"`)) {
			t.Fatalf("%s: %d %s", s.name, st, b)
		}
	}
	// Login is refused.
	again := h.dial(t, rtmPath)
	if r := again.Call("login", map[string]any{"token": "Bearer " + tok}); r.Success || r.ErrType() != "customer_banned" {
		t.Fatalf("login: %s", r.Payload)
	}
	// Other customers are unaffected.
	other, _, _ := h.customer(t)
	if r := other.Call("start_chat", map[string]any{"chat": map[string]any{"thread": map[string]any{"events": []any{map[string]any{"type": "message", "text": "hi"}}}}}); !r.Success {
		t.Fatalf("other start: %s", r.Payload)
	}
}
