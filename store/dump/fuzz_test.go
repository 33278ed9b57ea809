package dump

import (
	"bytes"
	"path/filepath"
	"testing"

	"chatgate/store/bolt"
	"chatgate/store/files"
)

// FuzzImport feeds arbitrary streams to Import: it must never panic, and
// what it accepts must export again without error.
func FuzzImport(f *testing.F) {
	header := `{"type":"header","format":"chatgate-export","version":1,"files":"inline"}` + "\n"
	f.Add([]byte(header + `{"type":"visitor","visitor":{"id":"v1"}}` + "\n" + `{"type":"end"}` + "\n"))
	f.Add([]byte(header + `{"type":"conversation","conversation":{"id":"c","visitor":"v","state":"open"}}` + "\n" +
		`{"type":"event","event":{"conv":"c","seq":1,"id":"e","kind":"message","text":"hi"}}` + "\n"))
	f.Add([]byte(header + `{"type":"file","file":{"id":"0123456789abcdef0123456789abcdef","size":2,"sha256":"x"}}` + "\n" +
		`{"type":"blob","sha256":"x","data":"aGk=","eof":true}` + "\n"))
	f.Add([]byte(header + `{"type":"outbox","outbox":{"id":"o","target":"t","conv":"c","seq":3,"state":"pending"}}` + "\n" +
		`{"type":"mapping","mapping":{"system":"s","kind":"k","foreign":"f","core":"c","latest":true}}` + "\n" +
		`{"type":"meta","key":"k","value":"AA=="}` + "\n" + `{"type":"idem","idem":{"system":"s","key":"k","conv":"c","seq":1}}` + "\n"))
	// One store for every input (opening one per input would be most of
	// the time): inputs accumulate in it, which exercises imports into a
	// store that already holds records too.
	dir := f.TempDir()
	st, err := bolt.Open(filepath.Join(dir, "d.db"), bolt.Options{NoSync: true})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { st.Close() })
	fs, err := files.Open(filepath.Join(dir, "files"), 1<<16)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		if _, err := Import(t.Context(), st, fs, bytes.NewReader(in), ImportOptions{BatchSize: 3}); err != nil {
			return
		}
		var out bytes.Buffer
		if _, err := Export(t.Context(), st, fs, &out, ExportOptions{}); err != nil {
			t.Fatalf("export after an accepted import: %v", err)
		}
	})
}
