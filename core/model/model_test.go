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

// TestFormShapes: both of LiveChat's filled_form shapes read as text; the
// seed's layout fields (title, information) are not questions.
func TestFormShapes(t *testing.T) {
	form := Form{Fields: []FormField{
		{Type: "text", Name: "name", Label: "Your name:", Value: json.RawMessage(`"John"`)},
		{Type: "title", Name: "Chat window title", Label: "Let's talk!"},
		{Type: "checkbox", Name: "topics", Options: json.RawMessage(`[{"label":"a","checked":true},{"label":"b"},{"label":"c","checked":true}]`)},
		{Type: "checkbox", Label: "Industry", Answers: json.RawMessage(`[{"id":"0","label":"automotive"}]`)},
	}}
	if got := form.Summary(); got != "Your name: John\ntopics: a, c\nIndustry: automotive" {
		t.Fatalf("Summary() = %q", got)
	}
}

func TestRichText(t *testing.T) {
	for _, tc := range []struct{ body, want string }{
		{`{"template_id":"cards","elements":[{"title":"Plan","subtitle":"$5","buttons":[{"text":"Buy"},{"text":" "}]},{"title":"Other"}]}`, "Plan $5 [Buy]\nOther"},
		{`{"template_id":"quick_replies","elements":[{"buttons":[{"text":"Yes"},{"text":"No"}]}]}`, "[Yes] [No]"},
		{`not json`, ""},
	} {
		if got := RichText(json.RawMessage(tc.body)); got != tc.want {
			t.Errorf("RichText(%s) = %q, want %q", tc.body, got, tc.want)
		}
	}
}
