// Package bolt is the embedded Store on bbolt. All writes go through one
// writer goroutine that commits whatever is queued in a single fsync'd
// transaction (group commit): with many writers one fsync is shared by the
// whole group, with one writer there is no added wait (unlike db.Batch,
// which sleeps up to 10 ms collecting callers).
package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	bbolt "go.etcd.io/bbolt"

	"chatgate/core/model"
	"chatgate/store"
)

var (
	bMeta     = []byte("meta")
	bVisitors = []byte("visitors")
	bConvs    = []byte("convs")
	bVConvs   = []byte("visitor_convs")
	bEvents   = []byte("events")
	bMaps     = []byte("maps")
	bMapsRev  = []byte("maps_rev")
	bTxn      = []byte("txn")
	// Outbox layout (see outbox.go): outbox holds pending rows under
	// target ‖ 0 ‖ conv ‖ 0 ‖ seq (uint64 BE), so that one queue is one
	// key range; outbox_due indexes the head of every queue under
	// due time (uint64 BE unix ns) ‖ that key; outbox_dead holds
	// exhausted rows under the same key as they had in outbox.
	bOutbox     = []byte("outbox")
	bOutboxDue  = []byte("outbox_due")
	bOutboxDead = []byte("outbox_dead")

	allBuckets = [][]byte{bMeta, bVisitors, bConvs, bVConvs, bEvents, bMaps, bMapsRev, bTxn, bOutbox, bOutboxDue, bOutboxDead}
	schemaKey  = []byte("schema")
)

// Stats describes one group commit, for metrics.
type Stats struct {
	Requests int           // commits answered by this transaction
	Keys     int           // keys written
	Duration time.Duration // time spent in db.Update, fsync included
	Err      error
}

// Options tune the store. The zero value is usable.
type Options struct {
	// MaxGroup caps how many queued commits share one transaction.
	MaxGroup int
	// QueueSize bounds the commit queue; callers block (honouring their
	// context) when it is full.
	QueueSize int
	// OnCommit, if set, is called by the writer after every transaction.
	OnCommit func(Stats)
	// NoSync skips fsync. For tests of logic only; never in production.
	NoSync bool
}

// Store is the bbolt-backed store.Store.
type Store struct {
	db   *bbolt.DB
	opts Options
	reqs chan *request
	done chan struct{}
	// convs caches committed conversations in progress; the writer
	// alone fills it.
	convs *convCache
	// maps caches found mappings (Resolve); see mapCache.
	maps *mapCache

	mu     sync.RWMutex // guards closed against concurrent sends on reqs
	closed bool
}

type request struct {
	ops  ops
	errc chan error
}

// Open opens (creating if needed) the data file at path and starts the
// writer. It refuses a file written with a newer schema version.
func Open(path string, opts Options) (*Store, error) {
	if opts.MaxGroup <= 0 {
		opts.MaxGroup = 1024
	}
	if opts.QueueSize <= 0 {
		opts.QueueSize = 8192
	}
	// The freelist is written with every transaction (one or a few pages
	// in the same fsync) so that opening reads it back. Without it
	// (NoFreelistSync) bbolt rebuilds it at every open by walking every
	// page of the file: 0.26 s for a file of 1M events with the file in
	// the page cache, 8 s when it is not (after a reboot). A file written
	// without a freelist gets one at its first open here. The hashmap
	// freelist keeps allocation cheap when the free list is long.
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: 2 * time.Second, NoSync: opts.NoSync,
		NoFreelistSync: false, FreelistType: bbolt.FreelistMapType})
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		for _, b := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		meta := tx.Bucket(bMeta)
		v := meta.Get(schemaKey)
		if v == nil {
			return meta.Put(schemaKey, []byte(strconv.Itoa(store.SchemaVersion)))
		}
		n, err := strconv.Atoi(string(v))
		if err != nil {
			return fmt.Errorf("schema version %q: %w", v, err)
		}
		if n > store.SchemaVersion {
			return fmt.Errorf("%w: file has %d, this build reads up to %d", store.ErrNewerSchema, n, store.SchemaVersion)
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("init %s: %w", path, err)
	}
	s := &Store{db: db, opts: opts, reqs: make(chan *request, opts.QueueSize), done: make(chan struct{}), convs: newConvCache(), maps: newMapCache()}
	go s.writer()
	return s, nil
}

