package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	bbolt "go.etcd.io/bbolt"

	"chatgate/core/model"
	"chatgate/store"
)

// The outbox is three buckets:
//
//	outbox       target ‖ 0 ‖ conv ‖ 0 ‖ seq (BE)             → row
//	outbox_due   due (BE unix ns) ‖ target ‖ 0 ‖ conv ‖ 0 ‖ seq → (empty)
//	outbox_dead  target ‖ 0 ‖ conv ‖ 0 ‖ seq (BE)             → row
//
// One queue, the pending rows of a (target, conv) pair, is one key range of
// outbox, in seq order. outbox_due holds exactly one entry per non-empty
// queue: its head's, keyed by the head's NextAt, so that finding the due
// queues reads only due heads, never the rows queued behind them (which may
// be many while a receiver is down). Seq comes from the outbox bucket's
// sequence, which only grows: a new row always sorts last in its queue.
//
// A row's value is uvarint(len(meta)) ‖ meta (JSON of the row without its
// payload) ‖ payload, so that payloads are stored as they are.

// maxOutboxID bounds the ids of a row, so that its keys stay far below
// bbolt's key size limit (a failing Put would abort a whole group commit).
const maxOutboxID = 1024

// outboxIns is a row to append, encoded except for its seq.
type outboxIns struct {
	row     store.OutboxRow // Payload nil; Seq assigned on apply
	payload []byte
}

func encodeOutboxIns(r *store.OutboxRow) (outboxIns, error) {
	if r.ID == "" || r.Target == "" || r.Conv == "" {
		return outboxIns{}, errors.New("store: outbox row without id, target or conversation")
	}
	if bytes.IndexByte([]byte(r.Target), 0) >= 0 || bytes.IndexByte([]byte(r.Conv), 0) >= 0 {
		return outboxIns{}, errors.New("store: outbox target or conversation contains a 0 byte")
	}
	if len(r.Target) > maxOutboxID || len(r.Conv) > maxOutboxID || len(r.ID) > maxOutboxID {
		return outboxIns{}, fmt.Errorf("store: outbox id, target or conversation longer than %d bytes", maxOutboxID)
	}
	if len(r.Payload) > bbolt.MaxValueSize/2 {
		return outboxIns{}, fmt.Errorf("store: outbox payload of %d bytes is too large", len(r.Payload))
	}
	row := *r
	row.Payload, row.Seq, row.State = nil, 0, store.OutboxPending
	return outboxIns{row: row, payload: bytes.Clone(r.Payload)}, nil
}

func queuePrefix(target string, conv model.ConvID) []byte {
	return join([]byte(target), []byte(conv))
}

func outboxKey(target string, conv model.ConvID, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(queuePrefix(target, conv), seq)
}

// dueKey is the outbox_due key of a queue head.
func dueKey(next time.Time, key []byte) []byte {
	var ns uint64
	if !next.IsZero() && next.UnixNano() > 0 {
		ns = uint64(next.UnixNano())
	}
	return append(binary.BigEndian.AppendUint64(make([]byte, 0, 8+len(key)), ns), key...)
}

// rowMeta is what a row stores besides its payload.
type rowMeta struct {
	ID        string            `json:"id"`
	Target    string            `json:"target"`
	Conv      model.ConvID      `json:"conv"`
	Seq       uint64            `json:"seq"`
	Attempts  int               `json:"attempts,omitempty"`
	NextAt    time.Time         `json:"next_at,omitzero"`
	LastError string            `json:"last_error,omitempty"`
	CreatedAt time.Time         `json:"created_at,omitzero"`
	State     store.OutboxState `json:"state"`
}

func encodeRow(r *store.OutboxRow, payload []byte) ([]byte, error) {
	meta, err := json.Marshal(rowMeta{ID: r.ID, Target: r.Target, Conv: r.Conv, Seq: r.Seq, Attempts: r.Attempts,
		NextAt: r.NextAt, LastError: r.LastError, CreatedAt: r.CreatedAt, State: r.State})
	if err != nil {
		return nil, fmt.Errorf("encode outbox row: %w", err)
	}
	out := binary.AppendUvarint(make([]byte, 0, binary.MaxVarintLen64+len(meta)+len(payload)), uint64(len(meta)))
	out = append(out, meta...)
	out = append(out, payload...)
	if len(out) > bbolt.MaxValueSize {
		return nil, errors.New("store: outbox row too large")
	}
	return out, nil
}

// decodeRow decodes a stored row; its payload is copied out of v.
func decodeRow(v []byte) (store.OutboxRow, error) {
	n, w := binary.Uvarint(v)
	if w <= 0 || uint64(len(v)-w) < n {
		return store.OutboxRow{}, errors.New("outbox row is corrupt")
	}
	var m rowMeta
	if err := json.Unmarshal(v[w:w+int(n)], &m); err != nil {
		return store.OutboxRow{}, fmt.Errorf("decode outbox row: %w", err)
	}
	return store.OutboxRow{ID: m.ID, Target: m.Target, Conv: m.Conv, Seq: m.Seq, Payload: bytes.Clone(v[w+int(n):]),
		Attempts: m.Attempts, NextAt: m.NextAt, LastError: m.LastError, CreatedAt: m.CreatedAt, State: m.State}, nil
}

