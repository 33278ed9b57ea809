package store

import (
	"context"
	"sync/atomic"
	"time"
)

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

type recentKey struct{}

type recent struct {
	maxAge time.Duration
	used   atomic.Bool
}

// RecentCopy returns a context under which Conversation may be answered
// from a copy a node's cache took within maxAge (store/postgres on several
// nodes; kept true by this node's commits and the other nodes' notices),
// and a func that reports whether a read under it was so answered. It is
// for one reader only: a poll that, finding no event after the client's
// cursor in the copy, answers "nothing new". That answer shows nothing of
// the conversation, and a copy behind another node's commit answers as the
// same poll made a moment earlier would (the client asks again from the
// same cursor); maxAge bounds how long a lost notice can hide an event.
// Anything the poll would show, and every access decision, is decided on a
// read without it (when the func says a copy answered). Stores without a
// cache ignore it.
func RecentCopy(ctx context.Context, maxAge time.Duration) (context.Context, func() bool) {
	r := &recent{maxAge: maxAge}
	return context.WithValue(ctx, recentKey{}, r), r.used.Load
}

// RecentOK returns RecentCopy's maxAge (0 without it).
func RecentOK(ctx context.Context) time.Duration {
	if r, ok := ctx.Value(recentKey{}).(*recent); ok {
		return r.maxAge
	}
	return 0
}

// UsedCopy is called by a store that answered a read under RecentCopy
// from a copy.
func UsedCopy(ctx context.Context) {
	if r, ok := ctx.Value(recentKey{}).(*recent); ok {
		r.used.Store(true)
	}
}
