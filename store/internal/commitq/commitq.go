// Package commitq is the hand-off between a store's callers and its
// group-commit writers, shared by the bbolt and PostgreSQL stores.
//
// Both stores promise the same two things at this seam, and they are easy
// to get subtly wrong: a request is either refused before it is queued
// (store closed, context done) or, once queued, committed whatever the
// caller's context does afterwards, so "returned nil" always means "on
// disk" and a caller that gave up waiting can retry with its idempotency
// keys; and Close never races a send on the closed channel.
package commitq

import (
	"context"
	"fmt"
	"sync"

	"chatgate/store"
)

// Queue carries requests of type R to the writers that range over C.
type Queue[R any] struct {
	c chan R
	// mu guards closed against sends on c during Close; Hold keeps Close
	// waiting for other work that must not outlive the store.
	mu     sync.RWMutex
	closed bool
}

// New returns a queue that holds up to size requests before Submit waits.
func New[R any](size int) *Queue[R] {
	return &Queue[R]{c: make(chan R, size)}
}

// C is what the writers receive from; it is closed by Close once every
// request already queued is in it.
func (q *Queue[R]) C() <-chan R { return q.c }

// Len is how many requests are queued and not yet taken by a writer.
func (q *Queue[R]) Len() int { return len(q.c) }

// Submit queues r and waits for its outcome on errc, which the writer
// answers exactly once. It returns store.ErrClosed after Close, and the
// context's error (wrapped) when ctx ends before r is queued or before it
// is answered; in the latter case r is still committed.
func (q *Queue[R]) Submit(ctx context.Context, r R, errc <-chan error) error {
	q.mu.RLock()
	if q.closed {
		q.mu.RUnlock()
		return store.ErrClosed
	}
	// A context that is already done must not race a free queue slot in
	// the select below (select picks at random): refuse before queueing.
	if err := ctx.Err(); err != nil {
		q.mu.RUnlock()
		return fmt.Errorf("commit queue: %w", err)
	}
	select {
	case q.c <- r:
	case <-ctx.Done():
		q.mu.RUnlock()
		return fmt.Errorf("commit queue: %w", ctx.Err())
	}
	q.mu.RUnlock()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		return fmt.Errorf("commit: %w", ctx.Err())
	}
}

// Hold runs fn unless the queue is closed (then store.ErrClosed), and
// keeps Close from returning until fn has: work beside the writers (a
// read, a restore on its own transaction) that must not meet a closed
// database.
func (q *Queue[R]) Hold(fn func() error) error {
	q.mu.RLock()
	defer q.mu.RUnlock()
	if q.closed {
		return store.ErrClosed
	}
	return fn()
}

// Closed reports whether Close has been called.
func (q *Queue[R]) Closed() bool {
	q.mu.RLock()
	defer q.mu.RUnlock()
	return q.closed
}

// Close refuses new requests and closes C once the ones queued are in it.
// It reports whether this call closed the queue (false: already closed),
// so that a store's Close runs its shutdown once.
func (q *Queue[R]) Close() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return false
	}
	q.closed = true
	close(q.c)
	return true
}