// payloadOf returns the payload part of a stored value (not copied).
func payloadOf(v []byte) []byte {
	n, w := binary.Uvarint(v)
	return v[w+int(n):]
}

// isHead reports whether key is the first key of its queue.
func isHead(c *bbolt.Cursor, prefix, key []byte) bool {
	k, _ := c.Seek(prefix)
	return k != nil && bytes.Equal(k, key)
}

// promoteHead indexes the current head of the queue under prefix, if any.
func promoteHead(tx *bbolt.Tx, prefix []byte) (int, error) {
	k, v := tx.Bucket(bOutbox).Cursor().Seek(prefix)
	if k == nil || !bytes.HasPrefix(k, prefix) {
		return 0, nil
	}
	r, err := decodeRow(v)
	if err != nil {
		return 0, err
	}
	if err := tx.Bucket(bOutboxDue).Put(dueKey(r.NextAt, k), []byte{}); err != nil {
		return 0, fmt.Errorf("put outbox_due: %w", err)
	}
	return 1, nil
}

func (in *outboxIns) apply(tx *bbolt.Tx) (int, error) {
	b := tx.Bucket(bOutbox)
	seq, err := b.NextSequence()
	if err != nil {
		return 0, fmt.Errorf("outbox sequence: %w", err)
	}
	r := in.row
	r.Seq = seq
	val, err := encodeRow(&r, in.payload)
	if err != nil {
		return 0, err
	}
	key := outboxKey(r.Target, r.Conv, seq)
	if err := b.Put(key, val); err != nil {
		return 0, fmt.Errorf("put outbox: %w", err)
	}
	// seq is the largest so far, so the row is its queue's head exactly
	// when the queue was empty.
	if !isHead(b.Cursor(), queuePrefix(r.Target, r.Conv), key) {
		return 1, nil
	}
	if err := tx.Bucket(bOutboxDue).Put(dueKey(r.NextAt, key), []byte{}); err != nil {
		return 0, fmt.Errorf("put outbox_due: %w", err)
	}
	return 2, nil
}

type mutKind int

const (
	mutDelivered mutKind = iota
	mutRetry
	mutExhaust
	mutRevive
)

// outboxMut changes one pending row. check finds and decodes the stored
// row; apply, which runs right after a successful check in the same
// transaction, uses it.
type outboxMut struct {
	kind   mutKind
	r      store.OutboxRow
	key    []byte
	stored store.OutboxRow
	val    []byte
}

func (m *outboxMut) check(tx *bbolt.Tx) error {
	bucket := bOutbox
	if m.kind == mutRevive {
		bucket = bOutboxDead
	}
	v := tx.Bucket(bucket).Get(m.key)
	if v == nil {
		return fmt.Errorf("outbox row %s: %w", m.r.ID, store.ErrNotFound)
	}
	stored, err := decodeRow(v)
	if err != nil {
		return err
	}
	if stored.ID != m.r.ID {
		return fmt.Errorf("outbox row %s: %w", m.r.ID, store.ErrNotFound)
	}
	m.stored, m.val = stored, v
	return nil
}

func (m *outboxMut) apply(tx *bbolt.Tx) (int, error) {
	if m.kind == mutRevive {
		return m.revive(tx)
	}
	b, due := tx.Bucket(bOutbox), tx.Bucket(bOutboxDue)
	prefix := queuePrefix(m.stored.Target, m.stored.Conv)
	head := isHead(b.Cursor(), prefix, m.key)
	oldDue := dueKey(m.stored.NextAt, m.key)
	n := 0
	next := m.stored
	next.Attempts, next.NextAt, next.LastError = m.r.Attempts, m.r.NextAt, m.r.LastError
	if m.kind == mutRetry {
		val, err := encodeRow(&next, payloadOf(m.val))
		if err != nil {
			return 0, err
		}
		if err := b.Put(m.key, val); err != nil {
			return 0, fmt.Errorf("put outbox: %w", err)
		}
		n++
		if head {
			if err := due.Delete(oldDue); err != nil {
				return 0, fmt.Errorf("delete outbox_due: %w", err)
			}
			if err := due.Put(dueKey(next.NextAt, m.key), []byte{}); err != nil {
				return 0, fmt.Errorf("put outbox_due: %w", err)
			}
			n += 2
		}
		return n, nil
	}
	if m.kind == mutExhaust {
		next.State = store.OutboxExhausted
		val, err := encodeRow(&next, payloadOf(m.val))
		if err != nil {
			return 0, err
		}
		if err := tx.Bucket(bOutboxDead).Put(m.key, val); err != nil {
			return 0, fmt.Errorf("put outbox_dead: %w", err)
		}
		n++
	}
	if err := b.Delete(m.key); err != nil {
		return 0, fmt.Errorf("delete outbox: %w", err)
	}
	n++
	if head {
		if err := due.Delete(oldDue); err != nil {
			return 0, fmt.Errorf("delete outbox_due: %w", err)
		}
		k, err := promoteHead(tx, prefix)
		if err != nil {
			return 0, err
		}
		n += 1 + k
	}
	return n, nil
}

