package desk

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"chatgate/core/model"
)

// TestChangeVisitor: a conversation moves to another visitor (Rocket.Chat's
// livechat/room.visitor): the store lists it under the new visitor only,
// the new visitor may post in it and the old one may not, and the change
// is published with the previous visitor.
func TestChangeVisitor(t *testing.T) {
	e := newEnv(t, config{})
	e.online("ann")
	ctx := context.Background()
	vera, walt := e.visitor("vera"), e.visitor("walt")
	c, _ := e.start(vera, "sales")
	sub := e.bus.SubscribeConv(c.ID, 8)
	defer sub.Close()

	got, err := e.d.ChangeVisitor(ctx, c.ID, vera.ID, walt.ID, agentAuthor("ann"))
	if err != nil {
		t.Fatal(err)
	}
	if got.Visitor != walt.ID || e.conv(c.ID).Visitor != walt.ID {
		t.Fatalf("conversation after = %+v", got)
	}
	for v, want := range map[model.VisitorID][]model.ConvID{vera.ID: nil, walt.ID: {c.ID}} {
		if ids, err := e.bolt.VisitorConversations(ctx, v); err != nil || !slices.Equal(ids, want) {
			t.Errorf("VisitorConversations(%s) = %v, %v; want %v", v, ids, err, want)
		}
	}
	select {
	case n := <-sub.C():
		if n.PrevVisitor != vera.ID || n.Conv.Visitor != walt.ID || len(n.Events) != 0 {
			t.Errorf("notice %+v", n)
		}
	case <-time.After(failAfter):
		t.Fatal("no notice")
	}
	if _, _, err := e.d.Post(ctx, PostRequest{Conv: c.ID, Author: visitorAuthor(vera), Draft: Draft{Text: "still mine?"}}); !errors.Is(err, ErrForbidden) {
		t.Errorf("old visitor posts = %v, want ErrForbidden", err)
	}
	if _, _, err := e.d.Post(ctx, PostRequest{Conv: c.ID, Author: visitorAuthor(walt), Draft: Draft{Text: "mine now"}}); err != nil {
		t.Errorf("new visitor posts = %v", err)
	}
	// The old visitor may start again; the new one has an open one.
	if _, open, err := e.d.OpenConversation(ctx, walt.ID); err != nil || !open {
		t.Errorf("walt's open conversation: %v %v", open, err)
	}
	if _, open, err := e.d.OpenConversation(ctx, vera.ID); err != nil || open {
		t.Errorf("vera's open conversation: %v %v", open, err)
	}
}

// TestChangeVisitorRefused: the checks before a visitor change, and the
// rule of one open conversation per visitor, found as its newest.
func TestChangeVisitorRefused(t *testing.T) {
	e := newEnv(t, config{agents: []model.Agent{withMax(ann, 10), bob}})
	e.online("ann", "bob")
	ctx := context.Background()
	closeConv := func(c model.Conversation) {
		t.Helper()
		if _, err := e.d.Close(ctx, c.ID, agentAuthor("ann"), "", ""); err != nil {
			t.Fatal(err)
		}
	}
	// busy has an open conversation; older is open and older than late's
	// closed one; free has only closed conversations, older than open.
	busy, older, late, free, vera := e.visitor("busy"), e.visitor("older"), e.visitor("late"), e.visitor("free"), e.visitor("vera")
	freeOld, _ := e.start(free, "sales")
	closeConv(freeOld)
	open, _ := e.start(vera, "sales")
	e.start(busy, "sales")
	olderOpen, _ := e.start(older, "sales")
	lateClosed, _ := e.start(late, "sales")
	closeConv(lateClosed)

	tests := []struct {
		name     string
		conv     model.ConvID
		from, to model.VisitorID
		by       model.Author
		want     error
	}{
		{"unknown conversation", "nope", vera.ID, free.ID, agentAuthor("ann"), ErrNotFound},
		{"unknown new visitor", open.ID, vera.ID, "nobody", agentAuthor("ann"), ErrNotFound},
		{"wrong old visitor", open.ID, free.ID, busy.ID, agentAuthor("ann"), ErrWrongVisitor},
		{"agent of another department", open.ID, vera.ID, free.ID, agentAuthor("bob"), ErrForbidden},
		{"a visitor", open.ID, vera.ID, free.ID, visitorAuthor(vera), ErrForbidden},
		{"new visitor has an open one", open.ID, vera.ID, busy.ID, agentAuthor("ann"), ErrVisitorBusy},
		{"new visitor has a newer one", open.ID, vera.ID, late.ID, agentAuthor("ann"), ErrInvalid},
		{"closed one would hide an open one", lateClosed.ID, late.ID, older.ID, agentAuthor("ann"), ErrVisitorBusy},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := e.d.ChangeVisitor(ctx, tc.conv, tc.from, tc.to, tc.by); !errors.Is(err, tc.want) {
				t.Errorf("ChangeVisitor = %v, want %v", err, tc.want)
			}
		})
	}
	if c := e.conv(open.ID); c.Visitor != vera.ID {
		t.Errorf("refused changes moved the conversation to %s", c.Visitor)
	}
	_ = olderOpen
	// Allowed: an open conversation to a visitor whose conversations are
	// all closed and older; the same visitor (nothing happens).
	if c, err := e.d.ChangeVisitor(ctx, open.ID, vera.ID, vera.ID, model.System); err != nil || c.Visitor != vera.ID {
		t.Errorf("same visitor: %+v %v", c, err)
	}
	if c, err := e.d.ChangeVisitor(ctx, open.ID, vera.ID, free.ID, agentAuthor("ann")); err != nil || c.Visitor != free.ID {
		t.Errorf("to free: %+v %v", c, err)
	}
}
