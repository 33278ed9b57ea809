package storetest

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"chatgate/core/model"
	"chatgate/store"
)

// farFuture is a "now" at which every pending row is due.
var farFuture = t0.Add(100 * 365 * 24 * time.Hour)

// newRow returns a pending outbox row due at t0 whose payload names tag.
func newRow(target string, conv model.ConvID, tag string) store.OutboxRow {
	return store.OutboxRow{
		ID: model.NewID(), Target: target, Conv: conv, Payload: []byte(`{"tag":"` + tag + `"}`),
		NextAt: t0, CreatedAt: t0,
	}
}

func tag(r store.OutboxRow) string {
	s := strings.TrimPrefix(string(r.Payload), `{"tag":"`)
	return strings.TrimSuffix(s, `"}`)
}

func tags(rows []store.OutboxRow) []string {
	out := make([]string, len(rows))
	for i, r := range rows {
		out[i] = tag(r)
	}
	return out
}

func due(t *testing.T, s store.Store, now time.Time, queues, perQueue int) []store.OutboxRow {
	t.Helper()
	rows, err := s.OutboxDue(t.Context(), "", now, queues, perQueue)
	if err != nil {
		t.Fatalf("OutboxDue: %v", err)
	}
	return rows
}

func wantTags(t *testing.T, what string, rows []store.OutboxRow, want ...string) {
	t.Helper()
	if got := tags(rows); !slices.Equal(got, want) && !(len(got) == 0 && len(want) == 0) {
		t.Errorf("%s: rows %v, want %v", what, got, want)
	}
}

// queueOf returns the rows of one (target, conv) queue among rows,
// checking that they are contiguous.
func queueOf(t *testing.T, rows []store.OutboxRow, target string, conv model.ConvID) []store.OutboxRow {
	t.Helper()
	var out []store.OutboxRow
	first, last := -1, -1
	for i, r := range rows {
		if r.Target == target && r.Conv == conv {
			if first < 0 {
				first = i
			}
			last = i
			out = append(out, r)
		}
	}
	if first >= 0 && last-first+1 != len(out) {
		t.Errorf("rows of queue (%s, %s) are not contiguous: %v", target, conv, tags(rows))
	}
	return out
}

func mark(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func testOutboxRoundTrip(t *testing.T, open func(t *testing.T) store.Store) {
	s := fresh(t, open)
	ctx := t.Context()
	v := newVisitor("ann")
	c := newConv(v.ID)
	c.LastSeq = 2
	a1, a2, b1 := newRow("hook-a", c.ID, "a1"), newRow("hook-a", c.ID, "a2"), newRow("hook-b", c.ID, "b1")
	b1.Payload = []byte{0, 1, 2, 0xff, 0}
	a2.NextAt = time.Time{} // zero: due at once
	a1.Seq, a1.State = 99, store.OutboxExhausted
	batch := &store.Batch{
		Visitors: []model.Visitor{v}, Convs: []model.Conversation{c},
		Events: []model.Event{newEvent(c.ID, 1), newEvent(c.ID, 2)},
		Outbox: []store.OutboxRow{a1, a2, b1},
	}
	commit(t, s, batch)
	// The store must have copied the payloads.
	batch.Outbox[2].Payload[0] = 'X'

	rows := due(t, s, t0, 0, 0)
	if len(rows) != 3 {
		t.Fatalf("OutboxDue = %d rows, want 3", len(rows))
	}
	qa := queueOf(t, rows, "hook-a", c.ID)
	qb := queueOf(t, rows, "hook-b", c.ID)
	if len(qa) != 2 || len(qb) != 1 {
		t.Fatalf("queues: a %v, b %v", tags(qa), tags(qb))
	}
	if qa[0].Seq == 0 || qa[0].Seq == 99 || qa[1].Seq <= qa[0].Seq {
		t.Errorf("seqs of queue a = %d, %d: want assigned by the store, increasing", qa[0].Seq, qa[1].Seq)
	}
	for _, tc := range []struct {
		got, want store.OutboxRow
	}{{qa[0], a1}, {qa[1], a2}, {qb[0], b1}} {
		w := tc.want
		w.Seq, w.State = tc.got.Seq, store.OutboxPending
		if w.ID == b1.ID {
			w.Payload = []byte{0, 1, 2, 0xff, 0}
		}
		sameJSON(t, "outbox row "+w.ID, tc.got, w)
	}

	// A row due at t0 is not due a second earlier; one with a zero NextAt
	// is.
	wantTags(t, "due before t0", due(t, s, t0.Add(-time.Second), 0, 0))
	if ex, err := s.OutboxExhausted(ctx, "", 0); err != nil || len(ex) != 0 {
		t.Errorf("OutboxExhausted = %v, %v; want none", tags(ex), err)
	}

	// A batch that conflicts writes none of its outbox rows.
	c.LastSeq = 3
	bad := &store.Batch{Convs: []model.Conversation{c}, Events: []model.Event{newEvent(c.ID, 2), newEvent(c.ID, 3)},
		Outbox: []store.OutboxRow{newRow("hook-a", c.ID, "bad1"), newRow("hook-c", c.ID, "bad2")}}
	if err := s.Commit(ctx, bad); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("Commit(conflict) = %v, want store.ErrConflict", err)
	}
	rows = due(t, s, farFuture, 0, 0)
	if got := tags(rows); len(got) != 3 || slices.Contains(got, "bad1") || slices.Contains(got, "bad2") {
		t.Errorf("after a conflicting batch: rows %v, want the 3 first only", got)
	}
}

