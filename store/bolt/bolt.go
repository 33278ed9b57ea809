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
	"strconv"
	"time"

	bbolt "go.etcd.io/bbolt"

	"chatgate/core/model"
	"chatgate/store"
	"chatgate/store/internal/commitq"
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

// fileSchema is the layout version of the data file (the "schema" meta
// key), which this build writes and reads up to:
//
//   - 1: conversation and event records are the JSON of model.Conversation
//     and model.Event.
//   - 2: a conversation record written with the event that takes its
//     LastSeq has last_seq 0, and the reader takes LastSeq from the
//     conversation's last event key; since then a message commit whose
//     conversation changed in nothing else leaves its record alone (it
//     was rewritten with every message: bytes and B-tree pages per
//     commit). An event record may leave out conv and seq, which its key
//     holds (see eventJSON). Version 1 records are read as they are, so
//     opening a version 1 file only raises the number.
//   - 3: event records are written in a compact binary format (see
//     recBinary in eventrec.go); JSON event records of versions 1 and 2
//     are read as they are (their first byte tells them apart), so opening
//     an older file only raises the number, which keeps builds that would
//     take a binary record for corrupt JSON from opening it.
//
// It follows store.SchemaVersion 1 (the model's JSON); a change of that
// must bump this too.
const fileSchema = 3

var _ = [1]struct{}{}[store.SchemaVersion-1] // fileSchema assumes store.SchemaVersion 1

// Stats describes one group commit, for metrics.
type Stats struct {
	Requests int // commits answered by this transaction
	Keys     int // keys written
	// Known counts the conversation records whose state the writer took
	// from the conversation cache rather than the file (see
	// convPut.known).
	Known    int
	Duration time.Duration // time spent in db.Update, fsync included
	// Wait is how long the group's oldest request waited in the queue
	// before this transaction started: a commit queued while another is
	// being written waits for all of it (its fsyncs included), so a
	// request's latency is Wait + Duration at worst. Operators read the
	// two together (chatgate_store_commit_wait_seconds).
	Wait time.Duration
	// Write is the part of Duration bbolt spent writing pages and the
	// meta page to the file, both fsyncs included; the rest is CPU
	// (checks, puts, the B-tree's spill).
	Write time.Duration
	Err   error
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
	reqs *commitq.Queue[*request]
	done chan struct{}
	// convs caches committed conversations in progress; the writer
	// alone fills it.
	convs *convCache
	// latest: each visitor's newest conversation id (latestconv.go).
	latest *latestCache
	// maps caches found mappings (Resolve); see mapCache.
	maps *mapCache
	// visitors caches visitor records; see visitorCache.
	visitors *visitorCache
	// touched holds what earlier requests of the group being written
	// changed (the writer's alone; see ops.check).
	touched touched
}

type request struct {
	ops  ops
	errc chan error
	// queued is when the request entered the queue (for Stats.Wait).
	queued time.Time
	// inline holds what a Post's batch encodes to (see inlineOps), in
	// the request's own allocation.
	inline inlineOps
}

// inlineOps is room for the common batch, one message on one
// conversation: the visitor revision it relies on, its conversation
// record, its visitor index entry and event put, the event's absence
// check and their keys. encode uses it as
// the first backing arrays of ops, so that such a batch costs one
// allocation for all of them (besides the event record) instead of one
// each; every allocation on the message path is work for the collector,
// whose collections shrink the stacks of waiting goroutines, which the
// next message grows back (docs/performance.md, "Round 6").
type inlineOps struct {
	expects [1]store.Expect
	convs   [1]convPut
	puts    [2]kv
	absent  [1]kv
	rec     model.Conversation
	keys    [128]byte
	used    int // of keys
}

// key returns a buffer of length 0 and capacity n, carved from in.keys
// while there is room (the kv keys of one request live as long as the
// request), allocated otherwise.
func (in *inlineOps) key(n int) []byte {
	if in == nil || in.used+n > len(in.keys) {
		return make([]byte, 0, n)
	}
	b := in.keys[in.used : in.used : in.used+n]
	in.used += n
	return b
}

