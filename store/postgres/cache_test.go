package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"

	"chatgate/core/model"
	"chatgate/store"
)

// TestRecCacheFillAfterDrop: a read that began before a drop of its shard
// (another node's change arrived meanwhile) does not store what it read,
// and a copy never replaces a later revision.
func TestRecCacheFillAfterDrop(t *testing.T) {
	tests := []struct {
		name    string
		between func(c *recCache)
		fillRev int64
		wantRev int64 // 0: nothing cached
	}{
		{"quiet", func(*recCache) {}, 3, 3},
		{"drop of the same id", func(c *recCache) { c.drop("x") }, 3, 0},
		{"drop of another id in the shard", func(c *recCache) { c.reset() }, 3, 0},
		{"later revision committed meanwhile", func(c *recCache) { c.put("x", []byte(`{}`), 5) }, 3, 5},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newRecCache()
			ticket := c.ticket("x")
			tc.between(c)
			c.fill("x", []byte(`{}`), tc.fillRev, ticket)
			r, ok := c.get("x")
			switch {
			case tc.wantRev == 0 && ok:
				t.Fatalf("cached revision %d, want nothing", r.rev)
			case tc.wantRev != 0 && (!ok || r.rev != tc.wantRev):
				t.Fatalf("cached %v at revision %d, want revision %d", ok, r.rev, tc.wantRev)
			}
		})
	}
}

