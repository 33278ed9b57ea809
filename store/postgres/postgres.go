// Package postgres is the Store on PostgreSQL, for running several chatgate
// nodes on one database (bbolt stays the embedded default). It uses a pgx
// connection pool and plain SQL; the schema is created and migrated by
// Open (see schema.go), under an advisory lock so that nodes starting
// together do not race.
//
// # Commits
//
// Commits go through writer goroutines that group whatever is queued
// into one pipelined implicit transaction (group.go): one round trip and one
// WAL flush for the whole group, as bbolt's writer shares one fsync, while
// each commit still succeeds or fails alone. Rules the bbolt store checks
// before writing are checked by the statements themselves: a unique key
// already present (an event's (conv, seq), an idempotency key) fails with
// unique_violation; a mapping bound elsewhere, an update of a missing event
// or a stale conversation revision fails through chatgate_check. The group
// is then rolled back, the commit at fault gets store.ErrConflict or
// store.ErrStale, and the rest is sent again. Durability is PostgreSQL's:
// Commit returns after COMMIT, with synchronous_commit as the server has it
// (on by default: the WAL is flushed).
//
// # Concurrent writers
//
// Conversations carry a revision (model.Conversation.Rev). A batch writing
// a conversation read at revision r updates the row only WHERE rev = r; the
// row lock makes a second writer wait for the first and then find the
// revision moved, so it fails with store.ErrStale and writes nothing. The
// conversation row is written first in the batch so that a stale writer is
// told ErrStale rather than a conflict on the events it would append.
// Outbox rows take a transaction-scoped advisory lock on their queue before
// drawing their seq, so that within a (target, conv) queue seq order is
// commit order even when two nodes append to it at once.
//
// # Caches
//
// Each node keeps copies of what its hot paths read (cache.go), because
// on several nodes a read is a round trip and a relayed message used to
// cost seven of them. How each copy stays true:
//
//   - Mappings (Resolve): bound once, never rebound, so a found mapping is
//     kept; a missing one is never cached (the next commit may bind it).
//     The one deletion, ForgetIdleVisitors (an idle visitor without
//     conversations and its mappings), empties this node's mapping cache;
//     on the other nodes a cached mapping of a forgotten visitor leads to
//     a visitor that is not found, and that fresh read drops every cached
//     mapping naming it, so the caller's next Resolve reads the database
//     (desk.EnsureVisitor retries exactly so). Reverse is not cached:
//     maps_rev keeps the latest binding and may change.
//   - Conversations, visitors and each visitor's thread list
//     (Conversation, Visitor, VisitorConversations) are kept with their
//     revision and served from the cache ONLY under store.MayBeStale: to
//     readers whose decisions are checked by their own commit (the desk's
//     Post writes the conversation back under the revision it read and
//     names the visitor in Batch.Expect; the send paths of the surfaces
//     only feed Post). A copy that is behind fails that commit with
//     store.ErrStale; the failed batch's copies are then dropped, so the
//     retry reads the database. A refusal made on a copy is made again on
//     a plain read before it is answered. Every other read (history,
//     access to a chat, polls, listings) goes to the database, so no
//     staleness can widen what a client sees.
//   - What keeps copies fresh (so that the check above seldom fails):
//     this node's commits replace them with what was committed, at its
//     new revision; another node's notice replaces a conversation with
//     the copy it carries (hub.Inline, at its revision) or drops it and
//     its visitor (hub.Cache, called before the notice is delivered, so a
//     session told of a change finds it when it reads); a thread list is
//     dropped as soon as this node learns of a conversation of its
//     visitor that it lacks, or of a conversation moved away from its
//     visitor (a notice's PrevVisitor, this node's own included). A
//     list that still names a moved conversation in between leads a send
//     to a conversation whose copy or fresh read names another visitor:
//     refused, then resolved again on a fresh read. A read that began before such a drop does
//     not store what it read (per-shard epochs).
//   - One reader uses a conversation copy without a commit to check it:
//     a LiveChat v2 poll, under store.RecentCopy, and only to answer "no
//     events" when the copy (at most its maxAge old, 2 s) is the caller's
//     conversation and has nothing after the poll's cursor. That shows
//     nothing, and a copy behind another node's commit answers as the
//     same poll made a moment earlier would; anything to show is read
//     from the database. Copies carry the time they were taken for this.
//   - After the listener reconnects (notices may have been lost), Forget
//     drops every conversation, visitor and thread list. Restore drops
//     them too. Mappings stay (they never change).
//
// Each cache holds at most 64 × 1024 entries per kind (an arbitrary entry
// makes room); CacheStats counts the reads they answered.
package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"chatgate/core/model"
	"chatgate/internal/jsondec"
	"chatgate/store"
	"chatgate/store/internal/commitq"
)

