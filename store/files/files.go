// Package files keeps uploaded files: on disk beside the data file (one
// node on bbolt), or in the database (several nodes on PostgreSQL, where
// every node must serve every file; see Blobs). Each file gets an
// unguessable id (the id in its URL is the capability to read it), and is
// durable, with its metadata, before Put returns: an upload is acknowledged
// only once it is stored, like every other write.
package files

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"chatgate/core/model"
	"chatgate/store"
)

var (
	// ErrNotFound: no file with that id.
	ErrNotFound = errors.New("files: not found")
	// ErrTooLarge: the upload is over the size limit.
	ErrTooLarge = errors.New("files: too large")
	// ErrQuota: the owner's files would exceed Limits.OwnerBytes or
	// Limits.OwnerFiles.
	ErrQuota = errors.New("files: quota exceeded")
)

// File is a stored file's metadata.
type File struct {
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	ContentType string    `json:"content_type"`
	Size        int64     `json:"size"`
	CreatedAt   time.Time `json:"created_at"`
	// Owner is who uploaded it (a visitor id, or "agent:<id>"); quotas
	// count per owner and customers may send only their own files.
	Owner string `json:"owner,omitempty"`
	// Pending: uploaded, not yet referenced by any event (Claim clears
	// it). Pending files older than Limits.Grace are removed by Sweep.
	// Files stored before this field existed are never pending.
	Pending bool `json:"pending,omitempty"`
}

// Limits bound what one owner may keep (issue 16, Medium 6). Zero values
// mean no limit (and no sweep for Grace).
type Limits struct {
	// OwnerBytes and OwnerFiles cap one owner's stored files.
	OwnerBytes int64
	OwnerFiles int
	// Grace is how long an uploaded file may stay unreferenced before
	// Sweep removes it.
	Grace time.Duration
}

// Blobs keeps whole files in a database (store/postgres implements it).
// Bodies are bounded by the store's MaxSize, so they are passed in memory.
type Blobs interface {
	// PutBlob stores a new file durably under id.
	PutBlob(ctx context.Context, id string, meta, body []byte) error
	// GetBlob returns a file's metadata (as given to PutBlob) and body;
	// ErrNotFound or store.ErrNotFound (wrapped or not) when there is none.
	GetBlob(ctx context.Context, id string) (meta, body []byte, err error)
}

// BlobKeeper is what a Blobs needs for quotas, Claim and Sweep across
// nodes: its files' metadata, metadata updates and deletion. A Blobs
// without it gets quotas counted by this node since it started, and no
// sweep (Claim is then a no-op).
//
// Updates and deletions are conditional on the metadata the caller read:
// every node sweeps, and another node may claim a file between this
// node's read and its delete (or sweep it between a claim's read and its
// write); a plain delete or write would then lose a file an event
// references. This node's mutex cannot order other nodes.
type BlobKeeper interface {
	// EachBlobMeta calls fn with every file's metadata.
	EachBlobMeta(ctx context.Context, fn func(meta []byte)) error
	// SwapBlobMeta replaces a file's metadata if it is still old, and
	// reports whether it did (false: changed or removed meanwhile).
	SwapBlobMeta(ctx context.Context, id string, old, meta []byte) (bool, error)
	// DeleteBlobIf removes a file if its metadata is still old, and
	// reports whether it did.
	DeleteBlobIf(ctx context.Context, id string, old []byte) (bool, error)
}

// Store is a directory of files, or a database's blobs.
type Store struct {
	dir     string
	blobs   Blobs
	maxSize int64
	limits  Limits

	mu    sync.Mutex
	usage map[string]ownerUsage // by owner, of the files stored
}

type ownerUsage struct {
	files int
	bytes int64
}

// ReadSeekCloser is a stored file's content.
type ReadSeekCloser interface {
	io.ReadSeekCloser
}

var idRe = regexp.MustCompile(`^[0-9a-f]{32}$`)

// Open uses (creating it) dir; files over maxSize bytes are refused.
func Open(dir string, maxSize int64) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("files dir: %w", err)
	}
	s := &Store{dir: dir, maxSize: maxSize, usage: map[string]ownerUsage{}}
	if err := s.countUsage(context.Background()); err != nil {
		return nil, err
	}
	return s, nil
}

