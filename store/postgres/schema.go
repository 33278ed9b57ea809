package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"chatgate/store"
)

// migration is one step of the schema: the SQL that takes a database at
// version-1 to version. Steps are applied in order, each in its own
// transaction together with the version it records; a step once released
// is never edited, only followed by new ones (append at the end of
// migrations, with the next version number).
type migration struct {
	version int
	sql     string
}

// migrations is the schema history. Text columns that are keys use the
// "C" collation so that ordering is by bytes whatever the database's
// locale: VisitorConversations and the outbox rely on that order (ids are
// time-ordered ULIDs).
var migrations = []migration{
	{1, `
CREATE TABLE meta (
	key   text COLLATE "C" PRIMARY KEY,
	value bytea NOT NULL
);
CREATE TABLE visitors (
	id   text COLLATE "C" PRIMARY KEY,
	data bytea NOT NULL
);
-- rev: optimistic concurrency (see model.Conversation.Rev).
CREATE TABLE convs (
	id      text COLLATE "C" PRIMARY KEY,
	visitor text COLLATE "C" NOT NULL,
	rev     bigint NOT NULL,
	data    bytea NOT NULL
);
CREATE INDEX convs_visitor ON convs (visitor, id);
CREATE TABLE events (
	conv text COLLATE "C" NOT NULL,
	seq  bigint NOT NULL,
	data bytea NOT NULL,
	PRIMARY KEY (conv, seq)
);
CREATE TABLE maps (
	system  text COLLATE "C" NOT NULL,
	tenant  text COLLATE "C" NOT NULL,
	kind    text COLLATE "C" NOT NULL,
	foreign_id text COLLATE "C" NOT NULL,
	core    text COLLATE "C" NOT NULL,
	PRIMARY KEY (system, tenant, kind, foreign_id)
);
CREATE TABLE maps_rev (
	system  text COLLATE "C" NOT NULL,
	tenant  text COLLATE "C" NOT NULL,
	kind    text COLLATE "C" NOT NULL,
	core    text COLLATE "C" NOT NULL,
	foreign_id text COLLATE "C" NOT NULL,
	PRIMARY KEY (system, tenant, kind, core)
);
CREATE TABLE idems (
	system text COLLATE "C" NOT NULL,
	key    text COLLATE "C" NOT NULL,
	conv   text COLLATE "C" NOT NULL,
	seq    bigint NOT NULL,
	PRIMARY KEY (system, key)
);
-- Pending deliveries: one (target, conv) queue is one range of the primary
-- key, in seq order. due_ns is the row's NextAt in Unix nanoseconds (0 for
-- "now"), for ordering queue heads; meta holds the row without its payload
-- (JSON) so that every field round-trips exactly.
CREATE SEQUENCE outbox_seq;
CREATE TABLE outbox (
	target  text COLLATE "C" NOT NULL,
	conv    text COLLATE "C" NOT NULL,
	seq     bigint NOT NULL,
	id      text COLLATE "C" NOT NULL,
	due_ns  bigint NOT NULL,
	meta    bytea NOT NULL,
	payload bytea NOT NULL,
	PRIMARY KEY (target, conv, seq)
);
CREATE TABLE outbox_dead (
	target  text COLLATE "C" NOT NULL,
	conv    text COLLATE "C" NOT NULL,
	seq     bigint NOT NULL,
	meta    bytea NOT NULL,
	payload bytea NOT NULL,
	PRIMARY KEY (target, conv, seq)
);
-- Uploaded files (store/files): every node serves every file.
CREATE TABLE files (
	id    text COLLATE "C" PRIMARY KEY,
	meta  bytea NOT NULL,
	body  bytea NOT NULL
);
-- chatgate_check aborts the statement (and so the whole batch, which runs
-- as one transaction) with a chatgate SQLSTATE when ok is false: a stale
-- conversation revision (CGST1), a broken uniqueness rule (CGCF1) or a
-- missing outbox row (CGNF1).
CREATE FUNCTION chatgate_check(ok boolean, code text, msg text) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
	IF NOT ok THEN
		RAISE EXCEPTION USING ERRCODE = code, MESSAGE = msg;
	END IF;
	RETURN true;
END
$$;
`},
	{2, clusterSchema}, // cluster_schema.go
	// Visitors get the conversations' optimistic concurrency: two nodes
	// writing one visitor (seen markers, profile, chat properties) no
	// longer lose one another's change. Rows written before read as
	// revision 0 (written unconditionally once, then checked).
	{3, `
ALTER TABLE visitors ADD COLUMN rev bigint NOT NULL DEFAULT 0;
`},
	// Deployment-wide rate limits (core/cluster.Throttle): one token
	// bucket per (limit, key), shared by every node, so that a limit such
	// as the failed-login lockout is not multiplied by the node count.
	{4, `
CREATE TABLE cluster_throttle (
	name   text COLLATE "C" NOT NULL,
	key    text COLLATE "C" NOT NULL,
	tokens double precision NOT NULL,
	at     timestamptz NOT NULL,
	PRIMARY KEY (name, key)
);
`},
	// conv_routing's trigger ran on every conversation update, a message
	// included, and parsed the old and the new JSON to find that no
	// routing field had changed. A post's statement now also writes the
	// conversation's routing fields (routing, routingKey) and, in
	// routing_rev, the revision it wrote them at; the update trigger is
	// skipped when both the old and the new row carry routing written at
	// their own revision and it did not change. Any other write (the
	// other statements, a node of version 4 during a rolling deploy)
	// leaves routing_rev behind rev, so the trigger runs and checks the
	// JSON as before.
	{5, `
ALTER TABLE convs ADD COLUMN routing text, ADD COLUMN routing_rev bigint;
DROP TRIGGER convs_routing ON convs;
CREATE TRIGGER convs_routing AFTER INSERT ON convs
	FOR EACH ROW EXECUTE FUNCTION chatgate_conv_routing();
CREATE TRIGGER convs_routing_update AFTER UPDATE ON convs
	FOR EACH ROW WHEN (NEW.routing_rev IS DISTINCT FROM NEW.rev OR OLD.routing_rev IS DISTINCT FROM OLD.rev
		OR OLD.routing IS DISTINCT FROM NEW.routing)
	EXECUTE FUNCTION chatgate_conv_routing();
`},
}

