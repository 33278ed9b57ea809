package webhooks

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"chatgate/adapters/livechat/wire"
	"chatgate/core/desk"
	"chatgate/core/model"
	"chatgate/store"
)

// deliverDue runs one synchronous pass of the worker.
func (g *gateway) deliverDue() {
	g.t.Helper()
	if err := g.svc.deliverDue(context.Background()); err != nil {
		g.t.Fatal(err)
	}
}

func TestEnvelopeAndPayloads(t *testing.T) {
	clk := newClock()
	g := newGateway(t, gwOptions{clock: clk})
	rc := newReceiver(t, always(http.StatusOK))
	// One application, one URL, one webhook per action (as LiveChat
	// requires): the chat's deliveries share one queue and keep its order.
	hChat := g.register(IncomingChat, rc.srv.URL, map[string]any{"additional_data": []string{"chat_presence_user_ids", "chat_properties"}})
	hEvent := g.register(IncomingEvent, rc.srv.URL, nil)
	hUpd := g.register(EventUpdated, rc.srv.URL, nil)
	hDeact := g.register(ChatDeactivated, rc.srv.URL, nil)

	v := g.visitor("vera")
	c := g.start(v, "hello")
	msg := g.post(c.ID, annAuthor, "hi, how can I help?")
	ev, _, err := g.d.Post(context.Background(), desk.PostRequest{Conv: c.ID, Author: annAuthor,
		Draft: desk.Draft{Text: "note for agents", Visibility: model.VisibleAgents}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.d.EditEvent(context.Background(), c.ID, msg.Seq, annAuthor, "hi, how may I help?", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := g.d.Close(context.Background(), c.ID, annAuthor, "done", ""); err != nil {
		t.Fatal(err)
	}
	g.deliverDue()

	got := rc.ok()
	var actions []string
	for _, d := range got {
		actions = append(actions, d.Env.Action)
	}
	// Start (incoming_chat with the greeting and the join), two posts, the
	// edit, the close (its system message, then chat_deactivated).
	want := []string{IncomingChat, IncomingEvent, IncomingEvent, EventUpdated, IncomingEvent, ChatDeactivated}
	if !slices.Equal(actions, want) {
		t.Fatalf("actions = %v, want %v", actions, want)
	}
	ids := map[string]bool{}
	for _, d := range got {
		// The exact envelope keys of §3.2 (v3.4+), nothing else.
		var keys map[string]json.RawMessage
		if err := json.Unmarshal(d.Raw, &keys); err != nil {
			t.Fatal(err)
		}
		var names []string
		for k := range keys {
			names = append(names, k)
		}
		slices.Sort(names)
		if fmt.Sprint(names) != "[action additional_data organization_id payload secret_key webhook_id]" {
			t.Errorf("envelope keys = %v", names)
		}
		if d.Env.SecretKey != secretKey || d.Env.OrganizationID != orgID {
			t.Errorf("envelope secret/org = %q/%q", d.Env.SecretKey, d.Env.OrganizationID)
		}
		if ct := d.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("Content-Type = %q", ct)
		}
		if d.ID == "" || ids[d.ID] || d.Attempt != "1" {
			t.Errorf("delivery id %q (seen %v), attempt %q", d.ID, ids[d.ID], d.Attempt)
		}
		ids[d.ID] = true
	}
	byID := map[string]string{IncomingChat: hChat, IncomingEvent: hEvent, EventUpdated: hUpd, ChatDeactivated: hDeact}
	for _, d := range got {
		if d.Env.WebhookID != byID[d.Env.Action] {
			t.Errorf("%s delivered with webhook_id %s", d.Env.Action, d.Env.WebhookID)
		}
	}

	// incoming_chat: the chat with its thread and first events (agent
	// audience), plus the additional data asked for.
	var ic struct {
		Chat wire.Chat `json:"chat"`
	}
	if err := json.Unmarshal(got[0].Env.Payload, &ic); err != nil {
		t.Fatal(err)
	}
	if ic.Chat.ID != string(v.ID) || ic.Chat.Thread.ID != string(c.ID) || len(ic.Chat.Users) != 2 ||
		len(ic.Chat.Thread.Events) != 2 || ic.Chat.Thread.Events[0].Text != "hello" ||
		ic.Chat.Thread.Events[1].SystemMessageType != "routing.assigned" {
		t.Errorf("incoming_chat payload = %s", got[0].Env.Payload)
	}
	var ad struct {
		Props map[string]any `json:"chat_properties"`
		Users []string       `json:"chat_presence_user_ids"`
	}
	if err := json.Unmarshal(got[0].Env.AdditionalData, &ad); err != nil || ad.Props == nil ||
		!slices.Equal(ad.Users, []string{string(v.ID), string(ann.ID)}) {
		t.Errorf("additional_data = %s (%v)", got[0].Env.AdditionalData, err)
	}
	if string(got[1].Env.AdditionalData) != "{}" {
		t.Errorf("additional_data without a request = %s", got[1].Env.AdditionalData)
	}
	// incoming_event, agents-only events included (webhooks go to the
	// licence, which sees what agents see).
	var ie incomingEvent
	if err := json.Unmarshal(got[2].Env.Payload, &ie); err != nil {
		t.Fatal(err)
	}
	if ie.ChatID != string(v.ID) || ie.ThreadID != string(c.ID) || ie.Event.ID != wire.EventID(c.ID, ev.Seq) ||
		ie.Event.Visibility != "agents" || ie.Event.AuthorID != string(ann.ID) {
		t.Errorf("incoming_event payload = %s", got[2].Env.Payload)
	}
	if err := json.Unmarshal(got[3].Env.Payload, &ie); err != nil || ie.Event.Text != "hi, how may I help?" ||
		ie.Event.ID != wire.EventID(c.ID, msg.Seq) {
		t.Errorf("event_updated payload = %s", got[3].Env.Payload)
	}
	var cd chatDeactivated
	if err := json.Unmarshal(got[5].Env.Payload, &cd); err != nil || cd != (chatDeactivated{ChatID: string(v.ID), ThreadID: string(c.ID), UserID: string(ann.ID)}) {
		t.Errorf("chat_deactivated payload = %s", got[5].Env.Payload)
	}
	if p := g.pending(); len(p) != 0 {
		t.Errorf("%d rows still pending", len(p))
	}
}

func TestFilters(t *testing.T) {
	g := newGateway(t, gwOptions{})
	rc := newReceiver(t, always(http.StatusOK))
	customer := g.register(IncomingEvent, rc.srv.URL+"/c", map[string]any{"filters": map[string]any{"author_type": "customer"}})
	v1, v2 := g.visitor("one"), g.visitor("two")
	onlyV2 := g.register(IncomingEvent, rc.srv.URL+"/v2", map[string]any{"filters": map[string]any{
		"chat_presence": map[string]any{"user_ids": map[string]any{"values": []string{string(v2.ID)}}}}})
	mine := g.register(IncomingEvent, rc.srv.URL+"/mine", map[string]any{"filters": map[string]any{"only_my_chats": true}})
	c1 := g.start(v1, "hi")
	g.post(c1.ID, vAuthor(v1), "from customer")
	g.post(c1.ID, annAuthor, "from agent")
	c2 := g.start(v2, "hi")
	g.post(c2.ID, annAuthor, "to two")
	// A chat whose chat property source.client_id is the webhook owner's:
	// only_my_chats lets its events through.
	v3 := g.visitor("three")
	v3.Props = map[string]map[string]json.RawMessage{"source": {"client_id": json.RawMessage(`"` + ownerID + `"`)}}
	if err := g.st.Commit(context.Background(), &store.Batch{Visitors: []model.Visitor{v3}}); err != nil {
		t.Fatal(err)
	}
	c3 := g.start(v3, "hi")
	g.post(c3.ID, annAuthor, "to my chat")
	g.deliverDue()
	seen := map[string][]string{}
	for _, d := range rc.ok() {
		var ie incomingEvent
		_ = json.Unmarshal(d.Env.Payload, &ie)
		seen[d.Env.WebhookID] = append(seen[d.Env.WebhookID], ie.Event.Text)
	}
	if !slices.Equal(seen[customer], []string{"from customer"}) {
		t.Errorf("author_type customer got %v", seen[customer])
	}
	if !slices.Equal(seen[onlyV2], []string{"to two"}) {
		t.Errorf("user_ids filter got %v", seen[onlyV2])
	}
	if !slices.Equal(seen[mine], []string{"to my chat"}) {
		t.Errorf("only_my_chats got %v, want only the chat whose source.client_id is the owner's", seen[mine])
	}
}

// TestPerChatOrder: a failing head holds back its conversation's later
// rows for that webhook; other conversations and other webhooks go on.
func TestPerChatOrder(t *testing.T) {
	clk := newClock()
	g := newGateway(t, gwOptions{clock: clk, cfg: Config{MinBackoff: time.Second, MaxBackoff: time.Minute, Rand: func() float64 { return 1 }}})
	va, vb := g.visitor("a"), g.visitor("b")
	// Receiver: chat A fails on /one until allowed.
	var allowA bool
	rc := newReceiver(t, always(http.StatusOK))
	one := g.register(IncomingEvent, rc.srv.URL+"/one", nil)
	two := g.register(IncomingEvent, rc.srv.URL+"/two", nil)
	rc.setStatus(func(d *delivery) int {
		if d.Env.WebhookID == one && strings.Contains(string(d.Raw), `"chat_id":"`+string(va.ID)+`"`) && !allowA {
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	})
	ca, cb := g.start(va, "a0"), g.start(vb, "b0")
	for i := 1; i <= 3; i++ {
		g.post(ca.ID, vAuthor(va), fmt.Sprint("a", i))
		g.post(cb.ID, vAuthor(vb), fmt.Sprint("b", i))
	}
	texts := func(hook string, chat model.VisitorID, ds []delivery) []string {
		var out []string
		for _, d := range ds {
			var ie incomingEvent
			_ = json.Unmarshal(d.Env.Payload, &ie)
			if d.Env.WebhookID == hook && ie.ChatID == string(chat) {
				out = append(out, ie.Event.Text)
			}
		}
		return out
	}
	g.deliverDue()
	all := rc.all()
	if got := texts(one, va.ID, all); !slices.Equal(got, []string{"a1"}) {
		t.Fatalf("webhook one, chat A: attempts for %v, want only the head a1", got)
	}
	if got := texts(one, vb.ID, rc.ok()); !slices.Equal(got, []string{"b1", "b2", "b3"}) {
		t.Errorf("webhook one, chat B = %v", got)
	}
	if got := texts(two, va.ID, rc.ok()); !slices.Equal(got, []string{"a1", "a2", "a3"}) {
		t.Errorf("webhook two, chat A = %v", got)
	}
	// Not due again before the backoff (1s after the first failure).
	clk.Advance(999 * time.Millisecond)
	g.deliverDue()
	if n := len(rc.all()); n != len(all) {
		t.Fatalf("%d requests before the retry was due", n-len(all))
	}
	clk.Advance(time.Millisecond)
	g.deliverDue() // second failure: next wait is 2s
	if got := texts(one, va.ID, rc.all()); !slices.Equal(got, []string{"a1", "a1"}) {
		t.Fatalf("after the first retry: %v", got)
	}
	rc.mu.Lock()
	allowA = true
	rc.mu.Unlock()
	clk.Advance(2 * time.Second)
	g.deliverDue()
	if got := texts(one, va.ID, rc.ok()); !slices.Equal(got, []string{"a1", "a2", "a3"}) {
		t.Errorf("webhook one, chat A after recovery = %v", got)
	}
	var attempts []string
	for _, d := range rc.all() {
		if d.Env.WebhookID == one && strings.Contains(string(d.Env.Payload), `"text":"a1"`) {
			attempts = append(attempts, d.Attempt)
		}
	}
	if !slices.Equal(attempts, []string{"1", "2", "3"}) {
		t.Errorf("attempt headers of a1 = %v", attempts)
	}
	if p := g.pending(); len(p) != 0 {
		t.Errorf("%d rows still pending", len(p))
	}
}

func TestBackoffSchedule(t *testing.T) {
	s := mustNew(t, Config{MinBackoff: time.Second, MaxBackoff: 30 * time.Second, Rand: func() float64 { return 1 }})
	var got []time.Duration
	for n := 1; n <= 7; n++ {
		got = append(got, s.Backoff(n))
	}
	want := []time.Duration{1, 2, 4, 8, 16, 30, 30}
	for i := range want {
		want[i] *= time.Second
	}
	if !slices.Equal(got, want) {
		t.Errorf("backoff with jitter at its top = %v, want %v", got, want)
	}
	s.cfg.Rand = func() float64 { return 0 }
	if d := s.Backoff(3); d != 2*time.Second {
		t.Errorf("backoff(3) with jitter at its bottom = %v, want 2s", d)
	}
	s.cfg.Rand = func() float64 { return 0.5 }
	if d := s.Backoff(1); d != 750*time.Millisecond {
		t.Errorf("backoff(1) with jitter in the middle = %v, want 750ms", d)
	}
	if d := mustNew(t, Config{}).Backoff(100); d < defaultMaxBackoff/2 || d > defaultMaxBackoff {
		t.Errorf("default backoff(100) = %v", d)
	}
}

// TestExhaustion drives a delivery to exhaustion with an injected clock:
// each wait follows the schedule, the row is kept and listed, the counter
// is told, and the queue moves on.
func TestExhaustion(t *testing.T) {
	clk := newClock()
	var mu sync.Mutex
	outcomes := map[string]int{}
	g := newGateway(t, gwOptions{clock: clk, cfg: Config{MaxAttempts: 4, MinBackoff: time.Second, MaxBackoff: 3 * time.Second,
		Rand: func() float64 { return 1 }, OnDelivery: func(action, outcome string) {
			mu.Lock()
			outcomes[action+"/"+outcome]++
			mu.Unlock()
		}}})
	rc := newReceiver(t, always(http.StatusBadGateway))
	hook := g.register(IncomingEvent, rc.srv.URL, nil)
	v := g.visitor("vera")
	c := g.start(v, "hi")
	g.post(c.ID, vAuthor(v), "first")
	g.post(c.ID, vAuthor(v), "second")

	head := func() store.OutboxRow {
		t.Helper()
		p := g.pending()
		if len(p) == 0 {
			t.Fatal("no pending row")
		}
		return p[0]
	}
	start := clk.Now()
	g.deliverDue()
	for i, wait := range []time.Duration{time.Second, 2 * time.Second, 3 * time.Second} {
		r := head()
		if r.Attempts != i+1 || r.LastError != "HTTP 502" || !r.NextAt.Equal(clk.Now().Add(wait)) {
			t.Fatalf("after attempt %d: attempts %d, error %q, next %v (now %v, want +%v)", i+1, r.Attempts, r.LastError,
				r.NextAt, clk.Now(), wait)
		}
		clk.Advance(wait - time.Nanosecond)
		n := len(rc.all())
		g.deliverDue()
		if len(rc.all()) != n {
			t.Fatalf("attempt %d came before its time", i+2)
		}
		clk.Advance(time.Nanosecond)
		g.deliverDue()
	}
	// Four failures: "first" is exhausted; "second" got its first attempt
	// in the same pass (the queue went on) and waits.
	if got := clk.Now().Sub(start); got != 6*time.Second {
		t.Errorf("exhausted after %v, want 6s", got)
	}
	p := g.pending()
	if len(p) != 1 || p[0].Attempts != 1 || !strings.Contains(string(p[0].Payload), `"second"`) {
		t.Fatalf("pending after exhaustion = %+v", p)
	}
	mu.Lock()
	if outcomes["incoming_event/retry"] != 4 || outcomes["incoming_event/exhausted"] != 1 {
		t.Errorf("outcomes = %v", outcomes)
	}
	mu.Unlock()

	// Visible through the API, POST and GET.
	status, b := g.call("3.5", "list_webhook_failures", annToken, map[string]any{"webhook_id": hook})
	if status != 200 {
		t.Fatalf("list_webhook_failures = %d %s", status, b)
	}
	var fs []Failure
	if err := json.Unmarshal(b, &fs); err != nil || len(fs) != 1 {
		t.Fatalf("failures = %s (%v)", b, err)
	}
	f := fs[0]
	if f.WebhookID != hook || f.Action != IncomingEvent || f.ChatID != string(v.ID) || f.ThreadID != string(c.ID) ||
		f.Attempts != 4 || f.LastError != "HTTP 502" || f.ExhaustedAt != wire.Time(clk.Now()) ||
		!strings.Contains(string(f.Payload), `"text":"first"`) || f.DeliveryID != rc.all()[0].ID {
		t.Errorf("failure = %+v", f)
	}
	req, _ := http.NewRequest(http.MethodGet, g.api.URL+"/v3.5/configuration/action/list_webhook_failures?limit=10", nil)
	req.Header.Set("Authorization", "Bearer "+annToken)
	if status, b := do(t, req); status != 200 || !strings.Contains(string(b), f.DeliveryID) {
		t.Errorf("GET list_webhook_failures = %d %s", status, b)
	}
	status, b = g.call("3.5", "list_webhook_failures", annToken, map[string]any{"limit": 5000})
	wantError(t, status, b, 400, "validation", "limit")
}

func TestMaxAge(t *testing.T) {
	clk := newClock()
	g := newGateway(t, gwOptions{clock: clk, cfg: Config{MaxAttempts: 100, MaxAge: 10 * time.Second, MinBackoff: 4 * time.Second,
		MaxBackoff: time.Minute, Rand: func() float64 { return 1 }}})
	rc := newReceiver(t, always(http.StatusInternalServerError))
	g.register(IncomingEvent, rc.srv.URL, nil)
	v := g.visitor("vera")
	c := g.start(v, "hi")
	g.post(c.ID, vAuthor(v), "old")
	g.deliverDue() // t=0 fails; next at 4s
	clk.Advance(4 * time.Second)
	g.deliverDue() // t=4 fails; 8s wait would pass the age limit: next at 10s
	if p := g.pending(); len(p) != 1 || !p[0].NextAt.Equal(p[0].CreatedAt.Add(10*time.Second)) {
		t.Fatalf("pending = %+v", p)
	}
	clk.Advance(6 * time.Second)
	g.deliverDue() // t=10 fails: exhausted by age
	if p := g.pending(); len(p) != 0 {
		t.Fatalf("still pending: %+v", p)
	}
	fs, err := g.svc.Failures(t.Context(), "", 0)
	if err != nil || len(fs) != 1 || fs[0].Attempts != 3 {
		t.Fatalf("failures = %+v, %v", fs, err)
	}
}

// TestUnregisteredExhausts: rows owed to a webhook that is unregistered
// before they go are not sent, and not dropped silently either.
func TestUnregisteredExhausts(t *testing.T) {
	g := newGateway(t, gwOptions{})
	rc := newReceiver(t, always(http.StatusOK))
	hook := g.register(IncomingEvent, rc.srv.URL, nil)
	v := g.visitor("vera")
	c := g.start(v, "hi")
	g.post(c.ID, vAuthor(v), "one")
	g.post(c.ID, vAuthor(v), "two")
	if status, b := g.call("3.5", "unregister_webhook", annToken, map[string]any{"id": hook, "owner_client_id": ownerID}); status != 200 {
		t.Fatalf("unregister = %d %s", status, b)
	}
	g.post(c.ID, vAuthor(v), "three") // no webhook any more: no row
	g.deliverDue()
	if n := len(rc.all()); n != 0 {
		t.Errorf("%d deliveries to an unregistered webhook", n)
	}
	fs, err := g.svc.Failures(t.Context(), hook, 0)
	if err != nil || len(fs) != 2 || fs[0].LastError != "webhook unregistered" {
		t.Fatalf("failures = %+v, %v", fs, err)
	}
	if p := g.pending(); len(p) != 0 {
		t.Errorf("pending = %d", len(p))
	}
}

// TestBoundedConcurrency: Run never has more than Concurrency deliveries
// in flight, and never two of one queue.
func TestBoundedConcurrency(t *testing.T) {
	g := newGateway(t, gwOptions{cfg: Config{Concurrency: 2, PollInterval: 10 * time.Millisecond}})
	release := make(chan struct{})
	var mu sync.Mutex
	inflight, peak := map[string]int{}, 0
	total := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var env Envelope
		_ = json.NewDecoder(req.Body).Decode(&env)
		var ie incomingEvent
		_ = json.Unmarshal(env.Payload, &ie)
		mu.Lock()
		inflight[ie.ThreadID]++
		n := 0
		for _, k := range inflight {
			n += k
		}
		peak = max(peak, n)
		if inflight[ie.ThreadID] > 1 {
			t.Errorf("two deliveries of thread %s at once", ie.ThreadID)
		}
		mu.Unlock()
		select {
		case <-release:
		case <-req.Context().Done():
		}
		mu.Lock()
		inflight[ie.ThreadID]--
		total++
		mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	g.register(IncomingEvent, srv.URL, nil)
	for i := range 5 {
		v := g.visitor(fmt.Sprint("v", i))
		c := g.start(v, "hi")
		g.post(c.ID, vAuthor(v), "m1")
		g.post(c.ID, vAuthor(v), "m2")
	}
	stop := g.run()
	deadline := time.Now().Add(failAfter)
	for {
		mu.Lock()
		n := peak
		mu.Unlock()
		if n >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("deliveries never reached the concurrency bound")
		}
		time.Sleep(5 * time.Millisecond)
	}
	close(release)
	for {
		mu.Lock()
		n := total
		mu.Unlock()
		if n == 10 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of 10 delivered", n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	stop()
	mu.Lock()
	defer mu.Unlock()
	if peak > 2 {
		t.Errorf("peak concurrency %d, bound 2", peak)
	}
}

func zeroLog() zerolog.Logger { return zerolog.Nop() }

// TestReceiverClosed: a receiver that is not listening is a failed attempt
// like any other, recorded with the transport error (without the URL).
func TestReceiverClosed(t *testing.T) {
	clk := newClock()
	g := newGateway(t, gwOptions{clock: clk})
	closed := httptest.NewServer(http.NotFoundHandler())
	url := closed.URL + "/hook?token=in-the-url"
	closed.Close()
	g.register(IncomingEvent, url, nil)
	v := g.visitor("vera")
	c := g.start(v, "hi")
	g.post(c.ID, vAuthor(v), "anyone there?")
	g.deliverDue()
	p := g.pending()
	if len(p) != 1 || p[0].Attempts != 1 || p[0].LastError == "" || strings.Contains(p[0].LastError, "in-the-url") {
		t.Fatalf("pending = %+v", p)
	}
	t.Logf("last error: %s", p[0].LastError)
}

func mustNew(t *testing.T, cfg Config) *Service {
	t.Helper()
	s, err := New(nil, cfg, zeroLog())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestNoKicksWithoutWebhooks: with no webhook registered, published
// changes do not wake the dispatcher (each wake-up reads the store's
// outbox: a statement per message on PostgreSQL); with one, every change
// does.
func TestNoKicksWithoutWebhooks(t *testing.T) {
	g := newGateway(t, gwOptions{cfg: Config{PollInterval: time.Hour}})
	last := make(chan struct{})
	var once sync.Once
	srv := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, req *http.Request) {
		if b, _ := io.ReadAll(req.Body); bytes.Contains(b, []byte(`"last"`)) {
			once.Do(func() { close(last) })
		}
	}))
	t.Cleanup(srv.Close)
	stop := g.run()
	defer stop()
	v := g.visitor("v")
	// awaitKicks waits until follow has kicked n times in all (so that it
	// has read every change published before the last of them).
	awaitKicks := func(n uint64) {
		t.Helper()
		deadline := time.Now().Add(failAfter)
		for g.svc.noticeKicks.Load() < n {
			if time.Now().After(deadline) {
				t.Fatalf("%d kicks, want %d", g.svc.noticeKicks.Load(), n)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	id := g.register(IncomingEvent, srv.URL, nil)
	c := g.start(v, "hi") // follow is subscribed once this change kicks
	awaitKicks(1)
	if status, b := g.call("3.5", "unregister_webhook", annToken, map[string]any{"id": id, "owner_client_id": ownerID}); status != http.StatusOK {
		t.Fatalf("unregister_webhook = %d %s", status, b)
	}
	for i := range 20 {
		g.post(c.ID, vAuthor(v), fmt.Sprint("m", i))
	}
	g.register(IncomingEvent, srv.URL, nil)
	g.post(c.ID, vAuthor(v), "last")
	// Delivered only through a kick (the poll is an hour away): follow
	// has read every change by then.
	select {
	case <-last:
	case <-time.After(failAfter):
		t.Fatal(`"last" not delivered`)
	}
	if n := g.svc.noticeKicks.Load(); n != 2 {
		t.Fatalf("%d kicks for 20 changes without a webhook and 2 with one, want 2", n)
	}
}
