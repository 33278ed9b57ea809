package bolt

import (
	"context"
	"encoding/json"
	"reflect"
	"strconv"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"chatgate/core/model"
	"chatgate/store"
)

// TestConversationCache checks that a cached read returns exactly what a
// read of the file does, that callers cannot change the cache through
// what they were handed, and that closed conversations leave it.
func TestConversationCache(t *testing.T) {
	ctx := context.Background()
	s := mustOpen(t, tempPath(t), Options{NoSync: true})
	defer s.Close()
	conv := model.Conversation{ID: "c1", Visitor: "v1", State: model.StateOpen, Agent: "a1",
		CreatedAt: time.Now(), LastSeq: 3, Tags: []string{"x"}, Members: []model.AgentID{"a2"},
		Props: map[string]map[string]json.RawMessage{"ns": {"k": json.RawMessage(`"v"`)}}}
	if err := s.Commit(ctx, &store.Batch{Visitors: []model.Visitor{{ID: "v1"}}, Convs: []model.Conversation{conv}}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Conversation(ctx, "c1")
	if err != nil {
		t.Fatal(err)
	}
	var fromFile model.Conversation
	err = s.db.View(func(tx *bbolt.Tx) error {
		var err error
		fromFile, err = decodeConv(tx, []byte("c1"), tx.Bucket(bConvs).Get([]byte("c1")))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, fromFile) {
		t.Fatalf("cached read differs from the file:\n%+v\n%+v", got, fromFile)
	}
	// The caller's copy is its own.
	got.Tags[0] = "changed"
	got.Members = append(got.Members, "a3")
	got.Props["ns"]["k"][1] = 'X'
	got.Props["ns"]["new"] = json.RawMessage(`1`)
	again, _ := s.Conversation(ctx, "c1")
	if !reflect.DeepEqual(again, fromFile) {
		t.Fatalf("a caller's change reached the cache: %+v", again)
	}
	// A closed conversation leaves the cache and is read from the file.
	conv.State, conv.ClosedAt = model.StateClosed, time.Now()
	if err := s.Commit(ctx, &store.Batch{Convs: []model.Conversation{conv}}); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.convs.get("c1"); ok {
		t.Fatal("closed conversation still cached")
	}
	if c, err := s.Conversation(ctx, "c1"); err != nil || c.State != model.StateClosed {
		t.Fatalf("closed conversation: %+v %v", c, err)
	}
	// A request whose checks fail writes nothing, and caches nothing.
	dup := model.Event{Conv: "c2", Seq: 1, Kind: model.KindMessage, Text: "x"}
	if err := s.Commit(ctx, &store.Batch{Events: []model.Event{dup}}); err != nil {
		t.Fatal(err)
	}
	c2 := model.Conversation{ID: "c2", Visitor: "v1", State: model.StateOpen, LastSeq: 1}
	if err := s.Commit(ctx, &store.Batch{Convs: []model.Conversation{c2}, Events: []model.Event{dup}}); err == nil {
		t.Fatal("duplicate event accepted")
	}
	if _, ok := s.convs.get("c2"); ok {
		t.Fatal("conversation of a refused commit cached")
	}
	if _, err := s.Conversation(ctx, "c2"); err == nil {
		t.Fatal("conversation of a refused commit stored")
	}
}

func TestMapCacheGenerations(t *testing.T) {
	c := newMapCache()
	for i := range mapCacheSize + 10 {
		c.put(0, strconv.Itoa(i), "v")
	}
	if len(c.cur) != 10 || len(c.prev) != mapCacheSize {
		t.Fatalf("generations: cur %d prev %d", len(c.cur), len(c.prev))
	}
	// An entry of the previous generation is still found, and moves up.
	if v, ok := c.get("0"); !ok || v != "v" {
		t.Fatal("entry of the previous generation lost")
	}
	if _, ok := c.cur["0"]; !ok {
		t.Fatal("hit not moved to the current generation")
	}
	if _, ok := c.get("absent"); ok {
		t.Fatal("absent key found")
	}
}
