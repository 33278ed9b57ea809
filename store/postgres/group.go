package postgres

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Group commit. Commits are queued to a few writer goroutines
// (Options.Writers); a writer takes what is queued (up to MaxGroup) and
// sends all of it as one pipelined implicit transaction: one round trip
// and one WAL flush for the whole group, as the bbolt writer shares one
// fsync. While a group is in flight, the next one is gathered and waits
// for it to land, unless it reaches ParallelMin commits (gather). Round 6
// let an idle writer take each commit as it came: groups were one or two
// commits, and every transaction paid its round trip, its commit record
// and PostgreSQL's per-transaction work on both sides while waiting for
// the very WAL flush the others waited for (PostgreSQL flushes
// concurrent commits together). Holding the next group back halved the
// transactions, WAL flushes and PostgreSQL CPU per message on the
// two-node bench (docs/performance.md, round 7); letting a large group go
// beside the one in flight keeps a saturated node's throughput. Uploaded
// files do not queue here (PutBlob): a large body would hold every
// message behind it.
//
// Each commit still succeeds or fails alone:
//
//   - When a statement fails with one of the store's rule errors (stale,
//     conflict, not found, unique violation), the whole transaction is rolled
//     back, the commit that statement belongs to gets the error (what it
//     would have got committed alone after the commits before it, which
//     were applied in the same transaction), and the others are sent again
//     as a new group.
//   - Another error of a statement (a deadlock between two nodes' groups, a
//     timeout; the server rolled the group back) makes the writer commit
//     the group's requests one by one.
//   - A failure of the connection or of COMMIT itself leaves the outcome
//     unknown: every commit of the group gets the error, as a lone commit
//     would, and nothing is sent again.
//
// Within a group, commits are ordered by the first conversation they
// write, so that two nodes' groups lock conversation rows in the same order
// and do not deadlock on them.
//
// A group may also carry riders: statements that are no commit of the
// store's but share its transaction (Notify's pg_notify, which would
// otherwise cost a transaction and a WAL flush of its own). A rider is
// handled like a commit above (resent with the group, told the outcome)
// but not counted as one in Stats.

// stmt is one statement of a commit; scan, if set, reads its row.
type stmt struct {
	sql  string
	args []any
	scan func(pgx.Row) error
}

// work is the statements of one commit.
type work struct {
	stmts []stmt
	// order is the commit's place in a group (its first conversation id).
	order string
	// convData is the JSON of the batch's conversations, in order (for
	// the cache once committed).
	convData [][]byte
	// visitorData is the same for the batch's visitors.
	visitorData [][]byte
	// rider marks statements that are no commit of the store's but ride
	// in a group's transaction (Notify): they are not counted as a
	// commit in Stats.
	rider bool
}

// Queue adds a statement whose result is not read.
func (w *work) Queue(sql string, args ...any) { w.stmts = append(w.stmts, stmt{sql: sql, args: args}) }

// QueueRow adds a statement whose one row scan reads.
func (w *work) QueueRow(sql string, scan func(pgx.Row) error, args ...any) {
	w.stmts = append(w.stmts, stmt{sql: sql, args: args, scan: scan})
}

type request struct {
	w    *work
	errc chan error
}

// run queues w for the writers and waits for its outcome. Once queued, a
// commit happens whatever the caller's context does (bounded by
// CommitTimeout): nil means committed, and a caller that gives up waiting
// can retry safely with its idempotency keys (commitq.Queue.Submit).
func (s *Store) run(ctx context.Context, w *work) error {
	r := &request{w: w, errc: make(chan error, 1)}
	return s.reqs.Submit(ctx, r, r.errc)
}

// writer commits queued requests in groups until the queue closes. One
// writer at a time gathers a group (s.turn); it waits for the groups in
// flight to land unless its own has ParallelMin commits (gather).
func (s *Store) writer() {
	group := make([]*request, 0, s.opts.MaxGroup)
	for {
		s.turn.Lock()
		first, ok := <-s.reqs.C()
		if !ok {
			s.turn.Unlock()
			return
		}
		group = append(group[:0], first)
		s.gather(&group)
		s.inflight.Add(1)
		s.turn.Unlock()
		s.commitGroup(group)
		s.inflight.Add(-1)
		select {
		case s.landed <- struct{}{}:
		default: // a signal is pending already: the gatherer rechecks
		}
	}
}

