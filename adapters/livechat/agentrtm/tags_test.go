package agentrtm

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"chatgate/adapters/livechat/wire"
	"chatgate/core/model"
)

func TestTagActionsRefused(t *testing.T) {
	h := newHarness(t, nil)
	ctx := context.Background()
	a := h.dial(t, "/v3.5/agent/rtm/ws")
	a.login("tok-alice")
	tom, tomConv := h.startChat(t, "Tom", "")
	// Ola's chat went to bob: alice may not see it.
	ola, olaConv := h.startChat(t, "Ola", "")
	if err := h.d.Assign(ctx, olaConv.ID, bob, model.System, ""); err != nil {
		t.Fatal(err)
	}
	chat, thread := string(tom.ID), string(tomConv.ID)
	tests := []struct {
		name, action, body, want string
	}{
		{"missing chat_id", "tag_thread", fmt.Sprintf(`{"thread_id":%q,"tag":"x"}`, thread), "validation"},
		{"missing thread_id", "tag_thread", fmt.Sprintf(`{"chat_id":%q,"tag":"x"}`, chat), "validation"},
		{"missing tag", "untag_thread", fmt.Sprintf(`{"chat_id":%q,"thread_id":%q}`, chat, thread), "validation"},
		{"tag wrong type", "tag_thread", fmt.Sprintf(`{"chat_id":%q,"thread_id":%q,"tag":5}`, chat, thread), "validation"},
		{"chat_id wrong type", "untag_thread", fmt.Sprintf(`{"chat_id":1,"thread_id":%q,"tag":"x"}`, thread), "validation"},
		{"unknown chat", "tag_thread", fmt.Sprintf(`{"chat_id":"NOPE","thread_id":%q,"tag":"x"}`, thread), "not_found"},
		{"unknown thread", "tag_thread", fmt.Sprintf(`{"chat_id":%q,"thread_id":"NOPE","tag":"x"}`, chat), "not_found"},
		{"thread of another chat", "tag_thread", fmt.Sprintf(`{"chat_id":%q,"thread_id":%q,"tag":"x"}`, chat, olaConv.ID), "not_found"},
		{"no access", "tag_thread", fmt.Sprintf(`{"chat_id":%q,"thread_id":%q,"tag":"x"}`, ola.ID, olaConv.ID), "not_found"},
		{"tag too long", "tag_thread", fmt.Sprintf(`{"chat_id":%q,"thread_id":%q,"tag":%q}`, chat, thread, strings.Repeat("x", 300)), "validation"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var payload json.RawMessage = []byte(tc.body)
			if f := a.Call(tc.action, payload); f.Success || f.ErrType() != tc.want {
				t.Errorf("rtm: success %v type %q, want %q: %s", f.Success, f.ErrType(), tc.want, f.Payload)
			}
			if st, b := h.web(t, "tok-alice", tc.action, tc.body); st < 400 || webErrType(t, b) != tc.want {
				t.Errorf("web: %d %s, want %q", st, b, tc.want)
			}
		})
	}
	for _, id := range []model.ConvID{tomConv.ID, olaConv.ID} {
		if c, err := h.st.Conversation(ctx, id); err != nil || len(c.Tags) != 0 {
			t.Fatalf("tags after refusals: %v %q", err, c.Tags)
		}
	}
}