// testOutboxOrder: the rows of one (target, conv) come in commit order, and
// within a batch in slice order, whatever other queues do; queues come
// earliest head first.
func testOutboxOrder(t *testing.T, open func(t *testing.T) store.Store) {
	s := fresh(t, open)
	c1, c2 := model.ConvID(model.NewID()), model.ConvID(model.NewID())
	row := func(target string, c model.ConvID, tag string, next time.Time) store.OutboxRow {
		r := newRow(target, c, tag)
		r.NextAt = next
		return r
	}
	early := t0.Add(-time.Minute)
	batches := [][]store.OutboxRow{
		{row("T", c1, "c1-1", t0), row("T", c2, "c2-1", early)},
		{row("T", c1, "c1-2", t0), row("U", c1, "u-1", t0.Add(time.Minute)), row("T", c1, "c1-3", t0)},
		{row("T", c2, "c2-2", t0)},
		{row("T", c1, "c1-4", t0), row("U", c1, "u-2", t0)},
	}
	for _, b := range batches {
		commit(t, s, &store.Batch{Outbox: b})
	}
	rows := due(t, s, farFuture, 0, 0)
	wantTags(t, "queue (T, c1)", queueOf(t, rows, "T", c1), "c1-1", "c1-2", "c1-3", "c1-4")
	wantTags(t, "queue (T, c2)", queueOf(t, rows, "T", c2), "c2-1", "c2-2")
	wantTags(t, "queue (U, c1)", queueOf(t, rows, "U", c1), "u-1", "u-2")
	// Earliest head first: (T, c2) at t0-1m, (T, c1) at t0, (U, c1) at t0+1m.
	wantTags(t, "all", rows, "c2-1", "c2-2", "c1-1", "c1-2", "c1-3", "c1-4", "u-1", "u-2")
	// Seqs grow in commit order across queues too.
	bySeq := slices.Clone(rows)
	slices.SortFunc(bySeq, func(a, b store.OutboxRow) int { return int(a.Seq) - int(b.Seq) })
	wantTags(t, "by seq", bySeq, "c1-1", "c2-1", "c1-2", "u-1", "c1-3", "c2-2", "c1-4", "u-2")
	// At t0 the queue whose head is due at t0+1m is not due, even though
	// its second row is.
	wantTags(t, "due at t0", due(t, s, t0, 0, 0), "c2-1", "c2-2", "c1-1", "c1-2", "c1-3", "c1-4")
	// A prefix keeps one deliverer to its own targets, and the queue limit
	// counts only those.
	for _, tc := range []struct {
		prefix string
		queues int
		want   []string
	}{
		{"U", 0, []string{"u-1", "u-2"}},
		{"T", 1, []string{"c2-1", "c2-2"}},
		{"V", 0, nil},
		{"", 0, []string{"c2-1", "c2-2", "c1-1", "c1-2", "c1-3", "c1-4", "u-1", "u-2"}},
	} {
		rows, err := s.OutboxDue(t.Context(), tc.prefix, farFuture, tc.queues, 0)
		if err != nil {
			t.Fatalf("OutboxDue(%q): %v", tc.prefix, err)
		}
		wantTags(t, "prefix "+tc.prefix, rows, tc.want...)
	}
}