// SchemaVersion is the newest schema version this build writes and reads.
func SchemaVersion() int { return migrations[len(migrations)-1].version }

// migrate brings the database to SchemaVersion. Several nodes may start at
// once: a session advisory lock (keyed by the schema's name) serializes
// them, and each finds the work done by the first. A database at a newer
// version than this build knows is refused with store.ErrNewerSchema.
func migrate(ctx context.Context, pool *pgxpool.Pool) error {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("postgres: connect: %w", err)
	}
	defer conn.Release()
	const lock = `SELECT pg_advisory_lock(hashtext('chatgate.migrate.' || current_schema()))`
	if _, err := conn.Exec(ctx, lock); err != nil {
		return fmt.Errorf("postgres: migration lock: %w", err)
	}
	defer func() {
		// A session lock outlives a failed transaction: release it (a
		// broken connection releases it by closing).
		_, _ = conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock(hashtext('chatgate.migrate.' || current_schema()))`)
	}()
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS chatgate_schema (version integer NOT NULL)`); err != nil {
		return fmt.Errorf("postgres: schema table: %w", err)
	}
	var cur int
	err = conn.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM chatgate_schema`).Scan(&cur)
	if err != nil {
		return fmt.Errorf("postgres: schema version: %w", err)
	}
	if latest := SchemaVersion(); cur > latest {
		return fmt.Errorf("%w: database has %d, this build reads up to %d", store.ErrNewerSchema, cur, latest)
	}
	for _, m := range migrations {
		if m.version <= cur {
			continue
		}
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, m.sql); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `DELETE FROM chatgate_schema`); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO chatgate_schema (version) VALUES ($1)`, m.version)
			return err
		})
		if err != nil {
			return fmt.Errorf("postgres: migrate to version %d: %w", m.version, err)
		}
	}
	return nil
}
