package bolt

import (
	"encoding/json"
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
		if err := s.Commit(t.Context(), &store.Batch{Convs: []model.Conversation{conv}, Events: []model.Event{testEvent(conv.ID, seq)}}); err != nil {
			t.Fatal(err)
		}
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
		got, err := s.Conversation(t.Context(), conv.ID)
		if err != nil || got.LastSeq != 3 {
			t.Errorf("%s: Conversation = LastSeq %d, %v; want 3", where, got.LastSeq, err)
		}
		var scanned uint64
		if err := s.Conversations(t.Context(), func(c model.Conversation) bool { scanned = c.LastSeq; return true }); err != nil || scanned != 3 {
			t.Errorf("%s: Conversations = LastSeq %d, %v; want 3", where, scanned, err)
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
	if got, err := s.Conversation(t.Context(), conv.ID); err != nil || got.State != model.StateClosed || got.LastSeq != 3 {
		t.Errorf("closed: Conversation = %+v, %v", got, err)
	}
}

// TestReadsSchema1 opens a file of layout version 1 (every conversation
// record with its last_seq, every event record with its conv and seq) and
// reads it as written; the file's version becomes 2.
func TestReadsSchema1(t *testing.T) {
	path := tempPath(t)
	db, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	conv := model.Conversation{ID: "c1", Visitor: "v", State: model.StateOpen, LastSeq: 2}
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
		// Version 1 did not derive LastSeq: a third event past the
		// record's LastSeq must not move it.
		for seq := uint64(1); seq <= 3; seq++ {
			e := testEvent(conv.ID, seq)
			if err := put(bEvents, eventKey(conv.ID, seq), &e); err != nil {
				return err
			}
		}
		return nil
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	s := mustOpen(t, path, Options{})
	defer s.Close()
	if got, err := s.Conversation(t.Context(), conv.ID); err != nil || !reflect.DeepEqual(got, conv) {
		t.Errorf("Conversation = %+v, %v; want %+v", got, err, conv)
	}
	evs, err := s.Events(t.Context(), conv.ID, 2, 1)
	if err != nil || len(evs) != 1 || !reflect.DeepEqual(evs[0], testEvent(conv.ID, 2)) {
		t.Errorf("Events = %+v, %v", evs, err)
	}
	if v, err := s.raw(bMeta, schemaKey); err != nil || string(v) != strconv.Itoa(fileSchema) {
		t.Errorf("schema = %q, %v; want %d", v, err, fileSchema)
	}
}

// TestEventRecordLeavesOutKey: an event record does not repeat the
// conversation id and seq its key holds.
func TestEventRecordLeavesOutKey(t *testing.T) {
	e := testEvent("01KC0000000000000000000000", 12)
	v, err := eventVal(&e)
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
