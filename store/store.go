// Package store defines how chatgate persists its conversation model: the
// Store interface every backend implements, the batch a command commits
// atomically, and the errors callers act on. Backends live in subpackages
// (bolt); store/storetest is the conformance suite they all run.
package store

import (
	"context"
	"errors"
	"time"

	"chatgate/core/model"
)

var (
	// ErrNotFound: no record under that key.
	ErrNotFound = errors.New("store: not found")
	// ErrConflict: the batch would rebind a mapping, reuse an idempotency
	// key or overwrite an event; nothing of it was written.
	ErrConflict = errors.New("store: conflict")
	// ErrClosed: the store is shut down.
	ErrClosed = errors.New("store: closed")
	// ErrNewerSchema: the data file was written by a newer chatgate.
	ErrNewerSchema = errors.New("store: data file has a newer schema version")
	// ErrStale: the batch writes a conversation (or visitor) read at a revision that is
	// no longer the stored one (another writer, e.g. another node, changed
	// it since); nothing of the batch was written. The caller reads the
	// conversation again and rebuilds the batch. Distinct from ErrConflict,
	// which no retry can cure.
	ErrStale = errors.New("store: conversation changed since it was read")
)

// SchemaVersion is the layout version this code writes and reads.
const SchemaVersion = 1

// MapKey names a foreign id: the system it belongs to (e.g. "livechat.v2",
// "rocketchat", an upstream connector's name), the tenant inside that system
// (licence, organisation, server), the kind of object and the id itself.
type MapKey struct {
	System  string
	Tenant  string
	Kind    string
	Foreign string
}

// Mapping binds a foreign id to a core id. Once bound, a foreign id never
// moves to another core id; the reverse direction keeps the latest binding.
type Mapping struct {
	MapKey
	Core string
}

// Idem records that a client's idempotency key produced an event.
type Idem struct {
	System string
	Key    string
	Conv   model.ConvID
	Seq    uint64
}

// Batch is everything one command writes. It commits atomically: all of it
// or, on error, none of it.
type Batch struct {
	// Visitors are written whole, under the same revision rule as Convs.
	Visitors []model.Visitor
	// Convs are written whole. A conversation's Rev makes its write
	// conditional (optimistic concurrency): Rev r > 0 commits only while
	// the stored record is still at revision r, else the whole batch fails
	// with ErrStale. Rev 0 writes unconditionally (a new conversation, an
	// import). Either way the stored record's revision becomes one more
	// than it was (1 for a new one); reads return it in Rev, and a
	// successful Commit writes it back into the batch's records.
	Convs []model.Conversation
	// Events are new; an event whose (conv, seq) exists is a conflict.
	Events []model.Event
	// Updates replace existing events (an edit, a deletion mark); an
	// update of an event that does not exist is a conflict.
	Updates []model.Event
	Maps    []Mapping
	// Idems are new; a key already recorded is a conflict.
	Idems []Idem
	// Meta are small named values (generated secrets, settings).
	Meta map[string][]byte
	// Expect are visitors the command read and relied on without writing
	// them (the desk's ban check when it posts): the batch commits only
	// while each is still at its Rev, else it fails whole with ErrStale,
	// as a stale write does. (So such a read may come from a cache:
	// MayBeStale.) An Expect with Rev 0 checks nothing.
	Expect []Expect
	// Outbox are deliveries owed because of this batch (webhooks). They
	// are written with the rest of the batch or not at all, so that no
	// committed event lacks its deliveries and no delivery announces an
	// event that was not committed. The store assigns their Seq and sets
	// their State to pending.
	Outbox []OutboxRow
}

// Expect is a revision a batch relies on (Batch.Expect).
type Expect struct {
	Visitor model.VisitorID
	Rev     uint64
}

// Empty reports whether the batch writes nothing.
func (b *Batch) Empty() bool {
	return len(b.Visitors) == 0 && len(b.Convs) == 0 && len(b.Events) == 0 && len(b.Updates) == 0 &&
		len(b.Maps) == 0 && len(b.Idems) == 0 && len(b.Meta) == 0 && len(b.Outbox) == 0
}