// testOutboxHeadBlocks: a head rescheduled into the future holds back the
// rows behind it; other queues go on.
func testOutboxHeadBlocks(t *testing.T, open func(t *testing.T) store.Store) {
	s := fresh(t, open)
	ctx := t.Context()
	c1, c2 := model.ConvID(model.NewID()), model.ConvID(model.NewID())
	commit(t, s, &store.Batch{Outbox: []store.OutboxRow{newRow("T", c1, "r1"), newRow("T", c1, "r2"), newRow("T", c2, "s1")}})
	commit(t, s, &store.Batch{Outbox: []store.OutboxRow{newRow("T", c1, "r3")}})
	rows := due(t, s, t0, 0, 0)
	r := queueOf(t, rows, "T", c1)
	if len(r) != 3 {
		t.Fatalf("queue c1 = %v", tags(r))
	}
	r1 := r[0]
	r1.Attempts, r1.NextAt, r1.LastError = 1, t0.Add(time.Hour), "HTTP 503"
	mark(t, "OutboxRetry", s.OutboxRetry(ctx, r1))

	wantTags(t, "due while r1 waits", due(t, s, t0.Add(time.Minute), 0, 0), "s1")
	rows = due(t, s, t0.Add(time.Hour), 0, 0)
	wantTags(t, "due when r1 is due again", rows, "s1", "r1", "r2", "r3")
	want := r1
	want.State = store.OutboxPending
	sameJSON(t, "retried row", rows[1], want)

	// A second failure moves it again.
	r1.Attempts, r1.NextAt, r1.LastError = 2, t0.Add(2*time.Hour), "timeout"
	mark(t, "OutboxRetry", s.OutboxRetry(ctx, r1))
	wantTags(t, "due after second retry", due(t, s, t0.Add(90*time.Minute), 0, 0), "s1")
	rows = due(t, s, t0.Add(2*time.Hour), 0, 0)
	if q := queueOf(t, rows, "T", c1); len(q) != 3 || q[0].Attempts != 2 || q[0].LastError != "timeout" {
		t.Errorf("queue c1 after second retry = %+v", q)
	}

	// A row behind the head may be rescheduled too; when it becomes the
	// head its own NextAt counts.
	r3 := r[2]
	r3.NextAt, r3.Attempts = t0.Add(5*time.Hour), 1
	mark(t, "OutboxRetry(r3)", s.OutboxRetry(ctx, r3))
	mark(t, "OutboxDelivered(r1)", s.OutboxDelivered(ctx, r1))
	mark(t, "OutboxDelivered(r2)", s.OutboxDelivered(ctx, r[1]))
	wantTags(t, "due with r3 head, early", due(t, s, t0.Add(3*time.Hour), 0, 0), "s1")
	wantTags(t, "due with r3 head, late", due(t, s, t0.Add(5*time.Hour), 0, 0), "s1", "r3")
}