// OpenBlobs keeps files in b; files over maxSize bytes are refused.
func OpenBlobs(b Blobs, maxSize int64) *Store {
	s := &Store{blobs: b, maxSize: maxSize, usage: map[string]ownerUsage{}}
	_ = s.countUsage(context.Background()) // best effort: a database not reachable yet counts from zero
	return s
}

// countUsage fills the per-owner usage from the stored files.
func (s *Store) countUsage(ctx context.Context) error {
	return s.each(ctx, func(f File) {
		u := s.usage[f.Owner]
		u.files++
		u.bytes += f.Size
		s.usage[f.Owner] = u
	})
}

// SetLimits sets the per-owner quotas and the sweep's grace period; call
// it before serving.
func (s *Store) SetLimits(l Limits) { s.limits = l }

// Limits returns the limits set.
func (s *Store) Limits() Limits { return s.limits }

// each calls fn with every stored file's metadata (none for a Blobs that
// is not a BlobKeeper).
func (s *Store) each(ctx context.Context, fn func(File)) error {
	if s.blobs != nil {
		k, ok := s.blobs.(BlobKeeper)
		if !ok {
			return nil
		}
		return k.EachBlobMeta(ctx, func(meta []byte) {
			var f File
			if json.Unmarshal(meta, &f) == nil {
				fn(f)
			}
		})
	}
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return fmt.Errorf("files: %w", err)
	}
	for _, e := range ents {
		id, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok || !idRe.MatchString(id) {
			continue
		}
		f, err := s.diskMeta(id)
		if err != nil {
			continue // a file half-removed, or not ours
		}
		fn(f)
	}
	return nil
}

// MaxSize is the largest file accepted.
func (s *Store) MaxSize() int64 { return s.maxSize }

// Put stores r's content. An empty contentType is sniffed from the content.
// The file has no owner and is not pending (never swept).
func (s *Store) Put(ctx context.Context, name, contentType string, r io.Reader) (File, error) {
	return s.put(ctx, "", false, name, contentType, r)
}

// PutPending stores r's content for owner, counted against the owner's
// quota (ErrQuota beyond it), and pending until Claim: an upload no event
// references is removed by Sweep after Limits.Grace.
func (s *Store) PutPending(ctx context.Context, owner, name, contentType string, r io.Reader) (File, error) {
	return s.put(ctx, owner, true, name, contentType, r)
}

func (s *Store) put(ctx context.Context, owner string, pending bool, name, contentType string, r io.Reader) (File, error) {
	id, err := model.Secret(16)
	if err != nil {
		return File{}, err
	}
	if s.blobs != nil {
		return s.putBlob(ctx, id, owner, pending, name, contentType, r)
	}
	tmp, err := os.CreateTemp(s.dir, ".upload-*")
	if err != nil {
		return File{}, fmt.Errorf("files: %w", err)
	}
	defer os.Remove(tmp.Name()) // no-op once renamed
	defer tmp.Close()
	head := make([]byte, 512)
	n, _ := io.ReadFull(r, head)
	head = head[:n]
	written, err := io.Copy(tmp, io.LimitReader(io.MultiReader(strings.NewReader(string(head)), r), s.maxSize+1))
	if err != nil {
		return File{}, fmt.Errorf("files: write: %w", err)
	}
	if written > s.maxSize {
		return File{}, ErrTooLarge
	}
	if !s.reserve(owner, written) {
		return File{}, ErrQuota
	}
	committed := false
	defer func() {
		if !committed {
			s.release(owner, written)
		}
	}()
	if ctx.Err() != nil {
		return File{}, ctx.Err()
	}
	if err := tmp.Sync(); err != nil {
		return File{}, fmt.Errorf("files: sync: %w", err)
	}
	if contentType == "" || contentType == "application/octet-stream" {
		contentType = http.DetectContentType(head)
	}
	f := File{ID: id, Name: cleanName(name), ContentType: contentType, Size: written, CreatedAt: time.Now().UTC(),
		Owner: owner, Pending: pending}
	meta, err := json.Marshal(f)
	if err != nil {
		return File{}, err
	}
	if err := writeSynced(filepath.Join(s.dir, id+".json"), meta); err != nil {
		return File{}, err
	}
	if err := os.Rename(tmp.Name(), filepath.Join(s.dir, id)); err != nil {
		return File{}, fmt.Errorf("files: %w", err)
	}
	if err := syncDir(s.dir); err != nil {
		return File{}, err
	}
	committed = true
	return f, nil
}

