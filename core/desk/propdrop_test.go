package desk

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
)

// TestUnregisteredPropertyValuesDropped (issue 16 item 2): register →
// set on a chat, a thread and an event → unregister → registering the
// name again is refused until the old values are deleted; once they are
// (also after a restart in between: the drop owed is stored), the name
// registers again and no old value is readable anywhere, under the new
// access rules either. Other properties keep their values.
func TestUnregisteredPropertyValuesDropped(t *testing.T) {
	for _, restart := range []bool{false, true} {
		name := "same registry"
		if restart {
			name = "registry reloaded (a restart) before the drop"
		}
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, config{})
			e.registerDefs()
			ctx := context.Background()
			all := map[PropLocation]RoleAccess{LocChat: {Agent: custRW, Customer: custRW},
				LocThread: {Agent: custRW, Customer: custRW}, LocEvent: {Agent: custRW, Customer: custRW}}
			secret := PropDef{Namespace: "app", Name: "secret", Type: PropString, Access: all}
			reg := e.d.Properties()
			if err := reg.Register(ctx, secret); err != nil {
				t.Fatal(err)
			}
			e.online(ann.ID)
			v := e.visitor("Vic")
			conv, evs := e.start(v, "sales", Draft{Text: "hi"})
			agent := agentAuthor(ann.ID)
			set := map[string]map[string]json.RawMessage{"app": {"secret": raw(`"s3cr3t"`)}}
			targets := []PropTarget{
				{Location: LocChat, Visitor: v.ID},
				{Location: LocThread, Visitor: v.ID, Conv: conv.ID},
				{Location: LocEvent, Visitor: v.ID, Conv: conv.ID, Seq: evs[0].Seq},
			}
			for _, tg := range targets {
				if err := e.d.UpdateProperties(ctx, tg, agent, set, ""); err != nil {
					t.Fatalf("set %s: %v", tg.Location, err)
				}
			}
			// A property that stays registered keeps its value.
			if err := e.d.UpdateProperties(ctx, targets[2], agent, map[string]map[string]json.RawMessage{"ev": {"flag": raw(`true`)}}, ""); err != nil {
				t.Fatal(err)
			}
			if err := reg.Unregister(ctx, "app", "secret"); err != nil {
				t.Fatal(err)
			}
			if err := reg.Register(ctx, secret); !errors.Is(err, ErrPropDropping) {
				t.Fatalf("register again before the drop: %v, want ErrPropDropping", err)
			}
			if restart {
				reg2, err := NewProperties(e.bolt, nil)
				if err != nil {
					t.Fatal(err)
				}
				if err := reg2.Load(ctx); err != nil {
					t.Fatal(err)
				}
				reg = reg2
			}
			if err := reg.DropPending(ctx); err != nil {
				t.Fatal(err)
			}
			if err := reg.Register(ctx, secret); err != nil {
				t.Fatalf("register again after the drop: %v", err)
			}
			gotV, err := e.bolt.Visitor(ctx, v.ID)
			if err != nil {
				t.Fatal(err)
			}
			gotC, err := e.bolt.Conversation(ctx, conv.ID)
			if err != nil {
				t.Fatal(err)
			}
			gotE, err := e.bolt.Events(ctx, conv.ID, evs[0].Seq, 1)
			if err != nil {
				t.Fatal(err)
			}
			for loc, props := range map[PropLocation]map[string]map[string]json.RawMessage{
				LocChat: gotV.Props, LocThread: gotC.Props, LocEvent: gotE[0].Props} {
				if _, has := props["app"]["secret"]; has {
					t.Errorf("%s still stores the unregistered value: %s", loc, props["app"]["secret"])
				}
				for _, role := range []PropRole{RoleAgent, RoleCustomer} {
					if r := reg.Readable(role, loc, props); r["app"] != nil {
						t.Errorf("%s readable by %s after registering again: %v", loc, role, r)
					}
				}
			}
			if string(gotE[0].Props["ev"]["flag"]) != "true" {
				t.Errorf("another property's value lost: %v", gotE[0].Props)
			}
			// Nothing owed any more.
			reg3, _ := NewProperties(e.bolt, nil)
			if err := reg3.Load(ctx); err != nil {
				t.Fatal(err)
			}
			if len(reg3.dropping) != 0 {
				t.Errorf("drops still owed after the drop: %v", reg3.dropping)
			}
		})
	}
}