// Options tune the store. The zero value is usable.
type Options struct {
	// Schema, if set, is the PostgreSQL schema chatgate's tables live in
	// (created if missing); empty means the connection's default
	// (search_path, normally "public"). Tests give each store its own.
	Schema string
	// MaxConns bounds the pool, unless the URL sets pool_max_conns.
	// Default: 8 per CPU, at least 16.
	MaxConns int32
	// CommitTimeout bounds one commit once it has started (the caller's
	// context no longer cancels it then; see Commit). Default 30 s.
	CommitTimeout time.Duration
	// OnCommit, if set, is told of every transaction the writers commit
	// (for metrics).
	OnCommit func(Stats)
	// Writers is how many group-commit writers run (each one transaction
	// at a time, on its own connection); default 4. Commits that arrive
	// while a group is in flight wait for it and go together in the next
	// group, unless ParallelMin (default 32) of them are waiting: that
	// group goes beside the one in flight (group.go; docs/performance.md,
	// round 7). MaxGroup caps the
	// commits one transaction carries (default 256); QueueSize bounds the
	// queue in front of the writers (default 8192; callers then wait,
	// honouring their context).
	Writers     int
	ParallelMin int
	MaxGroup    int
	QueueSize   int
}

// Stats describes one group transaction, for metrics.
type Stats struct {
	Requests   int           // commits answered by this transaction
	Statements int           // statements it ran
	Duration   time.Duration // from sending to COMMIT's answer
	Err        error
}

// Store is the PostgreSQL-backed store.Store.
type Store struct {
	pool *pgxpool.Pool
	opts Options

	// reqs feeds the group-commit writers (group.go); it also keeps
	// reads and restores from meeting a closed pool (Hold).
	reqs    *commitq.Queue[*request]
	writers sync.WaitGroup
	// turn lets one writer at a time gather a group; inflight counts the
	// groups sent and not yet answered, landed is signalled when one is
	// (group.go, gather); waiting is the size of a group held back for
	// a flight to land (for tests).
	turn     sync.Mutex
	inflight atomic.Int32
	landed   chan struct{}
	waiting  atomic.Int32

	// Per-node caches (cache.go; the package doc says how each stays
	// true).
	convs    *recCache
	visitors *recCache
	threads  *listCache
	maps     *mapCache
}

// Open connects to the database at url (postgres://...), migrates its schema
// and returns the store.
func Open(ctx context.Context, url string, opts Options) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	if !strings.Contains(url, "pool_max_conns") {
		n := opts.MaxConns
		if n <= 0 {
			n = int32(max(16, 8*runtime.GOMAXPROCS(0)))
		}
		cfg.MaxConns = n
	}
	if opts.CommitTimeout <= 0 {
		opts.CommitTimeout = 30 * time.Second
	}
	if opts.Writers <= 0 {
		opts.Writers = 4
	}
	if opts.ParallelMin <= 0 {
		opts.ParallelMin = 32
	}
	if opts.MaxGroup <= 0 {
		opts.MaxGroup = 256
	}
	if opts.QueueSize <= 0 {
		opts.QueueSize = 8192
	}
	if opts.Schema != "" {
		cfg.ConnConfig.RuntimeParams["search_path"] = opts.Schema
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	if opts.Schema != "" {
		if _, err := pool.Exec(ctx, `CREATE SCHEMA IF NOT EXISTS `+pgx.Identifier{opts.Schema}.Sanitize()); err != nil {
			pool.Close()
			return nil, fmt.Errorf("postgres: create schema: %w", err)
		}
	}
	if err := migrate(ctx, pool); err != nil {
		pool.Close()
		return nil, err
	}
	s := &Store{pool: pool, opts: opts, reqs: commitq.New[*request](opts.QueueSize), landed: make(chan struct{}, 1), convs: newRecCache(), visitors: newRecCache(), threads: newListCache(), maps: newMapCache()}
	for range opts.Writers {
		s.writers.Go(s.writer)
	}
	return s, nil
}

