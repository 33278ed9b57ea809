package rtmconn

import (
	"context"
	"sync/atomic"
	"time"
)

// Deadlines hands the requests of one connection their timeout contexts,
// sharing one among the requests that start close together: each request
// gets a context that ends between Limits.Timeout and Timeout + Timeout/8
// after it starts (deadlineSlack), and a new one is made only when the
// shared one has less than Timeout left. A context.WithTimeout per action
// (a timerCtx, a runtime timer armed and stopped, a child registered on
// and removed from the parent: 3-4 allocations) was ~1 % of an in-process
// customer 1,000 x 32 profile; a customer sends a message every 1-2 s and
// an agent many per second, so one context now serves a connection's
// requests for ~2 s. Every action stays bounded; none is cancelled early.
//
// The zero value is ready. A shared context is never cancelled before its
// deadline: its timer ends it (and frees it) then, so a connection that
// goes away leaves at most a few such timers running out.
type Deadlines struct {
	cur atomic.Pointer[sharedDeadline]
}

type sharedDeadline struct {
	parent context.Context
	ctx    context.Context
	until  time.Time
}

// deadlineSlack is the share of the timeout a request may get on top of
// it (1/deadlineSlack): the larger, the more requests share a context.
const deadlineSlack = 8

// Context returns a context under parent that ends at least d from now and
// at most d + d/deadlineSlack from now.
func (dl *Deadlines) Context(parent context.Context, d time.Duration) context.Context {
	now := time.Now()
	if s := dl.cur.Load(); s != nil && s.parent == parent && s.until.Sub(now) >= d {
		return s.ctx
	}
	until := now.Add(d + d/deadlineSlack)
	ctx, cancel := context.WithDeadline(parent, until)
	_ = cancel // ends at until by itself (see Deadlines); requests still running under it may not be cut short
	dl.cur.Store(&sharedDeadline{parent: parent, ctx: ctx, until: until})
	return ctx
}
