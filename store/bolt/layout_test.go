package bolt

import (
	"encoding/json"
	"errors"
	"reflect"
	"strconv"
	"sync"
	"testing"

	bbolt "go.etcd.io/bbolt"

	"chatgate/core/model"
	"chatgate/store"
)

// TestMessageLeavesConversationRecord: a message commit (the conversation
// with its next LastSeq and that event) writes the event alone, not the
// unchanged conversation record nor its visitor index entry, and the
// conversation still reads back with its LastSeq, from the cache and,
// after a reopen, from the file.
func TestMessageLeavesConversationRecord(t *testing.T) {
	path := tempPath(t)
	var mu sync.Mutex
	var keys []int
	s := mustOpen(t, path, Options{OnCommit: func(st Stats) { mu.Lock(); keys = append(keys, st.Keys); mu.Unlock() }})
	conv := model.Conversation{ID: model.ConvID(model.NewID()), Visitor: "v", State: model.StateOpen, Agent: "a"}
	if err := s.Commit(t.Context(), &store.Batch{Convs: []model.Conversation{conv}}); err != nil {
		t.Fatal(err)
	}
	for seq := uint64(1); seq <= 3; seq++ {
		conv.LastSeq = seq
		b := &store.Batch{Convs: []model.Conversation{conv}, Events: []model.Event{testEvent(conv.ID, seq)}}
		if err := s.Commit(t.Context(), b); err != nil {
			t.Fatal(err)
		}
		if b.Convs[0].Rev != seq+1 {
			t.Errorf("message %d: revision %d, want %d", seq, b.Convs[0].Rev, seq+1)
		}
		conv.Rev = b.Convs[0].Rev // checked writes, as the desk's
	}
	mu.Lock()
	// Every message writes its event alone (the record without LastSeq
	// is the one the start wrote).
	if want := []int{2, 1, 1, 1}; !reflect.DeepEqual(keys, want) {
		t.Errorf("keys per commit = %v, want %v", keys, want)
	}
	mu.Unlock()
	check := func(s *Store, where string) {
		t.Helper()
		// Each commit moved the revision by one: the start, then three
		// messages.
		got, err := s.Conversation(t.Context(), conv.ID)
		if err != nil || got.LastSeq != 3 || got.Rev != 4 {
			t.Errorf("%s: Conversation = LastSeq %d, Rev %d, %v; want 3, 4", where, got.LastSeq, got.Rev, err)
		}
		var scanned model.Conversation
		if err := s.Conversations(t.Context(), func(c model.Conversation) bool { scanned = c; return true }); err != nil || scanned.LastSeq != 3 || scanned.Rev != 4 {
			t.Errorf("%s: Conversations = LastSeq %d, Rev %d, %v; want 3, 4", where, scanned.LastSeq, scanned.Rev, err)
		}
		evs, err := s.Events(t.Context(), conv.ID, 1, 0)
		if err != nil || len(evs) != 3 {
			t.Fatalf("%s: Events = %d, %v", where, len(evs), err)
		}
		for i, e := range evs {
			if want := testEvent(conv.ID, uint64(i+1)); !reflect.DeepEqual(e, want) {
				t.Errorf("%s: event %d = %+v, want %+v", where, i, e, want)
			}
		}
	}
	check(s, "cached")
	cached, _ := s.Conversation(t.Context(), conv.ID)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = mustOpen(t, path, Options{})
	defer s.Close()
	check(s, "reopened")
	if fromFile, _ := s.Conversation(t.Context(), conv.ID); !reflect.DeepEqual(cached, fromFile) {
		t.Errorf("cached conversation differs from the file's:\n%+v\n%+v", cached, fromFile)
	}
	// A change besides LastSeq is written, and LastSeq read from the
	// record when it carries one.
	conv.State, conv.LastSeq = model.StateClosed, 3
	if err := s.Commit(t.Context(), &store.Batch{Convs: []model.Conversation{conv}}); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Conversation(t.Context(), conv.ID); err != nil || got.State != model.StateClosed || got.LastSeq != 3 || got.Rev != 5 {
		t.Errorf("closed: Conversation = %+v, %v", got, err)
	}
	// A message built on an older revision is stale, record left alone or not.
	conv.State, conv.LastSeq = model.StateOpen, 4
	err := s.Commit(t.Context(), &store.Batch{Convs: []model.Conversation{conv}, Events: []model.Event{testEvent(conv.ID, 4)}})
	if !errors.Is(err, store.ErrStale) {
		t.Errorf("stale message = %v, want ErrStale", err)
	}
}