// Pool returns the connection pool, for other parts of a node that keep
// their own tables in the same database (presence, leases).
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Close implements store.Store: queued commits are written, then the pool
// closes.
func (s *Store) Close() error {
	if !s.reqs.Close() {
		return nil
	}
	s.writers.Wait()
	s.pool.Close()
	return nil
}

// SQLSTATEs chatgate_check raises (schema.go).
const (
	codeStale    = "CGST1"
	codeConflict = "CGCF1"
	codeNotFound = "CGNF1"
)

// mapErr turns a failed batch's error into the store's errors.
func mapErr(err error) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case codeStale:
			return fmt.Errorf("%w: %s", store.ErrStale, pe.Message)
		case codeConflict:
			return fmt.Errorf("%w: %s", store.ErrConflict, pe.Message)
		case codeNotFound:
			return fmt.Errorf("%s: %w", pe.Message, store.ErrNotFound)
		case "23505": // unique_violation
			return fmt.Errorf("%w: %s exists", store.ErrConflict, pe.TableName)
		}
	}
	return fmt.Errorf("postgres commit: %w", err)
}

// Statements of a commit. Each checks its own rule (see the package doc).
const (
	// $1 id, $2 visitor, $3 data: an unconditional write (Rev 0).
	sqlConvPut = `INSERT INTO convs (id, visitor, rev, data) VALUES ($1, $2, 1, $3)
ON CONFLICT (id) DO UPDATE SET visitor = EXCLUDED.visitor, rev = convs.rev + 1, data = EXCLUDED.data RETURNING rev`
	// $1 id, $2 visitor, $3 data, $4 expected rev.
	sqlConvCAS = `WITH u AS (UPDATE convs SET visitor = $2, rev = rev + 1, data = $3 WHERE id = $1 AND rev = $4 RETURNING rev)
SELECT (SELECT rev FROM u) FROM (SELECT chatgate_check(EXISTS (SELECT 1 FROM u), 'CGST1',
	'conversation ' || $1 || ' is no longer at revision ' || $4::bigint)) AS c`
	sqlVisitorPut = `INSERT INTO visitors (id, rev, data) VALUES ($1, 1, $2)
ON CONFLICT (id) DO UPDATE SET rev = visitors.rev + 1, data = EXCLUDED.data RETURNING rev`
	// $1 id, $2 data, $3 expected rev.
	sqlVisitorCAS = `WITH u AS (UPDATE visitors SET rev = rev + 1, data = $2 WHERE id = $1 AND rev = $3 RETURNING rev)
SELECT (SELECT rev FROM u) FROM (SELECT chatgate_check(EXISTS (SELECT 1 FROM u), 'CGST1',
	'visitor ' || $1 || ' is no longer at revision ' || $3::bigint)) AS c`
	// $1 id, $2 expected rev (Batch.Expect).
	sqlVisitorExpect = `SELECT chatgate_check(EXISTS (SELECT 1 FROM visitors WHERE id = $1 AND rev = $2), 'CGST1',
	'visitor ' || $1 || ' is no longer at revision ' || $2::bigint)`
	sqlEventIns = `INSERT INTO events (conv, seq, data) VALUES ($1, $2, $3)`
	sqlEventUpd = `WITH u AS (UPDATE events SET data = $3 WHERE conv = $1 AND seq = $2 RETURNING 1)
SELECT chatgate_check(EXISTS (SELECT 1 FROM u), 'CGCF1', 'event to update does not exist')`
	// A mapping is written when absent and left alone when it holds the
	// same core id (DO UPDATE ... WHERE locks and rereads the committed
	// row, so two nodes binding the same id at once both succeed); bound
	// to another core id, it fails the batch.
	sqlMapPut = `WITH u AS (INSERT INTO maps (system, tenant, kind, foreign_id, core) VALUES ($1, $2, $3, $4, $5)
	ON CONFLICT (system, tenant, kind, foreign_id) DO UPDATE SET core = EXCLUDED.core WHERE maps.core = EXCLUDED.core RETURNING 1)
SELECT chatgate_check(EXISTS (SELECT 1 FROM u), 'CGCF1', 'mapping bound to another id')`
	sqlMapRevPut = `INSERT INTO maps_rev (system, tenant, kind, core, foreign_id) VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (system, tenant, kind, core) DO UPDATE SET foreign_id = EXCLUDED.foreign_id`
	sqlIdemIns = `INSERT INTO idems (system, key, conv, seq) VALUES ($1, $2, $3, $4)`
	sqlMetaPut = `INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value`
)

