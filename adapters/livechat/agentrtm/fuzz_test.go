package agentrtm

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"chatgate/adapters/livechat/wire"
	"chatgate/core/model"
)

// knownError reports whether t is an error type this surface may answer.
func knownError(t string) bool {
	switch wire.ErrorType(t) {
	case wire.Authentication, wire.Authorization, wire.Validation, wire.NotFound, wire.ChatInactive,
		wire.EntityTooLarge, wire.UnsupportedVersion, wire.AgentOffline:
		return true
	}
	return false
}

// FuzzDecodeFrame feeds arbitrary bytes to the frame decoder and the
// dispatcher, on a logged-in and a logged-out connection of a real desk.
// Nothing may panic; every input gets one well-formed response; an input
// the decoder rejects gets a validation error.
func FuzzDecodeFrame(f *testing.F) {
	co := newCore(f, 200)
	const maxFrame = 8 << 10
	surf := New(co.d, Config{LicenseID: "1", MaxFrame: maxFrame,
		Authenticate: func(tok string) (model.AgentID, bool) { id, ok := testTokens[tok]; return id, ok }}, zerolog.Nop())
	ctx := context.Background()
	discard := func([]byte) error { return nil }
	in := surf.newClient("3.5", discard, func(string) {})
	out := surf.newClient("3.5", discard, func(string) {})
	f.Cleanup(in.logout)
	f.Cleanup(out.logout)
	var lr frame
	mustUnmarshal(f, in.handle(ctx, req("l", "login", map[string]any{"token": "Bearer tok-alice"})), &lr)
	if !lr.Success {
		f.Fatalf("login: %s", lr.Payload)
	}
	tom, conv := co.startChat(f, "Tom", "")
	chat := string(tom.ID)

	seeds := [][]byte{
		nil, []byte(`{}`), []byte(`null`), []byte(`[]`), []byte(`"x"`), []byte(`{"action":1}`),
		[]byte(`{"request_id":"1","action":"ping"}`),
		[]byte(`{"request_id":"1","action":"ping","payload":null,"version":"3.5"}`),
		[]byte(`{"request_id":"1","action":"ping","payload":[1]}`),
		[]byte(`{"request_id":{"a":1},"action":"ping"}`),
		[]byte(`{"request_id":"\ud800","action":"list_chats","payload":{"limit":1e400}}`),
		req("2", "list_chats", map[string]any{"limit": 2, "sort_order": "asc"}),
		req("3", "get_chat", map[string]any{"chat_id": chat, "thread_id": conv.ID}),
		req("4", "send_event", map[string]any{"chat_id": chat, "event": map[string]any{"type": "message", "text": "fuzz"}}),
		req("5", "send_event", map[string]any{"chat_id": chat, "event": map[string]any{"type": "custom", "content": map[string]any{"k": []int{1}}, "properties": map[string]any{"ns": map[string]any{"p": 1}}}}),
		req("5", "send_event", map[string]any{"chat_id": chat, "event": map[string]any{"type": "filled_form", "recipients": "agents", "fields": []any{map[string]any{"type": "text", "label": "L", "value": "v"}}}}),
		req("5", "send_event", map[string]any{"chat_id": chat, "event": map[string]any{"type": "rich_message", "template_id": "cards", "elements": []any{map[string]any{"title": "t"}}}}),
		req("6", "set_routing_status", map[string]any{"status": "accepting_chats"}),
		req("7", "login", map[string]any{"token": "Bearer tok-bob", "pushes": map[string]any{"3.5": []string{"x"}}}),
		req("8", "list_chats", map[string]any{"page_id": "eyJvIjoiYXNjIiwibCI6MSwidCI6IjIwMDAtMDEtMDFUMDA6MDA6MDBaIiwiYyI6IngifQ"}),
		[]byte(`{"request_id":"9","action":"send_event","payload":{"chat_id":"` + chat + `","event":{"type":"message","text":` + strings.Repeat("[", 100) + `}}}`),
		[]byte(strings.Repeat(`{"a":`, 2000)),
	}
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		_, derr := wire.DecodeRequest(data)
		for _, c := range []*client{in, out} {
			b := c.handle(ctx, data)
			var r frame
			if err := json.Unmarshal(b, &r); err != nil {
				t.Fatalf("response is not JSON: %q: %v", b, err)
			}
			if r.Type != "response" || r.RequestID == nil {
				t.Fatalf("not a response frame: %s", b)
			}
			if r.Success {
				if derr != nil {
					t.Fatalf("decoder rejected the frame (%v) but the dispatcher succeeded: %s", derr, b)
				}
				continue
			}
			var eb errorBody
			if err := json.Unmarshal(r.Payload, &eb); err != nil || !knownError(eb.Error.Type) || eb.Error.Message == "" {
				t.Fatalf("bad error payload: %s", b)
			}
			if derr != nil && len(data) <= maxFrame && eb.Error.Type != string(wire.Validation) {
				t.Fatalf("undecodable frame answered %s, want validation: %s", eb.Error.Type, b)
			}
		}
	})
}
