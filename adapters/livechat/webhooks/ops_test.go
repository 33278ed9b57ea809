package webhooks

import (
	"context"
	"net/http"
	"slices"
	"testing"
	"time"

	"chatgate/store"
)

// TestRetryNow: a delivery waiting out its backoff is listed as pending
// with its error; RetryNow makes it due at once (attempts kept) and the
// next pass delivers it without the clock moving.
func TestRetryNow(t *testing.T) {
	clk := newClock()
	g := newGateway(t, gwOptions{clock: clk, cfg: Config{MaxAttempts: 5, MinBackoff: time.Hour, MaxBackoff: time.Hour,
		Rand: func() float64 { return 1 }}})
	rc := newReceiver(t, always(http.StatusInternalServerError))
	hook := g.register(IncomingEvent, rc.srv.URL, nil)
	v := g.visitor("vera")
	c := g.start(v, "hi")
	g.post(c.ID, vAuthor(v), "first")
	g.deliverDue()

	ctx := context.Background()
	p, err := g.svc.PendingDeliveries(ctx, 10)
	if err != nil || len(p) != 1 {
		t.Fatalf("pending = %+v, %v", p, err)
	}
	if p[0].WebhookID != hook || p[0].Action != IncomingEvent || p[0].Attempts != 1 || p[0].LastError != "HTTP 500" ||
		!p[0].NextAt.Equal(clk.Now().Add(time.Hour)) {
		t.Fatalf("pending row = %+v", p[0])
	}
	rc.setStatus(always(http.StatusOK))
	g.deliverDue()
	if len(rc.ok()) != 0 {
		t.Fatal("delivered before its backoff without RetryNow")
	}
	n, err := g.svc.RetryNow(ctx)
	if err != nil || n != 1 {
		t.Fatalf("RetryNow = %d, %v", n, err)
	}
	g.deliverDue()
	if ok := rc.ok(); len(ok) != 1 || ok[0].Attempt != "2" {
		t.Fatalf("after RetryNow: delivered %+v", ok)
	}
	if p, _ := g.svc.PendingDeliveries(ctx, 10); len(p) != 0 {
		t.Fatalf("still pending: %+v", p)
	}
	if n, err := g.svc.RetryNow(ctx); err != nil || n != 0 {
		t.Fatalf("RetryNow with nothing waiting = %d, %v", n, err)
	}
}

// TestReviveExhausted: deliveries given up on while the receiver failed
// are brought back by Revive once it is fixed and delivered in the order
// they happened, each once; another deliverer's exhausted rows (a relay
// connector's) are left alone.
func TestReviveExhausted(t *testing.T) {
	clk := newClock()
	g := newGateway(t, gwOptions{clock: clk, cfg: Config{MaxAttempts: 1}})
	rc := newReceiver(t, always(http.StatusInternalServerError))
	g.register(IncomingEvent, rc.srv.URL, nil)
	v := g.visitor("vera")
	c := g.start(v, "hi")
	for _, text := range []string{"one", "two", "three"} {
		g.post(c.ID, vAuthor(v), text)
	}
	g.deliverDue()
	ctx := context.Background()
	st := g.d.Store()
	relayRow := store.OutboxRow{ID: "relay-row", Target: "relay/desk/", Conv: c.ID, Payload: []byte(`{}`)}
	if err := st.Commit(ctx, &store.Batch{Outbox: []store.OutboxRow{relayRow}}); err != nil {
		t.Fatal(err)
	}
	rows, err := st.OutboxDue(ctx, "relay/", clk.Now(), 0, 0)
	if err != nil || len(rows) != 1 {
		t.Fatalf("relay row = %v, %v", rows, err)
	}
	if err := st.OutboxExhaust(ctx, rows[0]); err != nil {
		t.Fatal(err)
	}
	failed, err := g.svc.Failures(ctx, "", 0)
	if err != nil || len(failed) != 4 { // the webhook's 3 (and the relay row, listed as it is)
		t.Fatalf("failures = %d, %v", len(failed), err)
	}
	var want []string
	for _, f := range failed {
		if f.WebhookID != "" {
			want = append(want, f.DeliveryID)
		}
	}
	if len(want) != 3 || len(rc.ok()) != 0 {
		t.Fatalf("exhausted webhook deliveries %v, delivered %d", want, len(rc.ok()))
	}

	rc.setStatus(always(http.StatusOK))
	g.deliverDue()
	if len(rc.ok()) != 0 {
		t.Fatal("an exhausted delivery went out without Revive")
	}
	n, err := g.svc.Revive(ctx)
	if err != nil || n != 3 {
		t.Fatalf("Revive = %d, %v; want 3", n, err)
	}
	g.deliverDue()
	var got []string
	for _, d := range rc.ok() {
		got = append(got, d.ID)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("delivered after Revive %v, want %v (in order, once each)", got, want)
	}
	left, err := st.OutboxExhausted(ctx, "", 0)
	if err != nil || len(left) != 1 || left[0].ID != "relay-row" {
		t.Fatalf("exhausted after Revive = %+v, %v; want only the relay row", left, err)
	}
	if n, err := g.svc.Revive(ctx); err != nil || n != 0 {
		t.Fatalf("second Revive = %d, %v", n, err)
	}
}
