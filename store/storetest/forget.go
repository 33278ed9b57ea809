package storetest

import (
	"errors"
	"slices"
	"testing"
	"time"

	"chatgate/core/model"
	"chatgate/store"
)

// testForgetIdleVisitors: only visitors without a conversation and idle
// since before the cutoff go, with every mapping naming them and their
// siblings (same system, tenant and foreign id); everything else stays.
func testForgetIdleVisitors(t *testing.T, open func(t *testing.T) store.Store) {
	s := fresh(t, open)
	ctx := t.Context()
	cutoff := t0.Add(30 * 24 * time.Hour)
	mk := func(name string, created time.Time) model.Visitor {
		v := newVisitor(name)
		v.CreatedAt = created
		return v
	}
	idle := mk("idle", t0)                      // goes
	idle2 := mk("idle2", t0)                    // goes
	fresh := mk("fresh", cutoff.Add(time.Hour)) // too recent
	updated := mk("updated", t0)                // written after the cutoff
	updated.UpdatedAt = cutoff.Add(time.Minute) //
	banned := mk("banned", t0)                  // ban not over
	banned.BannedUntil = cutoff.Add(time.Hour)  //
	seen := mk("seen", t0)                      // saw something lately
	seen.SeenUpTo = map[string]time.Time{"a1": cutoff.Add(time.Second)}
	chatted := mk("chatted", t0) // has a conversation
	conv := model.Conversation{ID: model.ConvID(model.NewID()), Visitor: chatted.ID, State: model.StateClosed, CreatedAt: t0}
	tok := func(kind, foreign, core string) store.Mapping {
		return store.Mapping{MapKey: store.MapKey{System: "sys", Tenant: "t", Kind: kind, Foreign: foreign}, Core: core}
	}
	commit(t, s, &store.Batch{
		Visitors: []model.Visitor{idle, idle2, fresh, updated, banned, seen, chatted},
		Convs:    []model.Conversation{conv},
		Maps: []store.Mapping{
			tok("token", "h1", string(idle.ID)),       // names idle (core)
			tok("token_expiry", "h1", "1700000000"),   // sibling of h1
			tok("token", "h2", string(idle.ID)),       // a second token
			tok("issuer", string(idle.ID), "agent-1"), // names idle (foreign)
			tok("cookie", "c2", string(idle2.ID)),
			tok("token", "h3", string(fresh.ID)),
			tok("token", "h4", string(chatted.ID)),
			tok("token_expiry", "h4", "1700000000"),
			tok("room", "r1", string(conv.ID)),
			{MapKey: store.MapKey{System: "other", Tenant: "t", Kind: "x", Foreign: "h1"}, Core: "kept"}, // other system
		},
	})
	// Reads before the deletion (a backend's mapping cache must not keep
	// them afterwards).
	for _, f := range []string{"h1", "h2", "c2"} {
		kind := "token"
		if f == "c2" {
			kind = "cookie"
		}
		if _, err := s.Resolve(ctx, tok(kind, f, "").MapKey); err != nil {
			t.Fatalf("resolve %s before: %v", f, err)
		}
	}

	gone, err := s.ForgetIdleVisitors(ctx, cutoff, 0)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(gone)
	want := []model.VisitorID{idle.ID, idle2.ID}
	slices.Sort(want)
	if !slices.Equal(gone, want) {
		t.Fatalf("forgot %v, want %v", gone, want)
	}
	for _, v := range want {
		if _, err := s.Visitor(ctx, v); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("visitor %s after forget: %v, want ErrNotFound", v, err)
		}
	}
	for _, v := range []model.Visitor{fresh, updated, banned, seen, chatted} {
		if _, err := s.Visitor(ctx, v.ID); err != nil {
			t.Errorf("visitor %s (%s) lost: %v", v.ID, v.Name, err)
		}
	}
	for _, m := range []store.Mapping{tok("token", "h1", ""), tok("token_expiry", "h1", ""), tok("token", "h2", ""),
		tok("issuer", string(idle.ID), ""), tok("cookie", "c2", "")} {
		if c, err := s.Resolve(ctx, m.MapKey); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("mapping %+v after forget: %q %v, want ErrNotFound", m.MapKey, c, err)
		}
	}
	if f, err := s.Reverse(ctx, "sys", "t", "token", string(idle.ID)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("reverse token of the forgotten visitor: %q %v", f, err)
	}
	for _, m := range []store.Mapping{tok("token", "h3", string(fresh.ID)), tok("token", "h4", string(chatted.ID)),
		tok("token_expiry", "h4", "1700000000"), tok("room", "r1", string(conv.ID)),
		{MapKey: store.MapKey{System: "other", Tenant: "t", Kind: "x", Foreign: "h1"}, Core: "kept"}} {
		if c, err := s.Resolve(ctx, m.MapKey); err != nil || c != m.Core {
			t.Errorf("mapping %+v: %q %v, want %q", m.MapKey, c, err, m.Core)
		}
	}
	if ids, err := s.VisitorConversations(ctx, chatted.ID); err != nil || len(ids) != 1 {
		t.Errorf("conversations of the visitor who chatted: %v %v", ids, err)
	}
	// A second run finds nothing; a limit is honoured.
	if gone, err := s.ForgetIdleVisitors(ctx, cutoff, 0); err != nil || len(gone) != 0 {
		t.Fatalf("second run: %v %v", gone, err)
	}
	a, b := mk("a", t0), mk("b", t0)
	commit(t, s, &store.Batch{Visitors: []model.Visitor{a, b}})
	if gone, err := s.ForgetIdleVisitors(ctx, cutoff, 1); err != nil || len(gone) != 1 {
		t.Fatalf("limit 1: %v %v", gone, err)
	}
	// A visitor that got a conversation since it was found idle is kept:
	// the deletion checks again in its own transaction (here, nothing
	// can be in between, so this is the plain rule).
	var left model.VisitorID = a.ID
	if _, err := s.Visitor(ctx, a.ID); err != nil {
		left = b.ID
	}
	commit(t, s, &store.Batch{Convs: []model.Conversation{{ID: model.ConvID(model.NewID()), Visitor: left, State: model.StateQueued, CreatedAt: t0}}})
	if gone, err := s.ForgetIdleVisitors(ctx, cutoff, 0); err != nil || len(gone) != 0 {
		t.Fatalf("visitor with a new conversation: %v %v", gone, err)
	}
}
