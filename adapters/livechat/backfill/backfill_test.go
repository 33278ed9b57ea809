package backfill

import (
	"strings"
	"testing"
	"time"

	"chatgate/adapters/backfill"
	"chatgate/core/model"
)

func history(texts ...string) *backfill.History {
	at := time.Date(2025, 3, 4, 5, 6, 0, 0, time.UTC)
	c := backfill.Conversation{Conversation: model.Conversation{ID: "C1", CreatedAt: at}}
	for i, s := range texts {
		c.Events = append(c.Events, model.Event{Conv: "C1", Seq: uint64(i + 1), Kind: model.KindMessage, Text: s,
			Author: model.Author{Kind: model.AuthorVisitor, ID: "V1"}, At: at.Add(time.Duration(i) * time.Second), Visibility: model.VisibleAll})
	}
	return &backfill.History{Visitor: model.Visitor{ID: "V1", Name: "Vera"}, Earlier: []backfill.Conversation{c}}
}

// TestTranscript: one message of at most MaxText bytes, newest lines kept,
// the count of older ones said, the mark last; nothing to tell, no message.
func TestTranscript(t *testing.T) {
	long := strings.Repeat("é", 3000) // one line longer than maxLine
	many := make([]string, 400)
	for i := range many {
		many[i] = "line " + strings.Repeat("x", 60) + " " + string(rune('a'+i%26))
	}
	tests := []struct {
		name      string
		h         *backfill.History
		ok        bool
		contains  []string
		leftOut   bool
		lastEvent string
	}{
		{"nothing", history(), false, nil, false, ""},
		{"blank and deleted only", func() *backfill.History {
			h := history("  ", "gone")
			h.Earlier[0].Events[1].Deleted = true
			return h
		}(), false, nil, false, ""},
		{"short", history("hello", "bye"), true, []string{"(1, imported by chatgate", "[2025-03-04 05:06:00 UTC] Vera: hello", "Vera: bye"}, false, "Vera: bye"},
		{"long line cut", history(long), true, []string{"…"}, false, ""},
		{"too many lines", history(many...), true, nil, true, many[len(many)-1]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text, ok := Transcript(tt.h)
			if ok != tt.ok {
				t.Fatalf("ok = %v", ok)
			}
			if !ok {
				return
			}
			if len(text) > MaxText {
				t.Errorf("%d bytes, limit %d", len(text), MaxText)
			}
			if !strings.HasSuffix(text, "\n"+Mark("V1")) {
				t.Errorf("no mark at the end: %q", text[max(0, len(text)-80):])
			}
			for _, c := range tt.contains {
				if !strings.Contains(text, c) {
					t.Errorf("lacks %q:\n%s", c, text)
				}
			}
			if got := strings.Contains(text, "older lines left out"); got != tt.leftOut {
				t.Errorf("left-out line %v, want %v", got, tt.leftOut)
			}
			if tt.lastEvent != "" && !strings.Contains(text, tt.lastEvent+"\n"+Mark("V1")) {
				t.Errorf("the newest event is not last")
			}
		})
	}
}
