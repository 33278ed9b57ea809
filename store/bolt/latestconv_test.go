package bolt

import (
	"errors"
	"fmt"
	"reflect"
	"runtime"
	"testing"
	"time"
	"unsafe"

	"chatgate/core/model"
	"chatgate/store"
)

// TestLatestConversation: the newest conversation the cache answers is,
// at every step, what listing the visitor's conversations and reading the
// last one returns: none yet, a first one (filled by the read), a newer
// one (raised by the writer), one moved to another visitor, after a
// close, after a restart.
func TestLatestConversation(t *testing.T) {
	path := tempPath(t)
	s := mustOpen(t, path, Options{})
	ctx := t.Context()
	fromList := func(v model.VisitorID) (model.Conversation, error) {
		ids, err := s.VisitorConversations(ctx, v)
		if err != nil {
			return model.Conversation{}, err
		}
		if len(ids) == 0 {
			return model.Conversation{}, store.ErrNotFound
		}
		return s.Conversation(ctx, ids[len(ids)-1])
	}
	same := func(where string, v model.VisitorID, wantID model.ConvID) {
		t.Helper()
		got, err := s.LatestConversation(ctx, v)
		want, ferr := fromList(v)
		if !errors.Is(err, ferr) && (err == nil || ferr == nil) || !reflect.DeepEqual(got, want) {
			t.Errorf("%s: LatestConversation = %+v, %v; the list says %+v, %v", where, got, err, want, ferr)
		}
		if got.ID != wantID {
			t.Errorf("%s: newest %q, want %q", where, got.ID, wantID)
		}
	}
	commit := func(c model.Conversation) model.Conversation {
		t.Helper()
		b := &store.Batch{Convs: []model.Conversation{c}}
		if err := s.Commit(ctx, b); err != nil {
			t.Fatal(err)
		}
		return b.Convs[0]
	}
	now := time.Unix(1700000000, 0).UTC()
	v, w := model.VisitorID(model.NewID()), model.VisitorID(model.NewID())
	if err := s.Commit(ctx, &store.Batch{Visitors: []model.Visitor{{ID: v, CreatedAt: now}, {ID: w, CreatedAt: now}}}); err != nil {
		t.Fatal(err)
	}
	same("no conversation", v, "")
	a := commit(model.Conversation{ID: model.ConvID(model.NewID()), Visitor: v, State: model.StateOpen, CreatedAt: now})
	same("first", v, a.ID)
	same("first, again (cached)", v, a.ID)
	b := commit(model.Conversation{ID: model.ConvID(model.NewID()), Visitor: v, State: model.StateOpen, CreatedAt: now})
	same("second", v, b.ID)
	c := commit(model.Conversation{ID: model.ConvID(model.NewID()), Visitor: w, State: model.StateOpen, CreatedAt: now})
	same("another visitor's", w, c.ID)
	// The newest conversation moves to another visitor (desk.ChangeVisitor).
	b, err := s.Conversation(ctx, b.ID)
	if err != nil {
		t.Fatal(err)
	}
	b.Visitor = w
	b = commit(b)
	same("after its newest moved away", v, a.ID)
	same("the visitor it moved to", w, c.ID)
	a.State = model.StateClosed
	a, _ = s.Conversation(ctx, a.ID)
	a.State = model.StateClosed
	commit(a)
	same("closed", v, a.ID)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = mustOpen(t, path, Options{})
	t.Cleanup(func() { _ = s.Close() })
	same("after a restart", v, a.ID)
	same("after a restart", w, c.ID)
}

// TestLatestCacheFill: a read of the file that began before the writer
// committed a conversation of a visitor the cache held nothing of is not
// put (it may miss that conversation); a read never replaces an entry.
func TestLatestCacheFill(t *testing.T) {
	c := newLatestCache()
	e := c.epoch()
	c.stored(&ops{convs: []convPut{{key: []byte("02"), conv: &model.Conversation{ID: "02", Visitor: "v"}}}})
	c.fill(e, "v", "01")
	if id, ok := c.get("v"); ok {
		t.Errorf("a read from before a commit was cached: %q", id)
	}
	c.fill(c.epoch(), "v", "02")
	c.stored(&ops{convs: []convPut{{key: []byte("03"), conv: &model.Conversation{ID: "03", Visitor: "v"}}}})
	if id, _ := c.get("v"); id != "03" {
		t.Errorf("after a newer commit: %q, want 03", id)
	}
	c.fill(c.epoch(), "v", "02")
	c.stored(&ops{convs: []convPut{{key: []byte("01"), conv: &model.Conversation{ID: "01", Visitor: "v"}}}})
	if id, _ := c.get("v"); id != "03" {
		t.Errorf("after an older conversation's commit or a read: %q, want 03", id)
	}
	c.stored(&ops{forget: &forgetOp{}})
	if id, ok := c.get("v"); ok {
		t.Errorf("after forgetting visitors: %q still cached", id)
	}
}

// BenchmarkLatestConversation: a visitor's newest conversation (what
// LiveChat's send_event reads per message), listed and read as before
// the latest cache, and from it.
func BenchmarkLatestConversation(b *testing.B) {
	s, err := Open(tempPath(b), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := b.Context()
	now := time.Unix(1700000000, 0).UTC()
	vs := make([]model.VisitorID, 1000)
	for i := range vs {
		vs[i] = model.VisitorID(model.NewID())
		batch := &store.Batch{Visitors: []model.Visitor{{ID: vs[i], CreatedAt: now}},
			Convs: []model.Conversation{{ID: model.ConvID(model.NewID()), Visitor: vs[i], State: model.StateOpen, CreatedAt: now}}}
		if err := s.Commit(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("list", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			v := vs[i%len(vs)]
			ids, err := s.VisitorConversations(ctx, v)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := s.Conversation(ctx, ids[len(ids)-1]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("cache", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if _, err := s.LatestConversation(ctx, vs[i%len(vs)]); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestLatestCacheOwnsKeys: a key filled from a string that aliases a large
// buffer (a request payload decoded by goccy) does not keep that buffer.
func TestLatestCacheOwnsKeys(t *testing.T) {
	c := newLatestCache()
	const n, size = 40, 64 << 10
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := range n {
		buf := make([]byte, size)
		copy(buf, fmt.Sprintf("v%07d", i))
		c.fill(c.epoch(), model.VisitorID(unsafe.String(&buf[0], 8)), model.ConvID("c"))
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if grown := int64(after.HeapAlloc) - int64(before.HeapAlloc); grown > n*size/4 {
		t.Fatalf("heap grew by %d bytes for %d keys of 8 bytes: the cache pins its callers' buffers", grown, n)
	}
	if len(c.m) != n {
		t.Fatalf("%d entries, want %d", len(c.m), n)
	}
	runtime.KeepAlive(c)
}
