package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"chatgate/core/model"
	"chatgate/store"
)

// snapPage is the rows a Reader iterator reads per query: one connection
// holds the snapshot, and a query's rows must be read whole before fn (which
// may read more) runs, so iterators go page by page (keyset).
const snapPage = 1000

// Snapshot implements store.Store: fn reads inside one REPEATABLE READ,
// READ ONLY transaction, so it sees the database as of one instant while
// the nodes keep writing (export of a running deployment).
func (s *Store) Snapshot(ctx context.Context, fn func(store.Reader) error) error {
	if err := s.readCtx(); err != nil {
		return err
	}
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	// The snapshot is taken at the transaction's first statement, not at
	// BEGIN: take it now, before fn is called.
	if _, err := tx.Exec(ctx, `SELECT 1`); err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	return fn(&reader{ctx: ctx, tx: tx})
}

type reader struct {
	ctx context.Context
	tx  pgx.Tx
}

func (r *reader) one(sql string, out any, args ...any) error {
	var data []byte
	err := r.tx.QueryRow(r.ctx, sql, args...).Scan(&data)
	if errors.Is(err, pgx.ErrNoRows) {
		return store.ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	return json.Unmarshal(data, out)
}

func (r *reader) Visitor(id model.VisitorID) (model.Visitor, error) {
	var v model.Visitor
	err := r.one(`SELECT data FROM visitors WHERE id = $1`, &v, string(id))
	return v, err
}

func (r *reader) Conversation(id model.ConvID) (model.Conversation, error) {
	var c model.Conversation
	err := r.one(`SELECT data FROM convs WHERE id = $1`, &c, string(id))
	return c, err
}

func (r *reader) VisitorConversations(id model.VisitorID) ([]model.ConvID, error) {
	rows, err := r.tx.Query(r.ctx, `SELECT id FROM convs WHERE visitor = $1 ORDER BY id`, string(id))
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	out := make([]model.ConvID, len(ids))
	for i, id := range ids {
		out[i] = model.ConvID(id)
	}
	return out, nil
}

// pages reads a keyset-paged query: first (args, limit) and next (args,
// the last row's key, limit). Each page is decoded whole before its rows
// go to fn; scan returns a row's value and its key.
func pages[T any](r *reader, first, next string, args []any, scan func(pgx.CollectableRow) (T, []any, error), fn func(T) error) error {
	var after []any
	for {
		var rows pgx.Rows
		var err error
		if after == nil {
			rows, err = r.tx.Query(r.ctx, first, append(append([]any{}, args...), snapPage)...)
		} else {
			rows, err = r.tx.Query(r.ctx, next, append(append(append([]any{}, args...), after...), snapPage)...)
		}
		if err != nil {
			return fmt.Errorf("postgres: %w", err)
		}
		var keys [][]any
		page, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (T, error) {
			x, k, err := scan(row)
			keys = append(keys, k)
			return x, err
		})
		if err != nil {
			return fmt.Errorf("postgres: %w", err)
		}
		for _, x := range page {
			if err := fn(x); err != nil {
				return err
			}
		}
		if len(page) < snapPage {
			return nil
		}
		after = keys[len(keys)-1]
		if err := r.ctx.Err(); err != nil {
			return err
		}
	}
}

func (r *reader) Visitors(fn func(model.Visitor) error) error {
	return pages(r, `SELECT id, data FROM visitors ORDER BY id LIMIT $1`, `SELECT id, data FROM visitors WHERE id > $1 ORDER BY id LIMIT $2`, nil,
		func(row pgx.CollectableRow) (model.Visitor, []any, error) {
			var id string
			var data []byte
			var v model.Visitor
			if err := row.Scan(&id, &data); err != nil {
				return v, nil, err
			}
			return v, []any{id}, json.Unmarshal(data, &v)
		}, fn)
}

func (r *reader) Conversations(fn func(model.Conversation) error) error {
	return pages(r, `SELECT id, data FROM convs ORDER BY id LIMIT $1`, `SELECT id, data FROM convs WHERE id > $1 ORDER BY id LIMIT $2`, nil,
		func(row pgx.CollectableRow) (model.Conversation, []any, error) {
			var id string
			var data []byte
			var c model.Conversation
			if err := row.Scan(&id, &data); err != nil {
				return c, nil, err
			}
			return c, []any{id}, json.Unmarshal(data, &c)
		}, fn)
}