// TestCachesAcrossNodes: two stores on one database. What a node caches is
// served only under store.MayBeStale; a plain read always sees the other
// node's commit; the other node's notice (Committed, Changed) and a stale
// commit bring the cache up to date; Forget empties it.
func TestCachesAcrossNodes(t *testing.T) {
	a, b := twoNodes(t)
	ctx := t.Context()
	stale := store.MayBeStale(ctx)
	v := model.Visitor{ID: model.VisitorID(model.NewID()), Name: "v", CreatedAt: time.Now().UTC()}
	c := model.Conversation{ID: model.ConvID(model.NewID()), Visitor: v.ID, State: model.StateOpen, CreatedAt: time.Now().UTC()}
	if err := a.Commit(ctx, &store.Batch{Visitors: []model.Visitor{v}, Convs: []model.Conversation{c}}); err != nil {
		t.Fatal(err)
	}
	threads := func(s *Store, ctx context.Context) []model.ConvID {
		t.Helper()
		ids, err := s.VisitorConversations(ctx, v.ID)
		if err != nil {
			t.Fatal(err)
		}
		return ids
	}
	conv := func(s *Store, ctx context.Context) model.Conversation {
		t.Helper()
		got, err := s.Conversation(ctx, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	// a's own commit is cached at its revision.
	before := a.CacheStats()
	if got := conv(a, stale); got.Rev != 1 {
		t.Fatalf("a's cached copy at revision %d, want 1", got.Rev)
	}
	if a.CacheStats().Conversations == before.Conversations {
		t.Fatal("a's read under MayBeStale did not use its cache")
	}
	threads(a, ctx) // fills a's list

	// b changes the conversation and starts a second one.
	cb := conv(b, ctx)
	cb.Origin = "from b"
	c2 := model.Conversation{ID: model.ConvID(model.NewID()), Visitor: v.ID, State: model.StateOpen, CreatedAt: time.Now().UTC()}
	if err := b.Commit(ctx, &store.Batch{Convs: []model.Conversation{cb, c2}}); err != nil {
		t.Fatal(err)
	}
	if got := conv(a, ctx); got.Rev != 2 || got.Origin != "from b" {
		t.Fatalf("a's plain read = rev %d %q, want b's commit", got.Rev, got.Origin)
	}
	if got := threads(a, ctx); len(got) != 2 {
		t.Fatalf("a's plain thread list = %v, want two", got)
	}
	// A stale commit on a forgets a's copy: the retry reads b's.
	a.Changed("", "") // nothing named: nothing dropped
	a.convs.drop(string(c.ID))
	a.convs.put(string(c.ID), mustJSON(t, c), 1) // a copy from before b's commit
	old := conv(a, stale)
	old.Origin = "from a"
	if err := a.Commit(ctx, &store.Batch{Convs: []model.Conversation{old}}); !errors.Is(err, store.ErrStale) {
		t.Fatalf("commit on a stale copy = %v, want ErrStale", err)
	}
	if got := conv(a, stale); got.Rev != 2 {
		t.Fatalf("after ErrStale a reads revision %d, want 2", got.Rev)
	}
	// b's notice of c2 (Committed) drops a's list, which lacked c2.
	a.threads.fill(string(v.ID), []string{string(c.ID)}, a.threads.ticket(string(v.ID)))
	c2.Rev = 1
	a.Committed(c2)
	if got := threads(a, stale); !slices.Contains(got, c2.ID) {
		t.Fatalf("after b's notice a's list = %v, want it to hold %s", got, c2.ID)
	}
	if got := conv(a, stale); got.Rev != 2 {
		t.Fatal("Committed of another conversation changed this one")
	}
	a.Changed(c.ID, v.ID)
	hits := a.CacheStats()
	conv(a, stale)
	if a.CacheStats().Conversations != hits.Conversations {
		t.Fatal("Changed did not drop the copy")
	}
	a.Forget()
	hits = a.CacheStats()
	threads(a, stale)
	if a.CacheStats().Threads != hits.Threads {
		t.Fatal("Forget kept a thread list")
	}
}

func mustJSON(t *testing.T, c model.Conversation) []byte {
	t.Helper()
	data, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestForgottenVisitorsMappings: another node forgets an idle visitor and
// its mapping; this node's cached mapping leads to a visitor not found,
// which drops the mapping, so the next Resolve finds nothing (and the
// forgetting node's own cache is emptied at once).
func TestForgottenVisitorsMappings(t *testing.T) {
	a, b := twoNodes(t)
	ctx := t.Context()
	v := model.Visitor{ID: model.VisitorID(model.NewID()), CreatedAt: time.Now().Add(-time.Hour).UTC()}
	k := store.MapKey{System: "test", Kind: "visitor", Foreign: "token-1"}
	if err := a.Commit(ctx, &store.Batch{Visitors: []model.Visitor{v}, Maps: []store.Mapping{{MapKey: k, Core: string(v.ID)}}}); err != nil {
		t.Fatal(err)
	}
	for _, s := range []*Store{a, b} {
		if core, err := s.Resolve(ctx, k); err != nil || core != string(v.ID) {
			t.Fatalf("Resolve = %q, %v", core, err)
		}
	}
	gone, err := b.ForgetIdleVisitors(ctx, time.Now(), 0)
	if err != nil || !slices.Contains(gone, v.ID) {
		t.Fatalf("ForgetIdleVisitors = %v, %v", gone, err)
	}
	if _, err := b.Resolve(ctx, k); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the forgetting node still resolves the mapping: %v", err)
	}
	if _, err := a.Visitor(ctx, v.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Visitor of a forgotten visitor = %v", err)
	}
	if _, err := a.Resolve(ctx, k); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("after finding the visitor gone, the other node still resolves its mapping: %v", err)
	}
}

// TestMapCacheListsEachKeyOnce: a mapping resolved or committed again is
// listed once under its core id (the per-core lists grew by one entry per
// Resolve before), and dropCore forgets only the keys still naming it.
func TestMapCacheListsEachKeyOnce(t *testing.T) {
	k1 := store.MapKey{System: "s", Kind: "visitor", Foreign: "a"}
	k2 := store.MapKey{System: "s", Kind: "visitor", Foreign: "b"}
	tests := []struct {
		name     string
		puts     []store.MapKey
		wantKeys int
	}{
		{"one key put once", []store.MapKey{k1}, 1},
		{"one key put three times", []store.MapKey{k1, k1, k1}, 1},
		{"two keys, each twice", []store.MapKey{k1, k2, k2, k1}, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newMapCache()
			for _, k := range tc.puts {
				c.put(k, "core-1")
			}
			if got := len(c.cores["core-1"]); got != tc.wantKeys {
				t.Fatalf("core-1 lists %d keys, want %d", got, tc.wantKeys)
			}
			c.put(store.MapKey{System: "s", Kind: "visitor", Foreign: "other"}, "core-2")
			c.dropCore("core-1")
			for _, k := range tc.puts {
				if _, ok := c.get(k); ok {
					t.Fatalf("%v still cached after dropCore", k)
				}
			}
			if _, ok := c.get(store.MapKey{System: "s", Kind: "visitor", Foreign: "other"}); !ok {
				t.Fatal("dropCore of core-1 dropped core-2's mapping")
			}
		})
	}
}