func (s *Store) putBlob(ctx context.Context, id, owner string, pending bool, name, contentType string, r io.Reader) (File, error) {
	body, err := io.ReadAll(io.LimitReader(r, s.maxSize+1))
	if err != nil {
		return File{}, fmt.Errorf("files: read: %w", err)
	}
	if int64(len(body)) > s.maxSize {
		return File{}, ErrTooLarge
	}
	if !s.reserve(owner, int64(len(body))) {
		return File{}, ErrQuota
	}
	if contentType == "" || contentType == "application/octet-stream" {
		contentType = http.DetectContentType(body[:min(len(body), 512)])
	}
	f := File{ID: id, Name: cleanName(name), ContentType: contentType, Size: int64(len(body)), CreatedAt: time.Now().UTC(),
		Owner: owner, Pending: pending}
	meta, err := json.Marshal(f)
	if err == nil {
		err = s.blobs.PutBlob(ctx, id, meta, body)
	}
	if err != nil {
		s.release(owner, f.Size)
		return File{}, fmt.Errorf("files: %w", err)
	}
	return f, nil
}

// reserve counts a new file of n bytes against owner's quota, or reports
// false when it would not fit. The owner "" has no quota.
func (s *Store) reserve(owner string, n int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.usage[owner]
	if owner != "" && (s.limits.OwnerBytes > 0 && u.bytes+n > s.limits.OwnerBytes ||
		s.limits.OwnerFiles > 0 && u.files+1 > s.limits.OwnerFiles) {
		return false
	}
	u.files++
	u.bytes += n
	s.usage[owner] = u
	return true
}

func (s *Store) release(owner string, n int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.usage[owner]
	u.files--
	u.bytes -= n
	if u.files <= 0 {
		delete(s.usage, owner)
		return
	}
	s.usage[owner] = u
}

// Usage is what owner keeps: files and bytes.
func (s *Store) Usage(owner string) (files int, bytes int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.usage[owner]
	return u.files, u.bytes
}

// meta reads a file's metadata.
func (s *Store) meta(ctx context.Context, id string) (File, error) {
	if s.blobs == nil {
		return s.diskMeta(id)
	}
	f, _, err := s.blobMeta(ctx, id)
	return f, err
}

// blobMeta reads a stored file's metadata, decoded and as stored (for a
// conditional update).
func (s *Store) blobMeta(ctx context.Context, id string) (File, []byte, error) {
	meta, _, err := s.blobs.GetBlob(ctx, id)
	if errors.Is(err, ErrNotFound) || errors.Is(err, store.ErrNotFound) {
		return File{}, nil, ErrNotFound
	}
	if err != nil {
		return File{}, nil, fmt.Errorf("files: %w", err)
	}
	var f File
	if err := json.Unmarshal(meta, &f); err != nil {
		return File{}, nil, fmt.Errorf("files: metadata of %s: %w", id, err)
	}
	return f, meta, nil
}

func (s *Store) diskMeta(id string) (File, error) {
	b, err := os.ReadFile(filepath.Join(s.dir, id+".json"))
	if errors.Is(err, os.ErrNotExist) {
		return File{}, ErrNotFound
	}
	if err != nil {
		return File{}, fmt.Errorf("files: %w", err)
	}
	var f File
	if err := json.Unmarshal(b, &f); err != nil {
		return File{}, fmt.Errorf("files: metadata of %s: %w", id, err)
	}
	return f, nil
}