func testOutboxDelivered(t *testing.T, open func(t *testing.T) store.Store) {
	s := fresh(t, open)
	ctx := t.Context()
	c := model.ConvID(model.NewID())
	commit(t, s, &store.Batch{Outbox: []store.OutboxRow{newRow("T", c, "r1"), newRow("T", c, "r2")}})
	rows := due(t, s, t0, 0, 0)
	wantTags(t, "due", rows, "r1", "r2")
	r1, r2 := rows[0], rows[1]

	wrong := r1
	wrong.ID = model.NewID()
	if err := s.OutboxDelivered(ctx, wrong); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("OutboxDelivered(wrong id) = %v, want store.ErrNotFound", err)
	}
	mark(t, "OutboxDelivered(r1)", s.OutboxDelivered(ctx, r1))
	wantTags(t, "due after r1", due(t, s, t0, 0, 0), "r2")
	if err := s.OutboxDelivered(ctx, r1); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("OutboxDelivered(r1) twice = %v, want store.ErrNotFound", err)
	}
	if err := s.OutboxRetry(ctx, r1); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("OutboxRetry(delivered) = %v, want store.ErrNotFound", err)
	}
	mark(t, "OutboxDelivered(r2)", s.OutboxDelivered(ctx, r2))
	wantTags(t, "due after all", due(t, s, farFuture, 0, 0))

	// A queue drained and refilled starts again, after the old rows.
	commit(t, s, &store.Batch{Outbox: []store.OutboxRow{newRow("T", c, "r3")}})
	rows = due(t, s, t0, 0, 0)
	wantTags(t, "refilled", rows, "r3")
	if len(rows) == 1 && rows[0].Seq <= r2.Seq {
		t.Errorf("new row seq %d, want above %d", rows[0].Seq, r2.Seq)
	}
	if ex, err := s.OutboxExhausted(ctx, "", 0); err != nil || len(ex) != 0 {
		t.Errorf("delivered rows listed as exhausted: %v, %v", tags(ex), err)
	}

	// Several rows at once: all or none.
	commit(t, s, &store.Batch{Outbox: []store.OutboxRow{newRow("T", c, "r4"), newRow("T", c, "r5"), newRow("T", c, "r6")}})
	rows = due(t, s, t0, 0, 0)
	wantTags(t, "before the batch", rows, "r3", "r4", "r5", "r6")
	if err := s.OutboxDelivered(ctx, rows[0], rows[1], wrong); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("OutboxDelivered(r3, r4, wrong) = %v, want store.ErrNotFound", err)
	}
	wantTags(t, "after a refused batch", due(t, s, t0, 0, 0), "r3", "r4", "r5", "r6")
	mark(t, "OutboxDelivered(r3, r4, r5)", s.OutboxDelivered(ctx, rows[0], rows[1], rows[2]))
	wantTags(t, "after the batch", due(t, s, t0, 0, 0), "r6")
	mark(t, "OutboxDelivered()", s.OutboxDelivered(ctx))
}

