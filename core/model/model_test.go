package model

import (
	"encoding/json"
	"testing"
)

func TestFormAnswerText(t *testing.T) {
	cases := []struct {
		name, answer, want string
	}{
		{"string", `"Thomas"`, "Thomas"},
		{"option", `{"id":"0","label":"Support"}`, "Support"},
		{"options", `[{"id":"0","label":"automotive"},{"id":"1","label":"retail"}]`, "automotive, retail"},
		{"group chooser", `{"id":"2","group_id":1,"label":"Marketing"}`, "Marketing"},
		{"number as written", `42`, "42"},
		{"empty", ``, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := FormField{Label: "x", Answer: json.RawMessage(tc.answer)}
			if got := f.AnswerText(); got != tc.want {
				t.Fatalf("AnswerText() = %q, want %q", got, tc.want)
			}
		})
	}
	form := Form{Fields: []FormField{{Label: "Name", Answer: json.RawMessage(`"Ann"`)}, {Label: "Topic", Answer: json.RawMessage(`{"label":"Billing"}`)}}}
	if got := form.Summary(); got != "Name: Ann\nTopic: Billing" {
		t.Fatalf("Summary() = %q", got)
	}
}