// Commit implements store.Store.
func (s *Store) Commit(ctx context.Context, b *store.Batch) error {
	if b.Empty() {
		return nil
	}
	o, err := encode(b)
	if err != nil {
		return err
	}
	if err := s.submit(ctx, o); err != nil {
		return err
	}
	// The writer set o.convs[i].Rev before answering (o shares its
	// backing arrays with the request it queued).
	for i := range b.Convs {
		b.Convs[i].Rev = o.convs[i].Rev
	}
	for i := range b.Visitors {
		b.Visitors[i].Rev = o.visitorPuts[i].rev
	}
	return nil
}

// submit queues o for the writer and waits for its outcome.
func (s *Store) submit(ctx context.Context, o ops) error {
	r := &request{ops: o, errc: make(chan error, 1)}
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return store.ErrClosed
	}
	// A context that is already done must not race a free queue slot in
	// the select below (select picks at random): refuse before queueing.
	if err := ctx.Err(); err != nil {
		s.mu.RUnlock()
		return fmt.Errorf("commit queue: %w", err)
	}
	select {
	case s.reqs <- r:
	case <-ctx.Done():
		s.mu.RUnlock()
		return fmt.Errorf("commit queue: %w", ctx.Err())
	}
	s.mu.RUnlock()
	// Once queued the commit will happen; waiting for it regardless of ctx
	// keeps "returned nil" equal to "on disk" and lets callers retry safely
	// with idempotency keys when they do give up.
	select {
	case err := <-r.errc:
		return err
	case <-ctx.Done():
		return fmt.Errorf("commit: %w", ctx.Err())
	}
}

// writer is the single goroutine that writes to bbolt.
func (s *Store) writer() {
	defer close(s.done)
	group := make([]*request, 0, s.opts.MaxGroup)
	for first := range s.reqs {
		group = append(group[:0], first)
	drain:
		for len(group) < s.opts.MaxGroup {
			select {
			case r, ok := <-s.reqs:
				if !ok {
					break drain
				}
				group = append(group, r)
			default:
				break drain
			}
		}
		s.commitGroup(group)
	}
}

func (s *Store) commitGroup(group []*request) {
	start := time.Now()
	errs := make([]error, len(group))
	keys := 0
	err := s.db.Update(func(tx *bbolt.Tx) error {
		for i, r := range group {
			if err := r.ops.check(tx); err != nil {
				errs[i] = err
				continue
			}
			n, err := r.ops.apply(tx)
			if err != nil {
				// A Put failing after checks passed leaves this request half
				// written: abort the whole transaction.
				return err
			}
			keys += n
		}
		return nil
	})
	if s.opts.OnCommit != nil {
		s.opts.OnCommit(Stats{Requests: len(group), Keys: keys, Duration: time.Since(start), Err: err})
	}
	if err == nil {
		// Before anyone hears of the commit, so that a committer reads
		// its own write (see convCache).
		for i, r := range group {
			if errs[i] == nil {
				s.convs.stored(r.ops.convs)
			}
		}
	}
	for i, r := range group {
		if err != nil {
			r.errc <- fmt.Errorf("bolt commit: %w", err)
		} else {
			r.errc <- errs[i]
		}
	}
}

// Close implements store.Store: queued commits are written, then the file
// is closed.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.reqs)
	s.mu.Unlock()
	<-s.done
	return s.db.Close()
}

// --- encoding -------------------------------------------------------------

type kv struct {
	bucket []byte
	key    []byte
	val    []byte
}

// ops is a batch encoded for the writer: checks run first so that a
// request that breaks a rule writes nothing.
type ops struct {
	puts []kv
	// absent keys must not exist yet.
	absent []kv
	// present keys must exist already (event updates).
	present []kv
	// sameOrAbsent keys must not exist or hold exactly val (mappings).
	sameOrAbsent []kv
	// outbox are rows to append to their queues (seq assigned on apply).
	outbox []outboxIns
	// outboxMuts are changes of pending outbox rows, applied in order.
	outboxMuts []*outboxMut
	// convPuts are the conversation records to write, checked against
	// their expected revision; convs are the same conversations decoded
	// back from their encoding (Rev set by check), for the conversation
	// cache and the caller once committed.
	convPuts []revPut
	convs    []model.Conversation
	// visitorPuts are the visitor records to write, under the same check.
	visitorPuts []revPut
}