func testOutboxExhaust(t *testing.T, open func(t *testing.T) store.Store) {
	s := fresh(t, open)
	ctx := t.Context()
	c := model.ConvID(model.NewID())
	commit(t, s, &store.Batch{Outbox: []store.OutboxRow{newRow("T1", c, "r1"), newRow("T1", c, "r2"), newRow("T2", c, "r3")}})
	rows := due(t, s, t0, 0, 0)
	r1, r3 := queueOf(t, rows, "T1", c)[0], queueOf(t, rows, "T2", c)[0]
	r1.Attempts, r1.NextAt, r1.LastError = 1, t0.Add(time.Hour), "HTTP 500"
	mark(t, "OutboxRetry", s.OutboxRetry(ctx, r1))
	wantTags(t, "due while r1 waits", due(t, s, t0, 0, 0), "r3")

	r1.Attempts, r1.NextAt, r1.LastError = 5, t0.Add(2*time.Hour), "gave up: HTTP 500"
	mark(t, "OutboxExhaust(r1)", s.OutboxExhaust(ctx, r1))
	// r2 is the head now, due at its own time.
	rows = due(t, s, t0, 0, 0)
	wantTags(t, "due after exhausting r1", queueOf(t, rows, "T1", c), "r2")
	if len(rows) != 2 {
		t.Errorf("due after exhausting r1 = %v", tags(rows))
	}
	ex, err := s.OutboxExhausted(ctx, "", 0)
	if err != nil || len(ex) != 1 {
		t.Fatalf("OutboxExhausted = %v, %v; want r1", tags(ex), err)
	}
	want := r1
	want.State = store.OutboxExhausted
	sameJSON(t, "exhausted row", ex[0], want)

	mark(t, "OutboxExhaust(r3)", s.OutboxExhaust(ctx, r3))
	ex, err = s.OutboxExhausted(ctx, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	wantTags(t, "exhausted, all targets", ex, "r1", "r3")
	ex, _ = s.OutboxExhausted(ctx, "T2", 0)
	wantTags(t, "exhausted of T2", ex, "r3")
	ex, _ = s.OutboxExhausted(ctx, "T", 0)
	wantTags(t, "exhausted of T (a prefix of T1)", ex)
	ex, _ = s.OutboxExhausted(ctx, "", 1)
	wantTags(t, "exhausted, limit 1", ex, "r1")

	// An exhausted row is no longer pending.
	for name, call := range map[string]func(store.OutboxRow) error{
		"OutboxExhaust": func(r store.OutboxRow) error { return s.OutboxExhaust(ctx, r) },
		"OutboxRetry":   func(r store.OutboxRow) error { return s.OutboxRetry(ctx, r) },
		"OutboxDelivered": func(r store.OutboxRow) error {
			return s.OutboxDelivered(ctx, r)
		},
	} {
		if err := call(r1); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s(exhausted row) = %v, want store.ErrNotFound", name, err)
		}
	}
	ex, _ = s.OutboxExhausted(ctx, "", 0)
	wantTags(t, "exhausted rows are kept", ex, "r1", "r3")
}

