package bolt

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strconv"
	"sync"
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

// TestEqualButSeqFields: changing any field of a conversation but LastSeq
// and Rev makes it differ (so that a field added to model.Conversation
// and forgotten by equalButSeq fails here rather than leave a changed
// record unwritten).
func TestEqualButSeqFields(t *testing.T) {
	base := model.Conversation{ID: "c", Visitor: "v", State: model.StateOpen, CreatedAt: time.Unix(1, 0).UTC()}
	ty := reflect.TypeOf(base)
	for i := range ty.NumField() {
		f := ty.Field(i)
		t.Run(f.Name, func(t *testing.T) {
			changed := base
			poke(t, reflect.ValueOf(&changed).Elem().Field(i))
			eq := equalButSeq(&base, &changed)
			if ignored := f.Name == "LastSeq" || f.Name == "Rev"; eq != ignored {
				t.Errorf("equalButSeq after changing %s = %v, want %v", f.Name, eq, ignored)
			}
		})
	}
	// nil and empty are alike (the JSON omits both).
	empty := base
	empty.Tags, empty.Props = []string{}, map[string]map[string]json.RawMessage{}
	if !equalButSeq(&base, &empty) {
		t.Error("nil and empty slices and maps differ")
	}
}

// poke sets v to a value other than its zero value and base's.
func poke(t *testing.T, v reflect.Value) {
	t.Helper()
	switch {
	case v.Type() == reflect.TypeOf(time.Time{}):
		v.Set(reflect.ValueOf(time.Unix(99, 0).UTC()))
	case v.Kind() == reflect.String:
		v.SetString("poked")
	case v.Kind() == reflect.Uint64 || v.Kind() == reflect.Uint8:
		v.SetUint(7)
	case v.Kind() == reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		poke(t, p.Elem().Field(0))
		v.Set(p)
	case v.Kind() == reflect.Slice:
		s := reflect.MakeSlice(v.Type(), 1, 1)
		poke(t, s.Index(0))
		v.Set(s)
	case v.Kind() == reflect.Map:
		m := reflect.MakeMap(v.Type())
		k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
		poke(t, k)
		poke(t, e)
		m.SetMapIndex(k, e)
		v.Set(m)
	default:
		t.Fatalf("cannot change a %s: teach equalButSeq and this test", v.Type())
	}
}

// TestCacheFollowsEventsAlone: an event committed without its
// conversation's record moves the conversation's LastSeq and revision for
// readers of the file; the cache must not keep the older state (a message
// built on it is stale, and Conversation answers as the file does).
func TestCacheFollowsEventsAlone(t *testing.T) {
	path := tempPath(t)
	s := mustOpen(t, path, Options{})
	ctx := t.Context()
	conv := model.Conversation{ID: model.ConvID(model.NewID()), Visitor: "v", State: model.StateOpen, LastSeq: 1}
	b := &store.Batch{Convs: []model.Conversation{conv}, Events: []model.Event{testEvent(conv.ID, 1)}}
	if err := s.Commit(ctx, b); err != nil {
		t.Fatal(err)
	}
	old := b.Convs[0] // LastSeq 1, Rev 1, as cached
	if err := s.Commit(ctx, &store.Batch{Events: []model.Event{testEvent(conv.ID, 2)}}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Conversation(ctx, conv.ID)
	if err != nil || got.LastSeq != 2 || got.Rev != 2 {
		t.Errorf("Conversation = LastSeq %d Rev %d, %v; want 2, 2", got.LastSeq, got.Rev, err)
	}
	next := old
	next.LastSeq = 2
	err = s.Commit(ctx, &store.Batch{Convs: []model.Conversation{next}, Events: []model.Event{testEvent(conv.ID, 2)}})
	if !errors.Is(err, store.ErrStale) {
		t.Errorf("message on the state before the event = %v, want ErrStale", err)
	}
	// Built on the current state, the message goes through the cache's
	// fast path and reads back the same from the cache and the file.
	got.LastSeq++
	b = &store.Batch{Convs: []model.Conversation{got}, Events: []model.Event{testEvent(conv.ID, 3)}}
	if err := s.Commit(ctx, b); err != nil || b.Convs[0].Rev != 3 {
		t.Fatalf("message = rev %d, %v", b.Convs[0].Rev, err)
	}
	cached, _ := s.Conversation(ctx, conv.ID)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = mustOpen(t, path, Options{})
	defer s.Close()
	if fromFile, err := s.Conversation(ctx, conv.ID); err != nil || !reflect.DeepEqual(cached, fromFile) || fromFile.LastSeq != 3 {
		t.Errorf("from the file %+v, %v; cached %+v", fromFile, err, cached)
	}
}

// TestMessageFromCache: a message on a conversation as cached is checked
// against the cache (Stats.Known), before and after commits that make the
// writer distrust its caches for their own group (a forget sweep), and
// not when it was built on an older revision (stale, from the file).
func TestMessageFromCache(t *testing.T) {
	var mu sync.Mutex
	var known []int
	s := mustOpen(t, tempPath(t), Options{OnCommit: func(st Stats) {
		mu.Lock()
		known = append(known, st.Known)
		mu.Unlock()
	}})
	defer s.Close()
	ctx := t.Context()
	conv := model.Conversation{ID: model.ConvID(model.NewID()), Visitor: "v", State: model.StateOpen}
	b := &store.Batch{Convs: []model.Conversation{conv}}
	if err := s.Commit(ctx, b); err != nil {
		t.Fatal(err)
	}
	conv = b.Convs[0]
	message := func() error {
		next := conv
		next.LastSeq++
		b := &store.Batch{Convs: []model.Conversation{next}, Events: []model.Event{testEvent(conv.ID, next.LastSeq)}}
		err := s.Commit(ctx, b)
		if err == nil {
			conv = b.Convs[0]
		}
		return err
	}
	if err := message(); err != nil {
		t.Fatal(err)
	}
	idle := model.Visitor{ID: model.VisitorID(model.NewID()), CreatedAt: time.Unix(1600000000, 0).UTC()}
	if err := s.Commit(ctx, &store.Batch{Visitors: []model.Visitor{idle}}); err != nil {
		t.Fatal(err)
	}
	if gone, err := s.ForgetIdleVisitors(ctx, time.Now(), 0); err != nil || len(gone) != 1 {
		t.Fatalf("ForgetIdleVisitors = %v, %v", gone, err)
	}
	if err := message(); err != nil {
		t.Fatal(err)
	}
	stale := conv
	if err := message(); err != nil {
		t.Fatal(err)
	}
	conv = stale
	if err := message(); !errors.Is(err, store.ErrStale) {
		t.Fatalf("message on an older revision = %v, want ErrStale", err)
	}
	mu.Lock()
	defer mu.Unlock()
	// start, message, idle visitor, forget, message, message, stale message
	if want := []int{0, 1, 0, 0, 1, 1, 0}; !reflect.DeepEqual(known, want) {
		t.Errorf("known per commit = %v, want %v", known, want)
	}
}
