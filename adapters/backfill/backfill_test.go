package backfill

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"chatgate/core/model"
	"chatgate/core/relay"
	"chatgate/store"
	"chatgate/store/bolt"
)

// fakeDesk records the histories it is sent and fails for one visitor.
type fakeDesk struct {
	sent []*History
	fail model.VisitorID
}

func (d *fakeDesk) Login(context.Context) error { return nil }
func (d *fakeDesk) Requests() int64             { return int64(len(d.sent)) }
func (d *fakeDesk) Send(_ context.Context, h *History, dryRun bool) (Result, error) {
	if h.Visitor.ID == d.fail {
		return Result{}, errors.New("desk refused")
	}
	if !dryRun {
		d.sent = append(d.sent, h)
	}
	return Result{Sent: 1}, nil
}

// seed writes visitors: "relayed" (an embedded conversation, then one the
// connector carries, bound upstream), "refused" (the same; the desk fails
// it), "unbound" (a relayed conversation that never reached the desk) and
// "plain" (no relayed conversation).
func seed(t *testing.T) store.Store {
	t.Helper()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "d.db"), bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	t0 := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	b := &store.Batch{}
	for i, v := range []model.VisitorID{"relayed", "refused", "unbound", "plain"} {
		b.Visitors = append(b.Visitors, model.Visitor{ID: v, Name: string(v), CreatedAt: t0})
		early := model.ConvID(string(v) + "-1")
		b.Convs = append(b.Convs, model.Conversation{ID: early, Visitor: v, State: model.StateClosed, CreatedAt: t0, LastSeq: 1})
		b.Events = append(b.Events, model.Event{Conv: early, Seq: 1, ID: string(early) + "-e", Kind: model.KindMessage, Text: "hi",
			Author: model.Author{Kind: model.AuthorVisitor, ID: string(v)}, At: t0, Visibility: model.VisibleAll})
		if v == "plain" {
			continue
		}
		late := model.ConvID(string(v) + "-2")
		b.Convs = append(b.Convs, model.Conversation{ID: late, Visitor: v, State: model.StateOpen, Owner: "lc",
			CreatedAt: t0.Add(time.Hour)})
		if v != "unbound" {
			b.Maps = append(b.Maps,
				store.Mapping{MapKey: store.MapKey{System: relay.System("lc"), Kind: relay.KindVisitor, Foreign: "cust-" + string(rune('a'+i))}, Core: string(v)},
				store.Mapping{MapKey: store.MapKey{System: relay.System("lc"), Kind: relay.KindRoom, Foreign: "chat/" + string(late)}, Core: string(late)})
		}
	}
	if err := st.Commit(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	return st
}

// TestRun: the visitors of the connector's conversations get their
// earlier conversations, once; a dry run records nothing; a failure is
// counted and retried by the next run; one never bound upstream is
// skipped.
func TestRun(t *testing.T) {
	st := seed(t)
	ctx := context.Background()
	desk := &fakeDesk{fail: "refused"}
	runs := []struct {
		name                       string
		dry                        bool
		sent, done, skipped, fails int
	}{
		{"dry run", true, 1, 1, 1, 1},
		{"first", false, 1, 1, 1, 1},
		{"second: relayed done, refused tried again", false, 0, 0, 2, 1},
	}
	for _, r := range runs {
		sum, err := Run(ctx, st, desk, Options{Connector: "lc", DryRun: r.dry})
		if err != nil {
			t.Fatalf("%s: %v", r.name, err)
		}
		if sum.Visitors != 3 || sum.Messages != r.sent || sum.VisitorsDone != r.done || sum.VisitorsSkipped != r.skipped ||
			sum.Failed != r.fails || len(sum.Failures) != r.fails {
			t.Fatalf("%s: %+v", r.name, sum)
		}
	}
	if len(desk.sent) != 1 {
		t.Fatalf("sent %d histories, want 1", len(desk.sent))
	}
	h := desk.sent[0]
	if h.Visitor.ID != "relayed" || h.Upstream != "cust-a" || len(h.Relayed) != 1 || h.Relayed[0].ID != "relayed-2" ||
		len(h.Rooms) != 1 || h.Rooms[0] != "chat/relayed-2" || len(h.Earlier) != 1 || h.Earlier[0].ID != "relayed-1" ||
		len(h.Earlier[0].Events) != 1 || h.Earlier[0].Events[0].Text != "hi" {
		t.Fatalf("history: %+v", h)
	}
	if _, err := st.Meta(ctx, ProgressKey("lc", "relayed")); err != nil {
		t.Fatalf("progress record: %v", err)
	}
	if _, err := st.Meta(ctx, ProgressKey("lc", "refused")); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a failed visitor was recorded as done: %v", err)
	}
}
