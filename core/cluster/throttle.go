package cluster

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/rs/zerolog"

	"chatgate/core/ratelimit"
)

// throttleRefresh is how often a Throttle writes the tokens this node took
// and reads which keys the deployment has blocked: a key is blocked on
// every node at most about this long after its bucket emptied.
const throttleRefresh = time.Second

// maxPendingKeys bounds the keys noted between two flushes (an address
// flood must not grow memory); past it, notes are dropped until the next
// flush (the node's own bucket still limits them).
const maxPendingKeys = 10_000

// Throttle is a ratelimit.Shared on PostgreSQL: one token bucket per key in
// cluster_throttle, which every node's takes drain, so that a limit
// counts across the deployment (issue 16: with per-node buckets, N nodes
// behind a load balancer gave a password guesser N times the failed-login
// budget). Notes are batched and written every throttleRefresh; the
// blocked keys are read back at the same pace, so Blocked costs no round
// trip.
type Throttle struct {
	pool *pgxpool.Pool
	name string
	rule ratelimit.Rule
	log  zerolog.Logger

	mu      sync.Mutex
	pending map[string]int
	blocked map[string]struct{}
}

// NewThrottle returns the shared view of the limit name with rule.
func NewThrottle(pool *pgxpool.Pool, name string, rule ratelimit.Rule, log zerolog.Logger) *Throttle {
	return &Throttle{pool: pool, name: name, rule: rule, log: log, pending: map[string]int{}, blocked: map[string]struct{}{}}
}

// Note implements ratelimit.Shared.
func (t *Throttle) Note(key string) {
	t.mu.Lock()
	if _, ok := t.pending[key]; ok || len(t.pending) < maxPendingKeys {
		t.pending[key]++
	}
	t.mu.Unlock()
}

// Blocked implements ratelimit.Shared.
func (t *Throttle) Blocked(key string) bool {
	t.mu.Lock()
	_, ok := t.blocked[key]
	t.mu.Unlock()
	return ok
}

// Run flushes and refreshes every throttleRefresh until ctx ends.
func (t *Throttle) Run(ctx context.Context) {
	if !t.rule.Enabled() {
		return
	}
	tick := time.NewTicker(throttleRefresh)
	defer tick.Stop()
	for {
		if err := t.Sync(ctx); err != nil && ctx.Err() == nil {
			t.log.Warn().Err(err).Str("limit", t.name).Msg("cluster: shared rate limit")
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// Sync writes the tokens taken since the last call, forgets buckets that
// are full again, and reads the keys whose bucket is empty.
func (t *Throttle) Sync(ctx context.Context) error {
	t.mu.Lock()
	pending := t.pending
	t.pending = make(map[string]int, len(pending))
	t.mu.Unlock()
	rate, burst := t.rule.PerMinute/60, float64(t.rule.Burst)
	// Tokens at now(): the stored ones refilled since at, capped at the
	// burst ($b), at the rate per second ($r).
	refilled := func(b, r string) string {
		return `least(` + b + `::float8, cluster_throttle.tokens + extract(epoch FROM now() - cluster_throttle.at) * ` + r + `::float8)`
	}
	err := pgx.BeginFunc(ctx, t.pool, func(tx pgx.Tx) error {
		b := &pgx.Batch{}
		for key, n := range pending {
			b.Queue(`INSERT INTO cluster_throttle (name, key, tokens, at) VALUES ($1, $2, $3::float8 - $5::float8, now())
ON CONFLICT (name, key) DO UPDATE SET tokens = `+refilled("$3", "$4")+` - $5::float8, at = now()`, t.name, key, burst, rate, float64(n))
		}
		// Buckets full again are the same as none.
		b.Queue(`DELETE FROM cluster_throttle WHERE name = $1 AND `+refilled("$2", "$3")+` >= $2::float8`, t.name, burst, rate)
		return tx.SendBatch(ctx, b).Close()
	})
	if err != nil {
		return fmt.Errorf("shared rate limit %s: %w", t.name, err)
	}
	rows, err := t.pool.Query(ctx, `SELECT key FROM cluster_throttle WHERE name = $1 AND `+refilled("$2", "$3")+` < 1`, t.name, burst, rate)
	if err != nil {
		return fmt.Errorf("shared rate limit %s: %w", t.name, err)
	}
	keys, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("shared rate limit %s: %w", t.name, err)
	}
	blocked := make(map[string]struct{}, len(keys))
	for _, k := range keys {
		blocked[k] = struct{}{}
	}
	t.mu.Lock()
	t.blocked = blocked
	t.mu.Unlock()
	return nil
}

var _ ratelimit.Shared = (*Throttle)(nil)
