package webhooks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"chatgate/store"
)

// Pending is one delivery still waiting in the outbox (operator view).
type Pending struct {
	DeliveryID string    `json:"delivery_id"`
	WebhookID  string    `json:"webhook_id,omitempty"`
	Action     string    `json:"action,omitempty"`
	ThreadID   string    `json:"thread_id"`
	Attempts   int       `json:"attempts"`
	LastError  string    `json:"last_error,omitempty"`
	NextAt     time.Time `json:"next_at"`
	CreatedAt  time.Time `json:"created_at"`
}

// far is "any time" for reading every pending row, due or not.
const far = 100 * 365 * 24 * time.Hour

// PendingDeliveries lists up to limit deliveries not yet made, every queue's
// rows in order (those behind a failing head included), for the operator
// view.
func (s *Service) PendingDeliveries(ctx context.Context, limit int) ([]Pending, error) {
	rows, err := s.st.OutboxDue(ctx, targetPrefix, s.cfg.Now().Add(far), limit, perQueue)
	if err != nil {
		return nil, fmt.Errorf("pending deliveries: %w", err)
	}
	out := make([]Pending, 0, len(rows))
	for _, r := range rows {
		if limit > 0 && len(out) >= limit {
			break
		}
		p := Pending{DeliveryID: r.ID, ThreadID: string(r.Conv), Attempts: r.Attempts, LastError: r.LastError,
			NextAt: r.NextAt, CreatedAt: r.CreatedAt}
		var b rowBody
		if json.Unmarshal(r.Payload, &b) == nil {
			p.WebhookID, p.Action = b.WebhookID, b.Action
		}
		out = append(out, p)
	}
	return out, nil
}

// RetryNow makes every waiting queue head due now (its attempts and last
// error kept) and wakes the worker: an operator who fixed the receiver
// need not wait out the backoff. It returns how many heads it moved.
// Exhausted deliveries stay where they are (list_webhook_failures; Revive
// brings them back).
func (s *Service) RetryNow(ctx context.Context) (int, error) {
	now := s.cfg.Now().UTC()
	rows, err := s.st.OutboxDue(ctx, targetPrefix, now.Add(far), 0, 1)
	if err != nil {
		return 0, fmt.Errorf("pending deliveries: %w", err)
	}
	n := 0
	for _, r := range rows {
		if !r.NextAt.After(now) {
			continue
		}
		r.NextAt = now
		if err := s.st.OutboxRetry(ctx, r); err != nil && !isNotFound(err) {
			return n, fmt.Errorf("retry %s: %w", r.ID, err)
		}
		n++
	}
	s.Kick()
	return n, nil
}

// maxRevive bounds how many exhausted deliveries one Revive brings back
// (one commit); an operator clicks again for more.
const maxRevive = 1000

// Revive puts exhausted webhook deliveries (up to maxRevive) back into
// their queues, due now with their attempts reset, in one commit, and
// wakes the worker. Each keeps its place in its queue (store.OutboxRevive),
// so a chat's revived deliveries go out in the order they happened, before
// any of the chat's rows still waiting behind them. A revived delivery
// whose webhook is gone, or that is older than MaxAge, is given up on again
// at its next attempt. It returns how many it revived.
func (s *Service) Revive(ctx context.Context) (int, error) {
	rows, err := s.st.OutboxExhausted(ctx, "", 0)
	if err != nil {
		return 0, fmt.Errorf("exhausted deliveries: %w", err)
	}
	now := s.cfg.Now().UTC()
	var revive []store.OutboxRow
	for _, r := range rows {
		if !isWebhookTarget(r.Target) {
			continue // another deliverer's (a relay connector's)
		}
		if len(revive) == maxRevive {
			break
		}
		r.Attempts, r.NextAt = 0, now
		r.LastError = clip("revived by an operator; before: " + r.LastError)
		revive = append(revive, r)
	}
	if len(revive) == 0 {
		return 0, nil
	}
	if err := s.st.OutboxRevive(ctx, revive...); err != nil {
		return 0, fmt.Errorf("revive deliveries: %w", err)
	}
	s.Kick()
	return len(revive), nil
}

// isNotFound: the row was delivered or exhausted meanwhile.
func isNotFound(err error) bool { return errors.Is(err, store.ErrNotFound) }
