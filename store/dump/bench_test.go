package dump

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"

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

// BenchmarkImport imports a synthetic export of CHATGATE_MIGRATE_EVENTS
// events (100 per conversation; default 100,000) into a fresh bbolt store
// (fsync on) and reports events/s and the peak heap. A measurement by
// hand (see docs/migration.md), e.g. with 1,000,000.
func BenchmarkImport(b *testing.B) {
	events := 100000
	if v := os.Getenv("CHATGATE_MIGRATE_EVENTS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 100 {
			b.Fatalf("CHATGATE_MIGRATE_EVENTS=%q: want a number >= 100", v)
		}
		events = n
	}
	for range b.N {
		st, err := bolt.Open(filepath.Join(b.TempDir(), "data.db"), bolt.Options{})
		if err != nil {
			b.Fatal(err)
		}
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
		sum, err := Import(b.Context(), st, nil, synthetic(events/100, 100), ImportOptions{})
		close(stop)
		heap := <-peak
		st.Close()
		if err != nil {
			b.Fatal(err)
		}
		if sum.Counts["event"].Written != events/100*100 {
			b.Fatalf("imported %+v", sum.Counts)
		}
		b.ReportMetric(sum.EventsPerSecond, "events/s")
		b.ReportMetric(float64(heap)/(1<<20), "peak-heap-MiB")
	}
}

// BenchmarkImportFile imports the export named by CHATGATE_MIGRATE_FILE
// into a fresh bbolt store.
func BenchmarkImportFile(b *testing.B) {
	path := os.Getenv("CHATGATE_MIGRATE_FILE")
	if path == "" {
		b.Skip("CHATGATE_MIGRATE_FILE is not set")
	}
	for range b.N {
		st, err := bolt.Open(filepath.Join(b.TempDir(), "data.db"), bolt.Options{})
		if err != nil {
			b.Fatal(err)
		}
		f, err := os.Open(path)
		if err != nil {
			b.Fatal(err)
		}
		sum, err := Import(b.Context(), st, nil, f, ImportOptions{})
		f.Close()
		st.Close()
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(sum.EventsPerSecond, "events/s")
	}
}
