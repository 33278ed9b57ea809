package desk

import (
	"context"
	"errors"
	"testing"

	"chatgate/core/model"
)

func TestAttach(t *testing.T) {
	e := newEnv(t, config{})
	e.online(ann.ID)
	ctx := context.Background()
	v, w := e.visitor("Vic"), e.visitor("Wes")
	c, _ := e.start(v, "sales", Draft{Text: "hi"})
	if _, err := e.d.Close(ctx, c.ID, visitorAuthor(v), "", ""); err != nil {
		t.Fatal(err)
	}
	refused := []struct {
		name string
		by   model.Author
		want error
	}{
		{"another visitor", visitorAuthor(w), ErrForbidden},
		{"the system", model.System, ErrForbidden},
	}
	for _, tc := range refused {
		if _, _, err := e.d.Attach(ctx, PostRequest{Conv: c.ID, Author: tc.by, Draft: Draft{Text: "x"}}); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	ev, replayed, err := e.d.Attach(ctx, PostRequest{Conv: c.ID, Author: visitorAuthor(v), Draft: Draft{Text: "late"}, IdemSystem: "t", IdemKey: "k1"})
	if err != nil || replayed {
		t.Fatalf("attach: %v %v", err, replayed)
	}
	again, replayed, err := e.d.Attach(ctx, PostRequest{Conv: c.ID, Author: visitorAuthor(v), Draft: Draft{Text: "late"}, IdemSystem: "t", IdemKey: "k1"})
	if err != nil || !replayed || again.Seq != ev.Seq {
		t.Fatalf("retry: %+v %v %v", again, replayed, err)
	}
	// An agent attaches too (its surface checks its access first): the
	// Agent Chat API's send_event has attach_to_last_thread as well.
	note, _, err := e.d.Attach(ctx, PostRequest{Conv: c.ID, Author: agentAuthor(ann.ID), Draft: Draft{Text: "transcript", Visibility: model.VisibleAgents}})
	if err != nil || note.Seq != ev.Seq+1 || note.Visibility != model.VisibleAgents {
		t.Fatalf("an agent's attach: %+v %v", note, err)
	}
	if got := e.conv(c.ID); got.State != model.StateClosed || got.LastSeq != note.Seq {
		t.Fatalf("conversation after attach %+v", got)
	}
	e.checkLog(c.ID)
}
