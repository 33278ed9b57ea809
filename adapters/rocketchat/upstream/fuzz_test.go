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

// fuzzEnv is a desk with one conversation relayed to connector "rc",
// followed as upstream room "R".
func fuzzEnv(f *testing.F) (*Connector, *relay.Sink, *bolt.Store, model.ConvID) {
	st, err := bolt.Open(filepath.Join(f.TempDir(), "fuzz.db"), bolt.Options{})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { st.Close() })
	c, err := New(Config{Name: "rc", URL: "http://127.0.0.1:9"}, zerolog.Nop())
	if err != nil {
		f.Fatal(err)
	}
	svc, err := relay.New(relay.Config{Routes: []relay.Route{{Upstream: "rc"}}}, []relay.Connector{c}, zerolog.Nop())
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
	c.rooms["R"] = room{conv: conv.ID, rid: "R", token: "T"}
	return c, svc.Sink("rc"), st, conv.ID
}

// FuzzUpstreamFrame feeds arbitrary DDP frames from the upstream server to
// the connector: nothing panics, and the relayed conversation only ever
// gains well-formed events in order.
func FuzzUpstreamFrame(f *testing.F) {
	for _, seed := range []string{
		`{"msg":"changed","collection":"stream-room-messages","id":"id","fields":{"eventName":"R","args":[{"_id":"m1","rid":"R","msg":"hi","u":{"_id":"a1","username":"jane","name":"Jane"}}]}}`,
		`{"msg":"changed","collection":"stream-room-messages","fields":{"eventName":"R","args":[{"_id":"m2","rid":"R","msg":"","t":"livechat-close","u":{"_id":"a1"}}]}}`,
		`{"msg":"changed","collection":"stream-room-messages","fields":{"eventName":"R","args":[{"_id":"m3","rid":"R","msg":"connected","t":"command","u":{"_id":"a2","name":"Bob"}}]}}`,
		`{"msg":"changed","collection":"stream-livechat-room","fields":{"eventName":"R","args":[{"type":"agentData","data":{"_id":"a3","username":"x"}}]}}`,
		`{"msg":"changed","collection":"stream-room-messages","fields":{"eventName":"R","args":[{"_id":"m4","msg":"mine","token":"T","u":{"_id":"v"}}]}}`,
		`{"msg":"changed","collection":"stream-room-messages","fields":{"eventName":"R","args":[null]}}`,
		`{"msg":"changed","fields":{"eventName":"R","args":[]}}`,
		`{"msg":"changed","collection":"stream-room-messages","fields":{"eventName":"R","args":[{"_id":"m5","msg":"\xff\xfe","u":{"_id":"a1"}}]}}`,
		`{"msg":"changed","collection":"stream-room-messages","fields":"x"}`,
		`[]`, `{}`, `null`, ``,
	} {
		f.Add([]byte(seed))
	}
	c, sink, st, conv := fuzzEnv(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		var fr ddpFrame
		if err := json.Unmarshal(data, &fr); err != nil {
			return
		}
		c.mu.Lock()
		c.rooms["R"] = room{conv: conv, rid: "R", token: "T"}
		c.mu.Unlock()
		c.changed(context.Background(), sink, fr)
		evs, err := st.Events(context.Background(), conv, 1, 0)
		if err != nil {
			t.Fatal(err)
		}
		for i, e := range evs {
			if e.Seq != uint64(i+1) || e.Conv != conv || !e.Kind.Valid() {
				t.Fatalf("event %d is malformed: %+v", i, e)
			}
		}
	})
}
