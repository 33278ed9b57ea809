package wire

import (
	"encoding/json"
	"testing"

	"chatgate/core/model"
)

// TestParseVisibility: both names, each all|agents, must agree; anything
// else is refused (a narrowing chatgate cannot read is never widened).
func TestParseVisibility(t *testing.T) {
	for _, tc := range []struct {
		vis, rec string
		want     model.Visibility
		err      bool
	}{
		{"", "", "", false},
		{"all", "", model.VisibleAll, false},
		{"", "all", model.VisibleAll, false},
		{"agents", "", model.VisibleAgents, false},
		{"", "agents", model.VisibleAgents, false},
		{"agents", "agents", model.VisibleAgents, false},
		{"all", "all", model.VisibleAll, false},
		{"all", "agents", "", true},
		{"agents", "all", "", true},
		{"", "Agents", "", true},
		{"supervisors", "", "", true},
		{"", " agents", "", true},
	} {
		got, err := ParseVisibility(tc.vis, tc.rec)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("ParseVisibility(%q, %q) = %q, %v; want %q, error %v", tc.vis, tc.rec, got, err, tc.want, tc.err)
		}
		if err != nil {
			if e, ok := err.(*Error); !ok || e.Type != Validation {
				t.Errorf("ParseVisibility(%q, %q): error %v is not a validation error", tc.vis, tc.rec, err)
			}
		}
	}
}

func fuzzSides() []EventSide {
	file := func(e *EventIn) (*model.File, error) {
		if e.URL == "" {
			return nil, Errorf(Validation, "event.url is required")
		}
		return &model.File{URL: e.URL}, nil
	}
	return []EventSide{{Aud: ForAgent, File: file}, {Aud: ForCustomer, File: file, FormType: func(string) string { return "prechat" }}}
}

// FuzzEventIn feeds arbitrary JSON to the send_event parser of both sides:
// nothing panics, a refusal is a validation error, and an accepted event
// keeps the rules (a customer's is visible to all, forms and rich messages
// within their limits) and renders back to JSON.
func FuzzEventIn(f *testing.F) {
	for _, s := range []string{
		`{"type":"message","text":"hi","recipients":"agents"}`,
		`{"type":"filled_form","form_id":"f","fields":[{"type":"text","name":"n","label":"L","required":true,"value":"v"},{"type":"radio","label":"R","options":[{"label":"a","value":"a","checked":true}]}]}`,
		`{"type":"filled_form","fields":[{"type":"checkbox","id":"1","label":"C","answers":[{"id":"0","label":"x"}]}]}`,
		`{"type":"rich_message","template_id":"cards","elements":[{"title":"t","buttons":[{"text":"b","postback_id":"p"}]}]}`,
		`{"type":"system_message","system_message_type":"x","text":"t","visibility":"agents"}`,
		`{"type":"custom","content":{"a":[1,2]},"visibility":"all","recipients":"agents"}`,
		`{"type":"file","url":"https://x/y"}`,
		`{"type":"rich_message","template_id":"sticker","elements":null}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var e EventIn
		if json.Unmarshal(data, &e) != nil {
			return
		}
		for _, side := range fuzzSides() {
			d, err := e.Draft(side)
			if err != nil {
				if we, ok := err.(*Error); !ok || we.Type != Validation {
					t.Fatalf("refusal %v is not a validation error", err)
				}
				continue
			}
			if side.Aud == ForCustomer && d.Visibility != model.VisibleAll {
				t.Fatalf("customer event accepted with visibility %q", d.Visibility)
			}
			if !d.Kind.Valid() {
				t.Fatalf("kind %q", d.Kind)
			}
			switch d.Kind {
			case model.KindForm:
				if d.Form == nil || len(d.Form.Fields) == 0 || len(d.Form.Fields) > MaxFormFields {
					t.Fatalf("form accepted: %+v", d.Form)
				}
				_ = d.Form.Summary()
			case model.KindRich:
				if !json.Valid(d.Custom) {
					t.Fatalf("rich body %q", d.Custom)
				}
				_ = model.RichText(d.Custom)
			case model.KindSystem:
				if side.Aud != ForAgent {
					t.Fatal("customer system_message accepted")
				}
			}
			ev := model.Event{Kind: d.Kind, Text: d.Text, Visibility: d.Visibility, File: d.File, Form: d.Form, Custom: d.Custom, Subtype: d.Subtype}
			if _, err := json.Marshal(RenderEvent(&ev)); err != nil {
				t.Fatalf("render: %v", err)
			}
		}
	})
}