// Commit implements store.Store.
func (s *Store) Commit(ctx context.Context, b *store.Batch) error {
	if b.Empty() {
		return nil
	}
	revs, vrevs := make([]int64, len(b.Convs)), make([]int64, len(b.Visitors))
	q, err := encode(b, revs, vrevs)
	if err != nil {
		return err
	}
	if err := s.run(ctx, q); err != nil {
		// Stale: a cached copy (or the caller's) is behind; any other
		// failure may leave the outcome unknown. Either way the copies
		// of what the batch wrote are forgotten.
		for i := range b.Convs {
			s.convs.drop(string(b.Convs[i].ID))
			s.threads.saw(string(b.Convs[i].Visitor), string(b.Convs[i].ID))
		}
		for i := range b.Visitors {
			s.visitors.drop(string(b.Visitors[i].ID))
		}
		for _, e := range b.Expect {
			s.visitors.drop(string(e.Visitor))
		}
		return err
	}
	for i := range b.Convs {
		b.Convs[i].Rev = uint64(revs[i])
		s.convs.put(string(b.Convs[i].ID), q.convData[i], revs[i])
		s.threads.saw(string(b.Convs[i].Visitor), string(b.Convs[i].ID))
	}
	for _, m := range b.Maps {
		s.maps.put(m.MapKey, m.Core)
	}
	for i := range b.Visitors {
		b.Visitors[i].Rev = uint64(vrevs[i])
		s.visitors.put(string(b.Visitors[i].ID), q.visitorData[i], vrevs[i])
	}
	return nil
}

// encode checks b and turns it into statements; the revisions the
// conversations are stored at land in revs when the batch runs.
// Conversations come first: their row locks order two writers of one
// conversation before anything else of theirs is written.
func encode(b *store.Batch, revs, vrevs []int64) (*work, error) {
	q := &work{}
	if postShaped(b) {
		if err := encodePost(q, b, revs); err != nil {
			return nil, err
		}
		return encodeRest(q, b, false)
	}
	for i := range b.Convs {
		c := &b.Convs[i]
		if c.ID == "" || c.Visitor == "" {
			return nil, errors.New("store: conversation without id or visitor")
		}
		if !textOK(string(c.ID), string(c.Visitor)) {
			return nil, errBadKey
		}
		data, err := json.Marshal(c)
		if err != nil {
			return nil, fmt.Errorf("encode conversation: %w", err)
		}
		q.convData = append(q.convData, data)
		scan := func(row pgx.Row) error { return row.Scan(&revs[i]) }
		if c.Rev == 0 {
			q.QueueRow(sqlConvPut, scan, string(c.ID), string(c.Visitor), data)
		} else {
			q.QueueRow(sqlConvCAS, scan, string(c.ID), string(c.Visitor), data, int64(c.Rev))
		}
		if q.order == "" {
			q.order = string(c.ID)
		}
	}
	for i := range b.Visitors {
		v := &b.Visitors[i]
		if v.ID == "" {
			return nil, errors.New("store: visitor without id")
		}
		if !textOK(string(v.ID)) {
			return nil, errBadKey
		}
		data, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("encode visitor: %w", err)
		}
		scan := func(row pgx.Row) error { return row.Scan(&vrevs[i]) }
		if v.Rev == 0 {
			q.QueueRow(sqlVisitorPut, scan, string(v.ID), data)
		} else {
			q.QueueRow(sqlVisitorCAS, scan, string(v.ID), data, int64(v.Rev))
		}
		q.visitorData = append(q.visitorData, data)
	}
	for _, e := range b.Expect {
		if e.Rev == 0 {
			continue
		}
		if !textOK(string(e.Visitor)) || e.Rev > 1<<63-1 {
			return nil, errBadKey
		}
		q.Queue(sqlVisitorExpect, string(e.Visitor), int64(e.Rev))
	}
	return encodeRest(q, b, true)
}