// InitialMmapSize is the least address space the data file is mapped
// with (the bench's raw durable echo maps its file the same way). bbolt
// maps the file and, while the mapping is below 1 GiB, doubles it whenever the data outgrows it; each time it first waits for
// every read transaction to end and holds new ones (and the writer) back
// until the file is mapped again, and grows the file to the new size with
// a truncate and a full fsync, inside a commit: a stall of every read and
// commit in flight, about ten times while a new file grows to 16 MiB (a
// fresh gateway's first minutes at a few thousand messages/s). Mapped
// with 1 GiB from the start, the file grows in bbolt's 16 MiB steps
// (AllocSize) and is never remapped below 1 GiB. It is address space,
// not memory: only the pages read are resident. 32-bit builds keep
// bbolt's default.
const InitialMmapSize = (1 << 30) * (strconv.IntSize / 64)

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
	//
	// The file is mapped with at least InitialMmapSize of address space
	// (see there): growing it then neither remaps nor doubles.
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: 2 * time.Second, NoSync: opts.NoSync,
		NoFreelistSync: false, FreelistType: bbolt.FreelistMapType, InitialMmapSize: InitialMmapSize})
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
			return meta.Put(schemaKey, []byte(strconv.Itoa(fileSchema)))
		}
		n, err := strconv.Atoi(string(v))
		if err != nil {
			return fmt.Errorf("schema version %q: %w", v, err)
		}
		if n > fileSchema {
			return fmt.Errorf("%w: file has %d, this build reads up to %d", store.ErrNewerSchema, n, fileSchema)
		}
		if n < fileSchema {
			// Older records read as they are (see fileSchema); the new
			// number only keeps older builds, which would take an elided
			// last_seq for 0 or a binary event for corrupt JSON, from
			// opening the file.
			return meta.Put(schemaKey, []byte(strconv.Itoa(fileSchema)))
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("init %s: %w", path, err)
	}
	s := &Store{db: db, opts: opts, reqs: commitq.New[*request](opts.QueueSize), done: make(chan struct{}), convs: newConvCache(), maps: newMapCache(), visitors: newVisitorCache(), latest: newLatestCache(),
		touched: touched{convs: make(map[model.ConvID]struct{}), visitors: make(map[model.VisitorID]struct{})}}
	go s.writer()
	return s, nil
}

// Commit implements store.Store.
func (s *Store) Commit(ctx context.Context, b *store.Batch) error {
	if b.Empty() {
		return nil
	}
	r := new(request)
	if err := encode(&r.ops, &r.inline, b, s.convs); err != nil {
		return err
	}
	if err := s.submitRequest(ctx, r); err != nil {
		return err
	}
	// The writer set r.ops.convs[i].rev before answering.
	for i := range b.Convs {
		b.Convs[i].Rev = r.ops.convs[i].rev
	}
	for i := range b.Visitors {
		b.Visitors[i].Rev = r.ops.visitors[i].rev
	}
	return nil
}

// submit queues o for the writer and waits for its outcome.
func (s *Store) submit(ctx context.Context, o ops) error {
	return s.submitRequest(ctx, &request{ops: o})
}

// submitRequest queues r for the writer and waits for its outcome
// (commitq.Queue.Submit: once queued, r commits whatever ctx does).
func (s *Store) submitRequest(ctx context.Context, r *request) error {
	r.errc, r.queued = make(chan error, 1), time.Now()
	return s.reqs.Submit(ctx, r, r.errc)
}

