//go:build unix

package dump

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"
	"testing"
	"time"

	"chatgate/store"
	"chatgate/store/bolt"
)

// synthetic streams an export of convs conversations of per message
// events each (with their visitors and one mapping per visitor), written
// as it is read: the generator holds no more than a line.
func synthetic(convs, per int) io.Reader {
	pr, pw := io.Pipe()
	go func() {
		w := bufio.NewWriterSize(pw, 1<<16)
		fmt.Fprintln(w, `{"type":"header","format":"chatgate-export","version":1,"created_at":"2026-01-01T00:00:00Z","source":{"kind":"synthetic"},"files":"inline"}`)
		for c := range convs {
			fmt.Fprintf(w, `{"type":"visitor","visitor":{"id":"V%025d","name":"Visitor %d","created_at":"2026-01-01T00:00:00Z"}}`+"\n", c, c)
		}
		for c := range convs {
			fmt.Fprintf(w, `{"type":"conversation","conversation":{"id":"C%025d","visitor":"V%025d","state":"closed","created_at":"2026-01-01T00:00:00Z","last_seq":%d}}`+"\n", c, c, per)
			for s := 1; s <= per; s++ {
				author := `{"kind":"visitor","id":"V` + fmt.Sprintf("%025d", c) + `"}`
				if s%2 == 0 {
					author = `{"kind":"agent","id":"agent-1","name":"Alice"}`
				}
				fmt.Fprintf(w, `{"type":"event","event":{"conv":"C%025d","seq":%d,"id":"C%025d-%d","kind":"message","author":%s,"at":"2026-01-01T00:%02d:%02d.000001Z","visibility":"all","text":"message number %d of a synthetic conversation, about as long as a chat line"}}`+"\n",
					c, s, c, s, author, (s/60)%60, s%60, s)
			}
			fmt.Fprintf(w, `{"type":"mapping","mapping":{"system":"livechat.v2","tenant":"100000","kind":"visitor","foreign":"lc-V%025d","core":"V%025d","latest":true}}`+"\n", c, c)
		}
		fmt.Fprintln(w, `{"type":"end","counts":{}}`)
		pw.CloseWithError(w.Flush())
	}()
	return pr
}

// benchEvents is CHATGATE_MIGRATE_EVENTS (default 100,000).
func benchEvents(b *testing.B) int {
	events := 100000
	if v := os.Getenv("CHATGATE_MIGRATE_EVENTS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 100 {
			b.Fatalf("CHATGATE_MIGRATE_EVENTS=%q: want a number >= 100", v)
		}
		events = n
	}
	return events
}

// cpuTime is the CPU time (user + system) the process has used.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// measureImport imports r into a fresh bbolt store (fsync on) and reports
// events/s (wall clock), events per CPU-second (user + system time of the
// whole process: on a shared machine the wall-clock rate says as much
// about the load as about the import) and the peak heap.
func measureImport(b *testing.B, r io.Reader) ImportSummary {
	st, err := bolt.Open(filepath.Join(b.TempDir(), "data.db"), bolt.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	stop := make(chan struct{})
	peak := make(chan uint64)
	go func() {
		var m runtime.MemStats
		var top uint64
		for {
			runtime.ReadMemStats(&m)
			top = max(top, m.HeapInuse)
			select {
			case <-stop:
				peak <- top
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	cpu0 := cpuTime(b)
	sum, err := Import(b.Context(), st, nil, r, ImportOptions{})
	cpu := cpuTime(b) - cpu0
	close(stop)
	heap := <-peak
	if err != nil {
		b.Fatal(err)
	}
	events := sum.Counts[store.RecEvent].Written
	b.ReportMetric(sum.EventsPerSecond, "events/s")
	b.ReportMetric(float64(events)/cpu.Seconds(), "events/cpu-s")
	b.ReportMetric(float64(heap)/(1<<20), "peak-heap-MiB")
	return sum
}

// BenchmarkImport imports a synthetic export of CHATGATE_MIGRATE_EVENTS
// events (100 per conversation; default 100,000), generated as it is read
// (the generator's CPU time counts too), into a fresh bbolt store. A
// measurement by hand (see docs/migration.md), e.g. with 1,000,000.
func BenchmarkImport(b *testing.B) {
	events := benchEvents(b)
	for range b.N {
		sum := measureImport(b, synthetic(events/100, 100))
		if sum.Counts[store.RecEvent].Written != events/100*100 {
			b.Fatalf("imported %+v", sum.Counts)
		}
	}
}

// BenchmarkImportFile imports the export named by CHATGATE_MIGRATE_FILE
// into a fresh bbolt store. A file that does not exist is first written
// with the synthetic export of CHATGATE_MIGRATE_EVENTS events (not
// measured), so that the figures leave the generator out.
func BenchmarkImportFile(b *testing.B) {
	path := os.Getenv("CHATGATE_MIGRATE_FILE")
	if path == "" {
		b.Skip("CHATGATE_MIGRATE_FILE is not set")
	}
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		f, err := os.Create(path)
		if err != nil {
			b.Fatal(err)
		}
		events := benchEvents(b)
		if _, err := io.Copy(f, synthetic(events/100, 100)); err != nil {
			b.Fatal(err)
		}
		if err := f.Close(); err != nil {
			b.Fatal(err)
		}
	}
	for range b.N {
		f, err := os.Open(path)
		if err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		measureImport(b, f)
		f.Close()
	}
}