// checkEvent checks an event's keys.
func checkEvent(e *model.Event) error {
	if e.Conv == "" || e.Seq == 0 || e.Seq > 1<<63-1 {
		return errors.New("store: event without conversation or seq")
	}
	if !textOK(string(e.Conv)) {
		return errBadKey
	}
	return nil
}

// checkIdem checks an idempotency key.
func checkIdem(id store.Idem) error {
	if id.System == "" || id.Key == "" {
		return errors.New("store: incomplete idempotency key")
	}
	if !textOK(id.System, id.Key, string(id.Conv)) || id.Seq > 1<<63-1 {
		return errBadKey
	}
	return nil
}

// queueEvents queues one sql ($1 conv, $2 seq, $3 data) per event.
func queueEvents(q *work, evs []model.Event, sql string) error {
	for i := range evs {
		e := &evs[i]
		if err := checkEvent(e); err != nil {
			return err
		}
		data, err := json.Marshal(e)
		if err != nil {
			return fmt.Errorf("encode event: %w", err)
		}
		q.Queue(sql, string(e.Conv), int64(e.Seq), data)
	}
	return nil
}

// postShaped reports whether b is a post's commit, encoded by encodePost:
// one conversation written at the revision it was read, no visitor
// written, every appended event that conversation's.
func postShaped(b *store.Batch) bool {
	if len(b.Convs) != 1 || b.Convs[0].Rev == 0 || len(b.Visitors) > 0 {
		return false
	}
	for i := range b.Events {
		if b.Events[i].Conv != b.Convs[0].ID {
			return false
		}
	}
	return true
}

// encodePost queues b's one conversation (written at the revision it was
// read), its appended events of that conversation, its idempotency keys
// and its Expect checks as one statement (postSQL, of the batch's shape).
func encodePost(q *work, b *store.Batch, revs []int64) error {
	c := &b.Convs[0]
	if c.ID == "" || c.Visitor == "" {
		return errors.New("store: conversation without id or visitor")
	}
	if !textOK(string(c.ID), string(c.Visitor)) || c.Rev > 1<<63-1 {
		return errBadKey
	}
	data, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("encode conversation: %w", err)
	}
	q.convData = append(q.convData, data)
	q.order = string(c.ID)
	args := make([]any, 5, 5+2+4+2)
	args[0], args[1], args[2], args[3] = string(c.ID), string(c.Visitor), data, int64(c.Rev)
	if key, ok := routingKey(c); ok {
		args[4] = key
	}
	seqs, evData := make([]int64, 0, len(b.Events)), make([][]byte, 0, len(b.Events))
	for i := range b.Events {
		e := &b.Events[i]
		if err := checkEvent(e); err != nil {
			return err
		}
		d, err := json.Marshal(e)
		if err != nil {
			return fmt.Errorf("encode event: %w", err)
		}
		seqs, evData = append(seqs, int64(e.Seq)), append(evData, d)
	}
	if len(seqs) == 1 {
		args = append(args, seqs[0], evData[0])
	} else if len(seqs) > 1 {
		args = append(args, seqs, evData)
	}
	n := len(b.Idems)
	sys, keys, convs, iseqs := make([]string, 0, n), make([]string, 0, n), make([]string, 0, n), make([]int64, 0, n)
	for _, id := range b.Idems {
		if err := checkIdem(id); err != nil {
			return err
		}
		sys, keys, convs, iseqs = append(sys, id.System), append(keys, id.Key), append(convs, string(id.Conv)), append(iseqs, int64(id.Seq))
	}
	if n == 1 {
		args = append(args, sys[0], keys[0], convs[0], iseqs[0])
	} else if n > 1 {
		args = append(args, sys, keys, convs, iseqs)
	}
	var vids []string
	var vrevs []int64
	for _, e := range b.Expect {
		if e.Rev == 0 {
			continue
		}
		if !textOK(string(e.Visitor)) || e.Rev > 1<<63-1 {
			return errBadKey
		}
		vids, vrevs = append(vids, string(e.Visitor)), append(vrevs, int64(e.Rev))
	}
	if len(vids) == 1 {
		args = append(args, vids[0], vrevs[0])
	} else if len(vids) > 1 {
		args = append(args, vids, vrevs)
	}
	q.QueueRow(postSQL(len(seqs), n, len(vids)), func(row pgx.Row) error { return row.Scan(&revs[0]) }, args...)
	return nil
}

