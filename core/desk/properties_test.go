package desk

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"testing"

	"chatgate/core/hub"
	"chatgate/core/model"
)

func raw(s string) json.RawMessage { return json.RawMessage(s) }

var (
	custRW  = Perm{Read: true, Write: true}
	readOnl = Perm{Read: true}
)

// testDefs: rating.{score,comment} on chats (customer writes, agent
// reads), routing.{pinned,tier} on threads (agent writes; the customer
// reads tier only), ev.flag on events (both write).
func testDefs() []PropDef {
	return []PropDef{
		{Namespace: "rating", Name: "score", Type: PropInt, Range: &PropRange{From: 0, To: 5},
			Access: map[PropLocation]RoleAccess{LocChat: {Customer: custRW, Agent: readOnl}}},
		{Namespace: "rating", Name: "comment", Type: PropString,
			Access: map[PropLocation]RoleAccess{LocChat: {Customer: custRW, Agent: readOnl}}},
		{Namespace: "routing", Name: "pinned", Type: PropBool,
			Access: map[PropLocation]RoleAccess{LocThread: {Agent: custRW}}},
		{Namespace: "routing", Name: "tier", Type: PropString, Domain: []json.RawMessage{raw(`"gold"`), raw(`"silver"`)},
			Access: map[PropLocation]RoleAccess{LocThread: {Agent: custRW, Customer: readOnl}}},
		{Namespace: "ev", Name: "flag", Type: PropBool,
			Access: map[PropLocation]RoleAccess{LocEvent: {Agent: custRW, Customer: custRW}}},
	}
}

func (e *env) registerDefs() {
	e.t.Helper()
	for _, d := range testDefs() {
		if err := e.d.Properties().Register(context.Background(), d); err != nil {
			e.t.Fatalf("Register(%s.%s): %v", d.Namespace, d.Name, err)
		}
	}
}

func TestPropDefValidate(t *testing.T) {
	chat := map[PropLocation]RoleAccess{LocChat: {Agent: custRW}}
	tests := []struct {
		name string
		def  PropDef
		ok   bool
	}{
		{"valid int with range", PropDef{Namespace: "a", Name: "b", Type: PropInt, Access: chat, Range: &PropRange{From: 1, To: 3}}, true},
		{"valid tokenized with domain", PropDef{Namespace: "a", Name: "b", Type: PropTokenized, Access: chat, Domain: []json.RawMessage{raw(`"x"`)}}, true},
		{"empty namespace", PropDef{Name: "b", Type: PropInt, Access: chat}, false},
		{"empty name", PropDef{Namespace: "a", Type: PropInt, Access: chat}, false},
		{"unknown type", PropDef{Namespace: "a", Name: "b", Type: "float", Access: chat}, false},
		{"no location", PropDef{Namespace: "a", Name: "b", Type: PropInt}, false},
		{"unknown location", PropDef{Namespace: "a", Name: "b", Type: PropInt, Access: map[PropLocation]RoleAccess{"visit": {}}}, false},
		{"range on string", PropDef{Namespace: "a", Name: "b", Type: PropString, Access: chat, Range: &PropRange{From: 1, To: 3}}, false},
		{"range reversed", PropDef{Namespace: "a", Name: "b", Type: PropInt, Access: chat, Range: &PropRange{From: 3, To: 1}}, false},
		{"range beyond int32", PropDef{Namespace: "a", Name: "b", Type: PropInt, Access: chat, Range: &PropRange{From: 0, To: 1 << 40}}, false},
		{"domain of wrong type", PropDef{Namespace: "a", Name: "b", Type: PropInt, Access: chat, Domain: []json.RawMessage{raw(`"1"`)}}, false},
		{"domain and range", PropDef{Namespace: "a", Name: "b", Type: PropInt, Access: chat, Domain: []json.RawMessage{raw(`1`)}, Range: &PropRange{From: 1, To: 3}}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.def.Validate()
			if tc.ok != (err == nil) {
				t.Fatalf("Validate = %v, want ok %v", err, tc.ok)
			}
			if err != nil && !errors.Is(err, ErrInvalid) {
				t.Fatalf("Validate = %v, want ErrInvalid", err)
			}
		})
	}
	if _, err := NewProperties(nil, []PropDef{testDefs()[0], testDefs()[0]}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("duplicate declaration: %v", err)
	}
}

