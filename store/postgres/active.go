package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"chatgate/store"
)

// sqlActiveBySource counts the active conversations (conv_routing holds
// exactly the queued and open ones, with their owner) by origin, which
// only the conversation record holds.
const sqlActiveBySource = `SELECT coalesce(convert_from(c.data, 'UTF8')::jsonb->>'origin', ''), r.owner, count(*)
FROM conv_routing r JOIN convs c ON c.id = r.id
GROUP BY 1, 2 ORDER BY 1, 2`

// ActiveBySource implements store.ActiveCounter: the counts of every node
// sharing this database (the operator view shows them beside its own).
func (s *Store) ActiveBySource(ctx context.Context) ([]store.SourceCount, error) {
	if err := s.readCtx(); err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, sqlActiveBySource)
	if err != nil {
		return nil, fmt.Errorf("postgres: active by source: %w", err)
	}
	var (
		out           []store.SourceCount
		origin, owner string
		n             int64
	)
	_, err = pgx.ForEachRow(rows, []any{&origin, &owner, &n}, func() error {
		out = append(out, store.SourceCount{Origin: origin, Owner: owner, Active: int(n)})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: active by source: %w", err)
	}
	return out, nil
}