// OutboxState is where an outbox row is in its life.
type OutboxState string

const (
	// OutboxPending: waiting in its queue for a (first or further) attempt.
	OutboxPending OutboxState = "pending"
	// OutboxExhausted: given up on after too many attempts (or too long);
	// kept out of its queue, so that the rows behind it go on, and listed
	// by OutboxExhausted.
	OutboxExhausted OutboxState = "exhausted"
)

// OutboxRow is one delivery owed to an external target (a webhook).
//
// The pending rows of one (Target, Conv) pair form a queue, ordered by Seq:
// a deliverer takes a queue's rows strictly in that order, and a head that
// is not due yet (NextAt in the future) holds back the rows behind it.
// Queues of other conversations or other targets are independent.
type OutboxRow struct {
	// ID is the delivery id, chosen by the producer: it never changes
	// across attempts and restarts, so receivers can deduplicate on it.
	ID string `json:"id"`
	// Target names the receiver (a webhook id).
	Target string `json:"target"`
	// Conv is the conversation the delivery is about.
	Conv model.ConvID `json:"conv"`
	// Seq orders the rows of one (Target, Conv) queue. The store assigns
	// it on commit: increasing in commit order and, within one batch, in
	// slice order; a value given in Batch.Outbox is ignored.
	Seq uint64 `json:"seq"`
	// Payload is what to deliver; the store keeps it as opaque bytes.
	Payload []byte `json:"payload"`
	// Attempts counts the failed attempts so far.
	Attempts int `json:"attempts"`
	// NextAt is when the row is due; the zero time means "now".
	NextAt time.Time `json:"next_at"`
	// LastError describes the last failed attempt.
	LastError string `json:"last_error,omitempty"`
	// CreatedAt is when the row was committed (set by the producer).
	CreatedAt time.Time `json:"created_at"`
	// State is pending or exhausted.
	State OutboxState `json:"state"`
}

// SourceCount is how many active (queued or open) conversations started on
// one origin and are relayed to one owner ("" when served here).
type SourceCount struct {
	Origin string
	Owner  string
	Active int
}

// ActiveCounter is an optional ability of a Store, found by type
// assertion: ActiveBySource counts the store's active conversations by
// origin and owner. A store that several nodes share (PostgreSQL) answers
// for the whole deployment, where each node's own count sees only its own
// commits.
type ActiveCounter interface {
	ActiveBySource(ctx context.Context) ([]SourceCount, error)
}

// VisitorLister is an optional ability of a Store, found by type
// assertion: Visitors calls fn for every visitor (with conversations or
// not) until fn returns false; fn may use the store. Without it, callers
// reach visitors through Conversations only.
type VisitorLister interface {
	Visitors(ctx context.Context, fn func(model.Visitor) bool) error
}

