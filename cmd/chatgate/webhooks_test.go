package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// loopbackReceiver is a webhook receiver on http://127.0.0.1 that answers
// 503 while down and records what it accepts while up.
type loopbackReceiver struct {
	srv      *httptest.Server
	mu       sync.Mutex
	up       bool
	refused  int
	accepted []receivedHook
}

type receivedHook struct {
	id   string // X-Webhook-Delivery-Id
	text string // the event's text
}

func newLoopbackReceiver(t *testing.T) *loopbackReceiver {
	r := &loopbackReceiver{}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		defer r.mu.Unlock()
		if !r.up {
			r.refused++
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		var env struct {
			Payload struct {
				Event struct {
					Text string `json:"text"`
				} `json:"event"`
			} `json:"payload"`
		}
		_ = json.Unmarshal(b, &env)
		r.accepted = append(r.accepted, receivedHook{id: req.Header.Get("X-Webhook-Delivery-Id"), text: env.Payload.Event.Text})
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *loopbackReceiver) state() (refused int, accepted []receivedHook) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.refused, append([]receivedHook(nil), r.accepted...)
}

func (r *loopbackReceiver) setUp() { r.mu.Lock(); r.up = true; r.mu.Unlock() }

// waitUntil polls cond (a failure timeout, not a speed assertion).
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestWebhookReceiverOnLoopback (issue 11 item 4): a receiver at
// http://127.0.0.1 is refused, naming webhooks.allow_http, without the
// switches; with webhooks.allow_http and webhooks.allow_private_networks
// it works: down while messages flow, chatgate restarted, up again, and
// every delivery arrives once, in order.
func TestWebhookReceiverOnLoopback(t *testing.T) {
	rc := newLoopbackReceiver(t)
	c := authzClient{t: t, http: &http.Client{Timeout: 15 * time.Second}}
	admin := map[string]string{"Authorization": "Bearer " + adminAgentToken}
	register := func(base string) authzResult {
		return c.do("POST", base+"/v3.5/configuration/action/register_webhook", admin, jsonBody(map[string]any{
			"action": "incoming_event", "secret_key": "whsec-0123", "url": rc.srv.URL + "/hook",
			"owner_client_id": "app", "type": "license"}), "")
	}

	// Without the switches: refused, the message names the switch.
	g0 := startAuthzGateway(t, authzConfig(t, ""), nil)
	if r := register("http://" + g0.addr); r.status != 400 || !strings.Contains(string(r.raw), "webhooks.allow_http") {
		t.Fatalf("without allow_http: %d %s", r.status, r.raw)
	}
	g0.stop()

	cfgPath := authzConfig(t, "")
	f, err := os.OpenFile(cfgPath, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = f.WriteString("webhooks:\n  allow_http: true\n  allow_private_networks: true\n  min_backoff: 10ms\n  max_backoff: 50ms\n")
	f.Close()
	data := filepath.Join(t.TempDir(), "wh.db")
	g1 := startGateway(t, cfgPath, data)
	base := "http://" + g1.addr
	if r := register(base); r.status != 200 {
		t.Fatalf("with the switches: %d %s", r.status, r.raw)
	}
	// A customer chats while the receiver is down.
	tok := c.must("POST", base+"/v2/customer/token", nil, `{"grant_type":"cookie"}`, "")["access_token"].(string)
	auth := map[string]string{"Authorization": "Bearer " + tok}
	act := func(action string, payload any) map[string]any {
		return c.must("POST", base+"/v3.5/customer/action/"+action+"?organization_id="+authzOrg, auth, jsonBody(payload), "")
	}
	chat := act("start_chat", map[string]any{"chat": map[string]any{"thread": map[string]any{
		"events": []any{map[string]any{"type": "message", "text": "first"}}}}})["chat_id"].(string)
	var want []string
	for i := range 5 {
		text := fmt.Sprint("message ", i)
		act("send_event", map[string]any{"chat_id": chat, "event": map[string]any{"type": "message", "text": text}})
		want = append(want, text)
	}
	waitUntil(t, "attempts refused while the receiver is down", func() bool { n, _ := rc.state(); return n >= 3 })
	g1.stop()

	rc.setUp()
	g2 := startGateway(t, cfgPath, data)
	_ = g2
	waitUntil(t, "every delivery", func() bool { _, acc := rc.state(); return len(acc) >= len(want) })
	time.Sleep(200 * time.Millisecond) // room for a duplicate to show
	_, acc := rc.state()
	var got []string
	seen := map[string]bool{}
	for _, h := range acc {
		if seen[h.id] {
			t.Errorf("delivery %s accepted twice", h.id)
		}
		seen[h.id] = true
		if h.text != "" {
			got = append(got, h.text)
		}
	}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("delivered %q, want %q", got, want)
	}
}
