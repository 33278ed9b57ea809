package main

import (
	"context"
	"os"
	"path/filepath"
	"runtime/pprof"
	"testing"
	"time"

	"chatgate/store/bolt"
)

func TestScratchEchoProfile(t *testing.T) {
	dir := t.TempDir()
	raw, _ := openRawEcho(filepath.Join(dir, "raw.db"))
	f, _ := os.Create("/tmp/perf/raw.prof")
	pprof.StartCPUProfile(f)
	r, _, c, err := runEcho(context.Background(), 100, 1, 5*time.Second, raw.committer)
	pprof.StopCPUProfile()
	raw.close()
	t.Logf("raw %.0f/s %.0f µs %v", r, c, err)
	st, _ := bolt.Open(filepath.Join(dir, "echo.db"), bolt.Options{})
	f2, _ := os.Create("/tmp/perf/store.prof")
	pprof.StartCPUProfile(f2)
	r, _, c, err = runEcho(context.Background(), 100, 1, 5*time.Second, storeCommitter(st))
	pprof.StopCPUProfile()
	st.Close()
	t.Logf("store %.0f/s %.0f µs %v", r, c, err)
}