// Claim marks a file as referenced by an event, so that Sweep keeps it.
// Callers claim before committing the event (a claim whose event then
// fails only keeps a file longer). It returns the file's metadata.
func (s *Store) Claim(ctx context.Context, id string) (File, error) {
	if !idRe.MatchString(id) {
		return File{}, ErrNotFound
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.blobs != nil {
		return s.claimBlob(ctx, id)
	}
	f, err := s.diskMeta(id)
	if err != nil || !f.Pending {
		return f, err
	}
	f.Pending = false
	b, err := json.Marshal(f)
	if err != nil {
		return File{}, err
	}
	if err := writeSynced(filepath.Join(s.dir, id+".json"), b); err != nil {
		return File{}, err
	}
	return f, nil
}

// claimBlob is Claim on a Blobs: the write is conditional on the metadata
// read (another node may sweep or claim the file in between), read again
// when it changed. A file swept meanwhile is ErrNotFound, never claimed
// silently.
func (s *Store) claimBlob(ctx context.Context, id string) (File, error) {
	for attempt := 0; ; attempt++ {
		f, old, err := s.blobMeta(ctx, id)
		if err != nil || !f.Pending {
			return f, err
		}
		f.Pending = false
		k, ok := s.blobs.(BlobKeeper)
		if !ok {
			return f, nil
		}
		b, err := json.Marshal(f)
		if err != nil {
			return File{}, err
		}
		swapped, err := k.SwapBlobMeta(ctx, id, old, b)
		if err != nil {
			return File{}, fmt.Errorf("files: %w", err)
		}
		if swapped {
			return f, nil
		}
		if attempt == 3 {
			return File{}, fmt.Errorf("files: claim %s: its metadata keeps changing", id)
		}
	}
}

// Sweep removes the pending files older than Limits.Grace (none when Grace
// is 0) and returns how many it removed. On disk a file is removed body
// first, then metadata, so that a crash leaves at worst metadata without a
// body, which Get answers as not found and a later sweep removes.
func (s *Store) Sweep(ctx context.Context, now time.Time) (int, error) {
	if s.limits.Grace <= 0 {
		return 0, nil
	}
	var old []File
	err := s.each(ctx, func(f File) {
		if f.Pending && now.Sub(f.CreatedAt) >= s.limits.Grace {
			old = append(old, f)
		}
	})
	if err != nil {
		return 0, err
	}
	n := 0
	for _, f := range old {
		if ctx.Err() != nil {
			return n, ctx.Err()
		}
		removed, err := s.remove(ctx, f.ID)
		if err != nil {
			return n, err
		}
		if removed {
			s.release(f.Owner, f.Size)
			n++
		}
	}
	return n, nil
}

// remove deletes a file still pending (not claimed meanwhile).
func (s *Store) remove(ctx context.Context, id string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.blobs != nil {
		k, ok := s.blobs.(BlobKeeper)
		if !ok {
			return false, nil
		}
		cur, old, err := s.blobMeta(ctx, id)
		if err != nil || !cur.Pending {
			return false, nil
		}
		// Only if still pending as read: claimed meanwhile on another
		// node, it stays.
		removed, err := k.DeleteBlobIf(ctx, id, old)
		if err != nil {
			return false, fmt.Errorf("files: sweep: %w", err)
		}
		return removed, nil
	}
	cur, err := s.diskMeta(id)
	if err != nil || !cur.Pending {
		return false, nil
	}
	for _, p := range []string{filepath.Join(s.dir, id), filepath.Join(s.dir, id+".json")} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return false, fmt.Errorf("files: sweep: %w", err)
		}
	}
	return true, nil
}

type nopCloser struct{ *bytes.Reader }

func (nopCloser) Close() error { return nil }

// Get opens a stored file. The caller closes it.
func (s *Store) Get(ctx context.Context, id string) (File, ReadSeekCloser, error) {
	if !idRe.MatchString(id) {
		return File{}, nil, ErrNotFound
	}
	if s.blobs != nil {
		meta, body, err := s.blobs.GetBlob(ctx, id)
		if errors.Is(err, ErrNotFound) || errors.Is(err, store.ErrNotFound) {
			return File{}, nil, ErrNotFound
		}
		if err != nil {
			return File{}, nil, fmt.Errorf("files: %w", err)
		}
		var f File
		if err := json.Unmarshal(meta, &f); err != nil {
			return File{}, nil, fmt.Errorf("files: metadata of %s: %w", id, err)
		}
		return f, nopCloser{bytes.NewReader(body)}, nil
	}
	b, err := os.ReadFile(filepath.Join(s.dir, id+".json"))
	if errors.Is(err, os.ErrNotExist) {
		return File{}, nil, ErrNotFound
	}
	if err != nil {
		return File{}, nil, fmt.Errorf("files: %w", err)
	}
	var f File
	if err := json.Unmarshal(b, &f); err != nil {
		return File{}, nil, fmt.Errorf("files: metadata of %s: %w", id, err)
	}
	fh, err := os.Open(filepath.Join(s.dir, id))
	if errors.Is(err, os.ErrNotExist) {
		return File{}, nil, ErrNotFound
	}
	if err != nil {
		return File{}, nil, fmt.Errorf("files: %w", err)
	}
	return f, fh, nil
}

