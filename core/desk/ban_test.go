package desk

import (
	"context"
	"errors"
	"testing"
	"time"

	"chatgate/core/hub"
	"chatgate/core/model"
)

func TestBan(t *testing.T) {
	e := newEnv(t, config{})
	e.online(ann.ID)
	v := e.visitor("Vic")
	w := e.visitor("Wes")
	conv, _ := e.start(v, "sales", Draft{Text: "hi"})
	sub := e.bus.SubscribeDesk(16)
	defer sub.Close()
	ctx := context.Background()
	tests := []struct {
		name string
		id   model.VisitorID
		days int
		by   model.Author
		err  error
	}{
		{"zero days", v.ID, 0, agentAuthor(ann.ID), ErrInvalid},
		{"negative days", v.ID, -1, agentAuthor(ann.ID), ErrInvalid},
		{"too many days", v.ID, MaxBanDays + 1, agentAuthor(ann.ID), ErrInvalid},
		{"by a visitor", v.ID, 1, visitorAuthor(w), ErrForbidden},
		{"by an unknown agent", v.ID, 1, agentAuthor("zed"), ErrForbidden},
		{"unknown visitor", "nope", 1, agentAuthor(ann.ID), ErrNotFound},
		{"ban", v.ID, 3, agentAuthor(ann.ID), nil},
	}
	for _, tc := range tests {
		got, err := e.d.Ban(ctx, tc.id, tc.days, tc.by, "")
		if !errors.Is(err, tc.err) || (tc.err == nil && err != nil) {
			t.Fatalf("%s: err %v, want %v", tc.name, err, tc.err)
		}
		if tc.err != nil {
			continue
		}
		if want := e.d.Now().Add(3 * 24 * time.Hour); got.BannedUntil.After(want) || !got.Banned(e.d.Now()) {
			t.Fatalf("%s: banned until %v", tc.name, got.BannedUntil)
		}
		n := waitFor(t, sub, "ban notice", func(n hub.Notice) bool { return n.Ban != nil })
		if n.Ban.Visitor != v.ID || n.Ban.Days != 3 || n.Conv.Visitor != v.ID || n.Conv.ID != "" {
			t.Fatalf("%s: notice %+v", tc.name, n)
		}
	}
	if b, err := e.d.VisitorBanned(ctx, v.ID); err != nil || !b {
		t.Fatalf("VisitorBanned(banned) = %v, %v", b, err)
	}
	if b, err := e.d.VisitorBanned(ctx, w.ID); err != nil || b {
		t.Fatalf("VisitorBanned(other) = %v, %v", b, err)
	}

	// The banned visitor may neither post nor start; agents still may post,
	// and other visitors are unaffected.
	if _, _, err := e.d.Post(ctx, PostRequest{Conv: conv.ID, Author: visitorAuthor(v), Draft: Draft{Text: "x"}}); !errors.Is(err, ErrBanned) {
		t.Fatalf("banned post: %v", err)
	}
	e.post(conv.ID, agentAuthor(ann.ID), "agent still writes")
	if _, err := e.d.Close(ctx, conv.ID, agentAuthor(ann.ID), "", ""); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.d.Start(ctx, StartRequest{Visitor: v.ID, Author: visitorAuthor(v)}); !errors.Is(err, ErrBanned) {
		t.Fatalf("banned start: %v", err)
	}
	e.start(w, "sales", Draft{Text: "hi"})
}

// A ban ends: after its days the visitor may start again.
func TestBanExpires(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var clock = &now
	e := newEnv(t, config{})
	e.d.now = func() time.Time { return *clock }
	e.online(ann.ID)
	v := e.visitor("Vic")
	ctx := context.Background()
	if _, err := e.d.Ban(ctx, v.ID, 1, model.System, ""); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.d.Start(ctx, StartRequest{Visitor: v.ID, Author: visitorAuthor(v)}); !errors.Is(err, ErrBanned) {
		t.Fatalf("start while banned: %v", err)
	}
	later := now.Add(24*time.Hour + time.Second)
	clock = &later
	e.start(v, "sales", Draft{Text: "back"})
}