// revPut is a conversation or visitor record to write. Its stored value is
// the record's JSON with its revision spliced in as the last member
// (`,"rev":N}`; see revOf); expect is the revision the writer read (0:
// write whatever is stored); rev is the one written, set by check.
type revPut struct {
	bucket []byte
	key    []byte
	val    []byte
	expect uint64
	rev    uint64
}

// checkRev checks p against the stored record and sets the revision to
// write.
func (p *revPut) checkRev(tx *bbolt.Tx) error {
	stored := revOf(tx.Bucket(p.bucket).Get(p.key))
	if p.expect != 0 && p.expect != stored {
		return fmt.Errorf("%w: %s %s is at revision %d, not %d", store.ErrStale, p.bucket, p.key, stored, p.expect)
	}
	p.rev = stored + 1
	return nil
}

// withRev returns the stored form of a conversation's JSON at rev.
func withRev(val []byte, rev uint64) []byte {
	out := make([]byte, 0, len(val)+28)
	out = append(out, val[:len(val)-1]...)
	if len(val) > 2 {
		out = append(out, ',')
	}
	out = append(out, `"rev":`...)
	out = strconv.AppendUint(out, rev, 10)
	return append(out, '}')
}

// revOf reads the revision withRev put at the end of a stored
// conversation; 0 for a record written before revisions existed. The
// member is recognised only as the very last one, where the object's own
// closing brace follows its digits: a property value that merely contains
// "rev" ends in two braces.
func revOf(v []byte) uint64 {
	if len(v) < 8 || v[len(v)-1] != '}' {
		return 0
	}
	i := len(v) - 2
	for i >= 0 && v[i] >= '0' && v[i] <= '9' {
		i--
	}
	const tag = `"rev":`
	if i == len(v)-2 || i+1 < len(tag) || string(v[i+1-len(tag):i+1]) != tag {
		return 0
	}
	if j := i + 1 - len(tag) - 1; j < 0 || (v[j] != ',' && v[j] != '{') {
		return 0
	}
	n, err := strconv.ParseUint(string(v[i+1:len(v)-1]), 10, 64)
	if err != nil {
		return 0
	}
	return n
}