func (r *reader) Events(conv model.ConvID, fn func(model.Event) error) error {
	return pages(r, `SELECT seq, data FROM events WHERE conv = $1 ORDER BY seq LIMIT $2`,
		`SELECT seq, data FROM events WHERE conv = $1 AND seq > $2 ORDER BY seq LIMIT $3`, []any{string(conv)},
		func(row pgx.CollectableRow) (model.Event, []any, error) {
			var seq int64
			var data []byte
			var e model.Event
			if err := row.Scan(&seq, &data); err != nil {
				return e, nil, err
			}
			return e, []any{seq}, json.Unmarshal(data, &e)
		}, fn)
}

type latestMapping struct {
	m      store.Mapping
	latest bool
}

func (r *reader) Mappings(fn func(store.Mapping, bool) error) error {
	const cols = `SELECT m.system, m.tenant, m.kind, m.foreign_id, m.core, r.foreign_id IS NOT NULL AND r.foreign_id = m.foreign_id
FROM maps m LEFT JOIN maps_rev r ON r.system = m.system AND r.tenant = m.tenant AND r.kind = m.kind AND r.core = m.core`
	return pages(r, cols+` ORDER BY m.system, m.tenant, m.kind, m.foreign_id LIMIT $1`,
		cols+` WHERE (m.system, m.tenant, m.kind, m.foreign_id) > ($1, $2, $3, $4) ORDER BY m.system, m.tenant, m.kind, m.foreign_id LIMIT $5`, nil,
		func(row pgx.CollectableRow) (latestMapping, []any, error) {
			var x latestMapping
			err := row.Scan(&x.m.System, &x.m.Tenant, &x.m.Kind, &x.m.Foreign, &x.m.Core, &x.latest)
			return x, []any{x.m.System, x.m.Tenant, x.m.Kind, x.m.Foreign}, err
		}, func(x latestMapping) error { return fn(x.m, x.latest) })
}

func (r *reader) Idems(fn func(store.Idem) error) error {
	return pages(r, `SELECT system, key, conv, seq FROM idems ORDER BY system, key LIMIT $1`,
		`SELECT system, key, conv, seq FROM idems WHERE (system, key) > ($1, $2) ORDER BY system, key LIMIT $3`, nil,
		func(row pgx.CollectableRow) (store.Idem, []any, error) {
			var id store.Idem
			var conv string
			var seq int64
			err := row.Scan(&id.System, &id.Key, &conv, &seq)
			id.Conv, id.Seq = model.ConvID(conv), uint64(seq)
			return id, []any{id.System, id.Key}, err
		}, fn)
}

func (r *reader) Meta(fn func(string, []byte) error) error {
	type kv struct {
		k string
		v []byte
	}
	return pages(r, `SELECT key, value FROM meta WHERE key <> 'schema' ORDER BY key LIMIT $1`,
		`SELECT key, value FROM meta WHERE key <> 'schema' AND key > $1 ORDER BY key LIMIT $2`, nil,
		func(row pgx.CollectableRow) (kv, []any, error) {
			var x kv
			err := row.Scan(&x.k, &x.v)
			return x, []any{x.k}, err
		}, func(x kv) error { return fn(x.k, x.v) })
}

func (r *reader) Outbox(fn func(store.OutboxRow) error) error {
	for _, table := range []string{"outbox", "outbox_dead"} {
		err := pages(r, `SELECT target, conv, seq, meta, payload FROM `+table+` ORDER BY target, conv, seq LIMIT $1`,
			`SELECT target, conv, seq, meta, payload FROM `+table+` WHERE (target, conv, seq) > ($1, $2, $3) ORDER BY target, conv, seq LIMIT $4`, nil,
			func(row pgx.CollectableRow) (store.OutboxRow, []any, error) {
				var target, conv string
				var seq int64
				var meta, payload []byte
				if err := row.Scan(&target, &conv, &seq, &meta, &payload); err != nil {
					return store.OutboxRow{}, nil, err
				}
				o, err := decodeRow(seq, meta, payload)
				return o, []any{target, conv, seq}, err
			}, fn)
		if err != nil {
			return err
		}
	}
	return nil
}