// TestListCacheSaw: a visitor's list is dropped when a conversation it
// lacks is seen, kept when it holds it, and a read that began before the
// drop does not store its list.
func TestListCacheSaw(t *testing.T) {
	tests := []struct {
		name     string
		saw      string
		wantKept bool
	}{
		{"conversation in the list", "c1", true},
		{"conversation the list lacks", "c3", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newListCache()
			c.fill("v", []string{"c1", "c2"}, c.ticket("v"))
			ticket := c.ticket("v")
			c.saw("v", tc.saw)
			if _, ok := c.get("v"); ok != tc.wantKept {
				t.Fatalf("list kept = %v, want %v", ok, tc.wantKept)
			}
			c.fill("v", []string{"c1"}, ticket)
			ids, _ := c.get("v")
			if tc.wantKept != (len(ids) == 1) {
				t.Fatalf("fill with a ticket from before saw left %v", ids)
			}
		})
	}
}

// TestRecentCopy: under store.RecentCopy a conversation is answered from
// this node's copy while the copy is younger than maxAge (and the func
// says so), from the database once it is older (refilling the copy), and
// never without RecentCopy or MayBeStale. A copy behind another node's
// commit (its notice lost) is served at most maxAge.
func TestRecentCopy(t *testing.T) {
	a, b := twoNodes(t)
	ctx := t.Context()
	const age = 300 * time.Millisecond
	v := model.Visitor{ID: model.VisitorID(model.NewID()), CreatedAt: time.Now().UTC()}
	c := model.Conversation{ID: model.ConvID(model.NewID()), Visitor: v.ID, State: model.StateOpen, CreatedAt: time.Now().UTC()}
	if err := a.Commit(ctx, &store.Batch{Visitors: []model.Visitor{v}, Convs: []model.Conversation{c}}); err != nil {
		t.Fatal(err)
	}
	read := func(s *Store, ctx context.Context) (uint64, bool) {
		t.Helper()
		rctx, copied := store.RecentCopy(ctx, age)
		got, err := s.Conversation(rctx, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		return got.Rev, copied()
	}
	if rev, copied := read(a, ctx); rev != 1 || !copied {
		t.Fatalf("a's own commit: revision %d, copied %v; want 1 from the copy", rev, copied)
	}
	// b commits; a hears nothing (a lost notice).
	cb, err := b.Conversation(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	cb.Origin = "b"
	if err := b.Commit(ctx, &store.Batch{Convs: []model.Conversation{cb}}); err != nil {
		t.Fatal(err)
	}
	if got, err := a.Conversation(ctx, c.ID); err != nil || got.Rev != 2 {
		t.Fatalf("a plain read = revision %d, %v; want 2", got.Rev, err)
	}
	// The plain read refilled a's copy at revision 2; make it old again.
	a.convs.drop(string(c.ID))
	a.convs.put(string(c.ID), mustJSON(t, c), 1)
	if rev, copied := read(a, ctx); rev != 1 || !copied {
		t.Fatalf("young copy behind b's commit: revision %d, copied %v; want 1 from the copy", rev, copied)
	}
	time.Sleep(age + 50*time.Millisecond)
	if rev, copied := read(a, ctx); rev != 2 || copied {
		t.Fatalf("copy older than maxAge: revision %d, copied %v; want 2 from the database", rev, copied)
	}
	if rev, copied := read(a, ctx); rev != 2 || !copied {
		t.Fatalf("after the refill: revision %d, copied %v; want 2 from the copy", rev, copied)
	}
}
