package postgres

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"chatgate/core/model"
	"chatgate/store"
)

// TestNotifyRidesGroup: Notify's statement joins the transaction of the
// commits queued with it (one transaction, so no commit record and WAL
// flush of its own), its notifications arrive once and in order, also
// when a commit of the group breaks a rule (the group is rolled back and
// sent again without it), and a group of notifications alone is still
// sent.
func TestNotifyRidesGroup(t *testing.T) {
	var mu sync.Mutex
	var txs []Stats
	s := open(t, Options{OnCommit: func(st Stats) {
		mu.Lock()
		txs = append(txs, st)
		mu.Unlock()
	}})
	defer s.Close()
	ctx := t.Context()
	const channel = "chatgate.test_notify"
	listener, err := s.Pool().Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = listener.Conn().Close(context.Background()); listener.Release() }()
	if _, err := listener.Exec(ctx, "LISTEN "+pgx.Identifier{channel}.Sanitize()); err != nil {
		t.Fatal(err)
	}

	now := time.Now().UTC()
	v := model.Visitor{ID: model.VisitorID(model.NewID()), CreatedAt: now}
	convs := []model.Conversation{
		{ID: model.ConvID(model.NewID()), Visitor: v.ID, State: model.StateOpen, CreatedAt: now},
		{ID: model.ConvID(model.NewID()), Visitor: v.ID, State: model.StateOpen, CreatedAt: now},
	}
	if err := s.Commit(ctx, &store.Batch{Visitors: []model.Visitor{v}, Convs: convs}); err != nil {
		t.Fatal(err)
	}
	seqs := map[model.ConvID]uint64{}
	// post is a request posting the next message of convs[i], read at
	// revision rev (the committed one is 1 + the posts before it).
	post := func(i int, rev uint64) *request {
		cv := convs[i]
		seqs[cv.ID]++
		cv.Rev, cv.LastSeq = rev, seqs[cv.ID]
		b := &store.Batch{Convs: []model.Conversation{cv},
			Events: []model.Event{{ID: model.NewID(), Conv: cv.ID, Seq: cv.LastSeq, Kind: model.KindMessage, Text: "hi", At: now}}}
		w, err := encode(b, make([]int64, 1), nil)
		if err != nil {
			t.Fatal(err)
		}
		return &request{w: w, errc: make(chan error, 1)}
	}
	n := 0
	notify := func(k int) (*request, []string) {
		var p []string
		for range k {
			n++
			p = append(p, fmt.Sprintf("p%d", n))
		}
		return &request{w: notifyWork(channel, p), errc: make(chan error, 1)}, p
	}
	type step struct {
		name    string
		group   func() ([]*request, []string)
		wantErr []error // per request of the group
		wantTx  []Stats // what OnCommit saw: commits and statements
	}
	steps := []step{
		{"notify alone", func() ([]*request, []string) {
			r, p := notify(2)
			return []*request{r}, p
		}, []error{nil}, nil},
		{"with two commits", func() ([]*request, []string) {
			r, p := notify(3)
			return []*request{post(0, 1), r, post(1, 1)}, p
		}, []error{nil, nil, nil}, []Stats{{Requests: 2, Statements: 3}}},
		{"a stale commit among them", func() ([]*request, []string) {
			r, p := notify(2)
			stale := post(0, 1) // revision 2 now
			seqs[convs[0].ID]--
			return []*request{stale, r, post(1, 2)}, p
		}, []error{store.ErrStale, nil, nil}, []Stats{{Requests: 2, Statements: 3}, {Requests: 1, Statements: 2}}},
	}
	for _, st := range steps {
		mu.Lock()
		txs = nil
		mu.Unlock()
		group, want := st.group()
		s.commitGroup(append([]*request(nil), group...))
		for i, r := range group {
			if err := <-r.errc; !errors.Is(err, st.wantErr[i]) {
				t.Fatalf("%s: request %d: %v, want %v", st.name, i, err, st.wantErr[i])
			}
		}
		mu.Lock()
		var got []Stats
		for _, tx := range txs {
			got = append(got, Stats{Requests: tx.Requests, Statements: tx.Statements})
		}
		mu.Unlock()
		if fmt.Sprint(got) != fmt.Sprint(st.wantTx) {
			t.Errorf("%s: transactions %v, want %v", st.name, got, st.wantTx)
		}
		// Everything sent arrives once, in order: read up to a marker
		// notified after it.
		if _, err := s.Pool().Exec(ctx, `SELECT pg_notify($1, 'end')`, channel); err != nil {
			t.Fatal(err)
		}
		var recv []string
		for {
			wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			nt, err := listener.Conn().WaitForNotification(wctx)
			cancel()
			if err != nil {
				t.Fatalf("%s: got %v, then %v", st.name, recv, err)
			}
			if nt.Payload == "end" {
				break
			}
			recv = append(recv, nt.Payload)
		}
		if fmt.Sprint(recv) != fmt.Sprint(want) {
			t.Fatalf("%s: notified %v, want %v", st.name, recv, want)
		}
	}
	// Store.Notify itself: delivered, in order, whatever the payloads
	// hold (joined into one parameter, or an array when they cannot be).
	for _, payloads := range [][]string{
		{"x1", "x2"},
		{"one"},
		{"x3", "", "x4"},
		{"a" + notifySep + "b", "c"},
		{`{"n":"a","c":""}`},
	} {
		if err := s.Notify(ctx, channel, payloads); err != nil {
			t.Fatal(err)
		}
		for _, want := range payloads {
			nt, err := listener.Conn().WaitForNotification(ctx)
			if err != nil || nt.Payload != want {
				t.Fatalf("Notify(%q): got %v, %v; want %q", payloads, nt, err, want)
			}
		}
	}
}