// testOutboxRevive: revived rows go back into their queues at their own
// seq, ahead of the rows still queued behind them, pending again with the
// caller's attempts; a row that is not exhausted (or a wrong id) is not
// found and the whole call changes nothing.
func testOutboxRevive(t *testing.T, open func(t *testing.T) store.Store) {
	s := fresh(t, open)
	ctx := t.Context()
	c, d := model.ConvID(model.NewID()), model.ConvID(model.NewID())
	commit(t, s, &store.Batch{Outbox: []store.OutboxRow{newRow("T1", c, "r1"), newRow("T1", c, "r2"), newRow("T1", c, "r3"),
		newRow("T1", d, "d1"), newRow("T1", d, "d2")}})
	rows := due(t, s, t0, 0, 0)
	qc, qd := queueOf(t, rows, "T1", c), queueOf(t, rows, "T1", d)
	exhaust := func(r store.OutboxRow) {
		r.Attempts, r.NextAt, r.LastError = 9, t0.Add(time.Hour), "gave up: HTTP 500"
		mark(t, "OutboxExhaust("+tag(r)+")", s.OutboxExhaust(ctx, r))
	}
	exhaust(qc[0])
	exhaust(qd[0])
	exhaust(qd[1])
	wantTags(t, "c after exhausting r1", queueOf(t, due(t, s, t0, 0, 0), "T1", c), "r2", "r3")
	ex, err := s.OutboxExhausted(ctx, "T1", 0)
	if err != nil {
		t.Fatal(err)
	}
	byTag := map[string]store.OutboxRow{}
	for _, r := range ex {
		r.Attempts, r.NextAt, r.LastError = 0, t0, "revived"
		byTag[tag(r)] = r
	}
	// A pending row, or a wrong id, is not found, and nothing moves.
	wrong := byTag["d1"]
	wrong.ID = model.NewID()
	for name, bad := range map[string]store.OutboxRow{"pending row": qc[1], "wrong id": wrong} {
		if err := s.OutboxRevive(ctx, byTag["r1"], bad); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("OutboxRevive(r1, %s) = %v, want store.ErrNotFound", name, err)
		}
	}
	if ex, _ := s.OutboxExhausted(ctx, "", 0); len(ex) != 3 {
		t.Errorf("after refused revives, exhausted = %v, want r1 d1 d2", tags(ex))
	}

	mark(t, "OutboxRevive", s.OutboxRevive(ctx, byTag["r1"], byTag["d1"], byTag["d2"]))
	rows = due(t, s, t0, 0, 0)
	wantTags(t, "c after reviving r1 (head again)", queueOf(t, rows, "T1", c), "r1", "r2", "r3")
	wantTags(t, "d after reviving both", queueOf(t, rows, "T1", d), "d1", "d2")
	head := queueOf(t, rows, "T1", c)[0]
	if head.State != store.OutboxPending || head.Attempts != 0 || head.LastError != "revived" || head.ID != byTag["r1"].ID {
		t.Errorf("revived row = %+v", head)
	}
	if ex, _ := s.OutboxExhausted(ctx, "", 0); len(ex) != 0 {
		t.Errorf("exhausted after revive = %v", tags(ex))
	}
	// Reviving twice: the row is pending now, not exhausted.
	if err := s.OutboxRevive(ctx, byTag["r1"]); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("second OutboxRevive = %v, want store.ErrNotFound", err)
	}
	// A revived head that is delivered hands over to the next row.
	mark(t, "OutboxDelivered(r1)", s.OutboxDelivered(ctx, head))
	wantTags(t, "c after delivering r1", queueOf(t, due(t, s, t0, 0, 0), "T1", c), "r2", "r3")
}

func testOutboxLimits(t *testing.T, open func(t *testing.T) store.Store) {
	s := fresh(t, open)
	var b store.Batch
	for q := range 5 {
		c := model.ConvID(fmt.Sprintf("conv-%d", q))
		for i := range 3 {
			r := newRow("T", c, fmt.Sprintf("q%d-%d", q, i))
			r.NextAt = t0.Add(time.Duration(q) * time.Minute)
			b.Outbox = append(b.Outbox, r)
		}
	}
	commit(t, s, &b)
	wantTags(t, "2 queues of 2", due(t, s, farFuture, 2, 2), "q0-0", "q0-1", "q1-0", "q1-1")
	wantTags(t, "heads", due(t, s, farFuture, 0, 1), "q0-0", "q1-0", "q2-0", "q3-0", "q4-0")
	wantTags(t, "due at t0+2m", due(t, s, t0.Add(2*time.Minute), 0, 0),
		"q0-0", "q0-1", "q0-2", "q1-0", "q1-1", "q1-2", "q2-0", "q2-1", "q2-2")
}

func testOutboxNotFound(t *testing.T, open func(t *testing.T) store.Store) {
	s := fresh(t, open)
	ctx := t.Context()
	wantTags(t, "empty store", due(t, s, farFuture, 0, 0))
	r := newRow("T", model.ConvID(model.NewID()), "x")
	r.Seq = 1
	for name, err := range map[string]error{
		"OutboxDelivered": s.OutboxDelivered(ctx, r),
		"OutboxRetry":     s.OutboxRetry(ctx, r),
		"OutboxExhaust":   s.OutboxExhaust(ctx, r),
	} {
		if !errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s(unknown row) = %v, want store.ErrNotFound", name, err)
		}
	}
	if ex, err := s.OutboxExhausted(ctx, "", 0); err != nil || len(ex) != 0 {
		t.Errorf("OutboxExhausted = %v, %v", tags(ex), err)
	}
}

