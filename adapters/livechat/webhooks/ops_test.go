package webhooks

import (
	"context"
	"net/http"
	"testing"
	"time"
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
