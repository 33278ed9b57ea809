package desk

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"

	"chatgate/core/hub"
	"chatgate/core/model"
)

func TestTagThread(t *testing.T) {
	e := newEnv(t, config{})
	e.online(ann.ID)
	v := e.visitor("Vic")
	conv, _ := e.start(v, "sales", Draft{Text: "hi"})
	sub := e.bus.SubscribeConv(conv.ID, 16)
	defer sub.Close()
	ctx := context.Background()
	steps := []struct {
		name     string
		by       model.Author
		tag      string
		add      bool
		closeNow bool
		err      error
		changed  bool
		want     []string
	}{
		{name: "add", by: agentAuthor(ann.ID), tag: "sales", add: true, changed: true, want: []string{"sales"}},
		{name: "add case-sensitive", by: agentAuthor(ann.ID), tag: "Sales", add: true, changed: true, want: []string{"sales", "Sales"}},
		{name: "add again is a no-op", by: agentAuthor(ann.ID), tag: "sales", add: true, want: []string{"sales", "Sales"}},
		{name: "remove", by: agentAuthor(ann.ID), tag: "sales", changed: true, want: []string{"Sales"}},
		{name: "remove missing is a no-op", by: agentAuthor(ann.ID), tag: "sales", want: []string{"Sales"}},
		{name: "empty tag", by: agentAuthor(ann.ID), tag: "", add: true, err: ErrInvalid, want: []string{"Sales"}},
		{name: "too long", by: agentAuthor(ann.ID), tag: strings.Repeat("x", maxTagLen+1), add: true, err: ErrInvalid, want: []string{"Sales"}},
		{name: "other agent", by: agentAuthor(cat.ID), tag: "x", add: true, err: ErrForbidden, want: []string{"Sales"}},
		{name: "visitor", by: visitorAuthor(v), tag: "x", add: true, err: ErrForbidden, want: []string{"Sales"}},
		{name: "closed thread can be tagged", by: agentAuthor(ann.ID), tag: "late", add: true, closeNow: true, changed: true, want: []string{"Sales", "late"}},
	}
	for _, s := range steps {
		if s.closeNow {
			if _, err := e.d.Close(ctx, conv.ID, agentAuthor(ann.ID), "", ""); err != nil {
				t.Fatalf("%s: close: %v", s.name, err)
			}
			waitFor(t, sub, "close notice", func(n hub.Notice) bool { return n.Conv.State == model.StateClosed })
		}
		changed, err := e.d.TagThread(ctx, conv.ID, s.by, s.tag, s.add, "")
		if !errors.Is(err, s.err) || (s.err == nil && err != nil) {
			t.Fatalf("%s: err %v, want %v", s.name, err, s.err)
		}
		if changed != s.changed {
			t.Fatalf("%s: changed %v, want %v", s.name, changed, s.changed)
		}
		if got := e.conv(conv.ID).Tags; !reflect.DeepEqual(got, s.want) {
			t.Fatalf("%s: stored tags %q, want %q", s.name, got, s.want)
		}
		if s.changed {
			n := waitFor(t, sub, "tag notice", func(n hub.Notice) bool { return n.Tag != nil })
			if n.Tag.Tag != s.tag || n.Tag.Added != s.add || !reflect.DeepEqual(n.Conv.Tags, s.want) || len(n.Events) != 0 {
				t.Fatalf("%s: notice %+v tags %q", s.name, *n.Tag, n.Conv.Tags)
			}
		}
		select {
		case n := <-sub.C():
			t.Fatalf("%s: unexpected notice %+v", s.name, n)
		default:
		}
	}
	if _, err := e.d.TagThread(ctx, "nope", agentAuthor(ann.ID), "x", true, ""); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown conversation: %v", err)
	}
}