func TestTagPushesAndViews(t *testing.T) {
	h := newHarness(t, nil)
	ctx := context.Background()
	a := h.dial(t, "/v3.5/agent/rtm/ws")
	a.login("tok-alice")
	a2 := h.dial(t, "/v3.5/agent/rtm/ws") // alice's second connection
	a2.login("tok-alice")
	tom, conv := h.startChat(t, "Tom", "")
	a.Push("incoming_chat")
	a2.Push("incoming_chat")
	chat, thread := string(tom.ID), string(conv.ID)
	steps := []struct {
		name    string
		web     bool
		action  string
		tag     string
		close   bool
		push    string // "" when nothing changes
		want    []string
		payload string
	}{
		{name: "tag", action: "tag_thread", tag: "sales", push: "thread_tagged", want: []string{"sales"}},
		{name: "tag is case-sensitive", action: "tag_thread", tag: "Sales", push: "thread_tagged", want: []string{"sales", "Sales"}},
		{name: "tag again", action: "tag_thread", tag: "sales", want: []string{"sales", "Sales"}},
		{name: "untag over the web", web: true, action: "untag_thread", tag: "sales", push: "thread_untagged", want: []string{"Sales"}},
		{name: "untag missing", action: "untag_thread", tag: "sales", want: []string{"Sales"}},
		{name: "tag an inactive thread", close: true, action: "tag_thread", tag: "late", push: "thread_tagged", want: []string{"Sales", "late"}},
	}
	for _, s := range steps {
		if s.close {
			if _, err := h.d.Close(ctx, conv.ID, model.Author{Kind: model.AuthorVisitor, ID: chat}, "", ""); err != nil {
				t.Fatal(err)
			}
			a.Push("chat_deactivated")
			a2.Push("chat_deactivated")
		}
		body := fmt.Sprintf(`{"chat_id":%q,"thread_id":%q,"tag":%q}`, chat, thread, s.tag)
		rid := ""
		if s.web {
			if st, b := h.web(t, "tok-alice", s.action, body); st != 200 || string(b) != "{}" {
				t.Fatalf("%s: web %d %s", s.name, st, b)
			}
		} else {
			f := a.Call(s.action, json.RawMessage(body))
			if !f.Success || string(f.Payload) != "{}" {
				t.Fatalf("%s: %s", s.name, f.Payload)
			}
			rid = f.RID()
		}
		if s.push != "" {
			want := ThreadTagged{ChatID: chat, ThreadID: thread, Tag: s.tag}
			for i, c := range []*rtm{a, a2} {
				f := c.Push(s.push)
				var got ThreadTagged
				mustUnmarshal(t, f.Payload, &got)
				if got != want {
					t.Fatalf("%s: conn %d push %+v, want %+v", s.name, i, got, want)
				}
				if wantRid := map[bool]string{true: rid, false: ""}[i == 0]; f.RID() != wantRid {
					t.Fatalf("%s: conn %d push request_id %q, want %q", s.name, i, f.RID(), wantRid)
				}
			}
		}
		f := a.Call("get_chat", map[string]any{"chat_id": chat, "thread_id": thread})
		var got wire.Chat
		mustUnmarshal(t, f.Payload, &got)
		if !reflect.DeepEqual(got.Thread.Tags, s.want) {
			t.Fatalf("%s: get_chat tags %q, want %q", s.name, got.Thread.Tags, s.want)
		}
	}
	// No push for the no-op steps: the only tag pushes left are none.
	for _, f := range a.Backlog {
		if f.Type == "push" && (f.Action == "thread_tagged" || f.Action == "thread_untagged") {
			t.Fatalf("extra push %s %s", f.Action, f.Payload)
		}
	}
}

func TestTagsRenderedForAgentsOnly(t *testing.T) {
	conv := model.Conversation{ID: "T1", Visitor: "C1", State: model.StateOpen, Tags: []string{"vip"}}
	d := wire.ChatData{Visitor: model.Visitor{ID: "C1"}, Conv: conv}
	untagged := wire.ChatData{Visitor: model.Visitor{ID: "C1"}, Conv: model.Conversation{ID: "T2", Visitor: "C1"}}
	tests := []struct {
		name string
		d    *wire.ChatData
		aud  wire.Audience
		want string // the "tags" member, "" when absent
	}{
		{"agent", &d, wire.ForAgent, `["vip"]`},
		{"agent untagged", &untagged, wire.ForAgent, `[]`},
		{"customer", &d, wire.ForCustomer, ``},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, _ := json.Marshal(wire.RenderThread(tc.d, tc.aud))
			var m map[string]json.RawMessage
			mustUnmarshal(t, b, &m)
			if string(m["tags"]) != tc.want {
				t.Fatalf("tags %s, want %q: %s", m["tags"], tc.want, b)
			}
		})
	}
	s := wire.RenderAgentSummary(&d)
	if !reflect.DeepEqual(s.LastThreadSummary.Tags, []string{"vip"}) {
		t.Fatalf("summary tags %q", s.LastThreadSummary.Tags)
	}
}
