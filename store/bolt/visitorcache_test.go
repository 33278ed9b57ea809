package bolt

import (
	"encoding/json"
	"errors"
	"reflect"
	"strconv"
	"testing"
	"time"

	"chatgate/core/model"
	"chatgate/store"
)

// TestVisitorCache: a visitor read from the cache is exactly what a read
// of the file returns, at every step: written, changed, read by a caller
// that then changes its copy, relied on by a commit (Expect) after another
// write, deleted as idle.
func TestVisitorCache(t *testing.T) {
	path := tempPath(t)
	s := mustOpen(t, path, Options{})
	ctx := t.Context()
	fromFile := func(id model.VisitorID) (model.Visitor, error) {
		var v model.Visitor
		raw, err := s.raw(bVisitors, []byte(id))
		if err != nil {
			return v, err
		}
		return decodeVisitor(nil, nil, raw)
	}
	same := func(where string, id model.VisitorID) model.Visitor {
		t.Helper()
		got, err := s.Visitor(ctx, id)
		want, ferr := fromFile(id)
		if !errors.Is(err, ferr) && (err == nil || ferr == nil) || !reflect.DeepEqual(got, want) {
			t.Errorf("%s: Visitor = %+v, %v; the file has %+v, %v", where, got, err, want, ferr)
		}
		return got
	}
	v := model.Visitor{ID: model.VisitorID(model.NewID()), Name: "Vera", CreatedAt: time.Unix(1700000000, 0).UTC(),
		Fields: map[string]string{"plan": "pro"}, Props: map[string]map[string]json.RawMessage{"ns": {"k": json.RawMessage(`1`)}}}
	b := &store.Batch{Visitors: []model.Visitor{v}}
	if err := s.Commit(ctx, b); err != nil {
		t.Fatal(err)
	}
	got := same("written", v.ID)
	if got.Rev != 1 {
		t.Errorf("revision %d, want 1", got.Rev)
	}
	// A caller's changes to its copy do not reach the cache.
	got.Fields["plan"], got.Props["ns"]["k"][0] = "free", '2'
	same("after a caller changed its copy", v.ID)

	// A post relies on the visitor as read; a ban written since makes it
	// stale, checked against the cached revision.
	conv := model.Conversation{ID: model.ConvID(model.NewID()), Visitor: v.ID, State: model.StateOpen}
	if err := s.Commit(ctx, &store.Batch{Convs: []model.Conversation{conv}}); err != nil {
		t.Fatal(err)
	}
	read := same("before the ban", v.ID)
	banned := read
	banned.BannedUntil = time.Now().Add(time.Hour).UTC()
	if err := s.Commit(ctx, &store.Batch{Visitors: []model.Visitor{banned}}); err != nil {
		t.Fatal(err)
	}
	if got := same("banned", v.ID); got.Rev != 2 || !got.Banned(time.Now()) {
		t.Errorf("after the ban: %+v", got)
	}
	post := &store.Batch{Expect: []store.Expect{{Visitor: v.ID, Rev: read.Rev}}, Events: []model.Event{testEvent(conv.ID, 1)}}
	if err := s.Commit(ctx, post); !errors.Is(err, store.ErrStale) {
		t.Errorf("post on the visitor as read before the ban = %v, want ErrStale", err)
	}
	post.Expect[0].Rev = 2
	if err := s.Commit(ctx, post); err != nil {
		t.Errorf("post on the current visitor = %v", err)
	}

	// An idle anonymous visitor, read (and so cached), then forgotten.
	idle := model.Visitor{ID: model.VisitorID(model.NewID()), CreatedAt: time.Unix(1600000000, 0).UTC()}
	if err := s.Commit(ctx, &store.Batch{Visitors: []model.Visitor{idle}}); err != nil {
		t.Fatal(err)
	}
	same("idle", idle.ID)
	if gone, err := s.ForgetIdleVisitors(ctx, time.Unix(1650000000, 0), 0); err != nil || len(gone) != 1 || gone[0] != idle.ID {
		t.Fatalf("ForgetIdleVisitors = %v, %v", gone, err)
	}
	if _, err := s.Visitor(ctx, idle.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("forgotten visitor: %v, want ErrNotFound", err)
	}

	cached := same("at the end", v.ID)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = mustOpen(t, path, Options{})
	defer s.Close()
	if reopened, err := s.Visitor(ctx, v.ID); err != nil || !reflect.DeepEqual(reopened, cached) {
		t.Errorf("reopened: %+v, %v; cached %+v", reopened, err, cached)
	}
}

// TestVisitorCacheFill: a reader's fill never replaces a newer write nor
// brings back a deleted visitor, and the cache stays bounded.
func TestVisitorCacheFill(t *testing.T) {
	c := newVisitorCache()
	put := func(id model.VisitorID, rev uint64) {
		c.stored(&ops{visitors: []visitorPut{{key: []byte(id), decoded: &model.Visitor{ID: id, Name: "written"}, rev: rev}}})
	}
	e := c.epoch()
	put("a", 6)                                             // the writer commits revision 6 ...
	c.fill(e, &model.Visitor{ID: "a", Rev: 5, Name: "old"}) // ... after a reader read 5
	if v, ok := c.get("a"); !ok || v.Rev != 6 || v.Name != "written" {
		t.Errorf("a = %+v, %v; want revision 6", v, ok)
	}
	e = c.epoch()
	c.stored(&ops{forget: &forgetOp{gone: []model.VisitorID{"b"}}}) // b deleted after a reader began
	c.fill(e, &model.Visitor{ID: "b", Rev: 3})
	if v, ok := c.get("b"); ok {
		t.Errorf("deleted b came back: %+v", v)
	}
	c.fill(c.epoch(), &model.Visitor{ID: "b", Rev: 3}) // a read begun after the deletion (b written again)
	if v, ok := c.get("b"); !ok || v.Rev != 3 {
		t.Errorf("b = %+v, %v; want revision 3", v, ok)
	}
	for i := range 3 * visitorCacheSize {
		c.fill(c.epoch(), &model.Visitor{ID: model.VisitorID("x" + strconv.Itoa(i)), Rev: 1})
	}
	if n := len(c.cur) + len(c.prev); n > 2*visitorCacheSize {
		t.Errorf("%d entries, more than two generations", n)
	}
}