// Restore statements answer a status: 0 written, 1 same, 2 kept (present
// with other content), 3 replaced. The subselects read the snapshot the
// statement started with, so they see the row as it was before the
// statement's own insert.
const (
	sqlRestoreVisitor = `WITH i AS (INSERT INTO visitors (id, data) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING RETURNING 1)
SELECT CASE WHEN EXISTS (SELECT 1 FROM i) THEN 0 WHEN (SELECT data FROM visitors WHERE id = $1) = $2 THEN 1 ELSE 2 END`
	sqlRestoreConv = `WITH i AS (INSERT INTO convs (id, visitor, rev, data) VALUES ($1, $2, 1, $3) ON CONFLICT (id) DO NOTHING RETURNING 1)
SELECT CASE WHEN EXISTS (SELECT 1 FROM i) THEN 0 WHEN (SELECT data FROM convs WHERE id = $1) = $3 THEN 1 ELSE 2 END`
	sqlRestoreEvent = `WITH i AS (INSERT INTO events (conv, seq, data) VALUES ($1, $2, $3) ON CONFLICT (conv, seq) DO NOTHING RETURNING 1)
SELECT CASE WHEN EXISTS (SELECT 1 FROM i) THEN 0 WHEN (SELECT data FROM events WHERE conv = $1 AND seq = $2) = $3 THEN 1 ELSE 2 END`
	sqlRestoreMap = `WITH i AS (INSERT INTO maps (system, tenant, kind, foreign_id, core) VALUES ($1, $2, $3, $4, $5)
	ON CONFLICT (system, tenant, kind, foreign_id) DO NOTHING RETURNING 1),
r AS (INSERT INTO maps_rev (system, tenant, kind, core, foreign_id) SELECT $1, $2, $3, $5, $4 WHERE $6 AND EXISTS (SELECT 1 FROM i)
	ON CONFLICT (system, tenant, kind, core) DO UPDATE SET foreign_id = EXCLUDED.foreign_id RETURNING 1)
SELECT CASE WHEN EXISTS (SELECT 1 FROM i) THEN 0
	WHEN (SELECT core FROM maps WHERE system = $1 AND tenant = $2 AND kind = $3 AND foreign_id = $4) = $5 THEN 1 ELSE 2 END`
	sqlRestoreIdem = `WITH i AS (INSERT INTO idems (system, key, conv, seq) VALUES ($1, $2, $3, $4) ON CONFLICT (system, key) DO NOTHING RETURNING 1)
SELECT CASE WHEN EXISTS (SELECT 1 FROM i) THEN 0
	WHEN EXISTS (SELECT 1 FROM idems WHERE system = $1 AND key = $2 AND conv = $3 AND seq = $4) THEN 1 ELSE 2 END`
	sqlRestoreMeta = `WITH o AS (SELECT value FROM meta WHERE key = $1),
u AS (INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value RETURNING 1)
SELECT CASE WHEN NOT EXISTS (SELECT 1 FROM o) THEN 0 WHEN (SELECT value FROM o) = $2 THEN 1 ELSE 3 END`
	// A pending row is restored unless its key is in either table (a
	// row delivered or exhausted since is not brought back).
	sqlRestoreOutbox = `WITH i AS (INSERT INTO outbox (target, conv, seq, id, due_ns, meta, payload)
	SELECT $1, $2, $3, $4, $5, $6, $7 WHERE NOT EXISTS (SELECT 1 FROM outbox_dead WHERE target = $1 AND conv = $2 AND seq = $3)
	ON CONFLICT (target, conv, seq) DO NOTHING RETURNING 1)
SELECT CASE WHEN EXISTS (SELECT 1 FROM i) THEN 0
	WHEN EXISTS (SELECT 1 FROM outbox WHERE target = $1 AND conv = $2 AND seq = $3 AND meta = $6 AND payload = $7) THEN 1 ELSE 2 END`
	sqlRestoreDead = `WITH i AS (INSERT INTO outbox_dead (target, conv, seq, meta, payload)
	SELECT $1, $2, $3, $4, $5 WHERE NOT EXISTS (SELECT 1 FROM outbox WHERE target = $1 AND conv = $2 AND seq = $3)
	ON CONFLICT (target, conv, seq) DO NOTHING RETURNING 1)
SELECT CASE WHEN EXISTS (SELECT 1 FROM i) THEN 0
	WHEN EXISTS (SELECT 1 FROM outbox_dead WHERE target = $1 AND conv = $2 AND seq = $3 AND meta = $4 AND payload = $5) THEN 1 ELSE 2 END`
	// New rows must sort after restored ones in their queues.
	sqlRestoreSeq = `SELECT setval('outbox_seq', $1) WHERE $1 > (SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM outbox_seq)`
)

