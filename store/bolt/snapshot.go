package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"

	bbolt "go.etcd.io/bbolt"

	"chatgate/core/model"
	"chatgate/store"
)

// Snapshot implements store.Store: fn reads inside one bbolt read
// transaction. While it lasts, a writer of this process that must grow the
// file's mmap waits for it; the export command opens the file alone.
func (s *Store) Snapshot(ctx context.Context, fn func(store.Reader) error) error {
	if s.reqs.Closed() {
		return store.ErrClosed
	}
	return s.db.View(func(tx *bbolt.Tx) error {
		return fn(&reader{ctx: ctx, tx: tx})
	})
}

// reader is a store.Reader over one read transaction.
type reader struct {
	ctx context.Context
	tx  *bbolt.Tx
	n   int // records handed out, to check ctx now and then
}

func (r *reader) tick() error {
	r.n++
	if r.n%1024 == 0 {
		return r.ctx.Err()
	}
	return nil
}

func (r *reader) get(bucket, key []byte, out any) error {
	v := r.tx.Bucket(bucket).Get(key)
	if v == nil {
		return store.ErrNotFound
	}
	if err := json.Unmarshal(v, out); err != nil {
		return fmt.Errorf("decode %s %q: %w", bucket, key, err)
	}
	return nil
}

func (r *reader) Visitor(id model.VisitorID) (model.Visitor, error) {
	var v model.Visitor
	err := r.get(bVisitors, []byte(id), &v)
	return v, err
}

func (r *reader) Conversation(id model.ConvID) (model.Conversation, error) {
	v := r.tx.Bucket(bConvs).Get([]byte(id))
	if v == nil {
		return model.Conversation{}, store.ErrNotFound
	}
	return decodeConv(r.tx, []byte(id), v)
}

func (r *reader) VisitorConversations(id model.VisitorID) ([]model.ConvID, error) {
	prefix := join([]byte(id))
	var out []model.ConvID
	c := r.tx.Bucket(bVConvs).Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		out = append(out, model.ConvID(bytes.TrimSuffix(k[len(prefix):], []byte{0})))
	}
	return out, nil
}

// each decodes every value of bucket (keys with prefix) into a fresh T.
func each[T any](r *reader, bucket, prefix []byte, fn func(T) error) error {
	c := r.tx.Bucket(bucket).Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		var x T
		if err := json.Unmarshal(v, &x); err != nil {
			return fmt.Errorf("decode %s %q: %w", bucket, k, err)
		}
		if err := fn(x); err != nil {
			return err
		}
		if err := r.tick(); err != nil {
			return err
		}
	}
	return nil
}

func (r *reader) Visitors(fn func(model.Visitor) error) error {
	return each(r, bVisitors, nil, fn)
}

func (r *reader) Conversations(fn func(model.Conversation) error) error {
	c := r.tx.Bucket(bConvs).Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		conv, err := decodeConv(r.tx, k, v)
		if err != nil {
			return err
		}
		if err := fn(conv); err != nil {
			return err
		}
		if err := r.tick(); err != nil {
			return err
		}
	}
	return nil
}

func (r *reader) Events(conv model.ConvID, fn func(model.Event) error) error {
	prefix := join([]byte(conv))
	c := r.tx.Bucket(bEvents).Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		var e model.Event
		if err := decodeEvent(k, v, &e); err != nil {
			return err
		}
		if err := fn(e); err != nil {
			return err
		}
		if err := r.tick(); err != nil {
			return err
		}
	}
	return nil
}

// splitKey splits a composite key of n parts (see join).
func splitKey(k []byte, n int) ([][]byte, bool) {
	parts := bytes.SplitN(k, []byte{0}, n+1)
	if len(parts) != n+1 || len(parts[n]) != 0 {
		return nil, false
	}
	return parts[:n], true
}

func (r *reader) Mappings(fn func(store.Mapping, bool) error) error {
	rev := r.tx.Bucket(bMapsRev)
	c := r.tx.Bucket(bMaps).Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		p, ok := splitKey(k, 4)
		if !ok {
			return fmt.Errorf("maps key %q is corrupt", k)
		}
		m := store.Mapping{MapKey: store.MapKey{System: string(p[0]), Tenant: string(p[1]), Kind: string(p[2]), Foreign: string(p[3])}, Core: string(v)}
		latest := bytes.Equal(rev.Get(join(p[0], p[1], p[2], v)), p[3])
		if err := fn(m, latest); err != nil {
			return err
		}
		if err := r.tick(); err != nil {
			return err
		}
	}
	return nil
}

