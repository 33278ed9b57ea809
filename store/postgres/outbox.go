package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"chatgate/core/model"
	"chatgate/store"
)

// maxOutboxID bounds a row's id, target and conversation, as in store/bolt.
const maxOutboxID = 1024

// maxPayload bounds an outbox payload (bbolt's limit is far larger; a
// webhook body is a few KiB).
const maxPayload = 64 << 20

// rowMeta is what a row stores besides its payload: the same fields, in
// the same JSON, as store/bolt, so that every field round-trips exactly.
type rowMeta struct {
	ID        string            `json:"id"`
	Target    string            `json:"target"`
	Conv      model.ConvID      `json:"conv"`
	Seq       uint64            `json:"seq,omitempty"`
	Attempts  int               `json:"attempts,omitempty"`
	NextAt    time.Time         `json:"next_at,omitzero"`
	LastError string            `json:"last_error,omitempty"`
	CreatedAt time.Time         `json:"created_at,omitzero"`
	State     store.OutboxState `json:"state"`
}

func metaOf(r *store.OutboxRow) ([]byte, error) {
	b, err := json.Marshal(rowMeta{ID: r.ID, Target: r.Target, Conv: r.Conv, Attempts: r.Attempts,
		NextAt: r.NextAt, LastError: r.LastError, CreatedAt: r.CreatedAt, State: r.State})
	if err != nil {
		return nil, fmt.Errorf("encode outbox row: %w", err)
	}
	return b, nil
}

func decodeRow(seq int64, meta, payload []byte) (store.OutboxRow, error) {
	var m rowMeta
	if err := json.Unmarshal(meta, &m); err != nil {
		return store.OutboxRow{}, fmt.Errorf("decode outbox row: %w", err)
	}
	if payload == nil {
		payload = []byte{}
	}
	return store.OutboxRow{ID: m.ID, Target: m.Target, Conv: m.Conv, Seq: uint64(seq), Payload: payload,
		Attempts: m.Attempts, NextAt: m.NextAt, LastError: m.LastError, CreatedAt: m.CreatedAt, State: m.State}, nil
}

// dueNS is the ordering key of a row's NextAt: the zero time (and anything
// before 1970) is 0, "due at once".
func dueNS(t time.Time) int64 {
	if t.IsZero() || t.UnixNano() <= 0 {
		return 0
	}
	return t.UnixNano()
}

// sqlOutboxIns appends a row to its queue. The transaction-scoped advisory
// lock on the queue is taken before the seq is drawn, so that two
// transactions appending to one queue draw their seqs in the order they
// commit: a deliverer never sees a lower seq appear behind one it has
// already read.
const sqlOutboxIns = `INSERT INTO outbox (target, conv, seq, id, due_ns, meta, payload)
SELECT $1, $2, nextval('outbox_seq'), $3, $4, $5, $6
FROM (SELECT pg_advisory_xact_lock(hashtextextended($1 || chr(1) || $2, 0))) AS l`

func queueOutboxIns(q *work, r *store.OutboxRow) error {
	if r.ID == "" || r.Target == "" || r.Conv == "" {
		return errors.New("store: outbox row without id, target or conversation")
	}
	if len(r.Target) > maxOutboxID || len(r.Conv) > maxOutboxID || len(r.ID) > maxOutboxID {
		return fmt.Errorf("store: outbox id, target or conversation longer than %d bytes", maxOutboxID)
	}
	if !textOK(r.Target, string(r.Conv), r.ID) {
		return errBadKey
	}
	if len(r.Payload) > maxPayload {
		return fmt.Errorf("store: outbox payload of %d bytes is too large", len(r.Payload))
	}
	row := *r
	row.State = store.OutboxPending
	meta, err := metaOf(&row)
	if err != nil {
		return err
	}
	payload := r.Payload
	if payload == nil {
		payload = []byte{}
	}
	q.Queue(sqlOutboxIns, r.Target, string(r.Conv), r.ID, dueNS(r.NextAt), meta, payload)
	return nil
}

// check aborts a batch with "not found" unless the row (target, conv, seq)
// with id is pending.
const (
	sqlOutboxDel = `WITH d AS (DELETE FROM outbox WHERE target = $1 AND conv = $2 AND seq = $3 AND id = $4 RETURNING 1)
SELECT chatgate_check(EXISTS (SELECT 1 FROM d), 'CGNF1', 'outbox row ' || $4)`
	sqlOutboxRetry = `WITH u AS (UPDATE outbox SET meta = $5, due_ns = $6 WHERE target = $1 AND conv = $2 AND seq = $3 AND id = $4 RETURNING 1)
SELECT chatgate_check(EXISTS (SELECT 1 FROM u), 'CGNF1', 'outbox row ' || $4)`
	// Exhausting moves the row, payload and all, to outbox_dead with its
	// new meta.
	sqlOutboxExhaust = `WITH d AS (DELETE FROM outbox WHERE target = $1 AND conv = $2 AND seq = $3 AND id = $4 RETURNING target, conv, seq, payload),
i AS (INSERT INTO outbox_dead (target, conv, seq, meta, payload) SELECT target, conv, seq, $5, payload FROM d RETURNING 1)
SELECT chatgate_check(EXISTS (SELECT 1 FROM i), 'CGNF1', 'outbox row ' || $4)`
	// Reviving moves an exhausted row back into its queue at its own seq
	// (under the queue's lock, as an append), pending with its new meta.
	sqlOutboxRevive = `WITH l AS (SELECT pg_advisory_xact_lock(hashtextextended($1 || chr(1) || $2, 0))),
d AS (DELETE FROM outbox_dead WHERE target = $1 AND conv = $2 AND seq = $3
	AND convert_from(meta, 'UTF8')::jsonb->>'id' = $4 AND EXISTS (SELECT 1 FROM l) RETURNING target, conv, seq, payload),
i AS (INSERT INTO outbox (target, conv, seq, id, due_ns, meta, payload) SELECT target, conv, seq, $4, $6, $5, payload FROM d RETURNING 1)
SELECT chatgate_check(EXISTS (SELECT 1 FROM i), 'CGNF1', 'outbox row ' || $4)`
)

