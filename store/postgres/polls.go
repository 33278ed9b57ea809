package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"chatgate/core/model"
)

// Polls is the LiveChat v2 surface's shared poll times (visitorv2.Polls):
// one row per open v2 chat with the newest poll any node has recorded.
type Polls struct {
	pool   *pgxpool.Pool
	leases *Leases
}

// NewPolls returns the poll times over pool's database; the sweeper runs
// under leases.
func NewPolls(pool *pgxpool.Pool, leases *Leases) *Polls { return &Polls{pool: pool, leases: leases} }

// Record implements visitorv2.Polls: one statement whatever the number of
// chats; a time older than the stored one never wins.
func (p *Polls) Record(ctx context.Context, seen map[model.ConvID]time.Time) error {
	ids := make([]string, 0, len(seen))
	ats := make([]time.Time, 0, len(seen))
	for id, at := range seen {
		ids = append(ids, string(id))
		ats = append(ats, at)
	}
	_, err := p.pool.Exec(ctx, `INSERT INTO v2_polls (conv, at) SELECT * FROM unnest($1::text[], $2::timestamptz[])
ON CONFLICT (conv) DO UPDATE SET at = greatest(v2_polls.at, EXCLUDED.at)`, ids, ats)
	if err != nil {
		return fmt.Errorf("record poll times: %w", err)
	}
	return nil
}

// Idle implements visitorv2.Polls.
func (p *Polls) Idle(ctx context.Context, before time.Time) ([]model.ConvID, error) {
	rows, err := p.pool.Query(ctx, `SELECT conv FROM v2_polls WHERE at < $1 ORDER BY at LIMIT 1000`, before)
	if err != nil {
		return nil, fmt.Errorf("idle chats: %w", err)
	}
	defer rows.Close()
	var out []model.ConvID
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("idle chats: %w", err)
		}
		out = append(out, model.ConvID(id))
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("idle chats: %w", err)
	}
	return out, nil
}

// Forget implements visitorv2.Polls.
func (p *Polls) Forget(ctx context.Context, ids []model.ConvID) error {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = string(id)
	}
	if _, err := p.pool.Exec(ctx, `DELETE FROM v2_polls WHERE conv = ANY($1)`, s); err != nil {
		return fmt.Errorf("forget chats: %w", err)
	}
	return nil
}

// Exclusive implements visitorv2.Polls.
func (p *Polls) Exclusive(ctx context.Context, name string, fn func(ctx context.Context)) {
	p.leases.Hold(ctx, name, fn)
}