func (r *reader) Idems(fn func(store.Idem) error) error {
	c := r.tx.Bucket(bTxn).Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		p, ok := splitKey(k, 2)
		if !ok || len(v) < 9 {
			return fmt.Errorf("txn record %q is corrupt", k)
		}
		id := store.Idem{System: string(p[0]), Key: string(p[1]), Conv: model.ConvID(v[:len(v)-9]), Seq: binary.BigEndian.Uint64(v[len(v)-8:])}
		if err := fn(id); err != nil {
			return err
		}
		if err := r.tick(); err != nil {
			return err
		}
	}
	return nil
}

func (r *reader) Meta(fn func(string, []byte) error) error {
	c := r.tx.Bucket(bMeta).Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if bytes.Equal(k, schemaKey) {
			continue
		}
		if err := fn(string(k), bytes.Clone(v)); err != nil {
			return err
		}
	}
	return nil
}

func (r *reader) Outbox(fn func(store.OutboxRow) error) error {
	for _, b := range [][]byte{bOutbox, bOutboxDead} {
		c := r.tx.Bucket(b).Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			row, err := decodeRow(v)
			if err != nil {
				return err
			}
			if err := fn(row); err != nil {
				return err
			}
			if err := r.tick(); err != nil {
				return err
			}
		}
	}
	return nil
}

// Restore implements store.Store. The records are encoded before they
// reach the writer; the writer compares and writes them in one
// transaction.
func (s *Store) Restore(ctx context.Context, in *store.Restore) (store.RestoreResult, error) {
	op, err := encodeRestore(in)
	if err != nil {
		return nil, err
	}
	if len(op.recs) == 0 && len(op.outbox) == 0 {
		return store.RestoreResult{}, nil
	}
	if in.DryRun {
		if s.reqs.Closed() {
			return nil, store.ErrClosed
		}
		err := s.db.View(func(tx *bbolt.Tx) error {
			_, err := op.apply(tx)
			return err
		})
		return op.result, err
	}
	o := ops{restore: op}
	if err := s.submit(ctx, o); err != nil {
		return nil, err
	}
	return op.result, nil
}

// restoreRec is one record to write if absent.
type restoreRec struct {
	kind   string
	bucket []byte
	key    []byte
	val    []byte
	// also are puts that go with the record when it is written (the
	// visitor_convs index, a reverse mapping).
	also []kv
	// replace: a present record with other content is overwritten (meta).
	replace bool
	// conv: a conversation record, val its body (LastSeq 0) and lastSeq
	// its LastSeq (see withRev and storedConv).
	conv    bool
	lastSeq uint64
}

type restoreOp struct {
	recs   []restoreRec
	outbox []store.OutboxRow
	// dry: count only (apply runs in a read transaction).
	dry    bool
	result store.RestoreResult
}

