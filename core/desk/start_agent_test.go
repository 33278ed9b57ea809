package desk

import (
	"context"
	"errors"
	"reflect"
	"testing"

	"chatgate/core/model"
)

func TestStartForAgent(t *testing.T) {
	e := newEnv(t, config{})
	e.online(ann.ID) // routing would pick ann; the request names cat
	ctx := context.Background()
	tests := []struct {
		name  string
		agent model.AgentID
		err   error
		kinds []string
	}{
		{"unknown agent", "zed", ErrNotFound, nil},
		{"assigned to the requester", cat.ID, nil, []string{"system_message/" + model.SysAssigned, "message"}},
		{"customer busy", cat.ID, ErrVisitorBusy, nil},
	}
	v := e.visitor("Vic")
	for _, tc := range tests {
		conv, evs, err := e.d.Start(ctx, StartRequest{Visitor: v.ID, Department: "sales", Author: agentAuthor(tc.agent),
			Agent: tc.agent, Events: []Draft{{Text: "hello"}}})
		if !errors.Is(err, tc.err) || (tc.err == nil && err != nil) {
			t.Fatalf("%s: err %v, want %v", tc.name, err, tc.err)
		}
		if tc.err != nil {
			continue
		}
		if conv.Agent != tc.agent || conv.State != model.StateOpen {
			t.Fatalf("%s: conversation %+v", tc.name, conv)
		}
		if got := kinds(evs); !reflect.DeepEqual(got, tc.kinds) {
			t.Fatalf("%s: events %v, want %v", tc.name, got, tc.kinds)
		}
		e.checkLog(conv.ID)
	}
	e.wantOpen(map[model.AgentID]int{cat.ID: 1, ann.ID: 0})
}
