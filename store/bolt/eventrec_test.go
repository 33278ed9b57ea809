package bolt

import (
	"encoding/json"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"chatgate/core/model"
	"chatgate/store"
)

// viaJSON is what an event reads back as from a JSON record: the binary
// record must read back exactly the same.
func viaJSON(t testing.TB, e *model.Event) (model.Event, bool) {
	t.Helper()
	v, err := eventJSON(e)
	if err != nil {
		return model.Event{}, false
	}
	var back model.Event
	if err := decodeEvent(eventKey(e.Conv, e.Seq), v, &back); err != nil {
		t.Fatalf("JSON record %s does not decode: %v", v, err)
	}
	return back, true
}

// TestEventRecordFormats: each event is written in the format expected
// (binary unless it holds what only JSON carries exactly) and reads back
// as its JSON record would; the binary record of a message is a fraction
// of its JSON.
func TestEventRecordFormats(t *testing.T) {
	conv := model.ConvID(model.NewID())
	at := time.Date(2026, 12, 6, 13, 40, 1, 123456789, time.UTC)
	msg := model.Event{Conv: conv, Seq: 7, ID: model.NewID(), Kind: model.KindMessage,
		Author: model.Author{Kind: model.AuthorVisitor, ID: model.NewID(), Name: "Vera"}, At: at, Text: "Hello, how much is the pro plan?"}
	with := func(f func(e *model.Event)) model.Event {
		e := msg
		f(&e)
		return e
	}
	for _, tc := range []struct {
		name   string
		e      model.Event
		binary bool
	}{
		{"message", msg, true},
		{"zero event", model.Event{Conv: conv, Seq: 1}, true},
		{"system message with vars", with(func(e *model.Event) {
			e.Kind, e.Author, e.Subtype, e.Vars = model.KindSystem, model.System, model.SysAssigned, map[string]string{"agent": "a1"}
		}), true},
		{"agents only, client key, deleted", with(func(e *model.Event) {
			e.Visibility, e.ClientKey, e.Deleted = model.VisibleAgents, "custom-1", true
		}), true},
		{"visible to all", with(func(e *model.Event) { e.Visibility = model.VisibleAll }), true},
		{"unknown kind and author kind", with(func(e *model.Event) {
			e.Kind, e.Author.Kind, e.Visibility = "sticker", "bot", "owners"
		}), true},
		{"ids that are not canonical ULIDs", with(func(e *model.Event) {
			e.ID, e.Author.ID = "lowercase-"+e.ID, "01kc0000000000000000000000"
		}), true},
		{"file, form, custom, props, edited", with(func(e *model.Event) {
			e.Kind = model.KindFile
			e.File = &model.File{Name: "a.png", URL: "https://example.test/a.png", Size: 12}
			e.Form = &model.Form{Type: "prechat", Fields: []model.FormField{{Label: "Name", Answer: json.RawMessage(`"Vera"`)}}}
			e.Custom = json.RawMessage(`{"a": [1, 2]}`)
			e.Props = map[string]map[string]json.RawMessage{"ns": {"k": json.RawMessage(`true`)}}
			e.EditedAt, e.EditedBy = at.Add(time.Minute), &model.Author{Kind: model.AuthorAgent, ID: "a1"}
		}), true},
		{"empty maps", with(func(e *model.Event) { e.Vars, e.Props = map[string]string{}, map[string]map[string]json.RawMessage{} }), true},
		{"zero time", with(func(e *model.Event) { e.At = time.Time{} }), true},
		{"edited in another zone", with(func(e *model.Event) { e.EditedAt = at.In(time.FixedZone("CET", 3600)) }), true},
		{"time in another zone", with(func(e *model.Event) { e.At = at.In(time.FixedZone("CET", 3600)) }), false},
		{"time before year 0", with(func(e *model.Event) { e.At = time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC) }), false},
		{"invalid UTF-8 text", with(func(e *model.Event) { e.Text = "caf\xe9" }), false},
		{"invalid UTF-8 author name", with(func(e *model.Event) { e.Author.Name = "\xff" }), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := eventVal(&tc.e)
			want, ok := viaJSON(t, &tc.e)
			if !ok {
				if err == nil {
					t.Fatalf("encoded an event whose JSON fails: %x", v)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := v[0] == recBinary; got != tc.binary {
				t.Errorf("binary record = %v, want %v (%q)", got, tc.binary, v)
			}
			var back model.Event
			if err := decodeEvent(eventKey(tc.e.Conv, tc.e.Seq), v, &back); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(back, want) {
				t.Errorf("read back\n%#v\nwant (as from JSON)\n%#v", back, want)
			}
		})
	}
	bin, _ := eventVal(&msg)
	js, _ := eventJSON(&msg)
	t.Logf("message record: binary %d bytes, JSON %d bytes", len(bin), len(js))
	if len(bin)*2 > len(js) {
		t.Errorf("binary record %d bytes, JSON %d: not half", len(bin), len(js))
	}
}

