package webhooks

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"chatgate/adapters/livechat/wire"
	"chatgate/core/model"
	"chatgate/store"
)

// TestRestartDeliversEverythingInOrder is the must-show: the
// receiver is down while messages flow; the gateway (store, desk, worker)
// stops and is rebuilt on the same data file; the receiver comes up; every
// webhook arrives, in per-chat order, none twice.
func TestRestartDeliversEverythingInOrder(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gateway.db")
	rc := newReceiver(t, always(http.StatusServiceUnavailable)) // down
	cfg := Config{MinBackoff: 2 * time.Millisecond, MaxBackoff: 20 * time.Millisecond, MaxAttempts: 1 << 30,
		PollInterval: 5 * time.Millisecond, Concurrency: 3, Timeout: 5 * time.Second}

	// The receiver is http://127.0.0.1:…: refused without the switches
	// (webhooks.allow_http, then webhooks.allow_private_networks), each
	// refusal naming its switch.
	for _, c := range []struct {
		http, private bool
		want          string
	}{{false, false, "webhooks.allow_http"}, {false, true, "webhooks.allow_http"}, {true, false, "webhooks.allow_private_networks"}} {
		strict := cfg
		strict.AllowHTTP, strict.AllowPrivateNetworks = c.http, c.private
		g0 := newGateway(t, gwOptions{strict: true, cfg: strict})
		status, b := g0.call("3.5", "register_webhook", annToken, map[string]any{"action": IncomingEvent, "secret_key": "k",
			"url": rc.srv.URL + "/app", "owner_client_id": ownerID, "type": "license"})
		wantError(t, status, b, 400, "validation", c.want)
		g0.close()
	}
	cfg.AllowHTTP, cfg.AllowPrivateNetworks = true, true

	// --- first life: the receiver answers 503 to everything.
	g1 := newGateway(t, gwOptions{path: path, cfg: cfg, strict: true})
	hooks := map[string]string{} // webhook id → action
	for _, a := range []string{IncomingChat, IncomingEvent, ChatDeactivated} {
		hooks[g1.register(a, rc.srv.URL+"/app", nil)] = a
	}
	// A second application: its own queues, same receiver.
	status, b := g1.call("3.5", "register_webhook", annToken, map[string]any{"action": IncomingEvent, "secret_key": "other",
		"url": rc.srv.URL + "/other", "owner_client_id": "client-2", "type": "license"})
	if status != 200 {
		t.Fatalf("register = %d %s", status, b)
	}
	var other struct{ ID string }
	_ = json.Unmarshal(b, &other)
	hooks[other.ID] = IncomingEvent
	stop1 := g1.run()

	var visitors []model.Visitor
	var convs []model.Conversation
	for i := range 3 {
		v := g1.visitor(fmt.Sprint("visitor-", i))
		visitors = append(visitors, v)
		convs = append(convs, g1.start(v, fmt.Sprint("hello from ", i)))
	}
	for round := range 4 {
		for i, c := range convs {
			g1.post(c.ID, vAuthor(visitors[i]), fmt.Sprintf("v%d m%d", i, round))
			g1.post(c.ID, annAuthor, fmt.Sprintf("agent to v%d m%d", i, round))
		}
	}
	if _, err := g1.d.Close(t.Context(), convs[1].ID, annAuthor, "resolved", ""); err != nil {
		t.Fatal(err)
	}
	// The worker is trying: some deliveries have been retried already.
	rc.waitFor(t, "retries while the receiver is down", func(ds []delivery) bool {
		for _, d := range ds {
			if n, _ := strconv.Atoi(d.Attempt); n >= 3 {
				return true
			}
		}
		return false
	})
	if n := len(rc.ok()); n != 0 {
		t.Fatalf("%d deliveries accepted by a receiver that is down", n)
	}
	stop1()
	g1.close()
	produced := g1.produced()

	// --- second life on the same data file; the receiver comes up.
	g2 := newGateway(t, gwOptions{path: path, cfg: cfg, strict: true})
	if n := len(g2.svc.Webhooks()); n != 4 {
		t.Fatalf("%d webhooks after restart, want 4", n)
	}
	pending := g2.pending()
	if len(pending) != len(produced) {
		t.Fatalf("%d rows pending after restart, %d produced", len(pending), len(produced))
	}
	retried := 0
	for _, r := range pending {
		if r.Attempts > 0 {
			retried++
		}
	}
	if retried == 0 {
		t.Error("no pending row carries its failed attempts across the restart")
	}
	rc.setStatus(always(http.StatusOK))
	g2.run()
	// Messages keep flowing after the restart.
	for i, c := range convs {
		if i == 1 {
			continue // closed
		}
		g2.post(c.ID, vAuthor(visitors[i]), fmt.Sprintf("v%d after restart", i))
	}
	produced = append(produced, g2.produced()...)
	rc.waitFor(t, "every delivery", func([]delivery) bool { return len(rc.ok()) >= len(produced) })
	// Let a possible duplicate show: wait until the outbox is empty.
	deadline := time.Now().Add(failAfter)
	for len(g2.pending()) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d rows still pending", len(g2.pending()))
		}
		time.Sleep(5 * time.Millisecond)
	}

	ok := rc.ok()
	// Every row arrived exactly once (by delivery id).
	seen := map[string]int{}
	for _, d := range ok {
		seen[d.ID]++
	}
	for id, n := range seen {
		if n > 1 {
			t.Errorf("delivery %s accepted %d times", id, n)
		}
	}
	for _, r := range produced {
		if seen[r.ID] != 1 {
			t.Errorf("delivery %s (%s) arrived %d times", r.ID, r.Target, seen[r.ID])
		}
	}
	if len(ok) != len(produced) {
		t.Errorf("%d deliveries accepted, %d produced", len(ok), len(produced))
	}

	// Per queue (destination, chat), arrival order is commit order.
	type qk struct {
		target string
		conv   model.ConvID
	}
	want := map[qk][]string{}
	for _, r := range produced {
		k := qk{r.Target, r.Conv}
		want[k] = append(want[k], r.ID)
	}
	byID := map[string]store.OutboxRow{}
	for _, r := range produced {
		byID[r.ID] = r
	}
	got := map[qk][]string{}
	for _, d := range ok {
		r := byID[d.ID]
		k := qk{r.Target, r.Conv}
		got[k] = append(got[k], d.ID)
	}
	for k, ids := range want {
		if !slices.Equal(got[k], ids) {
			t.Errorf("queue %v: arrival order differs from commit order", k)
		}
	}

	// And in LiveChat terms: per application and chat, incoming_chat first,
	// events in thread order, chat_deactivated last; envelopes intact.
	for i, c := range convs {
		for _, app := range []string{"/app", "/other"} {
			var actions []string
			var lastSeq uint64
			for _, d := range ok {
				if d.Env.OrganizationID != orgID || (app == "/app") != (d.Env.SecretKey == secretKey) {
					continue
				}
				var p struct {
					ThreadID string     `json:"thread_id"`
					Event    wire.Event `json:"event"`
					Chat     wire.Chat  `json:"chat"`
				}
				_ = json.Unmarshal(d.Env.Payload, &p)
				if p.ThreadID != string(c.ID) && p.Chat.Thread.ID != string(c.ID) {
					continue
				}
				if hooks[d.Env.WebhookID] != d.Env.Action {
					t.Errorf("webhook %s delivered action %s", d.Env.WebhookID, d.Env.Action)
				}
				actions = append(actions, d.Env.Action)
				if d.Env.Action == IncomingEvent {
					_, seq, _ := wire.ParseEventID(p.Event.ID)
					if seq <= lastSeq {
						t.Errorf("chat %d %s: event seq %d after %d", i, app, seq, lastSeq)
					}
					lastSeq = seq
				}
			}
			if app == "/other" {
				if len(actions) == 0 || slices.ContainsFunc(actions, func(a string) bool { return a != IncomingEvent }) {
					t.Errorf("chat %d, second application: %v", i, actions)
				}
				continue
			}
			if len(actions) < 2 || actions[0] != IncomingChat ||
				slices.Contains(actions[1:], IncomingChat) ||
				(i == 1) != (actions[len(actions)-1] == ChatDeactivated) {
				t.Errorf("chat %d: actions %v", i, actions)
			}
		}
	}
	if fs, err := g2.svc.Failures(t.Context(), "", 0); err != nil || len(fs) != 0 {
		t.Errorf("failures = %+v, %v", fs, err)
	}
	t.Logf("%d deliveries; %d requests in all (%d refused while down)", len(ok), len(rc.all()), len(rc.all())-len(ok))
}