func encode(b *store.Batch) (ops, error) {
	var o ops
	put := func(bucket, key []byte, v any) error {
		val, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("encode %s: %w", bucket, err)
		}
		o.puts = append(o.puts, kv{bucket, key, val})
		return nil
	}
	for i := range b.Visitors {
		v := &b.Visitors[i]
		if v.ID == "" {
			return o, errors.New("store: visitor without id")
		}
		val, err := json.Marshal(v)
		if err != nil {
			return o, fmt.Errorf("encode %s: %w", bVisitors, err)
		}
		o.visitorPuts = append(o.visitorPuts, revPut{bucket: bVisitors, key: []byte(v.ID), val: val, expect: v.Rev})
	}
	for i := range b.Convs {
		c := &b.Convs[i]
		if c.ID == "" || c.Visitor == "" {
			return o, errors.New("store: conversation without id or visitor")
		}
		val, err := json.Marshal(c)
		if err != nil {
			return o, fmt.Errorf("encode %s: %w", bConvs, err)
		}
		var stored model.Conversation
		if err := json.Unmarshal(val, &stored); err != nil {
			return o, fmt.Errorf("decode conversation: %w", err)
		}
		o.convs = append(o.convs, stored)
		o.convPuts = append(o.convPuts, revPut{bucket: bConvs, key: []byte(c.ID), val: val, expect: c.Rev})
		o.puts = append(o.puts, kv{bVConvs, join([]byte(c.Visitor), []byte(c.ID)), nil})
	}
	// New events must not exist yet; updates must exist already.
	for _, set := range []struct {
		evs  []model.Event
		cond *[]kv
	}{{b.Events, &o.absent}, {b.Updates, &o.present}} {
		for i := range set.evs {
			e := &set.evs[i]
			if e.Conv == "" || e.Seq == 0 {
				return o, errors.New("store: event without conversation or seq")
			}
			k := eventKey(e.Conv, e.Seq)
			*set.cond = append(*set.cond, kv{bEvents, k, nil})
			if err := put(bEvents, k, e); err != nil {
				return o, err
			}
		}
	}
	for _, m := range b.Maps {
		if m.Foreign == "" || m.Core == "" || m.System == "" || m.Kind == "" {
			return o, errors.New("store: incomplete mapping")
		}
		fk := join([]byte(m.System), []byte(m.Tenant), []byte(m.Kind), []byte(m.Foreign))
		o.sameOrAbsent = append(o.sameOrAbsent, kv{bMaps, fk, []byte(m.Core)})
		o.puts = append(o.puts, kv{bMaps, fk, []byte(m.Core)},
			kv{bMapsRev, join([]byte(m.System), []byte(m.Tenant), []byte(m.Kind), []byte(m.Core)), []byte(m.Foreign)})
	}
	for _, id := range b.Idems {
		if id.System == "" || id.Key == "" {
			return o, errors.New("store: incomplete idempotency key")
		}
		k := join([]byte(id.System), []byte(id.Key))
		val := append(join([]byte(id.Conv)), binary.BigEndian.AppendUint64(nil, id.Seq)...)
		o.absent = append(o.absent, kv{bTxn, k, nil})
		o.puts = append(o.puts, kv{bTxn, k, val})
	}
	for k, v := range b.Meta {
		if k == "" || k == string(schemaKey) {
			return o, fmt.Errorf("store: meta key %q is reserved", k)
		}
		o.puts = append(o.puts, kv{bMeta, []byte(k), bytes.Clone(v)})
	}
	for i := range b.Outbox {
		in, err := encodeOutboxIns(&b.Outbox[i])
		if err != nil {
			return o, err
		}
		o.outbox = append(o.outbox, in)
	}
	for _, p := range o.puts {
		if len(p.key) == 0 || len(p.key) > bbolt.MaxKeySize || len(p.val) > bbolt.MaxValueSize {
			return o, fmt.Errorf("store: key or value size out of range in %s", p.bucket)
		}
	}
	for _, p := range append(slices.Clip(o.convPuts), o.visitorPuts...) {
		if len(p.key) == 0 || len(p.key) > bbolt.MaxKeySize || len(p.val)+32 > bbolt.MaxValueSize {
			return o, fmt.Errorf("store: key or value size out of range in %s", p.bucket)
		}
	}
	return o, nil
}

func (o *ops) check(tx *bbolt.Tx) error {
	// Revisions first: a writer that built on a stale read hears so
	// rather than of the event seqs it collides with.
	for i := range o.convPuts {
		if err := o.convPuts[i].checkRev(tx); err != nil {
			return err
		}
		o.convs[i].Rev = o.convPuts[i].rev
	}
	for i := range o.visitorPuts {
		if err := o.visitorPuts[i].checkRev(tx); err != nil {
			return err
		}
	}
	for _, m := range o.outboxMuts {
		if err := m.check(tx); err != nil {
			return err
		}
	}
	for _, c := range o.present {
		if tx.Bucket(c.bucket).Get(c.key) == nil {
			return fmt.Errorf("%w: %s key to update does not exist", store.ErrConflict, c.bucket)
		}
	}
	for _, c := range o.absent {
		if tx.Bucket(c.bucket).Get(c.key) != nil {
			return fmt.Errorf("%w: %s key exists", store.ErrConflict, c.bucket)
		}
	}
	for _, c := range o.sameOrAbsent {
		if v := tx.Bucket(c.bucket).Get(c.key); v != nil && !bytes.Equal(v, c.val) {
			return fmt.Errorf("%w: %s bound to another id", store.ErrConflict, c.bucket)
		}
	}
	// Two checks inside one batch can collide too (the same idempotency
	// key twice, one foreign id bound to two core ids); catch it before
	// writing.
	if len(o.absent) > 1 {
		seen := make(map[string]struct{}, len(o.absent))
		for _, c := range o.absent {
			k := string(c.bucket) + "\x00" + string(c.key)
			if _, dup := seen[k]; dup {
				return fmt.Errorf("%w: duplicate %s key in batch", store.ErrConflict, c.bucket)
			}
			seen[k] = struct{}{}
		}
	}
	if len(o.sameOrAbsent) > 1 {
		bound := make(map[string][]byte, len(o.sameOrAbsent))
		for _, c := range o.sameOrAbsent {
			k := string(c.bucket) + "\x00" + string(c.key)
			if v, dup := bound[k]; dup && !bytes.Equal(v, c.val) {
				return fmt.Errorf("%w: %s bound to two ids in batch", store.ErrConflict, c.bucket)
			}
			bound[k] = c.val
		}
	}
	return nil
}

