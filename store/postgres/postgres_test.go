package postgres

import (
	"errors"
	"sync"
	"testing"

	"chatgate/core/model"
	"chatgate/store"
	"chatgate/store/postgres/pgtest"
	"chatgate/store/storetest"
)

// open opens a store in a fresh schema of the test server.
func open(t *testing.T, opts Options) *Store {
	t.Helper()
	url := pgtest.URL(t)
	if opts.Schema == "" {
		opts.Schema = pgtest.Schema(t, url)
	}
	s, err := Open(t.Context(), url, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

func TestConformance(t *testing.T) {
	pgtest.URL(t)
	storetest.Run(t, func(t *testing.T) store.Store { return open(t, Options{}) })
}

// twoNodes opens two stores on one schema: two nodes on one database.
func twoNodes(t *testing.T) (*Store, *Store) {
	t.Helper()
	url := pgtest.URL(t)
	schema := pgtest.Schema(t, url)
	var out [2]*Store
	for i := range out {
		s, err := Open(t.Context(), url, Options{Schema: schema})
		if err != nil {
			t.Fatalf("Open node %d: %v", i, err)
		}
		t.Cleanup(func() { s.Close() })
		out[i] = s
	}
	return out[0], out[1]
}

// TestTwoNodesOneConversation: writers on two store instances append to
// the same conversations at once; the database decides, and every
// conversation ends with dense seqs, no duplicates, every acknowledged
// append present.
func TestTwoNodesOneConversation(t *testing.T) {
	a, b := twoNodes(t)
	retries := storetest.HammerOne(t, []store.Store{a, b}, 2, 16, 20)
	t.Logf("%d stale retries", retries)
}

// TestConcurrentOpen: nodes starting at once on an empty database migrate
// it once (the advisory lock), and all of them open.
func TestConcurrentOpen(t *testing.T) {
	url := pgtest.URL(t)
	schema := pgtest.Schema(t, url)
	const nodes = 6
	errs := make(chan error, nodes)
	var wg sync.WaitGroup
	for range nodes {
		wg.Go(func() {
			s, err := Open(t.Context(), url, Options{Schema: schema})
			if err == nil {
				s.Close()
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	s := open(t, Options{Schema: schema})
	defer s.Close()
	var n, v int
	if err := s.pool.QueryRow(t.Context(), `SELECT count(*), max(version) FROM chatgate_schema`).Scan(&n, &v); err != nil {
		t.Fatal(err)
	}
	if n != 1 || v != SchemaVersion() {
		t.Errorf("chatgate_schema holds %d rows, version %d; want 1 row at %d", n, v, SchemaVersion())
	}
}

// TestNewerSchemaRefused: a database migrated by a newer chatgate is not
// opened (as bbolt refuses a newer file).
func TestNewerSchemaRefused(t *testing.T) {
	s := open(t, Options{})
	schema := s.opts.Schema
	if _, err := s.pool.Exec(t.Context(), `UPDATE chatgate_schema SET version = version + 1`); err != nil {
		t.Fatal(err)
	}
	s.Close()
	_, err := Open(t.Context(), pgtest.URL(t), Options{Schema: schema})
	if !errors.Is(err, store.ErrNewerSchema) {
		t.Fatalf("Open = %v, want store.ErrNewerSchema", err)
	}
}

func TestMigrationsNumbered(t *testing.T) {
	for i, m := range migrations {
		if m.version != i+1 {
			t.Errorf("migration %d has version %d, want %d", i, m.version, i+1)
		}
	}
}

// TestKeysPostgresCannotStore: ids PostgreSQL text cannot hold (a NUL byte,
// invalid UTF-8; clients choose some ids) are refused on write with a clear
// error, nothing of the batch written, and are simply not found on read.
func TestKeysPostgresCannotStore(t *testing.T) {
	s := open(t, Options{})
	defer s.Close()
	ctx := t.Context()
	for _, bad := range []string{"nul\x00byte", "bad\xffutf8"} {
		v := model.Visitor{ID: "bystander-" + model.VisitorID(model.NewID())}
		batches := map[string]*store.Batch{
			"visitor":  {Visitors: []model.Visitor{{ID: model.VisitorID(bad)}}},
			"mapping":  {Maps: []store.Mapping{{MapKey: store.MapKey{System: "s", Kind: "k", Foreign: bad}, Core: "c"}}},
			"idem key": {Idems: []store.Idem{{System: "s", Key: bad, Conv: "c", Seq: 1}}},
			"meta key": {Meta: map[string][]byte{bad: []byte("x")}},
			"outbox":   {Outbox: []store.OutboxRow{{ID: "r", Target: "T", Conv: model.ConvID(bad)}}},
		}
		for name, b := range batches {
			b.Visitors = append(b.Visitors, v)
			if err := s.Commit(ctx, b); err == nil || errors.Is(err, store.ErrConflict) {
				t.Errorf("%s %q: Commit = %v, want a plain refusal", name, bad, err)
			}
			if _, err := s.Visitor(ctx, v.ID); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("%s %q: the batch's bystander visitor was written (%v)", name, bad, err)
			}
		}
		if _, err := s.Resolve(ctx, store.MapKey{System: "s", Kind: "k", Foreign: bad}); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Resolve(%q) = %v, want ErrNotFound", bad, err)
		}
		if _, err := s.Conversation(ctx, model.ConvID(bad)); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Conversation(%q) = %v, want ErrNotFound", bad, err)
		}
		if _, err := s.Idempotent(ctx, "s", bad); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Idempotent(%q) = %v, want ErrNotFound", bad, err)
		}
		if evs, err := s.Events(ctx, model.ConvID(bad), 0, 0); err != nil || len(evs) != 0 {
			t.Errorf("Events(%q) = %v, %v", bad, evs, err)
		}
	}
}

// TestMigrateVisitorRevisions: a database written at schema version 2
// (before visitors had revisions) is migrated at open, its rows kept
// (visitors then read at revision 0 and are written unconditionally once).
func TestMigrateVisitorRevisions(t *testing.T) {
	s := open(t, Options{})
	schema := s.opts.Schema
	ctx := t.Context()
	// Back to version 2: the column of version 3, the table of version 4
	// and the routing columns and trigger of version 5 gone, a visitor
	// row as version 2 wrote it.
	for _, q := range []string{
		`DROP TRIGGER convs_routing_update ON convs`,
		`DROP TRIGGER convs_routing ON convs`,
		`ALTER TABLE convs DROP COLUMN routing, DROP COLUMN routing_rev`,
		`CREATE TRIGGER convs_routing AFTER INSERT OR UPDATE ON convs FOR EACH ROW EXECUTE FUNCTION chatgate_conv_routing()`,
		`ALTER TABLE visitors DROP COLUMN rev`,
		`DROP TABLE cluster_throttle`,
		`UPDATE chatgate_schema SET version = 2`,
		`INSERT INTO visitors (id, data) VALUES ('old', '{"id":"old","name":"Old"}')`,
	} {
		if _, err := s.pool.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	s, err := Open(ctx, pgtest.URL(t), Options{Schema: schema})
	if err != nil {
		t.Fatalf("Open after version 2: %v", err)
	}
	defer s.Close()
	v, err := s.Visitor(ctx, "old")
	if err != nil || v.Name != "Old" || v.Rev != 0 {
		t.Fatalf("Visitor(old) = %+v, %v; want Old at revision 0", v, err)
	}
	b := &store.Batch{Visitors: []model.Visitor{v}}
	if err := s.Commit(ctx, b); err != nil || b.Visitors[0].Rev != 1 {
		t.Fatalf("write of a version-2 visitor = %v, revision %d; want nil, 1", err, b.Visitors[0].Rev)
	}
	var ver int
	if err := s.pool.QueryRow(ctx, `SELECT version FROM chatgate_schema`).Scan(&ver); err != nil || ver != SchemaVersion() {
		t.Errorf("schema version %d, %v; want %d", ver, err, SchemaVersion())
	}
}
