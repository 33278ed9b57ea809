package desk

import (
	"context"
	"errors"
	"testing"

	"chatgate/core/model"
)

func TestEditAndDeleteEvent(t *testing.T) {
	e := newEnv(t, config{})
	ctx := context.Background()
	vis := e.visitor("editor")
	other := e.visitor("other-editor")
	conv, _ := e.start(vis, "")
	msg := e.post(conv.ID, visitorAuthor(vis), "helo")
	sub := e.bus.SubscribeConv(conv.ID, 8)
	defer sub.Close()

	cases := []struct {
		name string
		by   model.Author
		seq  uint64
		text string
		want error
	}{
		{"another visitor", visitorAuthor(other), msg.Seq, "x", ErrForbidden},
		{"unknown seq", visitorAuthor(vis), 999, "x", ErrNotFound},
		{"empty text", visitorAuthor(vis), msg.Seq, " ", ErrInvalid},
		{"system author", model.System, msg.Seq, "x", ErrForbidden},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := e.d.EditEvent(ctx, conv.ID, tc.seq, tc.by, tc.text, ""); !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
	ed, err := e.d.EditEvent(ctx, conv.ID, msg.Seq, visitorAuthor(vis), "hello", "s1")
	if err != nil || ed.Text != "hello" || ed.EditedAt.IsZero() || ed.EditedBy.ID != string(vis.ID) {
		t.Fatalf("edit: %+v %v", ed, err)
	}
	n := <-sub.C()
	if len(n.Updated) != 1 || n.Updated[0].Text != "hello" || len(n.Events) != 0 || n.Origin != "s1" {
		t.Fatalf("edit notice %+v", n)
	}
	if got := e.events(conv.ID); got[len(got)-1].Text != "hello" || len(got) != int(msg.Seq) {
		t.Fatalf("stored after edit: %+v", got)
	}
	del, err := e.d.DeleteEvent(ctx, conv.ID, msg.Seq, visitorAuthor(vis), "")
	if err != nil || !del.Deleted || del.Text != "" {
		t.Fatalf("delete: %+v %v", del, err)
	}
	if _, err := e.d.EditEvent(ctx, conv.ID, msg.Seq, visitorAuthor(vis), "again", ""); !errors.Is(err, ErrForbidden) {
		t.Fatalf("edit of deleted message: %v", err)
	}
	if _, err := e.d.Close(ctx, conv.ID, visitorAuthor(vis), "", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := e.d.DeleteEvent(ctx, conv.ID, msg.Seq, visitorAuthor(vis), ""); !errors.Is(err, ErrInactive) && !errors.Is(err, ErrForbidden) {
		t.Fatalf("delete in closed conversation: %v", err)
	}
}

func TestUpdateVisitor(t *testing.T) {
	e := newEnv(t, config{})
	ctx := context.Background()
	vis := e.visitor("profile")
	name, phone := "New Name", "+1555"
	dept := model.DeptID("no-such-dept")
	if _, err := e.d.UpdateVisitor(ctx, vis.ID, VisitorUpdate{Department: &dept}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("unknown department: %v", err)
	}
	v, err := e.d.UpdateVisitor(ctx, vis.ID, VisitorUpdate{Name: &name, Phone: &phone, Fields: map[string]string{"a": "1", "b": "2"}})
	if err != nil || v.Name != name || v.Phone != phone || v.Fields["a"] != "1" {
		t.Fatalf("update: %+v %v", v, err)
	}
	v, err = e.d.UpdateVisitor(ctx, vis.ID, VisitorUpdate{Fields: map[string]string{"a": ""}})
	if err != nil || len(v.Fields) != 1 || v.Fields["b"] != "2" || v.Name != name {
		t.Fatalf("field removal: %+v %v", v, err)
	}
	stored, _ := e.d.Store().Visitor(ctx, vis.ID)
	if stored.Fields["b"] != "2" || stored.UpdatedAt.IsZero() {
		t.Fatalf("stored %+v", stored)
	}
	if _, err := e.d.UpdateVisitor(ctx, "nobody", VisitorUpdate{Name: &name}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown visitor: %v", err)
	}
}
