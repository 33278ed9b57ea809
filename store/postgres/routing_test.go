package postgres

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"chatgate/core/model"
	"chatgate/store"
)

// TestRoutingTrigger: conv_routing follows every change of a
// conversation's state and agent, whoever writes it (a post, a write of
// another statement, a node of schema version 4 that does not write the
// routing column), and the trigger does not run for a post that leaves
// routing as it was (schema version 5: it parsed two JSON documents per
// message before).
func TestRoutingTrigger(t *testing.T) {
	s := open(t, Options{})
	defer s.Close()
	ctx := t.Context()
	now := time.Now().UTC()
	c := model.Conversation{ID: model.ConvID(model.NewID()), Visitor: model.VisitorID(model.NewID()), State: model.StateQueued, CreatedAt: now}
	if err := s.Commit(ctx, &store.Batch{Convs: []model.Conversation{c}}); err != nil {
		t.Fatal(err)
	}
	// post commits a message on c, changed by change, at its revision.
	post := func(change func(*model.Conversation)) {
		t.Helper()
		cv, err := s.Conversation(ctx, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		change(&cv)
		cv.LastSeq++
		ev := model.Event{ID: model.NewID(), Conv: cv.ID, Seq: cv.LastSeq, Kind: model.KindMessage, Text: "hi", At: now}
		if err := s.Commit(ctx, &store.Batch{Convs: []model.Conversation{cv}, Events: []model.Event{ev}}); err != nil {
			t.Fatal(err)
		}
	}
	// oldNode writes c as a node of schema version 4 did (no routing).
	oldNode := func(change func(*model.Conversation)) {
		t.Helper()
		cv, err := s.Conversation(ctx, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		change(&cv)
		data, _ := json.Marshal(cv)
		if _, err := s.pool.Exec(ctx, `UPDATE convs SET visitor = $2, rev = rev + 1, data = $3 WHERE id = $1`, string(c.ID), string(cv.Visitor), data); err != nil {
			t.Fatal(err)
		}
		s.convs.drop(string(c.ID))
	}
	// put writes c unconditionally (another statement than the post's).
	put := func(change func(*model.Conversation)) {
		t.Helper()
		cv, err := s.Conversation(ctx, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		change(&cv)
		cv.Rev = 0
		if err := s.Commit(ctx, &store.Batch{Convs: []model.Conversation{cv}}); err != nil {
			t.Fatal(err)
		}
	}
	routed := func() string {
		t.Helper()
		var state, agent string
		err := s.pool.QueryRow(ctx, `SELECT state, agent FROM conv_routing WHERE id = $1`, string(c.ID)).Scan(&state, &agent)
		if errors.Is(err, pgx.ErrNoRows) {
			return "none"
		}
		if err != nil {
			t.Fatal(err)
		}
		return state + "/" + agent
	}
	same := func(*model.Conversation) {}
	assign := func(a model.AgentID) func(*model.Conversation) {
		return func(cv *model.Conversation) { cv.State, cv.Agent = model.StateOpen, a }
	}
	steps := []struct {
		name   string
		write  func(func(*model.Conversation))
		change func(*model.Conversation)
		want   string
	}{
		{"message while queued", post, same, "queued/"},
		{"assigned by a post", post, assign("a"), "open/a"},
		{"message", post, same, "open/a"},
		{"transferred by a version 4 node", oldNode, assign("b"), "open/b"},
		// The routing column still says a (written before the old
		// node's write): not to be trusted.
		{"transferred back by a post", post, assign("a"), "open/a"},
		{"transferred by another statement", put, assign("c"), "open/c"},
		{"message after it", post, same, "open/c"},
		{"closed", post, func(cv *model.Conversation) { cv.State = model.StateClosed }, "none"},
	}
	for _, st := range steps {
		st.write(st.change)
		if got := routed(); got != st.want {
			t.Fatalf("%s: conv_routing says %s, want %s", st.name, got, st.want)
		}
	}

	// The trigger's runs, counted by a stand-in (this test's schema only).
	if _, err := s.pool.Exec(ctx, `CREATE TABLE trigger_runs (n int NOT NULL); INSERT INTO trigger_runs VALUES (0);
CREATE OR REPLACE FUNCTION chatgate_conv_routing() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	UPDATE trigger_runs SET n = n + 1;
	RETURN NULL;
END
$$`); err != nil {
		t.Fatal(err)
	}
	runs := func() int {
		t.Helper()
		var n int
		if err := s.pool.QueryRow(ctx, `SELECT n FROM trigger_runs`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	c.State = model.StateOpen
	counted := []struct {
		name   string
		write  func(func(*model.Conversation))
		change func(*model.Conversation)
		want   int
	}{
		{"reopened by a post", post, func(cv *model.Conversation) { cv.State, cv.Agent = model.StateOpen, "a" }, 1},
		{"message", post, same, 0},
		{"another message", post, same, 0},
		{"transferred by a post", post, assign("b"), 1},
		{"written by another statement", put, same, 1},
		{"first message after it", post, same, 1}, // the old row's routing is behind its revision
		{"message", post, same, 0},
		{"written by a version 4 node", oldNode, same, 1},
	}
	for _, st := range counted {
		before := runs()
		st.write(st.change)
		if got := runs() - before; got != st.want {
			t.Errorf("%s: the routing trigger ran %d times, want %d", st.name, got, st.want)
		}
	}
}
