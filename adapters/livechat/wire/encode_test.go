package wire

import (
	"bytes"
	"encoding/json"
	"testing"
)

// encodeCases are frames of every kind appendFrame renders, and some it
// leaves to encoding/json, built from s (any text a client may send).
func encodeCases(s string, n int64) []any {
	ev := Event{ID: s + "_1", CustomID: s, Type: "message", AuthorID: s, CreatedAt: s, Visibility: s, Text: s,
		SystemMessageType: s, Name: s, URL: s, ContentType: s, Size: n, Width: int(n), Height: -int(n),
		FormID: s, FormType: s, TemplateID: s}
	sparse := Event{ID: "t_2", Type: "message", CreatedAt: "2026-12-06T13:00:00.000000Z", Text: s}
	withProps := sparse
	withProps.Properties = Properties{"ns": {"k": json.RawMessage(`true`)}}
	withVars := sparse
	withVars.TextVars = map[string]string{"agent": s}
	req := &Request{RequestID: s, Action: s}
	return []any{
		OK(req, nil),
		OK(req, SendEventResponse{EventID: s}),
		Fail(req, Errorf(Validation, "%s", s)),
		OK(&Request{}, Empty{}),
		NewPush(s, s, s, IncomingEvent{ChatID: s, ThreadID: s, Event: ev}),
		NewPush("3.5", "", "incoming_event", IncomingEvent{ChatID: s, ThreadID: s, Event: sparse}),
		NewPush("", s, "incoming_event", IncomingEvent{Event: withProps}),
		NewPush("3.5", "", "incoming_event", IncomingEvent{Event: withVars}),
		NewPush("3.5", "", "event_updated", IncomingEvent{}),
		NewPush("3.5", s, "chat_deactivated", ChatDeactivated{ChatID: s}),
		Response{RequestID: s, Action: "send_event", Type: TypeResponse, Payload: SendEventResponse{}},
	}
}

func checkEncode(t *testing.T, s string, n int64) {
	t.Helper()
	for _, frame := range encodeCases(s, n) {
		got, err := Encode(frame)
		want, werr := stdEncode(frame)
		if err != nil || werr != nil {
			t.Fatalf("%#v: %v / %v", frame, err, werr)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("%#v:\n got %s\nwant %s", frame, got, want)
		}
		if !json.Valid(got) {
			t.Fatalf("invalid JSON %s", got)
		}
		if f, ok := frame.(Push); ok {
			if p, ok := f.Payload.(IncomingEvent); ok {
				ev, err := EncodeEventPush(f.Version, f.RequestID, f.Action, &p)
				if err != nil || !bytes.Equal(ev, want) {
					t.Fatalf("EncodeEventPush %#v: %v\n got %s\nwant %s", frame, err, ev, want)
				}
			}
		}
	}
}

// TestEncodeEventPushAllocations: an incoming_event push of a plain
// event costs its frame's buffer alone (EncodePush of the same push boxes
// the payload: two allocations). Two are sent per relayed message.
func TestEncodeEventPushAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector changes allocation counts")
	}
	p := IncomingEvent{ChatID: "C1", ThreadID: "T1", Event: Event{ID: "T1_1", Type: "message", AuthorID: "a",
		CreatedAt: "2026-12-06T13:00:00.000000Z", Visibility: "all", Text: "hello"}}
	var sink []byte
	got := testing.AllocsPerRun(200, func() {
		sink, _ = EncodeEventPush("3.5", "r1", "incoming_event", &p)
	})
	if got != 1 {
		t.Fatalf("EncodeEventPush: %v allocations per push, want 1", got)
	}
	_ = sink
}

// BenchmarkEncodeEventPush compares an incoming_event push encoded
// through EncodePush (its payload boxed) and EncodeEventPush.
func BenchmarkEncodeEventPush(b *testing.B) {
	p := IncomingEvent{ChatID: "01JEXAMPLECUSTOMER000000000", ThreadID: "01JEXAMPLETHREAD0000000000", Event: Event{
		ID: "01JEXAMPLETHREAD0000000000_12", Type: "message", AuthorID: "01JEXAMPLECUSTOMER000000000",
		CreatedAt: "2026-12-06T13:00:00.000000Z", Visibility: "all", Text: "a message of a few words"}}
	b.Run("boxed", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			f := NewPush("3.5", "r1", "incoming_event", p)
			if _, err := EncodePush(&f); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("event", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := EncodeEventPush("3.5", "r1", "incoming_event", &p); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestEncodeMatchesStd: the frames Encode renders itself are byte for
// byte what encoding/json (without HTML escaping) writes, for texts that
// need every kind of escape.
func TestEncodeMatchesStd(t *testing.T) {
	for _, tc := range []struct {
		s string
		n int64
	}{
		{"", 0},
		{"plain text", 1},
		{`quote " backslash \ slash / <b>&amp;</b>`, -1},
		{"controls \x00\x01\x08\x0c\n\r\t\x1f\x7f", 1 << 40},
		{"unicode é ✓ 😀 \u2028 \u2029 \ufeff", 3},
		{"invalid \xff\xfe utf8 \xe2\x82 end\xc3", 7},
	} {
		checkEncode(t, tc.s, tc.n)
	}
}

// FuzzEncodeMatchesStd is TestEncodeMatchesStd for any text.
func FuzzEncodeMatchesStd(f *testing.F) {
	f.Add("plain", int64(0))
	f.Add("a\"\\\n\x00\u2028\xff<>&", int64(-5))
	f.Fuzz(func(t *testing.T, s string, n int64) {
		checkEncode(t, s, n)
	})
}
