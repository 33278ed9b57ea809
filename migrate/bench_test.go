package migrate

import (
	"os"
	"path/filepath"
	"testing"

	"chatgate/store/bolt"
)

// BenchmarkImportFile imports the export named by CHATGATE_MIGRATE_FILE
// into a fresh bbolt store (a measurement by hand; see docs/migration.md).
func BenchmarkImportFile(b *testing.B) {
	path := os.Getenv("CHATGATE_MIGRATE_FILE")
	if path == "" {
		b.Skip("CHATGATE_MIGRATE_FILE is not set")
	}
	for range b.N {
		st, err := bolt.Open(filepath.Join(b.TempDir(), "data.db"), bolt.Options{NoSync: os.Getenv("NOSYNC") != ""})
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
