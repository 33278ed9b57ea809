package desk

import (
	"context"
	"errors"
	"reflect"
	"testing"

	"chatgate/core/hub"
	"chatgate/core/model"
)

func TestSetMember(t *testing.T) {
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
		add      bool
		vis      model.Visibility
		by       model.Author
		closeNow bool
		err      error
		changed  bool
		want     []model.AgentID
		// noticeVis is the published visibility when not the request's:
		// a removal is told as the member was added.
		noticeVis model.Visibility
	}{
		{name: "bad visibility", agent: bob.ID, add: true, vis: "some", by: agentAuthor(ann.ID), err: ErrInvalid},
		{name: "by the visitor", agent: bob.ID, add: true, by: visitorAuthor(v), err: ErrForbidden},
		{name: "by another agent", agent: bob.ID, add: true, by: agentAuthor(cat.ID), err: ErrForbidden},
		{name: "unknown agent", agent: "zed", add: true, by: agentAuthor(ann.ID), err: ErrNotFound},
		{name: "add", agent: bob.ID, add: true, vis: model.VisibleAgents, by: agentAuthor(ann.ID), changed: true, want: []model.AgentID{bob.ID}},
		{name: "add again", agent: bob.ID, add: true, by: agentAuthor(ann.ID), want: []model.AgentID{bob.ID}},
		{name: "add the serving agent", agent: ann.ID, add: true, by: agentAuthor(ann.ID), want: []model.AgentID{bob.ID}},
		{name: "remove the serving agent", agent: ann.ID, by: agentAuthor(ann.ID), err: ErrInvalid, want: []model.AgentID{bob.ID}},
		{name: "remove", agent: bob.ID, by: agentAuthor(ann.ID), changed: true, noticeVis: model.VisibleAgents},
		{name: "remove again", agent: bob.ID, by: agentAuthor(ann.ID)},
		{name: "add to a closed conversation", agent: bob.ID, add: true, by: agentAuthor(ann.ID), closeNow: true, err: ErrInactive},
	}
	for _, s := range steps {
		if s.closeNow {
			if _, err := e.d.Close(ctx, conv.ID, agentAuthor(ann.ID), "", ""); err != nil {
				t.Fatal(err)
			}
			waitFor(t, sub, "close notice", func(n hub.Notice) bool { return n.Conv.State == model.StateClosed })
		}
		changed, err := e.d.SetMember(ctx, conv.ID, s.agent, s.add, s.vis, s.by, "")
		if !errors.Is(err, s.err) || (s.err == nil && err != nil) {
			t.Fatalf("%s: err %v, want %v", s.name, err, s.err)
		}
		if changed != s.changed {
			t.Fatalf("%s: changed %v", s.name, changed)
		}
		if got := e.conv(conv.ID).Members; !reflect.DeepEqual(got, s.want) {
			t.Fatalf("%s: members %q, want %q", s.name, got, s.want)
		}
		if s.changed {
			n := waitFor(t, sub, "member notice", func(n hub.Notice) bool { return n.Member != nil })
			wantVis := s.vis
			if s.noticeVis != "" {
				wantVis = s.noticeVis
			}
			if wantVis == "" {
				wantVis = model.VisibleAll
			}
			if n.Member.Agent != s.agent || n.Member.Added != s.add || n.Member.Visibility != wantVis {
				t.Fatalf("%s: notice %+v", s.name, *n.Member)
			}
		}
		if s.name == "add" {
			// A member may write.
			e.post(conv.ID, agentAuthor(bob.ID), "bob here")
			waitFor(t, sub, "post notice", func(n hub.Notice) bool { return len(n.Events) > 0 })
		}
		if s.name == "remove" {
			if _, _, err := e.d.Post(ctx, PostRequest{Conv: conv.ID, Author: agentAuthor(bob.ID), Draft: Draft{Text: "x"}}); !errors.Is(err, ErrForbidden) {
				t.Fatalf("removed member posts: %v", err)
			}
		}
		select {
		case n := <-sub.C():
			t.Fatalf("%s: unexpected notice %+v", s.name, n)
		default:
		}
	}
}
