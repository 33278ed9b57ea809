package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/rs/zerolog"
)

// Lease times. A holder renews its lease every LeaseRenew; a lease not
// renewed for LeaseTTL is free for another node to take. A holder that has
// not managed to renew for LeaseTTL-LeaseRenew stops the work the lease
// guards, so that it has stopped before anyone may take over. Expiry is
// judged by the database's clock, never a node's.
const (
	LeaseTTL   = 15 * time.Second
	LeaseRenew = 5 * time.Second
)

// Leases hands out named leases (one holder node at a time per name): a
// relay connector's upstream session, the v2 idle sweeper.
type Leases struct {
	pool       *pgxpool.Pool
	node       string
	ttl, renew time.Duration
	log        zerolog.Logger
}

// NewLeases returns leases held in the name of node. ttl <= 0 means
// LeaseTTL; renew is a third of ttl.
func NewLeases(pool *pgxpool.Pool, node string, ttl time.Duration, log zerolog.Logger) *Leases {
	if ttl <= 0 {
		ttl = LeaseTTL
	}
	return &Leases{pool: pool, node: node, ttl: ttl, renew: ttl / 3, log: log}
}

// TTL is how long a lease outlives its holder.
func (l *Leases) TTL() time.Duration { return l.ttl }

// acquire takes or renews the lease name; it reports whether this node
// holds it.
func (l *Leases) acquire(ctx context.Context, name string) (bool, error) {
	rows, err := l.pool.Query(ctx, `INSERT INTO cluster_leases (name, node, expires_at)
VALUES ($1, $2, now() + make_interval(secs => $3))
ON CONFLICT (name) DO UPDATE SET node = EXCLUDED.node, expires_at = EXCLUDED.expires_at
WHERE cluster_leases.node = EXCLUDED.node OR cluster_leases.expires_at < now()
RETURNING node`, name, l.node, l.ttl.Seconds())
	if err != nil {
		return false, fmt.Errorf("lease %s: %w", name, err)
	}
	held := rows.Next()
	rows.Close()
	if err := rows.Err(); err != nil {
		return false, fmt.Errorf("lease %s: %w", name, err)
	}
	return held, nil
}

func (l *Leases) release(ctx context.Context, name string) {
	if _, err := l.pool.Exec(ctx, `DELETE FROM cluster_leases WHERE name = $1 AND node = $2`, name, l.node); err != nil {
		l.log.Warn().Err(err).Str("lease", name).Msg("cluster: release lease")
	}
}

// Hold runs fn whenever this node holds the lease name, until ctx ends:
// it tries to take the lease every renewal period, runs fn with a context
// that ends when the lease is lost (or ctx ends), waits for fn to return,
// and releases the lease when ctx ends so that another node takes over at
// once.
func (l *Leases) Hold(ctx context.Context, name string, fn func(ctx context.Context)) {
	for ctx.Err() == nil {
		held, err := l.acquire(ctx, name)
		if err != nil && ctx.Err() == nil {
			l.log.Warn().Err(err).Msg("cluster: take lease")
		}
		if held {
			l.log.Info().Str("lease", name).Msg("cluster: lease taken")
			l.run(ctx, name, fn)
			if ctx.Err() != nil {
				l.release(context.WithoutCancel(ctx), name)
				return
			}
			l.log.Warn().Str("lease", name).Msg("cluster: lease lost")
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(l.renew):
		}
	}
}

// run runs fn while renewing the lease; it returns once fn has returned.
func (l *Leases) run(ctx context.Context, name string, fn func(ctx context.Context)) {
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(wctx)
	}()
	defer func() { cancel(); <-done }()
	renewed := time.Now()
	t := time.NewTicker(l.renew)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-done:
			return
		case <-t.C:
		}
		actx, acancel := context.WithTimeout(ctx, l.renew)
		held, err := l.acquire(actx, name)
		acancel()
		switch {
		case err == nil && held:
			renewed = time.Now()
		case err == nil && !held:
			return
		default:
			l.log.Warn().Err(err).Str("lease", name).Msg("cluster: renew lease")
			if time.Since(renewed) >= l.ttl-l.renew {
				return
			}
		}
	}
}