// gather adds to group what is queued and, while another group is in
// flight and this one holds fewer than ParallelMin commits, what arrives
// until that flight lands: a commit sent in a transaction of its own
// beside one in flight would only wait for the same WAL flush, at the
// cost of a transaction. A group that large goes at once: PostgreSQL
// then executes two groups side by side (a saturated node gains from
// that; BenchmarkCommit with 256 committers). The price: a group in
// flight that waits in the server (a row lock another session holds)
// holds fewer than ParallelMin commits behind it for as long, at most
// CommitTimeout; round 6's writers sent them beside it.
func (s *Store) gather(group *[]*request) {
	drain := func() bool {
		for len(*group) < s.opts.MaxGroup {
			select {
			case r, ok := <-s.reqs.C():
				if !ok {
					return false
				}
				*group = append(*group, r)
			default:
				return true
			}
		}
		return true
	}
	if !drain() {
		return
	}
	defer s.waiting.Store(0)
	for len(*group) < min(s.opts.MaxGroup, s.opts.ParallelMin) && s.inflight.Load() > 0 {
		s.waiting.Store(int32(len(*group)))
		select {
		case r, ok := <-s.reqs.C():
			if !ok {
				return
			}
			*group = append(*group, r)
		case <-s.landed:
		}
	}
	drain()
}

func (s *Store) commitGroup(group []*request) {
	slices.SortStableFunc(group, func(a, b *request) int { return strings.Compare(a.w.order, b.w.order) })
	pending := group
	for len(pending) > 0 {
		failed, err := s.send(pending)
		if err == nil {
			for _, r := range pending {
				r.errc <- nil
			}
			return
		}
		var pe *pgconn.PgError
		switch {
		case failed >= 0 && isRuleErr(err):
			pending[failed].errc <- mapErr(err)
			pending = slices.Delete(slices.Clone(pending), failed, failed+1)
			continue
		case failed >= 0 && errors.As(err, &pe) && len(pending) > 1:
			// The server refused a statement for a reason of its own (a
			// deadlock with another node's group, a timeout) and rolled
			// the group back: each commit alone, so that one cannot fail
			// another.
			for _, r := range pending {
				_, err := s.send([]*request{r})
				if err != nil {
					err = mapErr(err)
				}
				r.errc <- err
			}
			return
		}
		// The connection failed, or COMMIT did: whether the group was
		// written is unknown, so it is not sent again (that could write
		// its unchecked rows twice); every commit of it fails, as a
		// single commit would.
		err = mapErr(err)
		for _, r := range pending {
			r.errc <- err
		}
		return
	}
}

// send runs the requests' statements as one implicit transaction. On
// failure it returns the index of the request whose statement failed (-1
// when the failure is not a statement's: connection, COMMIT).
func (s *Store) send(reqs []*request) (failed int, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.CommitTimeout)
	defer cancel()
	start := time.Now()
	b := &pgx.Batch{}
	n, commits := 0, 0
	for _, r := range reqs {
		if !r.w.rider {
			commits++
		}
		for _, st := range r.w.stmts {
			b.Queue(st.sql, st.args...)
			n++
		}
	}
	failed = -1
	br := s.pool.SendBatch(ctx, b)
read:
	for i, r := range reqs {
		for _, st := range r.w.stmts {
			if st.scan != nil {
				err = st.scan(br.QueryRow())
			} else {
				_, err = br.Exec()
			}
			if err != nil {
				failed = i
				break read
			}
		}
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if s.opts.OnCommit != nil && commits > 0 {
		s.opts.OnCommit(Stats{Requests: commits, Statements: n, Duration: time.Since(start), Err: err})
	}
	if err == nil {
		failed = -1
	}
	return failed, err
}

// isRuleErr reports whether err is a store rule a statement enforces (the
// commit it belongs to is at fault, not the group).
func isRuleErr(err error) bool {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return false
	}
	switch pe.Code {
	case codeStale, codeConflict, codeNotFound, "23505":
		return true
	}
	return false
}
