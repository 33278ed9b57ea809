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
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
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
)

// File is a stored file's metadata.
type File struct {
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	ContentType string    `json:"content_type"`
	Size        int64     `json:"size"`
	CreatedAt   time.Time `json:"created_at"`
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

// Store is a directory of files, or a database's blobs.
type Store struct {
	dir     string
	blobs   Blobs
	maxSize int64
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
	return &Store{dir: dir, maxSize: maxSize}, nil
}

// OpenBlobs keeps files in b; files over maxSize bytes are refused.
func OpenBlobs(b Blobs, maxSize int64) *Store {
	return &Store{blobs: b, maxSize: maxSize}
}

// MaxSize is the largest file accepted.
func (s *Store) MaxSize() int64 { return s.maxSize }

// Put stores r's content. An empty contentType is sniffed from the content.
func (s *Store) Put(ctx context.Context, name, contentType string, r io.Reader) (File, error) {
	id, err := model.Secret(16)
	if err != nil {
		return File{}, err
	}
	if s.blobs != nil {
		return s.putBlob(ctx, id, name, contentType, r)
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
	if ctx.Err() != nil {
		return File{}, ctx.Err()
	}
	if err := tmp.Sync(); err != nil {
		return File{}, fmt.Errorf("files: sync: %w", err)
	}
	if contentType == "" || contentType == "application/octet-stream" {
		contentType = http.DetectContentType(head)
	}
	f := File{ID: id, Name: cleanName(name), ContentType: contentType, Size: written, CreatedAt: time.Now().UTC()}
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
	return f, nil
}

func (s *Store) putBlob(ctx context.Context, id, name, contentType string, r io.Reader) (File, error) {
	body, err := io.ReadAll(io.LimitReader(r, s.maxSize+1))
	if err != nil {
		return File{}, fmt.Errorf("files: read: %w", err)
	}
	if int64(len(body)) > s.maxSize {
		return File{}, ErrTooLarge
	}
	if contentType == "" || contentType == "application/octet-stream" {
		contentType = http.DetectContentType(body[:min(len(body), 512)])
	}
	f := File{ID: id, Name: cleanName(name), ContentType: contentType, Size: int64(len(body)), CreatedAt: time.Now().UTC()}
	meta, err := json.Marshal(f)
	if err != nil {
		return File{}, err
	}
	if err := s.blobs.PutBlob(ctx, id, meta, body); err != nil {
		return File{}, fmt.Errorf("files: %w", err)
	}
	return f, nil
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

// IDFromURL returns the id of a stored file from a URL this gateway handed
// out for it (absolute or a path: .../file-upload/<id>/<name>); ok is false
// for other URLs.
func IDFromURL(raw string) (id string, ok bool) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", false
	}
	rest, found := strings.CutPrefix(u.Path, URLPrefix)
	if !found {
		return "", false
	}
	id, _, found = strings.Cut(rest, "/")
	if !found || !idRe.MatchString(id) {
		return "", false
	}
	return id, true
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
