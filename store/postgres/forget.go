package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"chatgate/core/model"
)

// forgetPage is how many visitors without conversations ForgetIdleVisitors
// reads per query while choosing candidates.
const forgetPage = 1024

// ForgetIdleVisitors implements store.Store. Candidates (visitors without
// a conversation, idle since before cutoff) are read in keyset pages; the
// deletion is one transaction that deletes a candidate only while its row
// is still at the revision read and it still has no conversation (a
// concurrent start writes the visitor row, whose lock orders the two),
// then its mappings and their siblings. The mappings have no index on
// core or foreign_id (one would cost every mapping insert on the hot
// path): the sweep reads the table sequentially, which for an hourly
// sweep is the cheaper side.
func (s *Store) ForgetIdleVisitors(ctx context.Context, cutoff time.Time, limit int) ([]model.VisitorID, error) {
	if err := s.readCtx(); err != nil {
		return nil, err
	}
	var ids []string
	var revs []int64
	after := ""
	for {
		rows, err := s.pool.Query(ctx, `SELECT v.id, v.rev, v.data FROM visitors v
WHERE v.id > $1 AND NOT EXISTS (SELECT 1 FROM convs c WHERE c.visitor = v.id) ORDER BY v.id LIMIT $2`, after, forgetPage)
		if err != nil {
			return nil, fmt.Errorf("postgres: forget visitors: %w", err)
		}
		var (
			id   string
			rev  int64
			data []byte
			n    int
		)
		_, err = pgx.ForEachRow(rows, []any{&id, &rev, &data}, func() error {
			n++
			after = id
			if limit > 0 && len(ids) >= limit {
				return nil
			}
			var v model.Visitor
			if err := json.Unmarshal(data, &v); err != nil {
				return fmt.Errorf("visitor %q: %w", id, err)
			}
			if v.LastActive().Before(cutoff) {
				ids, revs = append(ids, id), append(revs, rev)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("postgres: forget visitors: %w", err)
		}
		if n < forgetPage || (limit > 0 && len(ids) >= limit) {
			break
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
	if len(ids) == 0 {
		return nil, nil
	}
	var gone []model.VisitorID
	// Mappings are deleted below: this node's cached ones go (see
	// "Caches" in the package doc for the other nodes).
	defer s.maps.reset()
	defer s.visitors.reset()
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		gone = gone[:0]
		rows, err := tx.Query(ctx, `DELETE FROM visitors v USING unnest($1::text[], $2::bigint[]) AS c(id, rev)
WHERE v.id = c.id AND v.rev = c.rev AND NOT EXISTS (SELECT 1 FROM convs x WHERE x.visitor = v.id)
RETURNING v.id`, ids, revs)
		if err != nil {
			return err
		}
		deleted, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil || len(deleted) == 0 {
			return err
		}
		for _, id := range deleted {
			gone = append(gone, model.VisitorID(id))
		}
		// The mappings naming them, then those about the same foreign
		// ids (see store.Store.ForgetIdleVisitors), then the reverse
		// bindings of all of them.
		var sys, ten, kind, foreign, core []string
		collect := func(rows pgx.Rows) error {
			var s1, t1, k1, f1, c1 string
			_, err := pgx.ForEachRow(rows, []any{&s1, &t1, &k1, &f1, &c1}, func() error {
				sys, ten, kind, foreign, core = append(sys, s1), append(ten, t1), append(kind, k1), append(foreign, f1), append(core, c1)
				return nil
			})
			return err
		}
		rows, err = tx.Query(ctx, `DELETE FROM maps WHERE core = ANY($1::text[]) OR foreign_id = ANY($1::text[])
RETURNING system, tenant, kind, foreign_id, core`, deleted)
		if err != nil {
			return err
		}
		if err := collect(rows); err != nil {
			return err
		}
		if len(sys) > 0 {
			rows, err = tx.Query(ctx, `DELETE FROM maps m USING unnest($1::text[], $2::text[], $3::text[]) AS d(system, tenant, foreign_id)
WHERE m.system = d.system AND m.tenant = d.tenant AND m.foreign_id = d.foreign_id
RETURNING m.system, m.tenant, m.kind, m.foreign_id, m.core`, sys, ten, foreign)
			if err != nil {
				return err
			}
			if err := collect(rows); err != nil {
				return err
			}
			_, err = tx.Exec(ctx, `DELETE FROM maps_rev r USING unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[]) AS d(system, tenant, kind, core, foreign_id)
WHERE r.system = d.system AND r.tenant = d.tenant AND r.kind = d.kind AND r.core = d.core AND r.foreign_id = d.foreign_id`,
				sys, ten, kind, core, foreign)
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: forget visitors: %w", err)
	}
	return gone, nil
}