func (o *ops) apply(tx *bbolt.Tx) (int, error) {
	for _, set := range [][]revPut{o.convPuts, o.visitorPuts} {
		for _, p := range set {
			if err := tx.Bucket(p.bucket).Put(p.key, withRev(p.val, p.rev)); err != nil {
				return 0, fmt.Errorf("put %s: %w", p.bucket, err)
			}
		}
	}
	for _, p := range o.puts {
		val := p.val
		if val == nil {
			val = []byte{}
		}
		if err := tx.Bucket(p.bucket).Put(p.key, val); err != nil {
			return 0, fmt.Errorf("put %s: %w", p.bucket, err)
		}
	}
	n := len(o.puts) + len(o.convPuts) + len(o.visitorPuts)
	for i := range o.outbox {
		k, err := o.outbox[i].apply(tx)
		if err != nil {
			return 0, err
		}
		n += k
	}
	for _, m := range o.outboxMuts {
		k, err := m.apply(tx)
		if err != nil {
			return 0, err
		}
		n += k
	}
	return n, nil
}

// join builds a composite key: parts separated by a 0 byte. None of the
// parts chatgate writes contains a 0 byte (ids are text).
func join(parts ...[]byte) []byte {
	n := len(parts)
	for _, p := range parts {
		n += len(p)
	}
	out := make([]byte, 0, n)
	for _, p := range parts {
		out = append(out, p...)
		out = append(out, 0)
	}
	return out
}

func eventKey(c model.ConvID, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(join([]byte(c)), seq)
}

// --- reads -----------------------------------------------------------------

func (s *Store) get(bucket, key []byte, out any) error {
	return s.db.View(func(tx *bbolt.Tx) error {
		v := tx.Bucket(bucket).Get(key)
		if v == nil {
			return store.ErrNotFound
		}
		if out == nil {
			return nil
		}
		if err := json.Unmarshal(v, out); err != nil {
			return fmt.Errorf("decode %s: %w", bucket, err)
		}
		return nil
	})
}

// Conversation implements store.Store.
func (s *Store) Conversation(_ context.Context, id model.ConvID) (model.Conversation, error) {
	if c, ok := s.convs.get(id); ok {
		return c, nil
	}
	v, err := s.raw(bConvs, []byte(id))
	if err != nil {
		return model.Conversation{}, err
	}
	return decodeConv(v)
}

// decodeConv decodes a stored conversation and its revision.
func decodeConv(v []byte) (model.Conversation, error) {
	var c model.Conversation
	if err := json.Unmarshal(v, &c); err != nil {
		return c, fmt.Errorf("decode %s: %w", bConvs, err)
	}
	c.Rev = revOf(v)
	return c, nil
}

// Visitor implements store.Store.
func (s *Store) Visitor(_ context.Context, id model.VisitorID) (model.Visitor, error) {
	raw, err := s.raw(bVisitors, []byte(id))
	if err != nil {
		return model.Visitor{}, err
	}
	var v model.Visitor
	if err := json.Unmarshal(raw, &v); err != nil {
		return v, fmt.Errorf("decode %s: %w", bVisitors, err)
	}
	v.Rev = revOf(raw)
	return v, nil
}