// testOutboxInvalid: rows without their keys are refused with the rest of
// their batch.
func testOutboxInvalid(t *testing.T, open func(t *testing.T) store.Store) {
	s := fresh(t, open)
	conv := model.ConvID(model.NewID())
	for name, change := range map[string]func(*store.OutboxRow){
		"without id":           func(r *store.OutboxRow) { r.ID = "" },
		"without target":       func(r *store.OutboxRow) { r.Target = "" },
		"without conversation": func(r *store.OutboxRow) { r.Conv = "" },
	} {
		t.Run(name, func(t *testing.T) {
			r := newRow("T", conv, "x")
			change(&r)
			b := store.Batch{Outbox: []store.OutboxRow{r}}
			by := newBystanders()
			by.addTo(&b)
			if err := s.Commit(t.Context(), &b); err == nil {
				t.Fatal("Commit accepted an invalid outbox row")
			}
			by.wantAbsent(t, s)
			wantTags(t, "due", due(t, s, farFuture, 0, 0))
		})
	}
}

// testOutboxConcurrent: producers appending to their queues while
// deliverers drain them, all through the store at once.
func testOutboxConcurrent(t *testing.T, open func(t *testing.T) store.Store) {
	s := fresh(t, open)
	ctx := t.Context()
	const writers, perWriter = 16, 30
	convs := make([]model.ConvID, writers)
	for i := range convs {
		convs[i] = model.ConvID(model.NewID())
	}
	var wg sync.WaitGroup
	errs := make(chan error, 2*writers)
	for w := range writers {
		wg.Go(func() {
			c := newConv(model.VisitorID("v"))
			c.ID = convs[w]
			for seq := uint64(1); seq <= perWriter; seq++ {
				c.LastSeq = seq
				err := s.Commit(ctx, &store.Batch{
					Convs: []model.Conversation{c}, Events: []model.Event{newEvent(c.ID, seq)},
					Outbox: []store.OutboxRow{newRow("T", c.ID, fmt.Sprint(seq)), newRow("U", c.ID, fmt.Sprint(seq))},
				})
				if err != nil {
					errs <- fmt.Errorf("writer %d seq %d: %w", w, seq, err)
					return
				}
			}
		})
	}
	wg.Wait()
	rows := due(t, s, farFuture, 0, 0)
	want := make([]string, perWriter)
	for i := range want {
		want[i] = fmt.Sprint(i + 1)
	}
	for _, c := range convs {
		for _, target := range []string{"T", "U"} {
			wantTags(t, fmt.Sprintf("queue (%s, %s)", target, c), queueOf(t, rows, target, c), want...)
		}
	}
	// Drain every queue concurrently, each in order.
	for _, c := range convs {
		for _, target := range []string{"T", "U"} {
			q := queueOf(t, rows, target, c)
			wg.Go(func() {
				for _, r := range q {
					if err := s.OutboxDelivered(ctx, r); err != nil {
						errs <- fmt.Errorf("deliver %s/%s %s: %w", target, c, tag(r), err)
						return
					}
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	wantTags(t, "due after draining", due(t, s, farFuture, 0, 0))
}

func testOutboxAfterClose(t *testing.T, open func(t *testing.T) store.Store) {
	s := fresh(t, open)
	c := model.ConvID(model.NewID())
	commit(t, s, &store.Batch{Outbox: []store.OutboxRow{newRow("T", c, "r1")}})
	r := due(t, s, t0, 0, 0)[0]
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.OutboxDelivered(t.Context(), r); !errors.Is(err, store.ErrClosed) {
		t.Errorf("OutboxDelivered after Close = %v, want store.ErrClosed", err)
	}
	if err := s.Commit(t.Context(), &store.Batch{Outbox: []store.OutboxRow{newRow("T", c, "r2")}}); !errors.Is(err, store.ErrClosed) {
		t.Errorf("Commit after Close = %v, want store.ErrClosed", err)
	}
}