// revive moves an exhausted row back into its queue at its own seq; when
// it sorts first, it replaces the old head in outbox_due.
func (m *outboxMut) revive(tx *bbolt.Tx) (int, error) {
	b, due := tx.Bucket(bOutbox), tx.Bucket(bOutboxDue)
	prefix := queuePrefix(m.stored.Target, m.stored.Conv)
	var oldDue []byte
	if k, v := b.Cursor().Seek(prefix); k != nil && bytes.HasPrefix(k, prefix) {
		head, err := decodeRow(v)
		if err != nil {
			return 0, err
		}
		oldDue = dueKey(head.NextAt, k)
	}
	next := m.stored
	next.Attempts, next.NextAt, next.LastError, next.State = m.r.Attempts, m.r.NextAt, m.r.LastError, store.OutboxPending
	val, err := encodeRow(&next, payloadOf(m.val))
	if err != nil {
		return 0, err
	}
	if err := b.Put(m.key, val); err != nil {
		return 0, fmt.Errorf("put outbox: %w", err)
	}
	if err := tx.Bucket(bOutboxDead).Delete(m.key); err != nil {
		return 0, fmt.Errorf("delete outbox_dead: %w", err)
	}
	n := 2
	if !isHead(b.Cursor(), prefix, m.key) {
		return n, nil
	}
	if oldDue != nil {
		if err := due.Delete(oldDue); err != nil {
			return 0, fmt.Errorf("delete outbox_due: %w", err)
		}
		n++
	}
	if err := due.Put(dueKey(next.NextAt, m.key), []byte{}); err != nil {
		return 0, fmt.Errorf("put outbox_due: %w", err)
	}
	return n + 1, nil
}

func (s *Store) mutate(ctx context.Context, kind mutKind, rows ...store.OutboxRow) error {
	var o ops
	for _, r := range rows {
		if r.ID == "" || r.Target == "" || r.Conv == "" || r.Seq == 0 {
			return fmt.Errorf("outbox row %q: %w", r.ID, store.ErrNotFound)
		}
		if len(r.LastError) > 4096 {
			r.LastError = r.LastError[:4096]
		}
		o.outboxMuts = append(o.outboxMuts, &outboxMut{kind: kind, r: r, key: outboxKey(r.Target, r.Conv, r.Seq)})
	}
	if len(o.outboxMuts) == 0 {
		return nil
	}
	return s.submit(ctx, o)
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

// OutboxDue implements store.Store. It reads only the due heads of
// outbox_due and, for each, the first perQueue rows of its queue.
func (s *Store) OutboxDue(ctx context.Context, prefix string, now time.Time, queues, perQueue int) ([]store.OutboxRow, error) {
	limit := dueKey(now, nil)
	var out []store.OutboxRow
	err := s.db.View(func(tx *bbolt.Tx) error {
		rows := tx.Bucket(bOutbox).Cursor()
		c := tx.Bucket(bOutboxDue).Cursor()
		nq := 0
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			if len(k) < 16 {
				return errors.New("outbox_due key is corrupt")
			}
			if bytes.Compare(k[:8], limit) > 0 || (queues > 0 && nq >= queues) {
				break
			}
			key := k[8:]
			if !bytes.HasPrefix(key, []byte(prefix)) {
				continue
			}
			queue := key[:len(key)-8]
			n := 0
			for rk, rv := rows.Seek(queue); rk != nil && bytes.HasPrefix(rk, queue); rk, rv = rows.Next() {
				if perQueue > 0 && n >= perQueue {
					break
				}
				r, err := decodeRow(rv)
				if err != nil {
					return err
				}
				out = append(out, r)
				n++
			}
			nq++
			if nq%256 == 0 && ctx.Err() != nil {
				return ctx.Err()
			}
		}
		return nil
	})
	return out, err
}

// OutboxExhausted implements store.Store.
func (s *Store) OutboxExhausted(ctx context.Context, target string, limit int) ([]store.OutboxRow, error) {
	var prefix []byte
	if target != "" {
		prefix = join([]byte(target))
	}
	var out []store.OutboxRow
	err := s.db.View(func(tx *bbolt.Tx) error {
		c := tx.Bucket(bOutboxDead).Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			if limit > 0 && len(out) >= limit {
				break
			}
			r, err := decodeRow(v)
			if err != nil {
				return err
			}
			out = append(out, r)
			if len(out)%256 == 0 && ctx.Err() != nil {
				return ctx.Err()
			}
		}
		return nil
	})
	return out, err
}