func encodeRestore(in *store.Restore) (*restoreOp, error) {
	op := &restoreOp{recs: make([]restoreRec, 0, in.Len()), dry: in.DryRun}
	add := func(kind string, bucket, key []byte, v any) (*restoreRec, error) {
		val, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("encode %s: %w", kind, err)
		}
		op.recs = append(op.recs, restoreRec{kind: kind, bucket: bucket, key: key, val: val})
		return &op.recs[len(op.recs)-1], nil
	}
	for i := range in.Visitors {
		v := &in.Visitors[i]
		if v.ID == "" {
			return nil, errors.New("store: visitor without id")
		}
		if _, err := add(store.RecVisitor, bVisitors, []byte(v.ID), v); err != nil {
			return nil, err
		}
	}
	for i := range in.Convs {
		c := &in.Convs[i]
		if c.ID == "" || c.Visitor == "" {
			return nil, errors.New("store: conversation without id or visitor")
		}
		body := *c
		body.LastSeq = 0
		rec, err := add(store.RecConversation, bConvs, []byte(c.ID), &body)
		if err != nil {
			return nil, err
		}
		rec.conv, rec.lastSeq = true, c.LastSeq
		rec.also = []kv{{bucket: bVConvs, key: join([]byte(c.Visitor), []byte(c.ID))}}
	}
	for i := range in.Events {
		e := &in.Events[i]
		if e.Conv == "" || e.Seq == 0 {
			return nil, errors.New("store: event without conversation or seq")
		}
		val, err := eventVal(e)
		if err != nil {
			return nil, err
		}
		op.recs = append(op.recs, restoreRec{kind: store.RecEvent, bucket: bEvents, key: eventKey(e.Conv, e.Seq), val: val})
	}
	for _, m := range in.Maps {
		if m.Foreign == "" || m.Core == "" || m.System == "" || m.Kind == "" {
			return nil, errors.New("store: incomplete mapping")
		}
		rec := restoreRec{kind: store.RecMapping, bucket: bMaps,
			key: join([]byte(m.System), []byte(m.Tenant), []byte(m.Kind), []byte(m.Foreign)), val: []byte(m.Core)}
		if m.Latest {
			rec.also = []kv{{bucket: bMapsRev, key: join([]byte(m.System), []byte(m.Tenant), []byte(m.Kind), []byte(m.Core)), val: []byte(m.Foreign)}}
		}
		op.recs = append(op.recs, rec)
	}
	for _, id := range in.Idems {
		if id.System == "" || id.Key == "" || id.Conv == "" {
			return nil, errors.New("store: incomplete idempotency key")
		}
		op.recs = append(op.recs, restoreRec{kind: store.RecIdem, bucket: bTxn, key: join([]byte(id.System), []byte(id.Key)),
			val: append(join([]byte(id.Conv)), binary.BigEndian.AppendUint64(nil, id.Seq)...)})
	}
	for _, m := range in.Meta {
		if m.Key == "" || m.Key == string(schemaKey) {
			return nil, fmt.Errorf("store: meta key %q is reserved", m.Key)
		}
		op.recs = append(op.recs, restoreRec{kind: store.RecMeta, bucket: bMeta, key: []byte(m.Key), val: bytes.Clone(m.Value), replace: true})
	}
	for _, r := range in.Outbox {
		if _, err := encodeOutboxIns(&r); err != nil {
			return nil, err
		}
		if r.Seq == 0 || (r.State != store.OutboxPending && r.State != store.OutboxExhausted) {
			return nil, fmt.Errorf("store: outbox row %q without seq or state", r.ID)
		}
		op.outbox = append(op.outbox, r)
	}
	for _, r := range op.recs {
		if len(r.key) == 0 || len(r.key) > bbolt.MaxKeySize || len(r.val) > bbolt.MaxValueSize {
			return nil, fmt.Errorf("store: key or value size out of range in %s", r.bucket)
		}
	}
	return op, nil
}