// encodeRest queues what follows a batch's conversations, visitors and
// checks: its events (appended ones unless encodePost took them), edits,
// mappings, idempotency keys (idem, unless encodePost took them), meta and
// outbox rows.
func encodeRest(q *work, b *store.Batch, all bool) (*work, error) {
	if all {
		if err := queueEvents(q, b.Events, sqlEventIns); err != nil {
			return nil, err
		}
	}
	if err := queueEvents(q, b.Updates, sqlEventUpd); err != nil {
		return nil, err
	}
	for _, m := range b.Maps {
		if m.Foreign == "" || m.Core == "" || m.System == "" || m.Kind == "" {
			return nil, errors.New("store: incomplete mapping")
		}
		if !textOK(m.System, m.Tenant, m.Kind, m.Foreign, m.Core) {
			return nil, errBadKey
		}
		q.Queue(sqlMapPut, m.System, m.Tenant, m.Kind, m.Foreign, m.Core)
		q.Queue(sqlMapRevPut, m.System, m.Tenant, m.Kind, m.Core, m.Foreign)
	}
	for _, id := range b.Idems {
		if !all {
			break
		}
		if err := checkIdem(id); err != nil {
			return nil, err
		}
		q.Queue(sqlIdemIns, id.System, id.Key, string(id.Conv), int64(id.Seq))
	}
	for k, v := range b.Meta {
		if k == "" || k == "schema" {
			return nil, fmt.Errorf("store: meta key %q is reserved", k)
		}
		if !textOK(k) {
			return nil, errBadKey
		}
		if v == nil {
			v = []byte{}
		}
		q.Queue(sqlMetaPut, k, v)
	}
	for i := range b.Outbox {
		if err := queueOutboxIns(q, &b.Outbox[i]); err != nil {
			return nil, err
		}
	}
	return q, nil
}

// textOK reports whether every key can be a PostgreSQL text value: valid
// UTF-8 without NUL bytes. Keys come from clients (a v2 VISITOR_ID, a
// custom_id); one that is not is refused on write (a clear error, nothing
// written) and not found on read, never a server error.
func textOK(keys ...string) bool {
	for _, k := range keys {
		if !utf8.ValidString(k) || strings.IndexByte(k, 0) >= 0 {
			return false
		}
	}
	return true
}

var errBadKey = errors.New("store: id is not valid UTF-8 or contains a NUL byte")

// --- reads -----------------------------------------------------------------

// readCtx bounds a read by the store's state: after Close, ErrClosed.
func (s *Store) readCtx() error {
	if s.reqs.Closed() {
		return store.ErrClosed
	}
	return nil
}

// one reads a single bytea column of one row; ErrNotFound when none.
func (s *Store) one(ctx context.Context, sql string, args ...string) ([]byte, error) {
	if err := s.readCtx(); err != nil {
		return nil, err
	}
	if !textOK(args...) {
		return nil, store.ErrNotFound
	}
	anys := make([]any, len(args))
	for i, a := range args {
		anys[i] = a
	}
	var v []byte
	err := s.pool.QueryRow(ctx, sql, anys...).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, store.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	return v, nil
}

// Conversation implements store.Store. Under store.MayBeStale it may
// answer from this node's cache; every read of the database refreshes the
// cache.
func (s *Store) Conversation(ctx context.Context, id model.ConvID) (model.Conversation, error) {
	if err := s.readCtx(); err != nil {
		return model.Conversation{}, err
	}
	if !textOK(string(id)) {
		return model.Conversation{}, store.ErrNotFound
	}
	if stale, age := store.StaleOK(ctx), store.RecentOK(ctx); stale || age > 0 {
		if r, ok := s.convs.getIf(string(id), func(r cachedRec) bool { return stale || time.Since(r.at) <= age }); ok {
			if !stale {
				store.UsedCopy(ctx)
			}
			return decodeConv(r.data, r.rev)
		}
	}
	var (
		data []byte
		rev  int64
	)
	ticket := s.convs.ticket(string(id))
	err := s.pool.QueryRow(ctx, `SELECT data, rev FROM convs WHERE id = $1`, string(id)).Scan(&data, &rev)
	if errors.Is(err, pgx.ErrNoRows) {
		s.maps.dropCore(string(id))
		return model.Conversation{}, store.ErrNotFound
	}
	if err != nil {
		return model.Conversation{}, fmt.Errorf("postgres: %w", err)
	}
	s.convs.fill(string(id), data, rev, ticket)
	return decodeConv(data, rev)
}