func TestPropertyWrites(t *testing.T) {
	e := newEnv(t, config{})
	e.registerDefs()
	e.online(ann.ID)
	v := e.visitor("Vic")
	conv, evs := e.start(v, "sales", Draft{Text: "hi"})
	if conv.Agent != ann.ID {
		t.Fatalf("conversation not assigned to ann: %+v", conv)
	}
	msg := evs[0]
	cust, agent := visitorAuthor(v), agentAuthor(ann.ID)
	chatT := PropTarget{Location: LocChat, Visitor: v.ID}
	threadT := PropTarget{Location: LocThread, Visitor: v.ID, Conv: conv.ID}
	eventT := PropTarget{Location: LocEvent, Visitor: v.ID, Conv: conv.ID, Seq: msg.Seq}
	type P = map[string]map[string]json.RawMessage
	tests := []struct {
		name   string
		target PropTarget
		by     model.Author
		set    P
		del    map[string][]string
		want   error
	}{
		{"customer rates the chat", chatT, cust, P{"rating": {"score": raw(`4`), "comment": raw(`"great"`)}}, nil, nil},
		{"score outside range", chatT, cust, P{"rating": {"score": raw(`9`)}}, nil, ErrInvalid},
		{"score of wrong type", chatT, cust, P{"rating": {"score": raw(`"4"`)}}, nil, ErrInvalid},
		{"score not an integer", chatT, cust, P{"rating": {"score": raw(`4.5`)}}, nil, ErrInvalid},
		{"unknown namespace", chatT, cust, P{"nope": {"x": raw(`1`)}}, nil, ErrInvalid},
		{"unknown name", chatT, cust, P{"rating": {"x": raw(`1`)}}, nil, ErrInvalid},
		{"wrong location", threadT, cust, P{"rating": {"score": raw(`1`)}}, nil, ErrInvalid},
		{"agent may only read the rating", chatT, agent, P{"rating": {"score": raw(`1`)}}, nil, ErrForbidden},
		{"agent pins the thread", threadT, agent, P{"routing": {"pinned": raw(`true`), "tier": raw(`"gold"`)}}, nil, nil},
		{"tier outside domain", threadT, agent, P{"routing": {"tier": raw(`"bronze"`)}}, nil, ErrInvalid},
		{"customer may not write the tier", threadT, cust, P{"routing": {"tier": raw(`"gold"`)}}, nil, ErrForbidden},
		{"customer may not delete pinned", threadT, cust, nil, map[string][]string{"routing": {"pinned"}}, ErrForbidden},
		{"customer flags an event", eventT, cust, P{"ev": {"flag": raw(`true`)}}, nil, nil},
		{"event prop of wrong type", eventT, agent, P{"ev": {"flag": raw(`1`)}}, nil, ErrInvalid},
		{"other agent", threadT, agentAuthor(bob.ID), P{"routing": {"pinned": raw(`false`)}}, nil, ErrForbidden},
		{"no such event", PropTarget{Location: LocEvent, Conv: conv.ID, Seq: 99}, agent, P{"ev": {"flag": raw(`true`)}}, nil, ErrNotFound},
		{"agent unpins", threadT, agent, nil, map[string][]string{"routing": {"pinned"}}, nil},
	}
	ctx := context.Background()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			if tc.del != nil {
				err = e.d.DeleteProperties(ctx, tc.target, tc.by, tc.del, "")
			} else {
				err = e.d.UpdateProperties(ctx, tc.target, tc.by, tc.set, "")
			}
			if (tc.want == nil) != (err == nil) || (tc.want != nil && !errors.Is(err, tc.want)) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}

	// Events posted with properties are validated the same way.
	_, _, err := e.d.Post(ctx, PostRequest{Conv: conv.ID, Author: cust, Draft: Draft{Text: "x",
		Props: P{"ev": {"flag": raw(`"yes"`)}}}})
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("post with a bad property: %v", err)
	}
	_, _, err = e.d.Post(ctx, PostRequest{Conv: conv.ID, Author: cust, Draft: Draft{Text: "x",
		Props: P{"routing": {"pinned": raw(`true`)}}}})
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("post with a thread property on an event: %v", err)
	}
	if _, _, err = e.d.Post(ctx, PostRequest{Conv: conv.ID, Author: cust, Draft: Draft{Text: "x",
		Props: P{"ev": {"flag": raw(`true`)}}}}); err != nil {
		t.Fatalf("post with a good property: %v", err)
	}

	// What was accepted is stored, and survives a restart.
	check := func(e *env) {
		t.Helper()
		vv, err := e.bolt.Visitor(ctx, v.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got := vv.Props["rating"]; string(got["score"]) != "4" || string(got["comment"]) != `"great"` {
			t.Errorf("chat props = %s", vv.Props)
		}
		if got := e.conv(conv.ID).Props; !reflect.DeepEqual(got, P{"routing": {"tier": raw(`"gold"`)}}) {
			t.Errorf("thread props = %s", got)
		}
		if got := e.events(conv.ID)[msg.Seq-1].Props; !reflect.DeepEqual(got, P{"ev": {"flag": raw(`true`)}}) {
			t.Errorf("event props = %s", got)
		}
	}
	check(e)
	e.bolt.Close()
	e2 := newEnv(t, config{path: e.path})
	if err := e2.d.Load(ctx); err != nil {
		t.Fatal(err)
	}
	check(e2)
	if _, ok := e2.d.Properties().Lookup("rating", "score"); !ok {
		t.Fatal("registered property lost on restart")
	}
	if err := e2.d.UpdateProperties(ctx, chatT, cust, P{"rating": {"score": raw(`7`)}}, ""); !errors.Is(err, ErrInvalid) {
		t.Fatalf("range not enforced after restart: %v", err)
	}
}