// apply writes what is absent and counts the rest. It returns the number of
// keys written. Conversations it writes are new (a present one is never
// overwritten), so the conversation cache, which holds only conversations
// written since the store opened, has no entry to update: readers find
// them in the file.
func (op *restoreOp) apply(tx *bbolt.Tx) (int, error) {
	res := store.RestoreResult{}
	n := 0
	if !op.dry {
		// An export lists visitors, conversations and events in key
		// order, so an import appends: pages filled nearly full rather
		// than split in half (bbolt's default for any insert) make half
		// the pages to allocate, write and fsync. The setting lasts for
		// this transaction.
		for _, b := range [][]byte{bVisitors, bConvs, bEvents} {
			tx.Bucket(b).FillPercent = 0.9
		}
	}
	put := func(bucket, key, val []byte) error {
		if op.dry {
			return nil
		}
		if val == nil {
			val = []byte{}
		}
		if err := tx.Bucket(bucket).Put(key, val); err != nil {
			return fmt.Errorf("put %s: %w", bucket, err)
		}
		n++
		return nil
	}
	for i := range op.recs {
		r := &op.recs[i]
		c := res[r.kind]
		old := tx.Bucket(r.bucket).Get(r.key)
		val := r.val
		same := old != nil && bytes.Equal(old, val)
		if old != nil && !same && bytes.Equal(r.bucket, bEvents) {
			// An event written by an older layout (JSON) is the same
			// event when it encodes to what is restored.
			same = sameEvent(r.key, old, val)
		}
		if r.conv {
			// Conversations are stored with their revision and seq (see
			// withRev): the same body and LastSeq at any revision is the
			// same record; a restored one starts at revision 1.
			val = withRev(r.val, 1, r.lastSeq)
			if old != nil {
				st, err := storedConv(tx, r.key, old)
				if err != nil {
					return 0, err
				}
				same = st.sameBody(r.val) && st.lastSeq == r.lastSeq
			}
		}
		if bytes.Equal(r.bucket, bVisitors) {
			// Visitors are stored with their revision too (see
			// visitorRecord): the same JSON at any revision is the same
			// record; a restored one starts at revision 1.
			val = withMember(r.val, "rev", 1)
			if old != nil {
				body, _ := visitorRecord(old)
				same = bytes.Equal(body, r.val)
			}
		}
		switch {
		case same:
			c.Same++
		case old != nil && !r.replace:
			c.Kept++
		default:
			if old != nil {
				c.Replaced++
			} else {
				c.Written++
			}
			if err := put(r.bucket, r.key, val); err != nil {
				return 0, err
			}
			for _, a := range r.also {
				if err := put(a.bucket, a.key, a.val); err != nil {
					return 0, err
				}
			}
		}
		res[r.kind] = c
	}
	for i := range op.outbox {
		k, status, err := restoreOutboxRow(tx, &op.outbox[i], op.dry)
		if err != nil {
			return 0, err
		}
		n += k
		c := res[store.RecOutbox]
		switch status {
		case restoreWritten:
			c.Written++
		case restoreSame:
			c.Same++
		default:
			c.Kept++
		}
		res[store.RecOutbox] = c
	}
	op.result = res
	return n, nil
}

type restoreStatus int

const (
	restoreWritten restoreStatus = iota
	restoreSame
	restoreKept
)

// restoreOutboxRow writes an outbox row under its own seq, keeping its
// queue's head index right and the bucket's sequence past it.
func restoreOutboxRow(tx *bbolt.Tx, r *store.OutboxRow, dry bool) (int, restoreStatus, error) {
	pending := r.State == store.OutboxPending
	bucket, other := bOutbox, bOutboxDead
	if !pending {
		bucket, other = bOutboxDead, bOutbox
	}
	b := tx.Bucket(bucket)
	key := outboxKey(r.Target, r.Conv, r.Seq)
	payload := r.Payload
	row := *r
	row.Payload = nil
	val, err := encodeRow(&row, payload)
	if err != nil {
		return 0, 0, err
	}
	if old := b.Get(key); old != nil {
		if bytes.Equal(old, val) {
			return 0, restoreSame, nil
		}
		return 0, restoreKept, nil
	}
	// A row delivered (pending → deleted) or exhausted since is not
	// brought back: either bucket holding the key keeps it.
	if tx.Bucket(other).Get(key) != nil {
		return 0, restoreKept, nil
	}
	if dry {
		return 0, restoreWritten, nil
	}
	ob := tx.Bucket(bOutbox)
	if ob.Sequence() < r.Seq {
		if err := ob.SetSequence(r.Seq); err != nil {
			return 0, 0, fmt.Errorf("outbox sequence: %w", err)
		}
	}
	if pending {
		// The row may become its queue's head: drop the old head's due
		// entry, write, index the (new) head.
		prefix := queuePrefix(r.Target, r.Conv)
		if hk, hv := ob.Cursor().Seek(prefix); hk != nil && bytes.HasPrefix(hk, prefix) {
			head, err := decodeRow(hv)
			if err != nil {
				return 0, 0, err
			}
			if err := tx.Bucket(bOutboxDue).Delete(dueKey(head.NextAt, hk)); err != nil {
				return 0, 0, fmt.Errorf("delete outbox_due: %w", err)
			}
		}
		if err := b.Put(key, val); err != nil {
			return 0, 0, fmt.Errorf("put outbox: %w", err)
		}
		k, err := promoteHead(tx, prefix)
		if err != nil {
			return 0, 0, err
		}
		return 2 + k, restoreWritten, nil
	}
	if err := b.Put(key, val); err != nil {
		return 0, 0, fmt.Errorf("put outbox_dead: %w", err)
	}
	return 1, restoreWritten, nil
}
