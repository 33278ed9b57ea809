package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"chatgate/core/model"
	"chatgate/store"
	"chatgate/store/bolt"
)

// restartEventsEnv sets how many events TestRestartWithManyEvents stores
// before timing a start; the default keeps `go test ./...` fast, and
// CHATGATE_RESTART_EVENTS=1000000 is the figure the README quotes.
const restartEventsEnv = "CHATGATE_RESTART_EVENTS"

// restartColdEnv, when set, evicts the data file from the page cache
// before each open (posix_fadvise DONTNEED on that file only), as after a
// reboot.
const restartColdEnv = "CHATGATE_RESTART_COLD"

func dropCache(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil { // dirty pages cannot be dropped
		t.Fatal(err)
	}
	if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
		t.Fatalf("fadvise: %v", err)
	}
}

// TestRestartWithManyEvents stores many events (written straight into the
// store in large batches, as a long-running gateway would have
// accumulated them), then starts the gateway on that file and reports how
// long it took to be ready (open + desk.Load + surfaces + listening, then
// /readyz answered). Start-up must scan conversations only, never events,
// so the figure should not grow with the number of events; the test
// logs it rather than asserting a time (the machine's load varies).
func TestRestartWithManyEvents(t *testing.T) {
	events := 20_000
	if v := os.Getenv(restartEventsEnv); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("%s=%q: want a positive number", restartEventsEnv, v)
		}
		events = n
	}
	dir := t.TempDir()
	dataPath := filepath.Join(dir, "chatgate.db")
	const perConv = 1000 // events per conversation
	convs := (events + perConv - 1) / perConv

	built := time.Now()
	st, err := bolt.Open(dataPath, bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	written := 0
	for c := range convs {
		n := min(perConv, events-written)
		vid := model.VisitorID(fmt.Sprintf("v%07d", c))
		conv := model.Conversation{ID: model.ConvID(fmt.Sprintf("c%07d", c)), Visitor: vid,
			State: model.StateClosed, CreatedAt: base, ClosedAt: base.Add(time.Hour), LastSeq: uint64(n)}
		switch c % 10 { // some still in progress, so that Load has work
		case 0:
			conv.State, conv.ClosedAt = model.StateOpen, time.Time{}
			conv.Agent = "agent0@bench.local"
		case 1:
			conv.State, conv.ClosedAt = model.StateQueued, time.Time{}
		}
		b := &store.Batch{Visitors: []model.Visitor{{ID: vid, Name: "V"}}, Convs: []model.Conversation{conv},
			Events: make([]model.Event, 0, n)}
		for i := range n {
			a := model.Author{Kind: model.AuthorVisitor, ID: string(vid)}
			if i%2 == 1 {
				a = model.Author{Kind: model.AuthorAgent, ID: "agent0@bench.local"}
			}
			b.Events = append(b.Events, model.Event{Conv: conv.ID, Seq: uint64(i + 1), ID: model.NewID(), Kind: model.KindMessage,
				Author: a, Text: "message number " + strconv.Itoa(i+1), At: base.Add(time.Duration(i) * time.Second)})
		}
		if err := st.Commit(ctx, b); err != nil {
			t.Fatal(err)
		}
		written += n
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	t.Logf("built %d events in %d conversations in %v", written, convs, time.Since(built).Round(time.Millisecond))

	if os.Getenv(restartColdEnv) != "" {
		dropCache(t, dataPath)
	}
	// The store's own open, for the report: the rest of the start-up is
	// the difference.
	opened := time.Now()
	st, err = bolt.Open(dataPath, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	openTook := time.Since(opened)
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(dataPath); err == nil {
		t.Logf("data file %d MiB; store open alone %v", fi.Size()>>20, openTook.Round(time.Microsecond))
	}

	if os.Getenv(restartColdEnv) != "" {
		dropCache(t, dataPath)
	}
	cfgPath := filepath.Join(dir, "chatgate.yaml")
	cfg := fmt.Sprintf("log:\n  level: error\nlicense:\n  id: %q\n  organization_id: %q\nagents:\n  - id: agent0@bench.local\n    name: A\n    token: %s\n",
		benchLicence, benchOrgID, "restart-token-0123456789abcdef")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithCancel(ctx)
	up := make(chan string, 1)
	done := make(chan error, 1)
	start := time.Now()
	go func() {
		done <- serve(sctx, serveOptions{ConfigPath: cfgPath, DataPath: dataPath, Addr: "127.0.0.1:0",
			Stderr: io.Discard, Getenv: func(string) string { return "" }, Listening: func(a string) { up <- a }})
	}()
	var addr string
	select {
	case addr = <-up:
	case err := <-done:
		cancel()
		t.Fatalf("serve: %v", err)
	case <-time.After(2 * time.Minute): // guards a hung test only
		cancel()
		t.Fatal("gateway did not start")
	}
	resp, err := http.Get("http://" + addr + "/readyz")
	ready := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/readyz: %s", resp.Status)
	}
	t.Logf("restart with %d stored events: ready in %v", written, ready.Round(time.Microsecond))
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("serve: %v", err)
	}
}
