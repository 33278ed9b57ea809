package files

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"chatgate/store/postgres"
	"chatgate/store/postgres/pgtest"
)

// backends opens a store of each kind with a 1 KiB limit: on disk, and in
// PostgreSQL when a test server is given.
func backends(t *testing.T) map[string]func(t *testing.T) *Store {
	return map[string]func(t *testing.T) *Store{
		"disk": func(t *testing.T) *Store {
			s, err := Open(t.TempDir(), 1024)
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
		"postgres": func(t *testing.T) *Store {
			url := pgtest.URL(t)
			pg, err := postgres.Open(t.Context(), url, postgres.Options{Schema: pgtest.Schema(t, url)})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { pg.Close() })
			return OpenBlobs(pg, 1024)
		},
	}
}

func TestPutGet(t *testing.T) {
	for name, open := range backends(t) {
		t.Run(name, func(t *testing.T) { testPutGet(t, open(t)) })
	}
}

func testPutGet(t *testing.T, s *Store) {
	ctx := context.Background()
	png := append([]byte("\x89PNG\r\n\x1a\n"), bytes.Repeat([]byte{0}, 40)...)
	cases := []struct {
		name, in, ctype string
		body            []byte
		wantName        string
		wantType        string
		wantErr         error
	}{
		{"sniffed png", "../../etc/passwd.png", "", png, "passwd.png", "image/png", nil},
		{"given type kept", "a.txt", "text/plain", []byte("hi"), "a.txt", "text/plain", nil},
		{"control chars dropped", "a\x00b\n.txt", "text/plain", []byte("hi"), "ab.txt", "text/plain", nil},
		{"empty name", "", "text/plain", []byte("x"), "file", "text/plain", nil},
		{"too large", "big", "", bytes.Repeat([]byte("a"), 1025), "", "", ErrTooLarge},
		{"exactly the limit", "max", "", bytes.Repeat([]byte("a"), 1024), "max", "text/plain; charset=utf-8", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f, err := s.Put(ctx, tc.in, tc.ctype, bytes.NewReader(tc.body))
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if err != nil {
				return
			}
			if f.Name != tc.wantName || f.ContentType != tc.wantType || f.Size != int64(len(tc.body)) || len(f.ID) != 32 {
				t.Fatalf("file %+v", f)
			}
			g, fh, err := s.Get(t.Context(), f.ID)
			if err != nil {
				t.Fatal(err)
			}
			defer fh.Close()
			got, _ := io.ReadAll(fh)
			if !bytes.Equal(got, tc.body) || g != f {
				t.Fatalf("read back %+v %q", g, got)
			}
		})
	}
	for _, id := range []string{"", "../x", strings.Repeat("0", 32), "ZZ"} {
		if _, _, err := s.Get(t.Context(), id); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Get(%q) = %v, want ErrNotFound", id, err)
		}
	}
}

// TestQuotaClaimSweep: per-owner quotas (files and bytes), Claim keeping a
// file from the sweep, Sweep removing pending files past the grace only,
// and the usage surviving a reopen.
func TestQuotaClaimSweep(t *testing.T) {
	for name, open := range backends(t) {
		t.Run(name, func(t *testing.T) { testQuotaClaimSweep(t, open(t)) })
	}
}

func testQuotaClaimSweep(t *testing.T, s *Store) {
	s.SetLimits(Limits{OwnerBytes: 10, OwnerFiles: 3, Grace: time.Hour})
	ctx := context.Background()
	put := func(owner, body string) (File, error) {
		return s.PutPending(ctx, owner, "f.txt", "text/plain", strings.NewReader(body))
	}
	a1, err := put("a", "12345")
	if err != nil {
		t.Fatal(err)
	}
	a2, err := put("a", "12345")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := put("a", "1"); !errors.Is(err, ErrQuota) {
		t.Fatalf("over the byte quota: %v", err)
	}
	if _, err := put("b", "1234567890"); err != nil {
		t.Fatalf("another owner: %v", err)
	}
	if n, b := s.Usage("a"); n != 2 || b != 10 {
		t.Fatalf("usage a = %d files %d bytes", n, b)
	}
	if _, err := s.Claim(ctx, a1.ID); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Sweep(ctx, time.Now().Add(30*time.Minute)); err != nil || n != 0 {
		t.Fatalf("sweep inside the grace removed %d, %v", n, err)
	}
	if n, err := s.Sweep(ctx, time.Now().Add(2*time.Hour)); err != nil || n != 2 { // a2 and b's
		t.Fatalf("sweep after the grace removed %d, %v", n, err)
	}
	if _, _, err := s.Get(ctx, a2.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unclaimed file kept: %v", err)
	}
	if _, fh, err := s.Get(ctx, a1.ID); err != nil {
		t.Fatalf("claimed file swept: %v", err)
	} else {
		fh.Close()
	}
	// Space freed by the sweep is the owner's again; reopening recounts.
	s2 := OpenBlobs(s.blobs, 1024)
	if s.blobs == nil {
		var err error
		if s2, err = Open(s.dir, 1024); err != nil {
			t.Fatal(err)
		}
	}
	if n, b := s2.Usage("a"); n != 1 || b != 5 {
		t.Fatalf("usage after reopen = %d files %d bytes", n, b)
	}
}

// racyBlobs is a node's view of shared blobs where, once, another node
// acts right after this node read a file's metadata (between its read and
// its write).
type racyBlobs struct {
	*postgres.Store
	once  sync.Once
	other func()
}

func (r *racyBlobs) GetBlob(ctx context.Context, id string) ([]byte, []byte, error) {
	meta, body, err := r.Store.GetBlob(ctx, id)
	r.once.Do(r.other)
	return meta, body, err
}

// TestClaimAndSweepAcrossNodes: two nodes share one database's files and
// both sweep. A file claimed on node B between node A's sweep reading it
// as pending and deleting it stays (an event references it); a file swept
// on node B between node A's claim reading it and writing the claim is
// not found by the claim, never claimed silently while gone.
func TestClaimAndSweepAcrossNodes(t *testing.T) {
	url := pgtest.URL(t)
	pg, err := postgres.Open(t.Context(), url, postgres.Options{Schema: pgtest.Schema(t, url)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pg.Close() })
	ctx := context.Background()
	grace := Limits{Grace: time.Hour}
	later := time.Now().Add(2 * time.Hour)
	b := OpenBlobs(pg, 1024)
	b.SetLimits(grace)
	node := func(other func()) *Store {
		s := OpenBlobs(&racyBlobs{Store: pg, other: other}, 1024)
		s.SetLimits(grace)
		return s
	}
	put := func() File {
		f, err := b.PutPending(ctx, "v", "f.txt", "text/plain", strings.NewReader("body"))
		if err != nil {
			t.Fatal(err)
		}
		return f
	}

	f := put()
	a := node(func() {
		if _, err := b.Claim(ctx, f.ID); err != nil {
			t.Errorf("claim on b: %v", err)
		}
	})
	if n, err := a.Sweep(ctx, later); err != nil || n != 0 {
		t.Fatalf("a swept %d (%v), want 0: b claimed the file meanwhile", n, err)
	}
	if _, fh, err := b.Get(ctx, f.ID); err != nil {
		t.Fatalf("a file claimed on b while a swept is gone: %v", err)
	} else {
		fh.Close()
	}

	g := put()
	a = node(func() {
		if n, err := b.Sweep(ctx, later); err != nil || n != 1 {
			t.Errorf("b swept %d (%v), want 1", n, err)
		}
	})
	if _, err := a.Claim(ctx, g.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("claim of a file b swept meanwhile: %v, want ErrNotFound", err)
	}
}
