package store

import "context"

type staleOKKey struct{}

// MayBeStale returns a context under which Conversation and Visitor may be
// answered from a node's cache (store/postgres on several nodes): a copy
// that can be older than the stored record, when another node wrote it and
// this node has not heard of it yet. It is for readers whose decisions are
// checked by their own commit: they write the record back under the
// revision they read (Batch.Convs or Batch.Visitors with Rev > 0) or name
// it in Batch.Expect, so a stale copy fails the commit with ErrStale, the
// store forgets the batch's copies, and the caller's retry reads the
// stored records. A refusal decided on such a copy must be checked again
// on a fresh read (a plain context) before it is answered. Never for a
// read that decides what a client may see without such a commit. Stores
// without a cache ignore it.
func MayBeStale(ctx context.Context) context.Context {
	return context.WithValue(ctx, staleOKKey{}, true)
}

// StaleOK reports whether ctx came from MayBeStale.
func StaleOK(ctx context.Context) bool {
	ok, _ := ctx.Value(staleOKKey{}).(bool)
	return ok
}