// TestPropertyNotices: a change publishes only the keys that changed (or
// the names removed), and a no-op publishes nothing.
func TestPropertyNotices(t *testing.T) {
	e := newEnv(t, config{})
	e.registerDefs()
	e.online(ann.ID)
	v := e.visitor("Vic")
	conv, _ := e.start(v, "sales", Draft{Text: "hi"})
	sub := e.bus.SubscribeConv(conv.ID, 16)
	defer sub.Close()
	ctx := context.Background()
	cust := visitorAuthor(v)
	chatT := PropTarget{Location: LocChat, Visitor: v.ID}
	type P = map[string]map[string]json.RawMessage
	steps := []struct {
		set  P
		del  map[string][]string
		want hub.PropsChange
	}{
		{set: P{"rating": {"score": raw(`3`), "comment": raw(`"ok"`)}},
			want: hub.PropsChange{Location: "chat", Visitor: v.ID, Updated: P{"rating": {"score": raw(`3`), "comment": raw(`"ok"`)}}}},
		{set: P{"rating": {"score": raw(`3`), "comment": raw(`"better"`)}},
			want: hub.PropsChange{Location: "chat", Visitor: v.ID, Updated: P{"rating": {"comment": raw(`"better"`)}}}},
		{set: P{"rating": {"score": raw(` 3 `)}}}, // no change: nothing published
		{del: map[string][]string{"rating": {"comment", "score"}},
			want: hub.PropsChange{Location: "chat", Visitor: v.ID, Deleted: map[string][]string{"rating": {"comment", "score"}}}},
	}
	for i, s := range steps {
		var err error
		if s.del != nil {
			err = e.d.DeleteProperties(ctx, chatT, cust, s.del, "")
		} else {
			err = e.d.UpdateProperties(ctx, chatT, cust, s.set, "")
		}
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if s.want.Location == "" {
			continue
		}
		n := waitFor(t, sub, "props notice", func(n hub.Notice) bool { return n.Props != nil })
		if !reflect.DeepEqual(*n.Props, s.want) {
			t.Fatalf("step %d: notice %+v, want %+v", i, *n.Props, s.want)
		}
	}
	select {
	case n := <-sub.C():
		t.Fatalf("unexpected notice %+v", n)
	default:
	}
}

func TestPropertiesRegistry(t *testing.T) {
	e := newEnv(t, config{})
	ctx := context.Background()
	static := PropDef{Namespace: "cfg", Name: "x", Type: PropBool, Access: map[PropLocation]RoleAccess{LocChat: {Agent: custRW}}}
	reg, err := NewProperties(e.bolt, []PropDef{static})
	if err != nil {
		t.Fatal(err)
	}
	if err := reg.Register(ctx, static); !errors.Is(err, ErrPropExists) {
		t.Fatalf("re-register a configured property: %v", err)
	}
	if err := reg.Unregister(ctx, "cfg", "x"); !errors.Is(err, ErrForbidden) {
		t.Fatalf("unregister a configured property: %v", err)
	}
	dyn := static
	dyn.Namespace = "app"
	if err := reg.Register(ctx, dyn); err != nil {
		t.Fatal(err)
	}
	if err := reg.Register(ctx, dyn); !errors.Is(err, ErrPropExists) {
		t.Fatalf("register twice: %v", err)
	}
	if got := len(reg.List("")); got != 2 {
		t.Fatalf("List = %d entries", got)
	}
	reg2, _ := NewProperties(e.bolt, nil)
	if err := reg2.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok := reg2.Lookup("app", "x"); !ok {
		t.Fatal("registered property not stored")
	}
	if err := reg2.Unregister(ctx, "app", "x"); err != nil {
		t.Fatal(err)
	}
	if err := reg2.Unregister(ctx, "app", "x"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unregister twice: %v", err)
	}
	if reg.CanRead(RoleCustomer, LocChat, "cfg", "x") || !reg.CanRead(RoleAgent, LocChat, "cfg", "x") {
		t.Fatal("CanRead does not follow access")
	}
}
