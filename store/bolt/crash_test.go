//go:build unix

package bolt

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"chatgate/core/model"
	"chatgate/store"
)

// The crash test runs its own test binary as a child that commits events
// as fast as it can and reports every acknowledged commit on stdout; the
// parent kills it with SIGKILL mid-stream and checks that every
// acknowledged event survived, exactly once.

const (
	crashEnv     = "CHATGATE_CRASH_CHILD"
	crashWriters = 8
	crashSystem  = "crashtest"
	ackPrefix    = "ACK "
)

func crashConv(w int) model.ConvID { return model.ConvID(fmt.Sprintf("crash-conv-%02d", w)) }

func crashKey(c model.ConvID, seq uint64) string { return fmt.Sprintf("%s/%d", c, seq) }

func crashEventID(c model.ConvID, seq uint64) string { return fmt.Sprintf("ev-%s-%d", c, seq) }

// TestCrashChild is the child side; it does nothing unless started by
// TestCrashRecovery.
func TestCrashChild(t *testing.T) {
	path := os.Getenv(crashEnv)
	if path == "" {
		t.Skip("crash child: started only by TestCrashRecovery")
	}
	// If the parent goes away, stdin reaches EOF: stop rather than run on.
	go func() {
		io.Copy(io.Discard, os.Stdin)
		os.Exit(3)
	}()
	s, err := Open(path, Options{NoSync: false})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child open:", err)
		os.Exit(2)
	}
	ctx := context.Background()
	var outMu sync.Mutex
	fail := func(format string, args ...any) {
		outMu.Lock()
		fmt.Fprintf(os.Stderr, format+"\n", args...)
		os.Exit(2)
	}
	var wg sync.WaitGroup
	for w := range crashWriters {
		wg.Go(func() {
			conv := model.Conversation{ID: crashConv(w), Visitor: "crash-visitor", State: model.StateOpen}
			// Continue from what is stored.
			switch c, err := s.Conversation(ctx, conv.ID); {
			case err == nil:
				conv = c
			case !errors.Is(err, store.ErrNotFound):
				fail("child read %s: %v", conv.ID, err)
			}
			for {
				seq := conv.LastSeq + 1
				conv.LastSeq = seq
				e := model.Event{
					Conv: conv.ID, Seq: seq, ID: crashEventID(conv.ID, seq), Kind: model.KindMessage,
					Author: model.Author{Kind: model.AuthorVisitor, ID: "crash-visitor"},
					At:     time.Now().UTC(), Text: strings.Repeat("x", 64),
				}
				b := &store.Batch{
					Convs:  []model.Conversation{conv},
					Events: []model.Event{e},
					Idems:  []store.Idem{{System: crashSystem, Key: crashKey(conv.ID, seq), Conv: conv.ID, Seq: seq}},
				}
				if err := s.Commit(ctx, b); err != nil {
					fail("child commit %s/%d: %v", conv.ID, seq, err)
				}
				conv.Rev = b.Convs[0].Rev // the revision just written
				// Acknowledged: one write(2) per line, never buffered.
				line := ackPrefix + string(conv.ID) + " " + strconv.FormatUint(seq, 10) + "\n"
				outMu.Lock()
				_, err = os.Stdout.Write([]byte(line))
				outMu.Unlock()
				if err != nil {
					os.Exit(4)
				}
			}
		})
	}
	wg.Wait()
}

