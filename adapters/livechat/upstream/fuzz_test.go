package upstream

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/rs/zerolog"

	"chatgate/core/desk"
	"chatgate/core/model"
	"chatgate/core/relay"
	"chatgate/core/routing"
	"chatgate/store"
	"chatgate/store/bolt"
)

// FuzzUpstreamPush feeds arbitrary RTM frames from the upstream LiveChat
// to a follower of a relayed conversation bound to chat "C", thread "T":
// nothing panics, and the conversation only ever gains well-formed events
// in order.
func FuzzUpstreamPush(f *testing.F) {
	for _, seed := range []string{
		`{"action":"incoming_event","type":"push","payload":{"chat_id":"C","thread_id":"T","event":{"id":"e1","type":"message","text":"hi","author_id":"agent@x"}}}`,
		`{"action":"incoming_event","type":"push","payload":{"chat_id":"C","thread_id":"T","event":{"id":"e2","type":"message","text":"mine","author_id":"ME","custom_id":"c1"}}}`,
		`{"action":"incoming_event","type":"push","payload":{"chat_id":"C","thread_id":"T","event":{"id":"e3","type":"file","url":"https://x/f.png","name":"f.png","author_id":"agent@x"}}}`,
		`{"action":"incoming_chat","type":"push","payload":{"chat":{"id":"C","users":[{"id":"agent@x","type":"agent","name":"Jane"},{"id":"ME","type":"customer"}],"thread":{"id":"T","active":true,"events":[{"id":"e4","type":"message","text":"hello","author_id":"agent@x"}]}}}}`,
		`{"action":"user_added_to_chat","type":"push","payload":{"chat_id":"C","thread_id":"T","user":{"id":"bob@x","type":"agent","name":"Bob"}}}`,
		`{"action":"chat_deactivated","type":"push","payload":{"chat_id":"C","thread_id":"T","user_id":"agent@x"}}`,
		`{"action":"customer_disconnected","type":"push","payload":{"reason":"access_token_expired"}}`,
		`{"action":"incoming_event","payload":{"chat_id":"C","thread_id":"other","event":{"id":"e5","type":"message","text":"x","author_id":"a"}}}`,
		`{"action":"incoming_event","payload":{"chat_id":"C","thread_id":"T","event":null}}`,
		`{"action":"incoming_event","payload":"x"}`,
		`{"action":1}`, `[]`, `null`, ``,
	} {
		f.Add([]byte(seed))
	}
	st, err := bolt.Open(filepath.Join(f.TempDir(), "fuzz.db"), bolt.Options{})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { st.Close() })
	c, err := New(Config{Name: "lc", URL: "http://127.0.0.1:9", TokenURL: "http://127.0.0.1:9/v2/customer/token",
		OrganizationID: "org", AgentToken: "agent-token"}, zerolog.Nop())
	if err != nil {
		f.Fatal(err)
	}
	svc, err := relay.New(relay.Config{Routes: []relay.Route{{Upstream: "lc"}}}, []relay.Connector{c}, zerolog.Nop())
	if err != nil {
		f.Fatal(err)
	}
	d := desk.New(desk.Options{Store: st, Router: routing.New(nil, true), Route: svc.Route, Relay: svc.Hook, Logger: zerolog.Nop()})
	svc.Attach(d)
	ctx := context.Background()
	v, err := d.EnsureVisitor(ctx, store.MapKey{System: "fuzz", Kind: "v", Foreign: "v"}, model.Visitor{Name: "V"})
	if err != nil {
		f.Fatal(err)
	}
	conv, _, err := d.Start(ctx, desk.StartRequest{Visitor: v.ID, Author: model.Author{Kind: model.AuthorVisitor, ID: string(v.ID)}})
	if err != nil {
		f.Fatal(err)
	}
	c.sink = svc.Sink("lc")
	f.Fuzz(func(t *testing.T, data []byte) {
		var fr rtmFrame
		if json.Unmarshal(data, &fr) != nil {
			return
		}
		fl := &follower{c: c, conv: conv.ID, visitor: v.ID, cancel: func() {}, done: make(chan struct{}),
			kick: make(chan struct{}, 1), changed: make(chan struct{}), chat: "C", thread: "T", me: "ME",
			agents: map[string]relay.Agent{"agent@x": {ID: "agent@x", Name: "Jane"}}, custom: make(map[string]bool)}
		_ = fl.push(ctx, fr)
		evs, err := st.Events(ctx, conv.ID, 1, 0)
		if err != nil {
			t.Fatal(err)
		}
		for i, e := range evs {
			if e.Seq != uint64(i+1) || e.Conv != conv.ID || !e.Kind.Valid() {
				t.Fatalf("event %d is malformed: %+v", i, e)
			}
		}
	})
}