// TestReadsSchema1 opens a file of layout version 1 (every conversation
// record with its last_seq, every event record with its conv and seq;
// c2 as written by builds that added `"rev":N` alone) and reads it as
// written; the file's version becomes 2.
func TestReadsSchema1(t *testing.T) {
	path := tempPath(t)
	db, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	conv := model.Conversation{ID: "c1", Visitor: "v", State: model.StateOpen, LastSeq: 3}
	conv2 := model.Conversation{ID: "c2", Visitor: "v", State: model.StateOpen, LastSeq: 1, Rev: 5}
	err = db.Update(func(tx *bbolt.Tx) error {
		for _, b := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		put := func(bucket, k []byte, v any) error {
			b, err := json.Marshal(v)
			if err != nil {
				return err
			}
			return tx.Bucket(bucket).Put(k, b)
		}
		if err := tx.Bucket(bMeta).Put(schemaKey, []byte("1")); err != nil {
			return err
		}
		if err := put(bConvs, []byte(conv.ID), conv); err != nil {
			return err
		}
		for seq := uint64(1); seq <= 3; seq++ {
			e := testEvent(conv.ID, seq)
			if err := put(bEvents, eventKey(conv.ID, seq), &e); err != nil {
				return err
			}
		}
		e := testEvent(conv2.ID, 1)
		if err := put(bEvents, eventKey(conv2.ID, 1), &e); err != nil {
			return err
		}
		v, err := json.Marshal(conv2)
		if err != nil {
			return err
		}
		return tx.Bucket(bConvs).Put([]byte(conv2.ID), append(v[:len(v)-1], `,"rev":5}`...))
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	s := mustOpen(t, path, Options{})
	defer s.Close()
	for _, want := range []model.Conversation{conv, conv2} {
		if got, err := s.Conversation(t.Context(), want.ID); err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("Conversation = %+v, %v; want %+v", got, err, want)
		}
	}
	evs, err := s.Events(t.Context(), conv.ID, 2, 1)
	if err != nil || len(evs) != 1 || !reflect.DeepEqual(evs[0], testEvent(conv.ID, 2)) {
		t.Errorf("Events = %+v, %v", evs, err)
	}
	if v, err := s.raw(bMeta, schemaKey); err != nil || string(v) != strconv.Itoa(fileSchema) {
		t.Errorf("schema = %q, %v; want %d", v, err, fileSchema)
	}
}

// TestEventRecordLeavesOutKey: a JSON event record (layout 2, still
// written for events the binary record cannot hold) does not repeat the
// conversation id and seq its key holds.
func TestEventRecordLeavesOutKey(t *testing.T) {
	e := testEvent("01KC0000000000000000000000", 12)
	v, err := eventJSON(&e)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(v, &m); err != nil {
		t.Fatal(err)
	}
	if _, ok := m["conv"]; ok {
		t.Errorf("record %s repeats conv", v)
	}
	if _, ok := m["seq"]; ok {
		t.Errorf("record %s repeats seq", v)
	}
	var back model.Event
	if err := decodeEvent(eventKey(e.Conv, e.Seq), v, &back); err != nil || !reflect.DeepEqual(back, e) {
		t.Errorf("decoded %+v, %v; want %+v", back, err, e)
	}
}

// TestStoredRecordMembers: the revision members are found only as the
// record's own last members, never inside a property value.
func TestStoredRecordMembers(t *testing.T) {
	for _, tc := range []struct {
		stored, body string
		rev, seq     uint64
		hasSeq       bool
	}{
		{`{"a":1,"rev":3,"rev_seq":7}`, `{"a":1}`, 3, 7, true},
		{`{"a":"x","rev":4}`, `{"a":"x"}`, 4, 0, false},
		{`{"rev":2,"rev_seq":0}`, `{}`, 2, 0, true},
		{`{"p":{"rev":5}}`, `{"p":{"rev":5}}`, 0, 0, false},
		{`{"p":{"rev_seq":5}}`, `{"p":{"rev_seq":5}}`, 0, 0, false},
		{`{"a":1}`, `{"a":1}`, 0, 0, false},
		{`{"xrev":9}`, `{"xrev":9}`, 0, 0, false},
	} {
		v := []byte(tc.stored)
		end, seq, hasSeq := lastMember(v, len(v)-1, "rev_seq")
		end, rev, _ := lastMember(v, end, "rev")
		r := storedRecord{raw: v, end: end}
		if string(r.body()) != tc.body || rev != tc.rev || seq != tc.seq || hasSeq != tc.hasSeq {
			t.Errorf("%s: body %s rev %d seq %d (%v); want %s %d %d (%v)", tc.stored, r.body(), rev, seq, hasSeq, tc.body, tc.rev, tc.seq, tc.hasSeq)
		}
		if !r.sameBody([]byte(tc.body)) {
			t.Errorf("%s: sameBody(%s) = false", tc.stored, tc.body)
		}
	}
}