// TestEventRecordRejectsCorrupt: a damaged binary record is an error,
// never a panic nor a wrong event.
func TestEventRecordRejectsCorrupt(t *testing.T) {
	e := testEvent(model.ConvID(model.NewID()), 3)
	e.Vars = map[string]string{"k": "v"}
	v, err := eventVal(&e)
	if err != nil || v[0] != recBinary {
		t.Fatalf("eventVal = %q, %v", v, err)
	}
	key := eventKey(e.Conv, e.Seq)
	for n := 1; n < len(v); n++ {
		var back model.Event
		if err := decodeEvent(key, v[:n], &back); err == nil {
			t.Errorf("truncated to %d bytes: decoded %+v", n, back)
		}
	}
	for _, bad := range [][]byte{
		{recBinary, 0x80},            // unfinished varint
		{recBinary, 0x04, 1},         // unknown flag
		append(slices.Clone(v), 0),   // a byte after the tail is not JSON
		append(slices.Clone(v), '}'), // nor is this
	} {
		var back model.Event
		if err := decodeEvent(key, bad, &back); err == nil {
			t.Errorf("%q decoded as %+v", bad, back)
		}
	}
}

// FuzzEventRecord: any bytes decode without panicking; and an event built
// from the fuzzer's strings reads back from its record (binary or JSON,
// whichever eventVal chose) exactly as from its JSON record.
func FuzzEventRecord(f *testing.F) {
	e := testEvent(model.ConvID(model.NewID()), 3)
	v, _ := eventVal(&e)
	f.Add(v, "hello", "Vera", model.NewID(), "message", "visitor", "", int64(1700000000), uint32(5), "", false)
	f.Add([]byte(`{"id":"x","kind":"message"}`), "caf\xe9", "", "x", "custom", "bot", "agents", int64(-62135596800), uint32(0), `{"a":1}`, true)
	f.Fuzz(func(t *testing.T, raw []byte, text, name, id, kind, authorKind, vis string, sec int64, nsec uint32, custom string, deleted bool) {
		var back model.Event
		_ = decodeEvent(append([]byte("c\x00"), make([]byte, 8)...), raw, &back)

		e := model.Event{Conv: "c", Seq: 1, ID: id, Kind: model.EventKind(kind), Author: model.Author{Kind: model.AuthorKind(authorKind), ID: id, Name: name},
			At: time.Unix(sec, int64(nsec%1e9)).UTC(), Visibility: model.Visibility(vis), Text: text, ClientKey: name, Deleted: deleted}
		if custom != "" {
			e.Custom = json.RawMessage(custom)
			e.Vars = map[string]string{name: text}
		}
		want, ok := viaJSON(t, &e)
		v, err := eventVal(&e)
		if !ok {
			if err == nil {
				t.Fatalf("encoded an event whose JSON fails: %x", v)
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		var got model.Event
		if err := decodeEvent(eventKey(e.Conv, e.Seq), v, &got); err != nil {
			t.Fatalf("record %x: %v", v, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("read back\n%#v\nwant (as from JSON)\n%#v", got, want)
		}
	})
}

// TestReadsLayout2: a file of layout 2 (every event record JSON, as the
// previous build wrote them with eventJSON) opens, reads as written, takes
// new events in the binary format beside the old ones, and restoring its
// own events again finds them the same; its version becomes 3, which the
// previous build refuses.
func TestReadsLayout2(t *testing.T) {
	path := tempPath(t)
	s := mustOpen(t, path, Options{})
	conv := model.Conversation{ID: model.ConvID(model.NewID()), Visitor: "v", State: model.StateOpen}
	var evs []model.Event
	for seq := uint64(1); seq <= 3; seq++ {
		conv.LastSeq = seq
		e := testEvent(conv.ID, seq)
		e.Vars = map[string]string{"n": strconv.FormatUint(seq, 10)}
		evs = append(evs, e)
		if err := s.Commit(t.Context(), &store.Batch{Convs: []model.Conversation{conv}, Events: []model.Event{e}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Make it the file the previous build wrote: JSON event records,
	// version 2.
	db, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		for _, e := range evs {
			v, err := eventJSON(&e)
			if err != nil {
				return err
			}
			if err := tx.Bucket(bEvents).Put(eventKey(e.Conv, e.Seq), v); err != nil {
				return err
			}
		}
		return tx.Bucket(bMeta).Put(schemaKey, []byte("2"))
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}

	s = mustOpen(t, path, Options{})
	defer s.Close()
	if v, err := s.raw(bMeta, schemaKey); err != nil || string(v) != "3" {
		t.Errorf("schema = %q, %v; want 3", v, err)
	}
	if v, err := s.raw(bEvents, eventKey(conv.ID, 1)); err != nil || v[0] != '{' {
		t.Fatalf("event 1 = %q, %v; want the layout 2 JSON record", v, err)
	}
	conv.LastSeq, conv.Rev = 4, 3
	e4 := testEvent(conv.ID, 4)
	evs = append(evs, e4)
	if err := s.Commit(t.Context(), &store.Batch{Convs: []model.Conversation{conv}, Events: []model.Event{e4}}); err != nil {
		t.Fatal(err)
	}
	if v, err := s.raw(bEvents, eventKey(conv.ID, 4)); err != nil || v[0] != recBinary {
		t.Errorf("event 4 = %q, %v; want a binary record", v, err)
	}
	got, err := s.Events(t.Context(), conv.ID, 1, 0)
	if err != nil || !reflect.DeepEqual(got, evs) {
		t.Errorf("Events = %+v, %v\nwant %+v", got, err, evs)
	}
	res, err := s.Restore(t.Context(), &store.Restore{Events: evs})
	if err != nil || res[store.RecEvent] != (store.RestoreCount{Same: 4}) {
		t.Errorf("Restore of the same events = %+v, %v; want 4 same", res, err)
	}
	// An event the file holds as JSON with other content is still kept.
	changed := evs[0]
	changed.Text = "other"
	if res, err := s.Restore(t.Context(), &store.Restore{Events: []model.Event{changed}}); err != nil || res[store.RecEvent] != (store.RestoreCount{Kept: 1}) {
		t.Errorf("Restore of a changed event = %+v, %v; want 1 kept", res, err)
	}
}

// TestDecodeJSONRecordHighSurrogate: a JSON event record (the older
// layout, or an import) with a high surrogate escape near its end decodes
// as encoding/json decodes it, and under -race without checkptr killing
// the process (goccy computes a pointer past its input there).
func TestDecodeJSONRecordHighSurrogate(t *testing.T) {
	key := eventKey("c1", 1)
	for pad := range 40 {
		for _, tail := range []string{`\udc00\ud800x`, `\ud800`, `\uDBFF`, `\ud83d\ude00`} {
			rec := []byte(`{"id":"` + strings.Repeat("e", pad+1) + `","type":"message","text":"` + tail + `"}`)
			var got, want model.Event
			if err := decodeEvent(key, rec, &got); err != nil {
				t.Fatalf("%s: %v", rec, err)
			}
			if err := json.Unmarshal(rec, &want); err != nil {
				t.Fatal(err)
			}
			want.Conv, want.Seq = "c1", 1
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("%s: got %#v, encoding/json %#v", rec, got, want)
			}
		}
	}
}
