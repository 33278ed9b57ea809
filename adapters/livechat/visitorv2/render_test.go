package visitorv2

import (
	"encoding/json"
	"testing"
)

// asMap is the map this surface encoded with encoding/json before
// appendEvent: the reference appendEvent's bytes are held to.
func asMap(e *v2Event) map[string]any {
	m := map[string]any{"message_id": e.messageID, "timestamp": e.timestamp, "type": e.typ, "user_type": e.userType}
	if e.hasText {
		m["text"] = e.text
	}
	if e.authorName != "" {
		m["author_name"] = e.authorName
	}
	if e.typ == "attachment" {
		m["files"] = []string{e.file}
	}
	if e.reason != "" {
		m["reason"] = e.reason
	}
	if e.agent != nil {
		m["agent"] = map[string]any{"name": e.agent.name, "job_title": e.agent.jobTitle, "avatar": e.agent.avatar}
	}
	return m
}

func TestAppendEventMatchesMap(t *testing.T) {
	cases := []struct {
		name string
		e    v2Event
	}{
		{"visitor message", v2Event{messageID: 7, timestamp: 1700000000, typ: "message", userType: "visitor", text: "hello", hasText: true}},
		{"agent message", v2Event{messageID: 1 << 63, timestamp: -5, typ: "message", userType: "agent", text: "", hasText: true, authorName: "Ann"}},
		{"html and quotes", v2Event{messageID: 2, typ: "message", userType: "agent", text: `<b>"x" & y\z</b>`, hasText: true, authorName: "A&B"}},
		{"control and unicode", v2Event{messageID: 3, typ: "message", userType: "visitor", text: "a\tb\nc\x00d\u2028e\u2029é😀\x7f", hasText: true}},
		{"invalid utf-8", v2Event{messageID: 4, typ: "message", userType: "visitor", text: "a\xffb\xc3", hasText: true}},
		{"attachment", v2Event{messageID: 5, typ: "attachment", userType: "visitor", text: "f.png", hasText: true, file: "https://x/f.png?a=1&b=<2>"}},
		{"agent details", v2Event{messageID: 6, typ: "agent_details", userType: "agent", agent: &v2Agent{name: "Ann", jobTitle: "", avatar: "cdn/a.png"}}},
		{"chat closed", v2Event{messageID: 8, typ: "chat_closed", userType: "system", text: "bye", hasText: true, reason: "visitor left: no poll for 30s"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			want, err := json.Marshal(asMap(&tc.e))
			if err != nil {
				t.Fatal(err)
			}
			if got := appendEvent(nil, &tc.e); string(got) != string(want) {
				t.Fatalf("appendEvent\n got %s\nwant %s", got, want)
			}
		})
	}
}

// FuzzAppendEvent: for any field contents, appendEvent writes what
// encoding/json writes for the map (so clients parse the same bytes).
func FuzzAppendEvent(f *testing.F) {
	f.Add(uint64(1), int64(2), "message", "hi <b>&", "Ann", "", "", true)
	f.Add(uint64(0), int64(-1), "attachment", "\u2028\xff", "", "https://x", "r", false)
	f.Fuzz(func(t *testing.T, id uint64, ts int64, typ, text, name, file, reason string, agent bool) {
		e := v2Event{messageID: id, timestamp: ts, typ: typ, userType: name, text: text, hasText: text != "",
			authorName: name, file: file, reason: reason}
		if agent {
			e.agent = &v2Agent{name: name, jobTitle: text, avatar: file}
		}
		want, err := json.Marshal(asMap(&e))
		if err != nil {
			t.Fatal(err)
		}
		if got := appendEvent(nil, &e); string(got) != string(want) {
			t.Fatalf("appendEvent\n got %s\nwant %s", got, want)
		}
	})
}
