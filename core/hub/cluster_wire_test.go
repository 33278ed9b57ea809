package hub

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"chatgate/core/model"
)

// benchWire is a relayed agent message as it crosses nodes (the shape the
// bench's customer surface produces: docs/performance.md, round 5).
func benchWire() *Wire {
	at := time.Date(2026, 12, 6, 16, 14, 17, 412962000, time.UTC)
	conv := model.Conversation{ID: "01M9624YA4HKW3SJYVKMV2CDFV", Visitor: "01M9624XTV452WJ8AS5A4GDVQN", State: model.StateOpen,
		Agent: "agent2@bench.local", Origin: "livechat.customer", CreatedAt: at, AssignedAt: at, LastSeq: 20, Rev: 20}
	ev := model.Event{Conv: conv.ID, Seq: 20, ID: "01M962508YYF6Y4MX9HE3A5EP2", Kind: model.KindMessage,
		Author: model.Author{Kind: model.AuthorAgent, ID: "agent2@bench.local", Name: "Bench Agent 2"},
		At:     at.Add(2 * time.Second), Visibility: model.VisibleAll, Text: "ack|47|9|1796573659421197295"}
	n := Notice{Conv: conv, Events: []model.Event{ev}, Origin: "livechat.agent.rtm/01M9624WTWAEN61D9D1RCYXHBR#225#a223"}
	w := WireOf("pgB", &n)
	w.N = 915
	return w
}

func BenchmarkMarshalWire(b *testing.B) {
	w := benchWire()
	b.ReportAllocs()
	var n int
	for b.Loop() {
		p, err := MarshalWire(w)
		if err != nil {
			b.Fatal(err)
		}
		n = len(p)
	}
	b.ReportMetric(float64(n), "bytes")
}

