package desk

import (
	"context"
	"errors"
	"reflect"
	"testing"

	"chatgate/core/hub"
	"chatgate/core/model"
)

func TestFollow(t *testing.T) {
	e := newEnv(t, config{})
	e.online(ann.ID)
	v := e.visitor("Vic")
	conv, _ := e.start(v, "sales", Draft{Text: "hi"})
	sub := e.bus.SubscribeConv(conv.ID, 16)
	defer sub.Close()
	ctx := context.Background()
	steps := []struct {
		name     string
		agent    model.AgentID
		follow   bool
		closeNow bool
		err      error
		changed  bool
		want     []model.AgentID
	}{
		{name: "follow", agent: cat.ID, follow: true, changed: true, want: []model.AgentID{cat.ID}},
		{name: "follow again", agent: cat.ID, follow: true, want: []model.AgentID{cat.ID}},
		{name: "serving agent follows", agent: ann.ID, follow: true, changed: true, want: []model.AgentID{cat.ID, ann.ID}},
		{name: "other department", agent: bob.ID, follow: true, err: ErrForbidden, want: []model.AgentID{cat.ID, ann.ID}},
		{name: "unknown agent", agent: "zed", follow: true, err: ErrForbidden, want: []model.AgentID{cat.ID, ann.ID}},
		{name: "unfollow", agent: ann.ID, changed: true, want: []model.AgentID{cat.ID}},
		{name: "unfollow not followed", agent: ann.ID, want: []model.AgentID{cat.ID}},
		{name: "follow closed", agent: ann.ID, follow: true, closeNow: true, err: ErrInactive, want: []model.AgentID{cat.ID}},
		{name: "unfollow closed", agent: cat.ID, changed: true},
	}
	for _, s := range steps {
		if s.closeNow {
			if _, err := e.d.Close(ctx, conv.ID, agentAuthor(ann.ID), "", ""); err != nil {
				t.Fatalf("%s: close: %v", s.name, err)
			}
			waitFor(t, sub, "close notice", func(n hub.Notice) bool { return n.Conv.State == model.StateClosed })
		}
		changed, err := e.d.Follow(ctx, conv.ID, s.agent, s.follow, "")
		if !errors.Is(err, s.err) || (s.err == nil && err != nil) {
			t.Fatalf("%s: err %v, want %v", s.name, err, s.err)
		}
		if changed != s.changed {
			t.Fatalf("%s: changed %v, want %v", s.name, changed, s.changed)
		}
		if got := e.conv(conv.ID).Followers; !reflect.DeepEqual(got, s.want) {
			t.Fatalf("%s: followers %q, want %q", s.name, got, s.want)
		}
		if s.changed {
			n := waitFor(t, sub, "follow notice", func(n hub.Notice) bool { return n.Follow != nil })
			if *n.Follow != (hub.FollowChange{Agent: s.agent, Followed: s.follow}) || !reflect.DeepEqual(n.Conv.Followers, s.want) {
				t.Fatalf("%s: notice %+v followers %q", s.name, *n.Follow, n.Conv.Followers)
			}
		}
		select {
		case n := <-sub.C():
			t.Fatalf("%s: unexpected notice %+v", s.name, n)
		default:
		}
	}
	if _, err := e.d.Follow(ctx, "nope", ann.ID, true, ""); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown conversation: %v", err)
	}
}

// A follower may tag the thread it follows; the other state survives
// commands that rewrite the conversation.
func TestFollowerTagsAndStateSurvives(t *testing.T) {
	e := newEnv(t, config{})
	e.online(ann.ID)
	v := e.visitor("Vic")
	conv, _ := e.start(v, "sales", Draft{Text: "hi"})
	ctx := context.Background()
	if _, err := e.d.TagThread(ctx, conv.ID, agentAuthor(cat.ID), "x", true, ""); !errors.Is(err, ErrForbidden) {
		t.Fatalf("tag before following: %v", err)
	}
	if _, err := e.d.Follow(ctx, conv.ID, cat.ID, true, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := e.d.TagThread(ctx, conv.ID, agentAuthor(cat.ID), "x", true, ""); err != nil {
		t.Fatalf("tag as follower: %v", err)
	}
	e.post(conv.ID, visitorAuthor(v), "more")
	c := e.conv(conv.ID)
	if !reflect.DeepEqual(c.Tags, []string{"x"}) || !reflect.DeepEqual(c.Followers, []model.AgentID{cat.ID}) {
		t.Fatalf("after post: tags %q followers %q", c.Tags, c.Followers)
	}
}