// Store is the durable home of visitors, conversations, events and
// mappings. Commit returns only after the batch is on disk.
type Store interface {
	// Commit writes b atomically and durably. It returns ErrConflict
	// (wrapped) when b breaks a uniqueness rule; then nothing is written.
	Commit(ctx context.Context, b *Batch) error

	Conversation(ctx context.Context, id model.ConvID) (model.Conversation, error)
	Visitor(ctx context.Context, id model.VisitorID) (model.Visitor, error)
	// Events returns up to limit events of conv with seq >= from, in order.
	// limit <= 0 means all.
	Events(ctx context.Context, conv model.ConvID, from uint64, limit int) ([]model.Event, error)
	// VisitorConversations lists a visitor's conversations, oldest first.
	VisitorConversations(ctx context.Context, v model.VisitorID) ([]model.ConvID, error)
	// Conversations calls fn for every conversation until fn returns false.
	Conversations(ctx context.Context, fn func(model.Conversation) bool) error

	// Resolve returns the core id bound to a foreign id.
	Resolve(ctx context.Context, k MapKey) (string, error)
	// Reverse returns the foreign id of kind bound to a core id.
	Reverse(ctx context.Context, system, tenant, kind, core string) (string, error)
	// Idempotent returns what an idempotency key produced.
	Idempotent(ctx context.Context, system, key string) (Idem, error)
	// Meta returns a named value written through Batch.Meta.
	Meta(ctx context.Context, key string) ([]byte, error)

	// OutboxDue returns the pending rows of up to queues (Target, Conv)
	// queues whose Target starts with prefix (each deliverer reads only its
	// own targets: webhooks, relay connectors) and whose head (lowest Seq)
	// is due at now (NextAt <= now),
	// earliest head first: for each queue up to perQueue rows in Seq
	// order, head first, contiguously. Rows behind a head are returned
	// whatever their own NextAt. queues and perQueue <= 0 mean no limit.
	OutboxDue(ctx context.Context, prefix string, now time.Time, queues, perQueue int) ([]OutboxRow, error)
	// OutboxDelivered deletes the pending rows (r.Target, r.Conv, r.Seq)
	// whose ids are r.ID, in one commit (a deliverer that sent several
	// rows of a queue records them at once); the next row of each queue
	// becomes its head. ErrNotFound, and nothing deleted, when one is not
	// such a pending row.
	OutboxDelivered(ctx context.Context, rows ...OutboxRow) error
	// OutboxRetry records a failed attempt on a pending row: its Attempts,
	// NextAt and LastError become r's. The row stays where it is in its
	// queue. ErrNotFound when there is no such pending row.
	OutboxRetry(ctx context.Context, r OutboxRow) error
	// OutboxExhaust takes a pending row out of its queue and keeps it as
	// exhausted, with r's Attempts, NextAt and LastError; the next row of
	// its queue becomes the head. ErrNotFound when there is no such
	// pending row.
	OutboxExhaust(ctx context.Context, r OutboxRow) error
	// OutboxRevive puts exhausted rows back into their queues, each at
	// its own Seq, pending again with r's Attempts, NextAt and LastError,
	// in one commit (an operator who fixed a receiver revives what was
	// given up on). A revived row sorts before the rows still queued
	// behind where it was, so it becomes its queue's head again when they
	// are still there. ErrNotFound, and nothing changed, when one is not
	// such an exhausted row.
	OutboxRevive(ctx context.Context, rows ...OutboxRow) error
	// OutboxExhausted lists exhausted rows of target ("" means every
	// target) in (Target, Conv, Seq) order, up to limit (<= 0: all).
	OutboxExhausted(ctx context.Context, target string, limit int) ([]OutboxRow, error)

	// ForgetIdleVisitors deletes up to limit (<= 0: no limit) anonymous
	// visitors that were never used: visitors without any conversation
	// whose LastActive is before cutoff. With each goes every mapping
	// that names it (its Core or its Foreign is the visitor's id, both
	// directions) and every mapping about the same foreign id as one of
	// those (same System, Tenant and Foreign, another Kind: e.g. a
	// customer token's expiry beside the token), so that no token,
	// cookie or foreign id of it opens anything any more. Nothing that
	// belongs to a conversation is touched. The check and the deletion
	// are one transaction: a visitor that gets a conversation or is
	// written meanwhile is kept. It returns the ids deleted.
	ForgetIdleVisitors(ctx context.Context, cutoff time.Time, limit int) ([]model.VisitorID, error)

	// Snapshot runs fn with a consistent read-only view of the whole
	// store (export): one read transaction, so that fn sees every record
	// as of one instant whatever is committed meanwhile. fn must not
	// commit to the same store (a bbolt writer may wait for the view to
	// end), and should not take long on a store that is serving.
	Snapshot(ctx context.Context, fn func(Reader) error) error
	// Restore writes records exactly as a Reader gave them (import), in
	// one atomic commit, record by record: a record whose key is absent
	// is written; one present with the same content is left alone
	// (Same); one present with other content keeps the store's version
	// (Kept), except meta values, which the restored one replaces
	// (Replaced). Mappings follow Commit's rule: a foreign id bound to
	// another core id is kept as it is (Kept), never rebound. So
	// restoring the same records twice changes nothing.
	Restore(ctx context.Context, r *Restore) (RestoreResult, error)

	// Close flushes queued commits and releases the store.
	Close() error
}