type mutKind int

const (
	mutDelivered mutKind = iota
	mutRetry
	mutExhaust
	mutRevive
)

// mutate changes pending rows in one transaction: all of them, or none
// when one is not a pending row (ErrNotFound).
func (s *Store) mutate(ctx context.Context, kind mutKind, rows ...store.OutboxRow) error {
	q := &work{}
	for _, r := range rows {
		if r.ID == "" || r.Target == "" || r.Conv == "" || r.Seq == 0 || r.Seq > 1<<63-1 || !textOK(r.ID, r.Target, string(r.Conv)) {
			return fmt.Errorf("outbox row %q: %w", r.ID, store.ErrNotFound)
		}
		if len(r.LastError) > 4096 {
			r.LastError = r.LastError[:4096]
		}
		key := []any{r.Target, string(r.Conv), int64(r.Seq), r.ID}
		switch kind {
		case mutDelivered:
			q.Queue(sqlOutboxDel, key...)
		case mutRetry, mutExhaust, mutRevive:
			// The stored row's own fields stay; the attempt's change.
			r.State = store.OutboxPending
			if kind == mutExhaust {
				r.State = store.OutboxExhausted
			}
			meta, err := metaOf(&r)
			if err != nil {
				return err
			}
			switch kind {
			case mutRetry:
				q.Queue(sqlOutboxRetry, append(key, meta, dueNS(r.NextAt))...)
			case mutRevive:
				q.Queue(sqlOutboxRevive, append(key, meta, dueNS(r.NextAt))...)
			default:
				q.Queue(sqlOutboxExhaust, append(key, meta)...)
			}
		}
	}
	if len(q.stmts) == 0 {
		return nil
	}
	return s.run(ctx, q)
}

// OutboxDelivered implements store.Store.
func (s *Store) OutboxDelivered(ctx context.Context, rows ...store.OutboxRow) error {
	return s.mutate(ctx, mutDelivered, rows...)
}

// OutboxRetry implements store.Store.
func (s *Store) OutboxRetry(ctx context.Context, r store.OutboxRow) error {
	return s.mutate(ctx, mutRetry, r)
}

// OutboxExhaust implements store.Store.
func (s *Store) OutboxExhaust(ctx context.Context, r store.OutboxRow) error {
	return s.mutate(ctx, mutExhaust, r)
}

// OutboxRevive implements store.Store.
func (s *Store) OutboxRevive(ctx context.Context, rows ...store.OutboxRow) error {
	return s.mutate(ctx, mutRevive, rows...)
}

// sqlOutboxDue finds the due queue heads (the lowest seq of each queue),
// earliest first, then up to perQueue rows of each.
const sqlOutboxDue = `WITH heads AS (
	SELECT DISTINCT ON (target, conv) target, conv, due_ns FROM outbox
	WHERE starts_with(target, $1) ORDER BY target, conv, seq
), due AS (
	SELECT target, conv, due_ns FROM heads WHERE due_ns <= $2
	ORDER BY due_ns, target, conv LIMIT CASE WHEN $3::bigint <= 0 THEN NULL ELSE $3::bigint END
)
SELECT r.seq, r.meta, r.payload FROM due h CROSS JOIN LATERAL (
	SELECT seq, meta, payload FROM outbox o WHERE o.target = h.target AND o.conv = h.conv
	ORDER BY seq LIMIT CASE WHEN $4::bigint <= 0 THEN NULL ELSE $4::bigint END
) r
ORDER BY h.due_ns, h.target, h.conv, r.seq`

// OutboxDue implements store.Store.
func (s *Store) OutboxDue(ctx context.Context, prefix string, now time.Time, queues, perQueue int) ([]store.OutboxRow, error) {
	if !textOK(prefix) {
		return nil, nil
	}
	return s.rows(ctx, sqlOutboxDue, prefix, dueNS(now), int64(queues), int64(perQueue))
}

// OutboxExhausted implements store.Store.
func (s *Store) OutboxExhausted(ctx context.Context, target string, limit int) ([]store.OutboxRow, error) {
	if !textOK(target) {
		return nil, nil
	}
	return s.rows(ctx, `SELECT seq, meta, payload FROM outbox_dead WHERE $1 = '' OR target = $1 ORDER BY target, conv, seq
LIMIT CASE WHEN $2::bigint <= 0 THEN NULL ELSE $2::bigint END`, target, int64(limit))
}

func (s *Store) rows(ctx context.Context, sql string, args ...any) ([]store.OutboxRow, error) {
	if err := s.readCtx(); err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	var (
		out           []store.OutboxRow
		seq           int64
		meta, payload []byte
	)
	_, err = pgx.ForEachRow(rows, []any{&seq, &meta, &payload}, func() error {
		r, err := decodeRow(seq, meta, payload)
		if err != nil {
			return err
		}
		out = append(out, r)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	return out, nil
}