// Events implements store.Store.
func (s *Store) Events(ctx context.Context, conv model.ConvID, from uint64, limit int) ([]model.Event, error) {
	if from == 0 {
		from = 1
	}
	prefix := join([]byte(conv))
	var out []model.Event
	err := s.db.View(func(tx *bbolt.Tx) error {
		c := tx.Bucket(bEvents).Cursor()
		for k, v := c.Seek(eventKey(conv, from)); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			if limit > 0 && len(out) >= limit {
				break
			}
			var e model.Event
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("decode event: %w", err)
			}
			out = append(out, e)
			if len(out)%256 == 0 && ctx.Err() != nil {
				return ctx.Err()
			}
		}
		return nil
	})
	return out, err
}

// VisitorConversations implements store.Store.
func (s *Store) VisitorConversations(_ context.Context, v model.VisitorID) ([]model.ConvID, error) {
	prefix := join([]byte(v))
	var out []model.ConvID
	err := s.db.View(func(tx *bbolt.Tx) error {
		c := tx.Bucket(bVConvs).Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			rest := k[len(prefix):]
			out = append(out, model.ConvID(bytes.TrimSuffix(rest, []byte{0})))
		}
		return nil
	})
	return out, err
}

// convPage is how many conversations Conversations decodes per read
// transaction.
const convPage = 256

// Conversations implements store.Store. fn runs outside any bbolt
// transaction, a page at a time, so that it may use the store (reads and
// Commit): a read transaction held across fn would deadlock with a writer
// that needs to grow the mmap. The scan is therefore not one snapshot.
func (s *Store) Conversations(ctx context.Context, fn func(model.Conversation) bool) error {
	var after []byte // last key handed out; nil before the first page
	page := make([]model.Conversation, 0, convPage)
	for {
		page = page[:0]
		err := s.db.View(func(tx *bbolt.Tx) error {
			c := tx.Bucket(bConvs).Cursor()
			var k, v []byte
			if after == nil {
				k, v = c.First()
			} else if k, v = c.Seek(after); k != nil && bytes.Equal(k, after) {
				k, v = c.Next()
			}
			for ; k != nil && len(page) < convPage; k, v = c.Next() {
				conv, err := decodeConv(v)
				if err != nil {
					return fmt.Errorf("conversation %q: %w", k, err)
				}
				page = append(page, conv)
				after = append(after[:0], k...)
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, conv := range page {
			if !fn(conv) {
				return nil
			}
		}
		if len(page) < convPage {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}

func (s *Store) raw(bucket, key []byte) ([]byte, error) {
	var out []byte
	err := s.db.View(func(tx *bbolt.Tx) error {
		v := tx.Bucket(bucket).Get(key)
		if v == nil {
			return store.ErrNotFound
		}
		out = bytes.Clone(v)
		return nil
	})
	return out, err
}

// Resolve implements store.Store.
func (s *Store) Resolve(_ context.Context, k store.MapKey) (string, error) {
	key := join([]byte(k.System), []byte(k.Tenant), []byte(k.Kind), []byte(k.Foreign))
	if v, ok := s.maps.get(string(key)); ok {
		return v, nil
	}
	v, err := s.raw(bMaps, key)
	if err == nil {
		s.maps.put(string(key), string(v))
	}
	return string(v), err
}

// Reverse implements store.Store.
func (s *Store) Reverse(_ context.Context, system, tenant, kind, core string) (string, error) {
	v, err := s.raw(bMapsRev, join([]byte(system), []byte(tenant), []byte(kind), []byte(core)))
	return string(v), err
}

// Idempotent implements store.Store.
func (s *Store) Idempotent(_ context.Context, system, key string) (store.Idem, error) {
	v, err := s.raw(bTxn, join([]byte(system), []byte(key)))
	if err != nil {
		return store.Idem{}, err
	}
	if len(v) < 9 {
		return store.Idem{}, fmt.Errorf("idempotency record for %q is corrupt", key)
	}
	conv := v[:len(v)-9]
	return store.Idem{System: system, Key: key, Conv: model.ConvID(conv), Seq: binary.BigEndian.Uint64(v[len(v)-8:])}, nil
}

// Meta implements store.Store.
func (s *Store) Meta(_ context.Context, key string) ([]byte, error) {
	return s.raw(bMeta, []byte(key))
}

var _ store.Store = (*Store)(nil)