// Reader reads every record of a store inside a Snapshot. Each iterator
// calls fn record by record, in key order, and stops at the first error fn
// returns (which it returns). Records handed to fn are the caller's.
type Reader interface {
	Visitor(id model.VisitorID) (model.Visitor, error)
	Conversation(id model.ConvID) (model.Conversation, error)
	VisitorConversations(id model.VisitorID) ([]model.ConvID, error)
	Visitors(fn func(model.Visitor) error) error
	Conversations(fn func(model.Conversation) error) error
	// Events iterates one conversation's events in seq order.
	Events(conv model.ConvID, fn func(model.Event) error) error
	// Mappings iterates every mapping; latest is true when the mapping
	// is also the reverse binding of its core id (Reverse answers it).
	Mappings(fn func(m Mapping, latest bool) error) error
	Idems(fn func(Idem) error) error
	// Meta iterates every named value (the schema version excepted).
	Meta(fn func(key string, val []byte) error) error
	// Outbox iterates pending rows, then exhausted ones, each in
	// (Target, Conv, Seq) order, with their stored Seq and State.
	Outbox(fn func(OutboxRow) error) error
}

// RestoreMapping is a mapping to restore and whether it is the reverse
// binding of its core id.
type RestoreMapping struct {
	Mapping
	Latest bool
}

// MetaValue is one named value to restore.
type MetaValue struct {
	Key   string
	Value []byte
}

// Restore is a set of records to write as they are (see Store.Restore).
type Restore struct {
	Visitors []model.Visitor
	Convs    []model.Conversation
	Events   []model.Event
	Maps     []RestoreMapping
	Idems    []Idem
	Meta     []MetaValue
	// Outbox rows keep their Seq and State; the store's own sequence moves
	// past the largest restored Seq so that new rows still sort last.
	Outbox []OutboxRow
	// DryRun counts what Restore would do and writes nothing.
	DryRun bool
}

// Len is the number of records in r.
func (r *Restore) Len() int {
	return len(r.Visitors) + len(r.Convs) + len(r.Events) + len(r.Maps) + len(r.Idems) + len(r.Meta) + len(r.Outbox)
}

// Reset empties r, keeping its slices' capacity.
func (r *Restore) Reset() {
	r.Visitors, r.Convs, r.Events, r.Maps = r.Visitors[:0], r.Convs[:0], r.Events[:0], r.Maps[:0]
	r.Idems, r.Meta, r.Outbox = r.Idems[:0], r.Meta[:0], r.Outbox[:0]
}

// Record kinds, as Restore counts them and as the export format names them.
const (
	RecVisitor      = "visitor"
	RecConversation = "conversation"
	RecEvent        = "event"
	RecMapping      = "mapping"
	RecIdem         = "idem"
	RecMeta         = "meta"
	RecOutbox       = "outbox"
)

// RestoreCount is what Restore did with the records of one kind.
type RestoreCount struct {
	Written  int `json:"written"`
	Same     int `json:"same"`
	Kept     int `json:"kept,omitempty"`
	Replaced int `json:"replaced,omitempty"`
}

// RestoreResult counts, per record kind (Rec* constants), what Restore did.
type RestoreResult map[string]RestoreCount

// Add adds o's counts to r.
func (r RestoreResult) Add(o RestoreResult) {
	for k, c := range o {
		x := r[k]
		x.Written += c.Written
		x.Same += c.Same
		x.Kept += c.Kept
		x.Replaced += c.Replaced
		r[k] = x
	}
}
