// Package store defines how chatgate persists its conversation model: the
// Store interface every backend implements, the batch a command commits
// atomically, and the errors callers act on. Backends live in subpackages
// (bolt); store/storetest is the conformance suite they all run.
package store

import (
	"context"
	"errors"

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
	Visitors []model.Visitor
	Convs    []model.Conversation
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
}

// Empty reports whether the batch writes nothing.
func (b *Batch) Empty() bool {
	return len(b.Visitors) == 0 && len(b.Convs) == 0 && len(b.Events) == 0 && len(b.Updates) == 0 &&
		len(b.Maps) == 0 && len(b.Idems) == 0 && len(b.Meta) == 0
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

	// Close flushes queued commits and releases the store.
	Close() error
}