// decodeConv decodes a conversation record (jsondec: every command on a
// cached conversation decodes its copy, so this is once per message).
func decodeConv(data []byte, rev int64) (model.Conversation, error) {
	var c model.Conversation
	if err := jsondec.Unmarshal(data, &c); err != nil {
		return c, fmt.Errorf("decode conversation: %w", err)
	}
	c.Rev = uint64(rev)
	return c, nil
}

// Visitor implements store.Store; the cache as for Conversation.
func (s *Store) Visitor(ctx context.Context, id model.VisitorID) (model.Visitor, error) {
	if err := s.readCtx(); err != nil {
		return model.Visitor{}, err
	}
	if !textOK(string(id)) {
		return model.Visitor{}, store.ErrNotFound
	}
	if store.StaleOK(ctx) {
		if r, ok := s.visitors.get(string(id)); ok {
			return decodeVisitor(r.data, r.rev)
		}
	}
	var (
		data []byte
		rev  int64
	)
	ticket := s.visitors.ticket(string(id))
	err := s.pool.QueryRow(ctx, `SELECT data, rev FROM visitors WHERE id = $1`, string(id)).Scan(&data, &rev)
	if errors.Is(err, pgx.ErrNoRows) {
		s.maps.dropCore(string(id))
		s.visitors.drop(string(id))
		return model.Visitor{}, store.ErrNotFound
	}
	if err != nil {
		return model.Visitor{}, fmt.Errorf("postgres: %w", err)
	}
	s.visitors.fill(string(id), data, rev, ticket)
	return decodeVisitor(data, rev)
}

func decodeVisitor(data []byte, rev int64) (model.Visitor, error) {
	var v model.Visitor
	if err := jsondec.Unmarshal(data, &v); err != nil {
		return v, fmt.Errorf("decode visitor: %w", err)
	}
	v.Rev = uint64(rev)
	return v, nil
}

