package customer

import (
	"context"
	"encoding/json"
	"testing"
)

// FuzzDecodeFrame drives a logged-in customer client with arbitrary
// frames: it must always answer one valid response frame and never panic.
func FuzzDecodeFrame(f *testing.F) {
	for _, s := range []string{
		`{"request_id":"1","action":"ping"}`,
		`{"request_id":"1","action":"send_event","payload":{"chat_id":"x","event":{"type":"message","text":"hi"}}}`,
		`{"request_id":"1","action":"send_event","payload":{"chat_id":"x","event":{"type":"filled_form","form_id":"f","fields":[{"type":"name","id":"1","label":"N","answer":"A"}]}}}`,
		`{"request_id":"1","action":"get_form","payload":{"group_id":0,"type":"prechat"}}`,
		`{"request_id":"1","action":"start_chat","payload":{"chat":{"thread":{"events":[{"type":"message","text":"a"}]}}}}`,
		`{"action":"list_threads","payload":{"chat_id":"x","page_id":"eyJvIjoiYXNjIn0"}}`,
		`{"action":"set_customer_session_fields","payload":{"session_fields":[{"a":null}]}}`,
		`{"action":"login","payload":{"token":"Bearer x"},"version":"3.9"}`,
		`[]`, `{"action":1}`, `{"payload":[]}`, ``,
	} {
		f.Add([]byte(s))
	}
	h := newHarness(f, nil)
	f.Fuzz(func(t *testing.T, frame []byte) {
		c := h.surf.newClient("3.5", func([]byte) error { return nil }, func(string) {})
		c.Web = true
		c.me, c.expires = "fuzz-customer", h.clock.now().Add(1e12)
		c.loggedIn.Store(true)
		out := c.handle(context.Background(), frame)
		var resp struct {
			Type    string          `json:"type"`
			Payload json.RawMessage `json:"payload"`
		}
		if err := json.Unmarshal(out, &resp); err != nil || resp.Type != "response" {
			t.Fatalf("bad response %q to %q", out, frame)
		}
	})
}
