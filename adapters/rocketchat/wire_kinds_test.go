package rocketchat

import (
	"encoding/json"
	"testing"
	"time"

	"chatgate/core/model"
)

// TestRenderOtherKinds: filled forms become messages with attachment fields,
// annotations rocket.cat messages, custom events nothing; agents-only
// events never render for visitors.
func TestRenderOtherKinds(t *testing.T) {
	h := newRH(t)
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	form := &model.Form{Fields: []model.FormField{{Label: "Email", Answer: json.RawMessage(`"a@b.c"`)}, {Label: "Dept", Answer: json.RawMessage(`{"label":"Sales"}`)}}}
	cases := []struct {
		name string
		ev   model.Event
		want func(m map[string]any) bool
	}{
		{"form", model.Event{Kind: model.KindForm, Form: form, Author: model.System},
			func(m map[string]any) bool {
				att := m["attachments"].([]any)[0].(map[string]any)["fields"].([]any)
				return m["msg"] == "Email: a@b.c\nDept: Sales" && len(att) == 2 && att[1].(map[string]any)["value"] == "Sales"
			}},
		{"annotation", model.Event{Kind: model.KindAnnotation, Text: "Rated good", Author: model.System},
			func(m map[string]any) bool {
				return m["msg"] == "Rated good" && m["u"].(map[string]any)["username"] == "rocket.cat"
			}},
		{"custom", model.Event{Kind: model.KindCustom, Custom: json.RawMessage(`{}`)}, nil},
		{"agents only", model.Event{Kind: model.KindMessage, Text: "internal", Visibility: model.VisibleAgents, Author: model.System}, nil},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := tc.ev
			e.Conv, e.Seq, e.ID, e.At = "conv", uint64(i+1), "ev", at
			m := renderedMap(t, h.s, &e)
			if tc.want == nil {
				if m != nil {
					t.Fatalf("rendered %v, want nothing", m)
				}
				return
			}
			if m == nil || !tc.want(m) {
				t.Fatalf("rendered %v", m)
			}
		})
	}
}