// Events implements store.Store.
func (s *Store) Events(ctx context.Context, conv model.ConvID, from uint64, limit int) ([]model.Event, error) {
	if err := s.readCtx(); err != nil {
		return nil, err
	}
	if from == 0 {
		from = 1
	}
	if from > 1<<63-1 || !textOK(string(conv)) {
		return nil, nil
	}
	lim := int64(limit)
	if limit <= 0 {
		lim = -1
	}
	rows, err := s.pool.Query(ctx, `SELECT data FROM events WHERE conv = $1 AND seq >= $2 ORDER BY seq
LIMIT CASE WHEN $3::bigint < 0 THEN NULL ELSE $3::bigint END`, string(conv), int64(from), lim)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	var out []model.Event
	var data []byte
	_, err = pgx.ForEachRow(rows, []any{&data}, func() error {
		var e model.Event
		if err := jsondec.Unmarshal(data, &e); err != nil {
			return fmt.Errorf("decode event: %w", err)
		}
		out = append(out, e)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	return out, nil
}

// VisitorConversations implements store.Store; under store.MayBeStale the
// list may come from this node's cache (cache.go, listCache).
func (s *Store) VisitorConversations(ctx context.Context, v model.VisitorID) ([]model.ConvID, error) {
	if err := s.readCtx(); err != nil {
		return nil, err
	}
	if !textOK(string(v)) {
		return nil, nil
	}
	ids, ok := []string(nil), false
	if store.StaleOK(ctx) {
		ids, ok = s.threads.get(string(v))
	}
	if !ok {
		ticket := s.threads.ticket(string(v))
		rows, err := s.pool.Query(ctx, `SELECT id FROM convs WHERE visitor = $1 ORDER BY id`, string(v))
		if err != nil {
			return nil, fmt.Errorf("postgres: %w", err)
		}
		ids, err = pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return nil, fmt.Errorf("postgres: %w", err)
		}
		if len(ids) > 0 {
			s.threads.fill(string(v), ids, ticket)
		}
	}
	out := make([]model.ConvID, 0, len(ids))
	for _, id := range ids {
		out = append(out, model.ConvID(id))
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

// convPage is how many records Conversations and Visitors read per query.
const convPage = 256

// Conversations implements store.Store: keyset pages, with fn called
// outside any query so that it may use the store. Not one snapshot.
func (s *Store) Conversations(ctx context.Context, fn func(model.Conversation) bool) error {
	return scan(ctx, s, "convs", "rev", "conversation", decodeConv, fn)
}

// Visitors implements store.VisitorLister: every visitor, in keyset pages
// as Conversations.
func (s *Store) Visitors(ctx context.Context, fn func(model.Visitor) bool) error {
	return scan(ctx, s, "visitors", "rev", "visitor",
		func(data []byte, rev int64) (model.Visitor, error) {
			var v model.Visitor
			err := json.Unmarshal(data, &v)
			v.Rev = uint64(rev)
			return v, err
		}, fn)
}

// scan reads table (its id, revCol and data columns; table and revCol are
// constants of this file) page by page in id order, decoding each row and
// calling fn outside the query, until fn returns false or the rows run out.
func scan[T any](ctx context.Context, s *Store, table, revCol, what string, decode func(data []byte, rev int64) (T, error), fn func(T) bool) error {
	after := ""
	first := true
	for {
		if err := s.readCtx(); err != nil {
			return err
		}
		// Two forms rather than "$1 OR id > $2", which would keep the
		// planner from the primary key's range scan.
		var (
			rows pgx.Rows
			err  error
		)
		if first {
			rows, err = s.pool.Query(ctx, `SELECT id, `+revCol+`, data FROM `+table+` ORDER BY id LIMIT $1`, convPage)
		} else {
			rows, err = s.pool.Query(ctx, `SELECT id, `+revCol+`, data FROM `+table+` WHERE id > $1 ORDER BY id LIMIT $2`, after, convPage)
		}
		if err != nil {
			return fmt.Errorf("postgres: %w", err)
		}
		var page []T
		var (
			id   string
			rev  int64
			data []byte
		)
		_, err = pgx.ForEachRow(rows, []any{&id, &rev, &data}, func() error {
			rec, err := decode(data, rev)
			if err != nil {
				return fmt.Errorf("%s %q: %w", what, id, err)
			}
			page = append(page, rec)
			after = id
			return nil
		})
		if err != nil {
			return fmt.Errorf("postgres: %w", err)
		}
		first = false
		for _, rec := range page {
			if !fn(rec) {
				return nil
			}
		}
		if len(page) < convPage {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}

// Resolve implements store.Store. A mapping once bound never changes, so
// what Resolve found is kept for good (cache.go).
func (s *Store) Resolve(ctx context.Context, k store.MapKey) (string, error) {
	if err := s.readCtx(); err != nil {
		return "", err
	}
	if core, ok := s.maps.get(k); ok {
		return core, nil
	}
	v, err := s.one(ctx, `SELECT core FROM maps WHERE system = $1 AND tenant = $2 AND kind = $3 AND foreign_id = $4`,
		k.System, k.Tenant, k.Kind, k.Foreign)
	if err == nil {
		s.maps.put(k, string(v))
	}
	return string(v), err
}

// Reverse implements store.Store.
func (s *Store) Reverse(ctx context.Context, system, tenant, kind, core string) (string, error) {
	v, err := s.one(ctx, `SELECT foreign_id FROM maps_rev WHERE system = $1 AND tenant = $2 AND kind = $3 AND core = $4`,
		system, tenant, kind, core)
	return string(v), err
}

// Idempotent implements store.Store.
func (s *Store) Idempotent(ctx context.Context, system, key string) (store.Idem, error) {
	if err := s.readCtx(); err != nil {
		return store.Idem{}, err
	}
	if !textOK(system, key) {
		return store.Idem{}, store.ErrNotFound
	}
	var (
		conv string
		seq  int64
	)
	err := s.pool.QueryRow(ctx, `SELECT conv, seq FROM idems WHERE system = $1 AND key = $2`, system, key).Scan(&conv, &seq)
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Idem{}, store.ErrNotFound
	}
	if err != nil {
		return store.Idem{}, fmt.Errorf("postgres: %w", err)
	}
	return store.Idem{System: system, Key: key, Conv: model.ConvID(conv), Seq: uint64(seq)}, nil
}

// Meta implements store.Store.
func (s *Store) Meta(ctx context.Context, key string) ([]byte, error) {
	return s.one(ctx, `SELECT value FROM meta WHERE key = $1`, key)
}

var _ store.Store = (*Store)(nil)

var _ store.VisitorLister = (*Store)(nil)
