package bolt

import (
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"chatgate/core/model"
	"chatgate/store"
	"chatgate/store/storetest"
)

func tempPath(t testing.TB) string {
	t.Helper()
	return filepath.Join(t.TempDir(), "chatgate.db")
}

func mustOpen(t *testing.T, path string, opts Options) *Store {
	t.Helper()
	s, err := Open(path, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return mustOpen(t, tempPath(t), Options{})
	})
}

// TestConformanceSmallGroups runs the suite with one commit per transaction
// and a tiny queue, so that callers block on a full queue.
func TestConformanceSmallGroups(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	storetest.Run(t, func(t *testing.T) store.Store {
		return mustOpen(t, tempPath(t), Options{MaxGroup: 1, QueueSize: 1, NoSync: true})
	})
}

func testEvent(conv model.ConvID, seq uint64) model.Event {
	return model.Event{
		Conv: conv, Seq: seq, ID: fmt.Sprintf("%s-%d", conv, seq), Kind: model.KindMessage,
		Author: model.Author{Kind: model.AuthorVisitor, ID: "v"}, At: time.Unix(1700000000, 0).UTC(),
		Text: "hello " + strconv.FormatUint(seq, 10),
	}
}

func TestReopenKeepsData(t *testing.T) {
	path := tempPath(t)
	ctx := t.Context()
	v := model.Visitor{ID: model.VisitorID(model.NewID()), Name: "ann"}
	c := model.Conversation{ID: model.ConvID(model.NewID()), Visitor: v.ID, State: model.StateOpen, LastSeq: 2}
	mk := store.MapKey{System: "sys", Tenant: "t", Kind: "chat", Foreign: "F"}

	s := mustOpen(t, path, Options{})
	err := s.Commit(ctx, &store.Batch{
		Visitors: []model.Visitor{v},
		Convs:    []model.Conversation{c},
		Events:   []model.Event{testEvent(c.ID, 1), testEvent(c.ID, 2)},
		Maps:     []store.Mapping{{MapKey: mk, Core: string(c.ID)}},
		Idems:    []store.Idem{{System: "sys", Key: "k", Conv: c.ID, Seq: 2}},
		Meta:     map[string][]byte{"secret": []byte("s")},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	for round := range 2 {
		s = mustOpen(t, path, Options{})
		if got, err := s.Visitor(ctx, v.ID); err != nil || got.Name != "ann" {
			t.Errorf("round %d: Visitor = %+v, %v", round, got, err)
		}
		if got, err := s.Conversation(ctx, c.ID); err != nil || got.LastSeq != 2 {
			t.Errorf("round %d: Conversation = %+v, %v", round, got, err)
		}
		if evs, err := s.Events(ctx, c.ID, 0, 0); err != nil || len(evs) != 2 || evs[1].Text != "hello 2" {
			t.Errorf("round %d: Events = %+v, %v", round, evs, err)
		}
		if ids, err := s.VisitorConversations(ctx, v.ID); err != nil || len(ids) != 1 || ids[0] != c.ID {
			t.Errorf("round %d: VisitorConversations = %v, %v", round, ids, err)
		}
		if got, err := s.Resolve(ctx, mk); err != nil || got != string(c.ID) {
			t.Errorf("round %d: Resolve = %q, %v", round, got, err)
		}
		if got, err := s.Idempotent(ctx, "sys", "k"); err != nil || got.Seq != 2 {
			t.Errorf("round %d: Idempotent = %+v, %v", round, got, err)
		}
		if got, err := s.Meta(ctx, "secret"); err != nil || string(got) != "s" {
			t.Errorf("round %d: Meta = %q, %v", round, got, err)
		}
		// Rules still hold across a reopen.
		err := s.Commit(ctx, &store.Batch{Events: []model.Event{testEvent(c.ID, 2)}})
		if !errors.Is(err, store.ErrConflict) {
			t.Errorf("round %d: rewriting an event = %v, want ErrConflict", round, err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestNewerSchemaRefused(t *testing.T) {
	path := tempPath(t)
	s := mustOpen(t, path, Options{})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	setSchema := func(v string) {
		t.Helper()
		db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		err = db.Update(func(tx *bbolt.Tx) error {
			return tx.Bucket(bMeta).Put(schemaKey, []byte(v))
		})
		if cerr := db.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			t.Fatal(err)
		}
	}

	setSchema(strconv.Itoa(fileSchema + 1))
	s, err := Open(path, Options{})
	if !errors.Is(err, store.ErrNewerSchema) {
		if s != nil {
			s.Close()
		}
		t.Fatalf("Open(newer schema) = %v, want store.ErrNewerSchema", err)
	}
	// The refused file was released: it can be opened (and fixed) again.
	setSchema(strconv.Itoa(fileSchema))
	s = mustOpen(t, path, Options{})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	setSchema("garbage")
	if s, err := Open(path, Options{}); err == nil {
		s.Close()
		t.Fatal("Open accepted an unreadable schema version")
	}
}

func TestOnCommitStats(t *testing.T) {
	var mu sync.Mutex
	var stats []Stats
	s := mustOpen(t, tempPath(t), Options{OnCommit: func(st Stats) {
		mu.Lock()
		stats = append(stats, st)
		mu.Unlock()
	}})
	defer s.Close()
	c := model.ConvID(model.NewID())
	err := s.Commit(t.Context(), &store.Batch{
		Events: []model.Event{testEvent(c, 1)},
		Idems:  []store.Idem{{System: "sys", Key: "k", Conv: c, Seq: 1}},
	})
	if err != nil {
		t.Fatal(err)
	}
	// A conflicting commit is reported too, without keys.
	err = s.Commit(t.Context(), &store.Batch{Events: []model.Event{testEvent(c, 1)}})
	if !errors.Is(err, store.ErrConflict) {
		t.Fatalf("conflicting commit = %v", err)
	}
	// A conversation record is two keys: the record and its visitor
	// index, which is not written again once there.
	conv := model.Conversation{ID: model.ConvID(model.NewID()), Visitor: "v"}
	for range 2 {
		if err := s.Commit(t.Context(), &store.Batch{Convs: []model.Conversation{conv}}); err != nil {
			t.Fatal(err)
		}
	}
	// The writer reports before it answers, so the stats are in.
	mu.Lock()
	defer mu.Unlock()
	want := []struct{ requests, keys int }{{1, 2}, {1, 0}, {1, 2}, {1, 1}}
	if len(stats) != len(want) {
		t.Fatalf("OnCommit called %d times, want %d: %+v", len(stats), len(want), stats)
	}
	for i, w := range want {
		if st := stats[i]; st.Requests != w.requests || st.Keys != w.keys || st.Err != nil || st.Duration <= 0 {
			t.Errorf("commit %d stats = %+v, want Requests %d, Keys %d", i, st, w.requests, w.keys)
		}
	}
}

// TestCloseFlushesQueued holds the writer inside a transaction, queues
// commits behind it, calls Close, and checks every queued commit is
// answered with success and on disk after reopening.
func TestCloseFlushesQueued(t *testing.T) {
	path := tempPath(t)
	const queued = 50
	entered := make(chan struct{})
	release := make(chan struct{})
	var once sync.Once
	s := mustOpen(t, path, Options{MaxGroup: 8, OnCommit: func(Stats) {
		once.Do(func() {
			close(entered)
			<-release
		})
	}})
	ctx := t.Context()
	conv := model.ConvID(model.NewID())
	commitSeq := func(seq uint64) error {
		return s.Commit(ctx, &store.Batch{
			Events: []model.Event{testEvent(conv, seq)},
			Idems:  []store.Idem{{System: "sys", Key: fmt.Sprint(seq), Conv: conv, Seq: seq}},
		})
	}
	errs := make([]error, queued+1)
	var wg sync.WaitGroup
	wg.Go(func() { errs[0] = commitSeq(1) })
	<-entered // the writer is busy with seq 1
	for i := 1; i <= queued; i++ {
		wg.Go(func() { errs[i] = commitSeq(uint64(i + 1)) })
	}
	for s.reqs.Len() < queued {
		runtime.Gosched()
	}
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	for !s.reqs.Closed() {
		runtime.Gosched()
	}
	// Closed while commits are queued: new ones are refused...
	if err := commitSeq(1000); !errors.Is(err, store.ErrClosed) {
		t.Errorf("Commit during Close = %v, want ErrClosed", err)
	}
	// ...and the queued ones are written.
	close(release)
	wg.Wait()
	if err := <-closed; err != nil {
		t.Fatalf("Close: %v", err)
	}
	for i, err := range errs {
		if err != nil {
			t.Errorf("queued commit %d: %v", i+1, err)
		}
	}

	s = mustOpen(t, path, Options{})
	defer s.Close()
	evs, err := s.Events(ctx, conv, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != queued+1 {
		t.Fatalf("after reopen: %d events, want %d", len(evs), queued+1)
	}
	for i, e := range evs {
		if e.Seq != uint64(i+1) {
			t.Fatalf("after reopen: event %d has seq %d", i, e.Seq)
		}
	}
}

func TestCloseTwice(t *testing.T) {
	s := mustOpen(t, tempPath(t), Options{})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
}

func TestOpenLockedFile(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the open timeout")
	}
	path := tempPath(t)
	s := mustOpen(t, path, Options{})
	defer s.Close()
	// A second process (or store) on the same file is refused, not hung.
	if s2, err := Open(path, Options{}); err == nil {
		s2.Close()
		t.Fatal("opened a file that is in use")
	}
}

// TestOpenFileWithoutFreelist opens a file written without a stored
// freelist (as chatgate wrote them before it kept one, NoFreelistSync):
// its data must be all there and new commits must work.
func TestOpenFileWithoutFreelist(t *testing.T) {
	path := tempPath(t)
	s := mustOpen(t, path, Options{})
	ctx := t.Context()
	if err := s.Commit(ctx, &store.Batch{Meta: map[string][]byte{"k": []byte("v1")}}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	// Rewrite it as the old options did: the freelist no longer stored.
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{NoFreelistSync: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bbolt.Tx) error { return tx.Bucket(bMeta).Put([]byte("k2"), []byte("v2")) }); err != nil {
		t.Fatal(err)
	}
	db.Close()
	for range 2 { // the first open stores a freelist, the second reads it
		s = mustOpen(t, path, Options{})
		for k, want := range map[string]string{"k": "v1", "k2": "v2"} {
			if v, err := s.Meta(ctx, k); err != nil || string(v) != want {
				t.Fatalf("meta %s = %q, %v", k, v, err)
			}
		}
		if err := s.Commit(ctx, &store.Batch{Meta: map[string][]byte{"k3": []byte("v3")}}); err != nil {
			t.Fatal(err)
		}
		s.Close()
	}
}

// TestOnCommitWaitAndWrite holds the writer after its first transaction
// (OnCommit runs in the writer) while a second commit queues, and checks
// the second transaction reports at least that hold as its queue wait,
// and that every transaction reports the time bbolt spent writing (pages,
// meta page, fsyncs) within its duration. Lower bounds only: no timing
// assertion can fail on a slow machine.
func TestOnCommitWaitAndWrite(t *testing.T) {
	const hold = 20 * time.Millisecond
	var mu sync.Mutex
	var stats []Stats
	entered := make(chan struct{})
	release := make(chan struct{})
	var once sync.Once
	s := mustOpen(t, tempPath(t), Options{OnCommit: func(st Stats) {
		mu.Lock()
		stats = append(stats, st)
		mu.Unlock()
		once.Do(func() {
			close(entered)
			<-release
		})
	}})
	defer s.Close()
	ctx := t.Context()
	c := model.ConvID(model.NewID())
	first := make(chan error, 1)
	go func() { first <- s.Commit(ctx, &store.Batch{Events: []model.Event{testEvent(c, 1)}}) }()
	<-entered // the writer is held after the first transaction
	second := make(chan error, 1)
	go func() { second <- s.Commit(ctx, &store.Batch{Events: []model.Event{testEvent(c, 2)}}) }()
	for s.reqs.Len() < 1 {
		runtime.Gosched()
	}
	time.Sleep(hold)
	close(release)
	for _, ch := range []chan error{first, second} {
		if err := <-ch; err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(stats) != 2 {
		t.Fatalf("OnCommit called %d times, want 2: %+v", len(stats), stats)
	}
	if w := stats[1].Wait; w < hold {
		t.Errorf("second transaction: Wait = %v, want at least the %v the writer was held", w, hold)
	}
	for i, st := range stats {
		if st.Write <= 0 || st.Write > st.Duration {
			t.Errorf("transaction %d: Write = %v, want in (0, Duration %v]", i, st.Write, st.Duration)
		}
	}
}

// TestGrowingFileDoesNotWaitForReaders holds a read transaction open
// while commits grow a new file to several MiB: bbolt remaps a file that
// outgrows its mapping only after every read transaction has ended, so
// with the mapping of a small file each commit that outgrew it would
// wait for the reader (here: for ever). With InitialMmapSize the file
// grows without a remap and the commits go through.
func TestGrowingFileDoesNotWaitForReaders(t *testing.T) {
	s := mustOpen(t, tempPath(t), Options{NoSync: true})
	defer s.Close()
	rtx, err := s.db.Begin(false)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		// 8 MB of events in 40 commits (an old reader keeps bbolt from
		// reusing pages, so each commit writes a longer free list: few
		// large commits keep that short).
		text := strings.Repeat("x", 4000)
		c := model.ConvID(model.NewID())
		seq := uint64(0)
		for range 40 {
			b := &store.Batch{}
			for range 50 {
				seq++
				e := testEvent(c, seq)
				e.Text = text
				b.Events = append(b.Events, e)
			}
			if err := s.Commit(t.Context(), b); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(60 * time.Second):
		_ = rtx.Rollback() // lets the commits finish so that Close returns
		<-done
		t.Fatal("commits growing the file waited for an open read transaction (a remap)")
	}
	if err := rtx.Rollback(); err != nil {
		t.Fatal(err)
	}
}
