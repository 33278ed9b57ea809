package webhooks

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"chatgate/core/outbox"
	"chatgate/store"
)

// Envelope is the body of every delivery: LiveChat's v3.4+ webhook
// envelope (§3.2).
type Envelope struct {
	WebhookID      string          `json:"webhook_id"`
	SecretKey      string          `json:"secret_key"`
	Action         string          `json:"action"`
	OrganizationID string          `json:"organization_id"`
	AdditionalData json.RawMessage `json:"additional_data"`
	Payload        json.RawMessage `json:"payload"`
}

// Run delivers the outbox until ctx ends, then lets the attempts in flight
// finish (each is bounded by Timeout) and records their outcomes, starts no
// other, and returns nil. Finishing rather than abandoning them keeps a
// receiver from getting a delivery again after a restart because the
// gateway stopped listening for its answer.
//
// One dispatcher reads the due queues from the store and hands each to one
// of Concurrency workers, never a queue that is already being delivered; a
// worker delivers its queue's rows in order until one fails (the row is
// rescheduled and the queue waits for it) or the rows run out. The
// dispatcher looks again when a worker finishes, when Kick or the bus says
// something was committed, and every PollInterval for due retries.
func (s *Service) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	if s.cfg.Bus != nil {
		wg.Go(func() { s.follow(ctx) })
	}
	deliver := func(ctx context.Context) {
		outbox.Dispatcher{
			Store: s.st, Prefix: targetPrefix, Concurrency: s.cfg.Concurrency, PerQueue: perQueue,
			PollInterval: s.cfg.PollInterval, Now: s.cfg.Now, Kick: s.kick,
			Deliver: s.deliverQueue,
			OnReadError: func(err error) {
				s.log.Warn().Err(err).Msg("webhooks: read due deliveries")
			},
		}.Run(ctx)
	}
	if s.cfg.Exclusive != nil {
		s.cfg.Exclusive(ctx, "webhooks", deliver)
	} else {
		deliver(ctx)
	}
	wg.Wait()
	return nil
}

// follow kicks the dispatcher after every change the desk publishes (the
// outbox rows of a change are committed before it is published), as long
// as a webhook is registered: without one no change writes a row of
// ours, and a kick would only read the store for nothing (on PostgreSQL
// it was 0.11–0.14 statements per relayed message, docs/performance.md
// round 5). A row committed by a node that learnt of a new registration
// before this one did is delivered within PollInterval, and at once from
// this node's reload of the registry on.
func (s *Service) follow(ctx context.Context) {
	for ctx.Err() == nil {
		sub := s.cfg.Bus.SubscribeDesk(256)
	read:
		for {
			select {
			case <-ctx.Done():
				sub.Close()
				return
			case <-sub.Done():
				// Cut off as slow: subscribe again; the poll covers the gap.
				s.Kick()
				break read
			case <-sub.C():
				if len(s.reg.Load().list) > 0 {
					s.noticeKicks.Add(1)
					s.Kick()
				}
			}
		}
	}
}

// dueQueues reads up to n due queues, each as its rows in order.
func (s *Service) dueQueues(ctx context.Context, n int) ([][]store.OutboxRow, error) {
	rows, err := s.st.OutboxDue(ctx, targetPrefix, s.cfg.Now(), n, perQueue)
	if err != nil {
		return nil, err
	}
	return outbox.SplitQueues(rows), nil
}

// deliverDue delivers every due queue once, one queue after another, in
// the caller's goroutine. Tests drive the worker with it and an injected
// clock.
func (s *Service) deliverDue(ctx context.Context) error {
	queues, err := s.dueQueues(ctx, 0)
	if err != nil {
		return err
	}
	for _, q := range queues {
		s.deliverQueue(ctx, q)
	}
	return nil
}

// deliverQueue delivers rows (one queue, in order) until one is not done.
func (s *Service) deliverQueue(ctx context.Context, rows []store.OutboxRow) {
	for _, r := range rows {
		if ctx.Err() != nil || !s.deliver(ctx, r) {
			return
		}
	}
}