// BenchmarkUnmarshalWire: what a receiving node does with each pointer,
// and what it did before round 5 (encoding/json on the pointer whose Rest
// was a whole Notice).
func BenchmarkUnmarshalWire(b *testing.B) {
	w := benchWire()
	p, err := MarshalWire(w)
	if err != nil {
		b.Fatal(err)
	}
	n := w.Rest.notice()
	prev, err := json.Marshal(struct {
		*Wire
		Rest *Notice `json:"r,omitempty"`
	}{w, &n})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("UnmarshalWire", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := UnmarshalWire(p); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("before", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var w Wire
			if err := json.Unmarshal(prev, &w); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// wireSamples are pointers of every kind a node publishes.
func wireSamples() []*Wire {
	conv := model.Conversation{ID: "c1", Visitor: "v1", State: model.StateOpen, Agent: "a@x", LastSeq: 3, Rev: 4,
		CreatedAt: time.Unix(1700000000, 5).UTC(), Tags: []string{"vip"}, Members: []model.AgentID{"b@x"},
		Props: map[string]map[string]json.RawMessage{"ns": {"k": json.RawMessage(`{"a":[1,2.5,"é\u2028"]}`)}}}
	ev := model.Event{Conv: "c1", Seq: 3, ID: "e3", Kind: model.KindMessage, Text: "hé <b>\"x\"</b>", At: time.Unix(1700000001, 0).UTC(),
		Author: model.Author{Kind: model.AuthorVisitor, ID: "v1", Name: "V"}, Vars: map[string]string{"a": "b"},
		Props: map[string]map[string]json.RawMessage{"p": {"q": json.RawMessage(`true`)}}}
	upd := ev
	upd.Seq, upd.Deleted, upd.EditedAt = 2, true, time.Unix(1700000002, 7).UTC()
	notices := []Notice{
		{Conv: conv, Events: []model.Event{ev}, Origin: "livechat.customer/01X#1#r1"},
		{Conv: conv, Created: true, Events: []model.Event{ev}},
		{Conv: conv, Updated: []model.Event{upd}},
		{Conv: conv, Typing: &Typing{Author: ev.Author, On: true, Text: "hel"}},
		{Conv: conv, Props: &PropsChange{Location: "thread", Conv: "c1", Updated: conv.Props}},
		{Conv: conv, Tag: &TagChange{Tag: "vip", Added: true, By: ev.Author}},
		{Conv: conv, Follow: &FollowChange{Agent: "a@x", Followed: true}},
		{Conv: model.Conversation{Visitor: "v1"}, Ban: &BanChange{Visitor: "v1", Days: 2, Until: time.Unix(1700090000, 0).UTC()}},
		{Conv: conv, Member: &MemberChange{Agent: "b@x", Added: true, Visibility: model.VisibleAgents}},
		{Conv: conv, Seen: &SeenChange{User: "v1", Kind: model.AuthorVisitor, UpTo: time.Unix(1700000003, 0).UTC()}},
		{Conv: conv, PrevVisitor: "v0"},
	}
	var out []*Wire
	for i := range notices {
		w := WireOf("n1", &notices[i])
		w.N = uint64(i + 1)
		out = append(out, w)
		slim := *w
		slim.Slim()
		out = append(out, &slim)
	}
	return out
}

// TestUnmarshalWireMatchesStd: UnmarshalWire (goccy) decodes every kind of
// pointer to what encoding/json decodes, and what a node of the previous
// version wrote (Rest as a whole Notice, empty members included) still
// reads the same.
func TestUnmarshalWireMatchesStd(t *testing.T) {
	for i, w := range wireSamples() {
		raw, err := MarshalWire(w)
		if err != nil {
			t.Fatal(err)
		}
		got, err := UnmarshalWire(raw)
		if err != nil {
			t.Fatalf("sample %d: %v", i, err)
		}
		var want Wire
		if err := json.Unmarshal(raw, &want); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, &want) {
			t.Errorf("sample %d: goccy decoded\n%+v\nencoding/json\n%+v", i, got, &want)
		}
		if w.Rest != nil {
			// The previous version's encoding of the same pointer.
			old := struct {
				*Wire
				Rest *Notice `json:"r,omitempty"`
			}{Wire: w}
			n := w.Rest.notice()
			old.Rest = &n
			rawOld, err := json.Marshal(old)
			if err != nil {
				t.Fatal(err)
			}
			gotOld, err := UnmarshalWire(rawOld)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(gotOld, &want) {
				t.Errorf("sample %d: previous version's encoding decoded to\n%+v\nwant\n%+v", i, gotOld, &want)
			}
			if len(rawOld) <= len(raw) {
				t.Errorf("sample %d: %d bytes, the previous encoding %d", i, len(raw), len(rawOld))
			}
		}
	}
}

// FuzzUnmarshalWire holds UnmarshalWire to encoding/json: on any input the
// same refusals (and no panic), and on any pointer a node writes
// (MarshalWire of a notice with fuzzed strings) the same result. Arbitrary
// valid input may differ where no node writes it (goccy matches mis-cased
// keys less often than encoding/json): only other nodes write pointers.
func FuzzUnmarshalWire(f *testing.F) {
	for _, w := range wireSamples() {
		raw, err := MarshalWire(w)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw, "hé <b>", "o#1", `{"a":[1]}`)
	}
	f.Add([]byte(`{"n":"a","x":{"c":{"id":"c\xff"}}}`), "a\xffb", "\u2028", `"x"`)
	f.Add([]byte(`{"n":1}`), "", "", `null`)
	f.Fuzz(func(t *testing.T, b []byte, text, origin, raw string) {
		var want Wire
		_, err := UnmarshalWire(b)
		if stdErr := json.Unmarshal(b, &want); (err == nil) != (stdErr == nil) {
			t.Fatalf("UnmarshalWire error %v, encoding/json %v", err, stdErr)
		}
		n := Notice{Conv: model.Conversation{ID: model.ConvID(text), Visitor: "v", Tags: []string{text}}, Origin: origin,
			Events: []model.Event{{Conv: model.ConvID(text), Seq: 1, Text: text, Author: model.Author{Name: origin}}}}
		if json.Valid([]byte(raw)) {
			n.Conv.Props = map[string]map[string]json.RawMessage{text: {origin: json.RawMessage(raw)}}
		}
		p, err := MarshalWire(WireOf(origin, &n))
		if err != nil {
			t.Fatal(err)
		}
		got, err := UnmarshalWire(p)
		if err != nil {
			t.Fatalf("UnmarshalWire(%q): %v", p, err)
		}
		want = Wire{}
		if err := json.Unmarshal(p, &want); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, &want) {
			t.Fatalf("UnmarshalWire(%q)\n%+v\nencoding/json\n%+v", p, got, &want)
		}
	})
}
