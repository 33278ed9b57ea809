//go:build linux

package postgres

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"chatgate/core/model"
	"chatgate/store"
)

// The crash test kills the database server, not the client: it starts a
// throwaway PostgreSQL cluster of its own (.ci/pg), has writers commit as
// fast as they can, SIGKILLs the postmaster and every backend mid-stream,
// restarts the cluster and checks that every commit that was acknowledged
// is there, exactly once, with dense seqs; three rounds, each continuing
// from what the previous one left.

const (
	crashWriters = 8
	crashRounds  = 3
)

// cluster is a throwaway PostgreSQL cluster the test owns.
type cluster struct {
	t   *testing.T
	dir string
	url string
}

func startCluster(t *testing.T) *cluster {
	t.Helper()
	if m, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb"); len(m) == 0 {
		if _, err := exec.LookPath("pg_ctl"); err != nil {
			t.Skip("no PostgreSQL binaries (apt-get install postgresql): cannot start a server to kill")
		}
	}
	// Not t.TempDir(): the server runs as the postgres user when the test
	// runs as root, and must be able to reach its directory.
	dir, err := os.MkdirTemp("", "chatgate-crash-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	c := &cluster{t: t, dir: dir}
	t.Cleanup(func() {
		if out, err := exec.Command(pgScript(), "stop", dir).CombinedOutput(); err != nil {
			t.Errorf(".ci/pg stop: %v\n%s", err, out)
		}
	})
	c.start()
	return c
}

func pgScript() string { return filepath.Join("..", "..", ".ci", "pg") }

func (c *cluster) start() {
	c.t.Helper()
	out, err := exec.Command(pgScript(), "start", c.dir).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			c.t.Fatalf(".ci/pg start: %v\n%s", err, ee.Stderr)
		}
		c.t.Fatalf(".ci/pg start: %v", err)
	}
	c.url = strings.TrimSpace(string(out))
}

// kill SIGKILLs the postmaster and its children (the backends, the WAL
// writer): the server dies as in a power cut of its processes.
func (c *cluster) kill() {
	c.t.Helper()
	b, err := os.ReadFile(filepath.Join(c.dir, "data", "postmaster.pid"))
	if err != nil {
		c.t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0]))
	if err != nil {
		c.t.Fatal(err)
	}
	children := childrenOf(pid)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		c.t.Fatalf("kill postmaster %d: %v", pid, err)
	}
	for _, ch := range children {
		_ = syscall.Kill(ch, syscall.SIGKILL) // may have exited already
	}
	// Wait until they are gone, so that the restart finds no backend
	// still attached to the old shared memory.
	deadline := time.Now().Add(20 * time.Second)
	for _, p := range append(children, pid) {
		for syscall.Kill(p, 0) == nil && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// childrenOf lists the processes whose parent is pid (from /proc).
func childrenOf(pid int) []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, so split
		// after its closing parenthesis.
		i := strings.LastIndexByte(string(stat), ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(stat[i+1:]))
		if len(f) > 1 && f[1] == strconv.Itoa(pid) {
			out = append(out, n)
		}
	}
	return out
}

func crashConv(w int) model.ConvID { return model.ConvID(fmt.Sprintf("crash-conv-%02d", w)) }

func crashEventID(c model.ConvID, seq uint64) string { return fmt.Sprintf("ev-%s-%d", c, seq) }

// crashRound writes until the server is killed and returns, per
// conversation, the seqs acknowledged.
func crashRound(t *testing.T, c *cluster, minAcks int) map[model.ConvID][]uint64 {
	t.Helper()
	s, err := Open(t.Context(), c.url, Options{CommitTimeout: 10 * time.Second})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s.Close()
	var (
		mu    sync.Mutex
		acked = map[model.ConvID][]uint64{}
		n     int
		wg    sync.WaitGroup
	)
	enough := make(chan struct{})
	ctx := context.Background()
	for w := range crashWriters {
		wg.Go(func() {
			conv := model.Conversation{ID: crashConv(w), Visitor: "crash-visitor", State: model.StateOpen}
			switch got, err := s.Conversation(ctx, conv.ID); {
			case err == nil:
				conv = got
			case !errors.Is(err, store.ErrNotFound):
				t.Errorf("read %s: %v", conv.ID, err)
				return
			}
			for {
				conv.LastSeq++
				seq := conv.LastSeq
				b := &store.Batch{
					Convs: []model.Conversation{conv},
					Events: []model.Event{{Conv: conv.ID, Seq: seq, ID: crashEventID(conv.ID, seq), Kind: model.KindMessage,
						Author: model.Author{Kind: model.AuthorVisitor, ID: "crash-visitor"}, At: time.Now().UTC(), Text: strings.Repeat("x", 64)}},
					Idems: []store.Idem{{System: "crashtest", Key: crashEventID(conv.ID, seq), Conv: conv.ID, Seq: seq}},
				}
				if err := s.Commit(ctx, b); err != nil {
					return // the server is gone: this one is not acknowledged
				}
				conv = b.Convs[0]
				mu.Lock()
				acked[conv.ID] = append(acked[conv.ID], seq)
				n++
				if n == minAcks {
					close(enough)
				}
				mu.Unlock()
			}
		})
	}
	select {
	case <-enough:
	case <-time.After(60 * time.Second):
		t.Fatalf("only %d acknowledgements in 60 s", n)
	}
	c.kill()
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	t.Logf("%d commits acknowledged before the server was killed", n)
	return acked
}

func TestServerCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	c := startCluster(t)
	all := map[model.ConvID][]uint64{}
	for round := range crashRounds {
		acked := crashRound(t, c, 400+200*round)
		c.start()
		s, err := Open(t.Context(), c.url, Options{})
		if err != nil {
			t.Fatalf("round %d: reopen: %v", round, err)
		}
		for id, seqs := range acked {
			all[id] = append(all[id], seqs...)
		}
		for id, seqs := range all {
			conv, err := s.Conversation(t.Context(), id)
			if err != nil {
				t.Fatalf("round %d: %s: %v", round, id, err)
			}
			evs, err := s.Events(t.Context(), id, 0, 0)
			if err != nil {
				t.Fatal(err)
			}
			if uint64(len(evs)) != conv.LastSeq {
				t.Errorf("round %d: %s has %d events, LastSeq %d", round, id, len(evs), conv.LastSeq)
			}
			for i, e := range evs {
				if e.Seq != uint64(i+1) || e.ID != crashEventID(id, e.Seq) {
					t.Fatalf("round %d: %s event %d is seq %d id %s", round, id, i, e.Seq, e.ID)
				}
			}
			for _, seq := range seqs {
				if seq > uint64(len(evs)) {
					t.Errorf("round %d: acknowledged %s/%d is lost (%d events stored)", round, id, seq, len(evs))
				}
				if _, err := s.Idempotent(t.Context(), "crashtest", crashEventID(id, seq)); err != nil {
					t.Errorf("round %d: idempotency key of acknowledged %s/%d: %v", round, id, seq, err)
				}
			}
		}
		s.Close()
	}
}