// writer is the single goroutine that writes to bbolt.
func (s *Store) writer() {
	defer close(s.done)
	group := make([]*request, 0, s.opts.MaxGroup)
	for first := range s.reqs.C() {
		group = append(group[:0], first)
	drain:
		for len(group) < s.opts.MaxGroup {
			select {
			case r, ok := <-s.reqs.C():
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
	keys, known := 0, 0
	var write time.Duration
	clear(s.touched.convs)
	clear(s.touched.visitors)
	s.touched.all = false
	err := s.db.Update(func(tx *bbolt.Tx) error {
		tx.OnCommit(func() { st := tx.Stats(); write = st.GetWriteTime() })
		for i, r := range group {
			if err := r.ops.check(tx, s.convs, s.visitors, &s.touched); err != nil {
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
			for j := range r.ops.convs {
				if r.ops.convs[j].known {
					known++
				}
			}
			r.ops.touch(&s.touched)
		}
		return nil
	})
	if s.opts.OnCommit != nil {
		// The group's first request is its oldest (the queue is FIFO).
		s.opts.OnCommit(Stats{Requests: len(group), Keys: keys, Known: known, Duration: time.Since(start),
			Wait: start.Sub(group[0].queued), Write: write, Err: err})
	}
	if err == nil {
		// Before anyone hears of the commit, so that a committer reads
		// its own write (see convCache).
		for i, r := range group {
			if errs[i] == nil {
				s.convs.stored(&r.ops)
				s.visitors.stored(&r.ops)
				s.latest.stored(&r.ops)
				if f := r.ops.forget; f != nil && len(f.mapsGone) > 0 {
					s.maps.drop(f.mapsGone)
				}
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
	if !s.reqs.Close() {
		return nil
	}
	<-s.done
	return s.db.Close()
}

// --- encoding -------------------------------------------------------------

type kv struct {
	bucket []byte
	key    []byte
	val    []byte
	// unlessSame skips the put when the key holds val already: a put of
	// the same bytes still dirties the page (and the pages above it),
	// which the commit then writes and fsyncs.
	unlessSame bool
	// skip: the writer knows this put (or check) has nothing to do (see
	// convPut.known).
	skip bool
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
	// expects are visitor revisions the batch relies on (Batch.Expect).
	expects []store.Expect
	// convs are the conversation records to write, checked against
	// their expected revision (see convPut), in batch order.
	convs []convPut
	// restore, if set, is an import's records (see Restore); apply
	// writes those absent and counts the rest.
	restore *restoreOp
	// visitors are the visitor records to write, under the same check.
	visitors []visitorPut
	// forget, if set, deletes idle anonymous visitors (see forgetOp).
	forget *forgetOp
}

// visitorPut is a visitor record to write: its JSON with its revision
// spliced in as the last member (`,"rev":N}`; see visitorRecord).
type visitorPut struct {
	key []byte
	val []byte
	// decoded is val decoded, for the visitor cache: exactly what a read
	// of the record returns (but its Rev). Decoded by the committer, not
	// the writer, which every commit waits for.
	decoded *model.Visitor
	expect  uint64 // the revision the writer read (0: write whatever is stored)
	rev     uint64 // the revision written, set by check
}

// withMember splices `"<tag>":n` into the JSON object body as its last
// member.
func withMember(body []byte, tag string, n uint64) []byte {
	out := make([]byte, 0, len(body)+len(tag)+24)
	out = append(out, body[:len(body)-1]...)
	if len(body) > 2 {
		out = append(out, ',')
	}
	out = append(out, '"')
	out = append(out, tag...)
	out = append(out, `":`...)
	out = strconv.AppendUint(out, n, 10)
	return append(out, '}')
}

// visitorRecord splits a stored visitor into its JSON (a copy) and its
// revision (0 for a record written before visitors had one).
func visitorRecord(v []byte) ([]byte, uint64) {
	if len(v) < 2 || v[len(v)-1] != '}' {
		return v, 0
	}
	end, rev, ok := lastMember(v, len(v)-1, "rev")
	if !ok {
		return v, 0
	}
	return append(v[:end:end], '}'), rev
}

// decodeVisitor decodes a stored visitor and its revision.
func decodeVisitor(_ *bbolt.Tx, _, v []byte) (model.Visitor, error) {
	body, rev := visitorRecord(v)
	var rec model.Visitor
	if err := json.Unmarshal(body, &rec); err != nil {
		return rec, fmt.Errorf("decode %s: %w", bVisitors, err)
	}
	rec.Rev = rev
	return rec, nil
}

// convPut is a conversation record to write. Its stored value is body
// (the JSON of the conversation with LastSeq 0) with the revision and the
// seq it was written at spliced in as its last members (see storedConv).
//
// A message (see message) written on the conversation as the cache holds
// it, changed in nothing but LastSeq, is the common commit: encode then
// leaves body nil (the record will not be written: no JSON to make) and
// sets cachedRev; the writer, finding the cache still at that revision
// (known), takes the stored state from the cache instead of reading the
// record and its last event key, and skips the visitor index entry and
// the event's absence check, which that state already answers.
type convPut struct {
	key     []byte
	body    []byte              // nil until needed when cachedRev is set
	conv    *model.Conversation // the record (LastSeq 0), to encode body from
	expect  uint64              // the revision the writer read (0: write whatever is stored)
	lastSeq uint64              // the conversation's LastSeq
	// message: the batch appends exactly one event to the conversation,
	// at lastSeq; if the record's body is unchanged too, it is not
	// rewritten (see fileSchema).
	message bool
	// cachedRev is the revision of the cache entry the conversation equals
	// in all but LastSeq and Rev, when encode found one (0: none; see
	// convCache.sameAs).
	cachedRev uint64
	vconv     int // index in ops.puts of its visitor index entry
	evAbsent  int // index in ops.absent of its message's event, or -1

	// Set by check and apply, inside the transaction.
	known  bool         // cur came from the cache (see cachedRev)
	rev    uint64       // the revision after this commit
	seq    uint64       // the LastSeq a reader will see after this commit
	same   bool         // the record was left as it was
	exists bool         // a record was stored
	cur    storedRecord // the stored record, before this commit
}

// encode encodes b for the writer into o; cache is the store's
// conversation cache (see convPut.cachedRev). in, if not nil, gives the
// first backing arrays (see inlineOps). It runs on the committer's
// goroutine, under the caller's stack (the desk's Post, the adapters'
// request handling): the rare parts of a batch are encoded by
// encodeRest, a call of its own, so that their locals do not deepen
// every message's stack.
func encode(o *ops, in *inlineOps, b *store.Batch, cache *convCache) error {
	if in != nil {
		o.convs, o.puts, o.absent, o.expects = in.convs[:0], in.puts[:0], in.absent[:0], in.expects[:0]
	}
	if len(b.Visitors) > 0 {
		if err := encodeVisitors(o, b); err != nil {
			return err
		}
	}
	for _, e := range b.Expect {
		if e.Rev != 0 {
			o.expects = append(o.expects, e)
		}
	}
	for i := range b.Convs {
		c := &b.Convs[i]
		if c.ID == "" || c.Visitor == "" {
			return errors.New("store: conversation without id or visitor")
		}
		// The body leaves LastSeq out (see storedConv), so that a message,
		// which changes nothing else, finds the same body stored.
		var rec *model.Conversation
		if in != nil && i == 0 {
			rec = &in.rec
		} else {
			rec = new(model.Conversation)
		}
		*rec = *c
		rec.LastSeq = 0
		p := convPut{key: append(in.key(len(c.ID)), c.ID...), expect: c.Rev, lastSeq: c.LastSeq, conv: rec, evAbsent: -1, vconv: len(o.puts),
			message: c.LastSeq > 0 && onlyEvent(b.Events, c.ID, c.LastSeq)}
		if p.message {
			p.cachedRev = cache.sameAs(c)
		}
		if p.cachedRev == 0 {
			if err := p.encodeBody(); err != nil {
				return err
			}
		}
		if len(c.ID) > bbolt.MaxKeySize {
			return fmt.Errorf("store: key or value size out of range in %s", bConvs)
		}
		o.convs = append(o.convs, p)
		vk := in.key(len(c.Visitor) + len(c.ID) + 2)
		vk = append(append(append(append(vk, c.Visitor...), 0), c.ID...), 0)
		o.puts = append(o.puts, kv{bucket: bVConvs, key: vk, unlessSame: true})
	}
	// New events must not exist yet; updates must exist already.
	for i := range b.Events {
		e := &b.Events[i]
		k, err := encodeEvent(o, e, in.key(len(e.Conv)+9))
		if err != nil {
			return err
		}
		for j := range o.convs {
			if p := &o.convs[j]; p.message && p.lastSeq == e.Seq && string(p.key) == string(e.Conv) {
				p.evAbsent = len(o.absent)
			}
		}
		o.absent = append(o.absent, kv{bucket: bEvents, key: k})
	}
	for i := range b.Updates {
		k, err := encodeEvent(o, &b.Updates[i], nil)
		if err != nil {
			return err
		}
		o.present = append(o.present, kv{bucket: bEvents, key: k})
	}
	if len(b.Maps) > 0 || len(b.Idems) > 0 || len(b.Meta) > 0 || len(b.Outbox) > 0 {
		if err := encodeRest(o, b); err != nil {
			return err
		}
	}
	for _, p := range o.puts {
		if len(p.key) == 0 || len(p.key) > bbolt.MaxKeySize || len(p.val) > bbolt.MaxValueSize {
			return fmt.Errorf("store: key or value size out of range in %s", p.bucket)
		}
	}
	return nil
}

// encodeEvent appends e's put to o.puts and returns its key, built in
// key (allocated when nil).
func encodeEvent(o *ops, e *model.Event, key []byte) ([]byte, error) {
	if e.Conv == "" || e.Seq == 0 {
		return nil, errors.New("store: event without conversation or seq")
	}
	if key == nil {
		key = make([]byte, 0, len(e.Conv)+9)
	}
	k := binary.BigEndian.AppendUint64(append(append(key, e.Conv...), 0), e.Seq)
	val, err := eventVal(e)
	if err != nil {
		return nil, err
	}
	o.puts = append(o.puts, kv{bucket: bEvents, key: k, val: val})
	return k, nil
}

// encodeVisitors encodes b's visitor records into o.
func encodeVisitors(o *ops, b *store.Batch) error {
	for i := range b.Visitors {
		v := &b.Visitors[i]
		if v.ID == "" {
			return errors.New("store: visitor without id")
		}
		val, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("encode %s: %w", bVisitors, err)
		}
		if len(v.ID) > bbolt.MaxKeySize || len(val)+32 > bbolt.MaxValueSize {
			return fmt.Errorf("store: key or value size out of range in %s", bVisitors)
		}
		decoded := new(model.Visitor)
		if json.Unmarshal(val, decoded) != nil {
			decoded = nil // the cache drops it; reads go to the file
		}
		o.visitors = append(o.visitors, visitorPut{key: []byte(v.ID), val: val, expect: v.Rev, decoded: decoded})
	}
	return nil
}

// encodeRest encodes what a message's batch rarely has: mappings,
// idempotency keys, meta entries and outbox rows.
func encodeRest(o *ops, b *store.Batch) error {
	for _, m := range b.Maps {
		if m.Foreign == "" || m.Core == "" || m.System == "" || m.Kind == "" {
			return errors.New("store: incomplete mapping")
		}
		fk := join([]byte(m.System), []byte(m.Tenant), []byte(m.Kind), []byte(m.Foreign))
		o.sameOrAbsent = append(o.sameOrAbsent, kv{bucket: bMaps, key: fk, val: []byte(m.Core)})
		o.puts = append(o.puts, kv{bucket: bMaps, key: fk, val: []byte(m.Core)},
			kv{bucket: bMapsRev, key: join([]byte(m.System), []byte(m.Tenant), []byte(m.Kind), []byte(m.Core)), val: []byte(m.Foreign)})
	}
	for _, id := range b.Idems {
		if id.System == "" || id.Key == "" {
			return errors.New("store: incomplete idempotency key")
		}
		k := join([]byte(id.System), []byte(id.Key))
		val := append(join([]byte(id.Conv)), binary.BigEndian.AppendUint64(nil, id.Seq)...)
		o.absent = append(o.absent, kv{bucket: bTxn, key: k})
		o.puts = append(o.puts, kv{bucket: bTxn, key: k, val: val})
	}
	for k, v := range b.Meta {
		if k == "" || k == string(schemaKey) {
			return fmt.Errorf("store: meta key %q is reserved", k)
		}
		o.puts = append(o.puts, kv{bucket: bMeta, key: []byte(k), val: bytes.Clone(v)})
	}
	for i := range b.Outbox {
		in, err := encodeOutboxIns(&b.Outbox[i])
		if err != nil {
			return err
		}
		o.outbox = append(o.outbox, in)
	}
	return nil
}

// touched is what the requests of a group written so far changed, which
// the caches show only once the group is committed (see check).
type touched struct {
	convs    map[model.ConvID]struct{}
	visitors map[model.VisitorID]struct{}
	all      bool // an import or a deletion of visitors: trust no cache
}

// touch records in t what o changes: conversation records and those its
// events (new, updated or restored) belong to, visitor records.
func (o *ops) touch(t *touched) {
	for i := range o.convs {
		t.convs[o.convs[i].conv.ID] = struct{}{} // a string already: no copy of the key
	}
	o.eventConvs(func(c []byte) {
		// A message's event is in a conversation touched above: looking
		// it up first copies no key.
		if _, ok := t.convs[model.ConvID(c)]; !ok {
			t.convs[model.ConvID(c)] = struct{}{}
		}
	})
	for i := range o.visitors {
		t.visitors[model.VisitorID(o.visitors[i].key)] = struct{}{}
	}
	if o.restore != nil || o.forget != nil {
		t.all = true
	}
}

// eventConvs calls fn with the conversation of every event o writes (new,
// updated or restored), once or more each: the id's bytes, part of an
// event key (fn must not keep them; string(c) makes a copy).
func (o *ops) eventConvs(fn func(c []byte)) {
	for _, p := range o.puts {
		if bytes.Equal(p.bucket, bEvents) && len(p.key) > 9 {
			fn(p.key[:len(p.key)-9])
		}
	}
	if o.restore != nil {
		for _, r := range o.restore.recs {
			if bytes.Equal(r.bucket, bEvents) && len(r.key) > 9 {
				fn(r.key[:len(r.key)-9])
			}
		}
	}
}

// encodeBody makes p's stored JSON (see convPut).
func (p *convPut) encodeBody() error {
	body, err := json.Marshal(p.conv)
	if err != nil {
		return fmt.Errorf("encode %s: %w", bConvs, err)
	}
	if len(body)+64 > bbolt.MaxValueSize {
		return fmt.Errorf("store: key or value size out of range in %s", bConvs)
	}
	p.body = body
	return nil
}

// check checks o against tx; the caches and touched are the writer's (see
// convPut.cachedRev): touched names what requests before o in this
// transaction changed, which the caches do not show yet.
func (o *ops) check(tx *bbolt.Tx, cache *convCache, visitors *visitorCache, touched *touched) error {
	// Revisions first: a writer that built on a stale read hears so
	// rather than of the event seqs it collides with.
	for i := range o.convs {
		p := &o.convs[i]
		p.exists, p.cur, p.known = false, storedRecord{}, false
		if p.cachedRev != 0 {
			if _, changed := touched.convs[model.ConvID(p.key)]; !changed && !touched.all {
				// The cache holds exactly the committed state (its
				// writer is this goroutine; see convCache).
				if c := cache.peek(model.ConvID(p.key)); c != nil && c.Rev == p.cachedRev {
					p.exists, p.known = true, true
					p.cur = storedRecord{rev: c.Rev, lastSeq: c.LastSeq, seq: c.LastSeq}
				}
			}
		}
		if p.known {
			if p.lastSeq == p.cur.lastSeq+1 {
				// No event lies past the conversation's LastSeq.
				if p.evAbsent >= 0 {
					o.absent[p.evAbsent].skip = true
				}
				// Its visitor index entry was written with the record.
				o.puts[p.vconv].skip = true
			}
		} else if p.body == nil {
			if err := p.encodeBody(); err != nil {
				return err
			}
		}
		if !p.known {
			if v := tx.Bucket(bConvs).Get(p.key); v != nil {
				st, err := storedConv(tx, p.key, v)
				if err != nil {
					return err
				}
				p.exists, p.cur = true, st
			}
		}
		if p.expect != 0 && p.expect != p.cur.rev {
			return fmt.Errorf("%w: conversation %s is at revision %d, not %d", store.ErrStale, p.key, p.cur.rev, p.expect)
		}
		p.rev = p.cur.rev + 1
	}
	for i := range o.visitors {
		p := &o.visitors[i]
		var cur uint64
		if v := tx.Bucket(bVisitors).Get(p.key); v != nil {
			_, cur = visitorRecord(v)
		}
		if p.expect != 0 && p.expect != cur {
			return fmt.Errorf("%w: visitor %s is at revision %d, not %d", store.ErrStale, p.key, cur, p.expect)
		}
		p.rev = cur + 1
	}
	for _, e := range o.expects {
		// The visitor cache holds exactly the committed revision (its
		// writer is this goroutine) of what it holds.
		cur, ok := uint64(0), false
		if _, changed := touched.visitors[e.Visitor]; !changed && !touched.all {
			cur, ok = visitors.rev(e.Visitor)
		}
		if !ok {
			if v := tx.Bucket(bVisitors).Get([]byte(e.Visitor)); v != nil {
				_, cur = visitorRecord(v)
			}
		}
		if cur != e.Rev {
			return fmt.Errorf("%w: visitor %s is at revision %d, not %d", store.ErrStale, e.Visitor, cur, e.Rev)
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
		if c.skip {
			continue
		}
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
	n := 0
	for _, p := range o.visitors {
		if err := tx.Bucket(bVisitors).Put(p.key, withMember(p.val, "rev", p.rev)); err != nil {
			return 0, fmt.Errorf("put %s: %w", bVisitors, err)
		}
		n++
	}
	for i := range o.convs {
		p := &o.convs[i]
		// A message to a conversation that changed in nothing else: the
		// record stays, and its event (the next seq) moves the LastSeq
		// and revision readers see by one each (see storedConv).
		p.same = p.message && p.exists && p.lastSeq == p.cur.lastSeq+1 && (p.known || p.cur.sameBody(p.body))
		if p.same {
			p.seq = p.lastSeq
			continue
		}
		if p.body == nil {
			if err := p.encodeBody(); err != nil {
				return 0, err
			}
		}
		// The seq the record is written at covers every event stored
		// or written with it, so that its revision reads exactly rev.
		p.seq = max(p.lastSeq, p.cur.lastSeq)
		for _, e := range o.puts {
			if bytes.Equal(e.bucket, bEvents) && len(e.key) == len(p.key)+9 && bytes.HasPrefix(e.key, p.key) && e.key[len(p.key)] == 0 {
				p.seq = max(p.seq, binary.BigEndian.Uint64(e.key[len(p.key)+1:]))
			}
		}
		if p.exists && !p.known {
			// (A known record has the visitor the cache shows, p's.)
			// A conversation written with another visitor than the stored
			// one moves to that visitor's index (livechat/room.visitor):
			// the old visitor's entry goes, the new one is in o.puts.
			k, err := p.unindexMoved(tx)
			if err != nil {
				return 0, err
			}
			n += k
		}
		if err := tx.Bucket(bConvs).Put(p.key, withRev(p.body, p.rev, p.seq)); err != nil {
			return 0, fmt.Errorf("put %s: %w", bConvs, err)
		}
		n++
	}
	for _, p := range o.puts {
		if p.skip {
			continue
		}
		val := p.val
		if val == nil {
			val = []byte{}
		}
		b := tx.Bucket(p.bucket)
		if p.unlessSame {
			if old := b.Get(p.key); old != nil && bytes.Equal(old, val) {
				continue
			}
		}
		if err := b.Put(p.key, val); err != nil {
			return 0, fmt.Errorf("put %s: %w", p.bucket, err)
		}
		n++
	}
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
	if o.forget != nil {
		k, err := o.forget.apply(tx)
		if err != nil {
			return 0, err
		}
		n += k
	}
	if o.restore != nil {
		k, err := o.restore.apply(tx)
		if err != nil {
			return 0, err
		}
		n += k
	}
	return n, nil
}

// unindexMoved deletes the stored record's visitor_convs entry when p
// writes the conversation under another visitor. The JSON of a
// conversation starts with its id and visitor (encoding/json keeps the
// struct's field order), so the common case (same visitor) is one prefix
// comparison; anything else decodes the stored visitor.
func (p *convPut) unindexMoved(tx *bbolt.Tx) (int, error) {
	if i := bytes.Index(p.body, []byte(`,"visitor":`)); i > 0 {
		val := p.body[i+len(`,"visitor":"`):]
		if j := bytes.IndexByte(val, '"'); j >= 0 && bytes.IndexByte(val[:j], '\\') < 0 {
			if prefix := p.body[:i+len(`,"visitor":"`)+j+1]; bytes.HasPrefix(p.cur.raw, prefix) {
				return 0, nil
			}
		}
	}
	var old, cur struct {
		Visitor model.VisitorID `json:"visitor"`
	}
	if err := json.Unmarshal(p.cur.body(), &old); err != nil {
		return 0, fmt.Errorf("decode %s: %w", bConvs, err)
	}
	if err := json.Unmarshal(p.body, &cur); err != nil {
		return 0, fmt.Errorf("decode %s: %w", bConvs, err)
	}
	if old.Visitor == cur.Visitor || old.Visitor == "" {
		return 0, nil
	}
	if err := tx.Bucket(bVConvs).Delete(join([]byte(old.Visitor), p.key)); err != nil {
		return 0, fmt.Errorf("delete %s: %w", bVConvs, err)
	}
	return 1, nil
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
	return binary.BigEndian.AppendUint64(append(append(make([]byte, 0, len(c)+9), c...), 0), seq)
}

// onlyEvent reports whether the one event of evs in conv is seq.
func onlyEvent(evs []model.Event, conv model.ConvID, seq uint64) bool {
	found := false
	for i := range evs {
		if evs[i].Conv == conv {
			if found || evs[i].Seq != seq {
				return false
			}
			found = true
		}
	}
	return found
}

// lastSeq returns the seq of conv's newest event in tx, 0 when it has
// none.
func lastSeq(tx *bbolt.Tx, conv model.ConvID) uint64 {
	prefix := join([]byte(conv))
	c := tx.Bucket(bEvents).Cursor()
	k, _ := c.Seek(binary.BigEndian.AppendUint64(bytes.Clone(prefix), ^uint64(0)))
	if k == nil {
		k, _ = c.Last()
	} else {
		k, _ = c.Prev()
	}
	if k == nil || !bytes.HasPrefix(k, prefix) || len(k) != len(prefix)+8 {
		return 0
	}
	return binary.BigEndian.Uint64(k[len(prefix):])
}

// withRev returns the stored form of a conversation record: its body
// (JSON) with `,"rev":<rev>,"rev_seq":<seq>` as its last members; model
// types have no such JSON members.
func withRev(body []byte, rev, seq uint64) []byte {
	out := make([]byte, 0, len(body)+48)
	out = append(out, body[:len(body)-1]...)
	if len(body) > 2 {
		out = append(out, ',')
	}
	out = append(out, `"rev":`...)
	out = strconv.AppendUint(out, rev, 10)
	out = append(out, `,"rev_seq":`...)
	out = strconv.AppendUint(out, seq, 10)
	return append(out, '}')
}

// lastMember finds a last member `"<tag>":<digits>` of a JSON object
// whose members end at v[end] (its closing brace, or the separator of a
// member found before), and returns where the members end without it,
// and its number. It is recognised only as the very last member, where
// the object's own closing brace follows its digits: a property value
// that merely contains the tag ends in two braces. It copies nothing.
func lastMember(v []byte, end int, tag string) (int, uint64, bool) {
	i := end - 1
	for i >= 0 && v[i] >= '0' && v[i] <= '9' {
		i--
	}
	t := `"` + tag + `":`
	if i == end-1 || i+1 < len(t) || string(v[i+1-len(t):i+1]) != t {
		return end, 0, false
	}
	num, err := strconv.ParseUint(string(v[i+1:end]), 10, 64)
	if err != nil {
		return end, 0, false
	}
	switch j := i + 1 - len(t) - 1; { // the separator before the member
	case j >= 0 && v[j] == ',':
		return j, num, true
	case j >= 0 && v[j] == '{':
		return j + 1, num, true
	}
	return end, 0, false
}

// storedRecord is a conversation record as stored, with what it reads as.
type storedRecord struct {
	raw     []byte // the stored value (valid in its transaction)
	end     int    // raw[:end]+"}" is its JSON without rev and rev_seq
	rev     uint64 // the revision a reader sees
	lastSeq uint64 // the LastSeq a reader sees
	seq     uint64 // the LastSeq the record's JSON stands for
}

// body returns a copy of the record's JSON without rev and rev_seq.
func (r *storedRecord) body() []byte { return append(r.raw[:r.end:r.end], '}') }

// sameBody reports whether the record's JSON is body.
func (r *storedRecord) sameBody(body []byte) bool {
	return len(body) == r.end+1 && bytes.Equal(r.raw[:r.end], body[:r.end])
}

// storedConv reads the stored form of conversation key (see withRev and
// fileSchema). The record was written at some revision and seq; each
// event appended since (a message that left the record as it was) adds
// one to both:
//
//	LastSeq = max(rev_seq, last event seq)
//	Rev     = rev + (LastSeq - rev_seq)
//
// Records of version 1 files (no rev: revision 0) and of builds that
// wrote `"rev":N` alone take rev_seq from their last_seq.
func storedConv(tx *bbolt.Tx, key, v []byte) (storedRecord, error) {
	if len(v) < 2 || v[len(v)-1] != '}' {
		return storedRecord{}, fmt.Errorf("decode %s %q: not a JSON object", bConvs, key)
	}
	end, seq, hasSeq := lastMember(v, len(v)-1, "rev_seq")
	end, rev, _ := lastMember(v, end, "rev")
	r := storedRecord{raw: v, end: end, rev: rev}
	if !hasSeq {
		var c struct {
			LastSeq uint64 `json:"last_seq"`
		}
		if err := json.Unmarshal(r.body(), &c); err != nil {
			return storedRecord{}, fmt.Errorf("decode %s %q: %w", bConvs, key, err)
		}
		seq = c.LastSeq
	}
	r.seq, r.lastSeq = seq, seq
	if tail := lastSeq(tx, model.ConvID(key)); tail > seq {
		r.lastSeq, r.rev = tail, rev+(tail-seq)
	}
	return r, nil
}

// decodeConv decodes a conversation record read in tx under key.
func decodeConv(tx *bbolt.Tx, key, v []byte) (model.Conversation, error) {
	var c model.Conversation
	r, err := storedConv(tx, key, v)
	if err != nil {
		return c, err
	}
	if err := json.Unmarshal(r.body(), &c); err != nil {
		return c, fmt.Errorf("decode %s %q: %w", bConvs, key, err)
	}
	c.LastSeq, c.Rev = r.lastSeq, r.rev
	return c, nil
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
	var c model.Conversation
	err := s.db.View(func(tx *bbolt.Tx) error {
		v := tx.Bucket(bConvs).Get([]byte(id))
		if v == nil {
			return store.ErrNotFound
		}
		var err error
		c, err = decodeConv(tx, []byte(id), v)
		return err
	})
	return c, err
}

// decodeJSON reads a record stored as plain JSON.
func decodeJSON[T any](_ *bbolt.Tx, _, v []byte) (T, error) {
	var rec T
	err := json.Unmarshal(v, &rec)
	return rec, err
}

// Visitor implements store.Store. Answers come from the visitor cache
// when it holds the visitor, which is then exactly what the file holds
// (see visitorCache).
func (s *Store) Visitor(_ context.Context, id model.VisitorID) (model.Visitor, error) {
	if v, ok := s.visitors.get(id); ok {
		return v, nil
	}
	epoch := s.visitors.epoch()
	var v model.Visitor
	err := s.db.View(func(tx *bbolt.Tx) error {
		raw := tx.Bucket(bVisitors).Get([]byte(id))
		if raw == nil {
			return store.ErrNotFound
		}
		var err error
		v, err = decodeVisitor(tx, []byte(id), raw)
		return err
	})
	if err == nil {
		s.visitors.fill(epoch, &v)
	}
	return v, err
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
			if err := decodeEvent(k, v, &e); err != nil {
				return err
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

// scanPage is how many records Conversations and Visitors decode per read
// transaction.
const scanPage = 256

// Conversations implements store.Store. fn runs outside any bbolt
// transaction, a page at a time, so that it may use the store (reads and
// Commit): a read transaction held across fn would deadlock with a writer
// that needs to grow the mmap. The scan is therefore not one snapshot.
func (s *Store) Conversations(ctx context.Context, fn func(model.Conversation) bool) error {
	return scan(ctx, s, bConvs, "conversation", decodeConv, fn)
}

// Visitors implements store.VisitorLister, as Conversations scans: every
// visitor, whether or not it has conversations.
func (s *Store) Visitors(ctx context.Context, fn func(model.Visitor) bool) error {
	return scan(ctx, s, bVisitors, "visitor", decodeVisitor, fn)
}

// scan calls fn for every record of bucket (read with decode, in the read
// transaction, under its key), in key order, a page per read transaction
// (see Conversations), until fn returns false.
func scan[T any](ctx context.Context, s *Store, bucket []byte, what string, decode func(tx *bbolt.Tx, k, v []byte) (T, error), fn func(T) bool) error {
	var after []byte // last key handed out; nil before the first page
	page := make([]T, 0, scanPage)
	for {
		page = page[:0]
		err := s.db.View(func(tx *bbolt.Tx) error {
			c := tx.Bucket(bucket).Cursor()
			var k, v []byte
			if after == nil {
				k, v = c.First()
			} else if k, v = c.Seek(after); k != nil && bytes.Equal(k, after) {
				k, v = c.Next()
			}
			for ; k != nil && len(page) < scanPage; k, v = c.Next() {
				rec, err := decode(tx, k, v)
				if err != nil {
					return fmt.Errorf("%s %q: %w", what, k, err)
				}
				page = append(page, rec)
				after = append(after[:0], k...)
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, rec := range page {
			if !fn(rec) {
				return nil
			}
		}
		if len(page) < scanPage {
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
	epoch := s.maps.epoch()
	v, err := s.raw(bMaps, key)
	if err == nil {
		s.maps.put(epoch, string(key), string(v))
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