// crashRound starts a child on path, kills it after minAcks acknowledgements
// and at least minRun of running, and returns every acknowledgement it made:
// for each conversation, the seqs in the order acknowledged.
func crashRound(t *testing.T, path string, minAcks int, minRun time.Duration) map[model.ConvID][]uint64 {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashEnv+"="+path)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var waitOnce sync.Once
	var waitErr error
	wait := func() error {
		waitOnce.Do(func() {
			cmd.Process.Kill() // no-op error if it already exited
			waitErr = cmd.Wait()
			stdin.Close()
		})
		return waitErr
	}
	// Whatever happens below, the child does not outlive the test.
	t.Cleanup(func() { wait() })

	type ack struct {
		conv model.ConvID
		seq  uint64
	}
	acks := make(chan ack, 1024)
	readErr := make(chan error, 1)
	go func() {
		defer close(acks)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line, ok := strings.CutPrefix(sc.Text(), ackPrefix)
			if !ok {
				continue // test framework chatter
			}
			conv, seqText, ok := strings.Cut(line, " ")
			seq, err := strconv.ParseUint(seqText, 10, 64)
			if !ok || err != nil {
				readErr <- fmt.Errorf("malformed ack line %q", sc.Text())
				return
			}
			acks <- ack{model.ConvID(conv), seq}
		}
		readErr <- sc.Err()
	}()

	got := map[model.ConvID][]uint64{}
	n := 0
	start := time.Now()
	killed := false
	for a := range acks {
		got[a.conv] = append(got[a.conv], a.seq)
		n++
		if !killed && n >= minAcks && time.Since(start) >= minRun {
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatalf("kill child: %v", err)
			}
			killed = true
		}
		// After the kill, keep reading: acknowledgements already in the
		// pipe count as well.
	}
	if err := <-readErr; err != nil {
		t.Fatalf("reading child output: %v", err)
	}
	err = wait()
	if !killed {
		t.Fatalf("child stopped by itself after %d acks: %v\nstderr:\n%s", n, err, stderr.String())
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("child did not die of SIGKILL: %v\nstderr:\n%s", err, stderr.String())
	}
	t.Logf("child acknowledged %d commits in %v before SIGKILL", n, time.Since(start).Round(time.Millisecond))
	return got
}

func TestCrashRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test runs child processes for several seconds")
	}
	if os.Getenv(crashEnv) != "" {
		t.Skip("inside a crash child")
	}
	path := tempPath(t)
	const rounds, minAcks = 3, 300
	// stored[conv] is the number of events verified on disk so far.
	stored := map[model.ConvID]uint64{}
	ctx := t.Context()
	for round := 1; round <= rounds; round++ {
		acks := crashRound(t, path, minAcks, time.Second)

		s, err := Open(path, Options{})
		if err != nil {
			t.Fatalf("round %d: reopen after crash: %v", round, err)
		}
		for w := range crashWriters {
			conv := crashConv(w)
			prev := stored[conv]
			seqsAcked := acks[conv]
			// Acknowledgements of one conversation come in order, continuing
			// from what was stored.
			for i, seq := range seqsAcked {
				if seq != prev+uint64(i)+1 {
					t.Fatalf("round %d: %s acks %v do not continue from %d", round, conv, seqsAcked, prev)
				}
			}
			maxAck := prev + uint64(len(seqsAcked))

			// Every acknowledged event is there, once, and its idempotency
			// key resolves to it.
			for _, seq := range seqsAcked {
				evs, err := s.Events(ctx, conv, seq, 1)
				if err != nil || len(evs) != 1 || evs[0].Seq != seq || evs[0].Conv != conv || evs[0].ID != crashEventID(conv, seq) {
					t.Fatalf("round %d: acknowledged %s/%d: got %+v, %v", round, conv, seq, evs, err)
				}
				id, err := s.Idempotent(ctx, crashSystem, crashKey(conv, seq))
				if err != nil || id.Conv != conv || id.Seq != seq {
					t.Fatalf("round %d: idempotency key of %s/%d = %+v, %v", round, conv, seq, id, err)
				}
			}

			// The stored log is dense 1..n, without gaps or duplicates, and
			// holds at most the one commit in flight beyond the last ack.
			evs, err := s.Events(ctx, conv, 0, 0)
			if err != nil {
				t.Fatal(err)
			}
			for i, e := range evs {
				if e.Seq != uint64(i+1) || e.Conv != conv || e.ID != crashEventID(conv, e.Seq) {
					t.Fatalf("round %d: %s event #%d is seq %d id %q", round, conv, i+1, e.Seq, e.ID)
				}
			}
			n := uint64(len(evs))
			if n < maxAck || n > maxAck+1 {
				t.Fatalf("round %d: %s has %d events, acknowledged %d", round, conv, n, maxAck)
			}
			for seq := maxAck + 1; seq <= n; seq++ {
				if id, err := s.Idempotent(ctx, crashSystem, crashKey(conv, seq)); err != nil || id.Seq != seq {
					t.Fatalf("round %d: unacknowledged %s/%d: idempotency %+v, %v", round, conv, seq, id, err)
				}
			}
			if n > 0 {
				c, err := s.Conversation(ctx, conv)
				if err != nil || c.LastSeq != n {
					t.Fatalf("round %d: conversation %s: LastSeq %d, %v; want %d", round, conv, c.LastSeq, err, n)
				}
			}
			stored[conv] = n
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	total := uint64(0)
	for _, n := range stored {
		total += n
	}
	t.Logf("%d events stored over %d crashes", total, rounds)
}