// Restore implements store.Store: one transaction, every statement
// pipelined in one round trip; a dry run rolls it back.
func (s *Store) Restore(ctx context.Context, in *store.Restore) (store.RestoreResult, error) {
	// Restore only adds what is absent (nothing cached can be), but the
	// caches are cheap to refill: forget them rather than reason further.
	defer s.Forget()
	q := &pgx.Batch{}
	var kinds []string
	add := func(kind, sql string, args ...any) {
		q.Queue(sql, args...)
		kinds = append(kinds, kind)
	}
	for i := range in.Visitors {
		v := &in.Visitors[i]
		if v.ID == "" {
			return nil, errors.New("store: visitor without id")
		}
		data, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("encode visitor: %w", err)
		}
		add(store.RecVisitor, sqlRestoreVisitor, string(v.ID), data)
	}
	for i := range in.Convs {
		c := &in.Convs[i]
		if c.ID == "" || c.Visitor == "" {
			return nil, errors.New("store: conversation without id or visitor")
		}
		data, err := json.Marshal(c)
		if err != nil {
			return nil, fmt.Errorf("encode conversation: %w", err)
		}
		add(store.RecConversation, sqlRestoreConv, string(c.ID), string(c.Visitor), data)
	}
	for i := range in.Events {
		e := &in.Events[i]
		if e.Conv == "" || e.Seq == 0 {
			return nil, errors.New("store: event without conversation or seq")
		}
		data, err := json.Marshal(e)
		if err != nil {
			return nil, fmt.Errorf("encode event: %w", err)
		}
		add(store.RecEvent, sqlRestoreEvent, string(e.Conv), int64(e.Seq), data)
	}
	for _, m := range in.Maps {
		if m.Foreign == "" || m.Core == "" || m.System == "" || m.Kind == "" {
			return nil, errors.New("store: incomplete mapping")
		}
		add(store.RecMapping, sqlRestoreMap, m.System, m.Tenant, m.Kind, m.Foreign, m.Core, m.Latest)
	}
	for _, id := range in.Idems {
		if id.System == "" || id.Key == "" || id.Conv == "" {
			return nil, errors.New("store: incomplete idempotency key")
		}
		add(store.RecIdem, sqlRestoreIdem, id.System, id.Key, string(id.Conv), int64(id.Seq))
	}
	for _, m := range in.Meta {
		if m.Key == "" || m.Key == "schema" {
			return nil, fmt.Errorf("store: meta key %q is reserved", m.Key)
		}
		v := m.Value
		if v == nil {
			v = []byte{}
		}
		add(store.RecMeta, sqlRestoreMeta, m.Key, v)
	}
	var maxSeq int64
	for i := range in.Outbox {
		r := in.Outbox[i]
		if r.ID == "" || r.Target == "" || r.Conv == "" || r.Seq == 0 || (r.State != store.OutboxPending && r.State != store.OutboxExhausted) {
			return nil, fmt.Errorf("store: outbox row %q without id, target, conversation, seq or state", r.ID)
		}
		if len(r.Target) > maxOutboxID || len(r.Conv) > maxOutboxID || len(r.ID) > maxOutboxID || len(r.Payload) > maxPayload {
			return nil, fmt.Errorf("store: outbox row %q too large", r.ID)
		}
		meta, err := metaOf(&r)
		if err != nil {
			return nil, err
		}
		payload := r.Payload
		if payload == nil {
			payload = []byte{}
		}
		if r.State == store.OutboxPending {
			add(store.RecOutbox, sqlRestoreOutbox, r.Target, string(r.Conv), int64(r.Seq), r.ID, dueNS(r.NextAt), meta, payload)
		} else {
			add(store.RecOutbox, sqlRestoreDead, r.Target, string(r.Conv), int64(r.Seq), meta, payload)
		}
		maxSeq = max(maxSeq, int64(r.Seq))
	}
	if len(kinds) == 0 {
		return store.RestoreResult{}, nil
	}
	if maxSeq > 0 {
		q.Queue(sqlRestoreSeq, maxSeq)
	}
	// Restores run beside the commit writers, on their own transaction;
	// Close waits for one under way.
	var res store.RestoreResult
	err := s.reqs.Hold(func() (err error) {
		res, err = s.restoreBatch(ctx, q, kinds, in.DryRun)
		return err
	})
	return res, err
}

// restoreBatch sends a restore's batch, whose statements answer one status
// row per record of kinds, in one transaction, and counts the outcomes; a
// dry run rolls back.
func (s *Store) restoreBatch(ctx context.Context, q *pgx.Batch, kinds []string, dryRun bool) (store.RestoreResult, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.opts.CommitTimeout)
	defer cancel()
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	defer tx.Rollback(ctx)
	br := tx.SendBatch(ctx, q)
	res := store.RestoreResult{}
	for _, kind := range kinds {
		var status int
		if err := br.QueryRow().Scan(&status); err != nil {
			br.Close()
			return nil, mapErr(err)
		}
		c := res[kind]
		switch status {
		case 0:
			c.Written++
		case 1:
			c.Same++
		case 2:
			c.Kept++
		default:
			c.Replaced++
		}
		res[kind] = c
	}
	if err := br.Close(); err != nil {
		return nil, mapErr(err)
	}
	if dryRun {
		return res, nil // rolled back by the deferred Rollback
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, mapErr(err)
	}
	return res, nil
}
