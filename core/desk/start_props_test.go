package desk

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	"chatgate/core/model"
)

type propMap = map[string]map[string]json.RawMessage

// StartInactive writes a closed conversation with the initial events and
// properties, never routed; Start takes initial properties too, checked
// like updates.
func TestStartInactiveAndInitialProps(t *testing.T) {
	e := newEnv(t, config{})
	e.registerDefs()
	e.online(ann.ID)
	ctx := context.Background()
	v := e.visitor("Ina")
	by := visitorAuthor(v)

	refused := []struct {
		name         string
		chat, thread propMap
		want         error
	}{
		{"unknown", propMap{"nope": {"x": raw(`1`)}}, nil, ErrInvalid},
		{"out of range", propMap{"rating": {"score": raw(`9`)}}, nil, ErrInvalid},
		{"customer may only read", nil, propMap{"routing": {"tier": raw(`"gold"`)}}, ErrForbidden},
	}
	for _, tc := range refused {
		for name, start := range map[string]func(context.Context, StartRequest) (model.Conversation, []model.Event, error){
			"Start": e.d.Start, "StartInactive": e.d.StartInactive} {
			_, _, err := start(ctx, StartRequest{Visitor: v.ID, Author: by, ChatProps: tc.chat, ThreadProps: tc.thread})
			if !errors.Is(err, tc.want) {
				t.Errorf("%s %s: %v, want %v", name, tc.name, err, tc.want)
			}
		}
	}

	c, evs, err := e.d.StartInactive(ctx, StartRequest{Visitor: v.ID, Author: by, Origin: "test",
		Events: []Draft{{Text: "left a note"}}, ChatProps: propMap{"rating": {"score": raw(`4`)}}})
	if err != nil {
		t.Fatal(err)
	}
	if c.State != model.StateClosed || c.Agent != "" || len(evs) != 1 || evs[0].Seq != 1 {
		t.Fatalf("inactive start %+v %+v", c, evs)
	}
	if got := e.conv(c.ID); got.State != model.StateClosed || got.LastSeq != 1 {
		t.Fatalf("stored %+v", got)
	}
	if stored, err := e.bolt.Visitor(ctx, v.ID); err != nil || string(stored.Props["rating"]["score"]) != "4" {
		t.Fatalf("chat props %+v: %v", stored.Props, err)
	}
	if q := e.router.Queued(); len(q) != 0 {
		t.Fatalf("queued %v", q)
	}
	// Then an active start, with a thread property written by an agent.
	c2, _, err := e.d.Start(ctx, StartRequest{Visitor: v.ID, Author: agentAuthor(ann.ID), Agent: ann.ID,
		ThreadProps: propMap{"routing": {"tier": raw(`"gold"`)}}})
	if err != nil {
		t.Fatal(err)
	}
	if got := e.conv(c2.ID); got.State != model.StateOpen || string(got.Props["routing"]["tier"]) != `"gold"` {
		t.Fatalf("active start %+v", got)
	}
	if _, _, err := e.d.StartInactive(ctx, StartRequest{Visitor: v.ID, Author: by}); !errors.Is(err, ErrVisitorBusy) {
		t.Fatalf("inactive start over an open one: %v", err)
	}
}

func TestStartMembers(t *testing.T) {
	agents := []model.Agent{ann, bob, cat}
	for _, id := range []model.AgentID{"a4@x", "a5@x", "a6@x"} {
		agents = append(agents, model.Agent{ID: id, Name: string(id)})
	}
	e := newEnv(t, config{agents: agents})
	ctx := context.Background()
	v := e.visitor("Mel")
	by := agentAuthor(ann.ID)
	tests := []struct {
		name    string
		members []model.AgentID
		author  model.Author
		want    error
		stored  []model.AgentID
	}{
		{"unknown agent", []model.AgentID{"zed"}, by, ErrNotFound, nil},
		{"five others", []model.AgentID{bob.ID, cat.ID, "a4@x", "a5@x", "a6@x"}, by, ErrInvalid, nil},
		{"by the visitor", []model.AgentID{bob.ID}, visitorAuthor(v), ErrForbidden, nil},
		{"repeats and the serving agent dropped", []model.AgentID{bob.ID, ann.ID, bob.ID, cat.ID}, by, nil, []model.AgentID{bob.ID, cat.ID}},
	}
	for _, tc := range tests {
		c, _, err := e.d.Start(ctx, StartRequest{Visitor: v.ID, Author: tc.author, Agent: ann.ID, Members: tc.members})
		if !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
			t.Fatalf("%s: %v, want %v", tc.name, err, tc.want)
		}
		if err == nil {
			if got := e.conv(c.ID).Members; fmt.Sprint(got) != fmt.Sprint(tc.stored) {
				t.Fatalf("%s: members %v, want %v", tc.name, got, tc.stored)
			}
		}
	}
}