// deliver makes one attempt at r and records its outcome. It reports
// whether the queue may go on with its next row: after a delivery or an
// exhaustion, not after a failure to be retried (order is kept) or when the
// outcome could not be recorded.
func (s *Service) deliver(ctx context.Context, r store.OutboxRow) bool {
	var body rowBody
	if err := json.Unmarshal(r.Payload, &body); err != nil {
		return s.exhaust(ctx, r, "", "outbox row is not a webhook delivery")
	}
	w := s.reg.Load().byID[body.WebhookID]
	if w == nil {
		return s.exhaust(ctx, r, body.Action, "webhook unregistered")
	}
	env, err := json.Marshal(Envelope{WebhookID: w.ID, SecretKey: w.SecretKey, Action: body.Action,
		OrganizationID: s.cfg.OrganizationID, AdditionalData: orEmpty(body.AdditionalData), Payload: body.Payload})
	if err != nil {
		return s.exhaust(ctx, r, body.Action, "envelope: "+err.Error())
	}
	// The attempt, once started, and the record of its outcome are not cut
	// short by a shutdown that begins meanwhile: an answered delivery not
	// marked would go again after the restart.
	wctx := context.WithoutCancel(ctx)
	err = s.post(wctx, w.URL, &r, env)
	if err == nil {
		if err := s.st.OutboxDelivered(wctx, r); err != nil {
			s.log.Warn().Err(err).Str("delivery", r.ID).Msg("webhooks: delivered but not recorded; it will be delivered again")
			return false
		}
		s.report(body.Action, OutcomeDelivered)
		return true
	}
	now := s.cfg.Now().UTC()
	r.Attempts++
	r.LastError = clip(err.Error())
	if r.Attempts >= s.cfg.MaxAttempts || (s.cfg.MaxAge > 0 && now.Sub(r.CreatedAt) >= s.cfg.MaxAge) {
		return s.exhaust(ctx, r, body.Action, r.LastError)
	}
	r.NextAt = now.Add(s.Backoff(r.Attempts))
	if s.cfg.MaxAge > 0 {
		// The last attempt happens at the age limit, not after it.
		if deadline := r.CreatedAt.Add(s.cfg.MaxAge); r.NextAt.After(deadline) {
			r.NextAt = deadline
		}
	}
	if err := s.st.OutboxRetry(wctx, r); err != nil {
		s.log.Warn().Err(err).Str("delivery", r.ID).Msg("webhooks: record failed attempt")
		return false
	}
	// One warn line per failed attempt, for the operator: receiver
	// (without credentials or query), what failed, attempt, next retry and
	// webhook id; never the secret_key.
	s.log.Warn().Str("webhook_id", w.ID).Str("action", body.Action).Str("receiver", redactURL(w.URL)).
		Str("delivery", r.ID).Str("error", r.LastError).Int("attempt", r.Attempts).Time("next_retry", r.NextAt).
		Msg("webhook delivery failed")
	s.report(body.Action, OutcomeRetry)
	return false
}

// exhaust gives up on r, keeping it visible, and lets its queue go on.
func (s *Service) exhaust(ctx context.Context, r store.OutboxRow, action, reason string) bool {
	r.LastError = clip(reason)
	r.NextAt = s.cfg.Now().UTC() // exhausted_at
	if err := s.st.OutboxExhaust(context.WithoutCancel(ctx), r); err != nil {
		s.log.Warn().Err(err).Str("delivery", r.ID).Msg("webhooks: record exhausted delivery")
		return false
	}
	s.log.Warn().Str("delivery", r.ID).Str("webhook", r.Target).Str("action", action).Str("thread", string(r.Conv)).
		Int("attempts", r.Attempts).Str("error", r.LastError).Msg("webhook delivery exhausted; kept in list_webhook_failures")
	s.report(action, OutcomeExhausted)
	return true
}

func (s *Service) report(action, outcome string) {
	if s.cfg.OnDelivery != nil {
		s.cfg.OnDelivery(action, outcome)
	}
}

// post makes one attempt: 2xx is delivered, anything else an error.
func (s *Service) post(ctx context.Context, target string, r *store.OutboxRow, body []byte) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", userAgent)
	req.Header.Set(HeaderDeliveryID, r.ID)
	req.Header.Set(HeaderAttempt, strconv.Itoa(r.Attempts+1))
	resp, err := s.cfg.Client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // without the URL, which may carry credentials
		}
		if errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("no answer within %s", s.cfg.Timeout)
		}
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return nil
}

// Backoff is the wait after the n-th failed attempt (n >= 1):
// d = MinBackoff·2^(n-1), at most MaxBackoff, drawn from [d/2, d] with
// Rand ("equal jitter": never less than half, so a herd of retries
// spreads without collapsing to zero).
func (s *Service) Backoff(n int) time.Duration {
	d := s.cfg.MinBackoff
	for i := 1; i < n && d < s.cfg.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, s.cfg.MaxBackoff)
	j := s.cfg.Rand()
	if j < 0 || j > 1 {
		j = 1
	}
	return d/2 + time.Duration(j*float64(d-d/2))
}

func orEmpty(b json.RawMessage) json.RawMessage {
	if len(b) == 0 {
		return json.RawMessage("{}")
	}
	return b
}

func clip(s string) string {
	if len(s) > maxLastError {
		s = strings.ToValidUTF8(s[:maxLastError], "")
	}
	return s
}

// redactURL is a receiver URL fit for logs: scheme, host and path, without
// user info, query or fragment (which may carry credentials).
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable url)"
	}
	return (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}).String()
}
