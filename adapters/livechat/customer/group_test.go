package customer

import (
	"testing"

	"chatgate/adapters/livechat/wire"
	"chatgate/core/model"
)

// TestStartChatInGroup: access.group_ids takes the group ids the surface
// shows (wire.GroupID), also for departments whose ids are not numbers;
// an unknown group falls back to the default department.
func TestStartChatInGroup(t *testing.T) {
	for _, tc := range []struct {
		name  string
		group int
		want  model.DeptID
	}{
		{"named department", wire.GroupID("sales"), "sales"},
		{"group 0", 0, ""},
		{"unknown group", 987654, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, nil)
			c, _, _ := h.customer(t)
			r := c.Call("start_chat", map[string]any{"chat": map[string]any{"access": map[string]any{"group_ids": []int{tc.group}},
				"thread": map[string]any{"events": []any{map[string]any{"type": "message", "text": "hi"}}}}})
			if !r.Success {
				t.Fatalf("start_chat: %s", r.Payload)
			}
			var started StartChatResponse
			mustUnmarshal(t, r.Payload, &started)
			conv, err := h.d.Store().Conversation(t.Context(), model.ConvID(started.ThreadID))
			if err != nil {
				t.Fatal(err)
			}
			if conv.Department != tc.want {
				t.Fatalf("department %q, want %q", conv.Department, tc.want)
			}
		})
	}
}