// cleanName keeps a display name safe to echo: base name only, no control
// characters, at most 255 bytes.
func cleanName(name string) string {
	name = filepath.Base(strings.ReplaceAll(name, "\\", "/"))
	name = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, name)
	for len(name) > 255 {
		_, size := utf8.DecodeLastRuneInString(name)
		name = name[:len(name)-size]
	}
	if name == "" || name == "." || name == "/" {
		name = "file"
	}
	return name
}

func writeSynced(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("files: %w", err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("files: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("files: %w", err)
	}
	return f.Close()
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("files: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("files: sync dir: %w", err)
	}
	return nil
}

// Restore stores a file under its existing id and metadata (an import),
// reading its body from r, which must have the given SHA-256 (hex) and
// f.Size bytes; otherwise nothing is stored. It reports false, writing
// nothing, when the id is already stored.
func (s *Store) Restore(ctx context.Context, f File, sha string, r io.Reader) (bool, error) {
	if !idRe.MatchString(f.ID) {
		return false, fmt.Errorf("files: bad id %q", f.ID)
	}
	if f.Size < 0 || f.Size > s.maxSize {
		return false, fmt.Errorf("files: %s: %w", f.ID, ErrTooLarge)
	}
	f.Name = cleanName(f.Name)
	// An exported file is one an event shows: it is claimed, never swept.
	f.Pending = false
	meta, err := json.Marshal(f)
	if err != nil {
		return false, err
	}
	check := func(n int64, h []byte) error {
		if n != f.Size || hex.EncodeToString(h) != sha {
			return fmt.Errorf("files: body of %s does not match its size or hash", f.ID)
		}
		return nil
	}
	if s.blobs != nil {
		if _, _, err := s.blobs.GetBlob(ctx, f.ID); err == nil {
			return false, nil
		} else if !errors.Is(err, ErrNotFound) && !errors.Is(err, store.ErrNotFound) {
			return false, fmt.Errorf("files: %w", err)
		}
		body, err := io.ReadAll(io.LimitReader(r, f.Size+1))
		if err != nil {
			return false, fmt.Errorf("files: read %s: %w", f.ID, err)
		}
		h := sha256.Sum256(body)
		if err := check(int64(len(body)), h[:]); err != nil {
			return false, err
		}
		if err := s.blobs.PutBlob(ctx, f.ID, meta, body); err != nil {
			return false, fmt.Errorf("files: %w", err)
		}
		return true, nil
	}
	if _, err := os.Stat(filepath.Join(s.dir, f.ID)); err == nil {
		return false, nil
	}
	tmp, err := os.CreateTemp(s.dir, ".restore-*")
	if err != nil {
		return false, fmt.Errorf("files: %w", err)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), io.LimitReader(r, f.Size+1))
	if err != nil {
		return false, fmt.Errorf("files: write %s: %w", f.ID, err)
	}
	if err := check(n, h.Sum(nil)); err != nil {
		return false, err
	}
	if err := ctx.Err(); err != nil {
		return false, err
	}
	if err := tmp.Sync(); err != nil {
		return false, fmt.Errorf("files: sync: %w", err)
	}
	if err := writeSynced(filepath.Join(s.dir, f.ID+".json"), meta); err != nil {
		return false, err
	}
	if err := os.Rename(tmp.Name(), filepath.Join(s.dir, f.ID)); err != nil {
		return false, fmt.Errorf("files: %w", err)
	}
	return true, syncDir(s.dir)
}

// Hash returns the SHA-256 (hex) of a stored file's body.
func (s *Store) Hash(ctx context.Context, id string) (File, string, error) {
	f, fh, err := s.Get(ctx, id)
	if err != nil {
		return File{}, "", err
	}
	defer fh.Close()
	h := sha256.New()
	if _, err := io.Copy(h, fh); err != nil {
		return File{}, "", fmt.Errorf("files: read %s: %w", id, err)
	}
	return f, hex.EncodeToString(h.Sum(nil)), nil
}
