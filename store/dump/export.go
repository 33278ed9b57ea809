package dump

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"chatgate/core/model"
	"chatgate/store"
	"chatgate/store/files"
)

// blobChunk is the body bytes per blob line (base64 makes the line a third
// longer); it bounds the memory a file costs on both sides.
const blobChunk = 256 << 10

// ExportOptions tune Export.
type ExportOptions struct {
	Filters Filters
	// Source describes the store in the header.
	Source Source
	// FilesDir, if set, receives file bodies (one file per SHA-256)
	// instead of blob lines in the stream.
	FilesDir string
	// Progress, if set, is told of every record written.
	Progress func(n int)
	// Now stamps the header (default time.Now).
	Now func() time.Time
}

// ExportSummary counts what Export wrote, per record type.
type ExportSummary struct {
	Counts  map[string]int `json:"counts"`
	Seconds float64        `json:"seconds"`
	// EventsPerSecond is the export rate of events.
	EventsPerSecond float64 `json:"events_per_second"`
}

// exporter writes one export.
type exporter struct {
	ctx    context.Context
	r      store.Reader
	fs     *files.Store
	o      ExportOptions
	w      *bufio.Writer
	enc    *json.Encoder
	counts map[string]int
	// fileIDs and hashes seen so far: a file, and a body, is written
	// once. They grow with the number of files, not of events.
	fileIDs map[string]bool
	hashes  map[string]bool
}

// Export writes a consistent snapshot of st (and the bodies of the files
// its events reference, from fs, which may be nil) to w as NDJSON.
func Export(ctx context.Context, st store.Store, fs *files.Store, w io.Writer, o ExportOptions) (ExportSummary, error) {
	start := time.Now()
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Source.Kind == "" {
		o.Source.Kind = "chatgate"
	}
	bw := bufio.NewWriterSize(w, 1<<20)
	x := &exporter{ctx: ctx, fs: fs, o: o, w: bw, enc: json.NewEncoder(bw), counts: map[string]int{},
		fileIDs: map[string]bool{}, hashes: map[string]bool{}}
	x.enc.SetEscapeHTML(false)
	if o.FilesDir != "" {
		if err := os.MkdirAll(o.FilesDir, 0o700); err != nil {
			return ExportSummary{}, fmt.Errorf("files dir: %w", err)
		}
	}
	err := st.Snapshot(ctx, func(r store.Reader) error {
		x.r = r
		return x.run()
	})
	if err == nil {
		err = bw.Flush()
	}
	sum := ExportSummary{Counts: x.counts, Seconds: time.Since(start).Seconds()}
	if sum.Seconds > 0 {
		sum.EventsPerSecond = float64(x.counts[store.RecEvent]) / sum.Seconds
	}
	return sum, err
}

func (x *exporter) line(l *Line) error {
	if err := x.enc.Encode(l); err != nil {
		return fmt.Errorf("write %s: %w", l.Type, err)
	}
	if l.Type != RecBlob {
		x.counts[l.Type]++
		if x.o.Progress != nil {
			x.o.Progress(1)
		}
	}
	return nil
}

func (x *exporter) run() error {
	f := &x.o.Filters
	files := "inline"
	if x.o.FilesDir != "" {
		files = "dir"
	}
	h := Header{Type: RecHeader, Format: Format, Version: Version, CreatedAt: x.o.Now().UTC(), Source: x.o.Source, Files: files}
	if !f.Empty() {
		h.Filters = f
	}
	if err := x.enc.Encode(h); err != nil {
		return fmt.Errorf("write header: %w", err)
	}
	if err := x.r.Meta(func(k string, v []byte) error {
		return x.line(&Line{Type: store.RecMeta, Key: k, Value: v})
	}); err != nil {
		return err
	}
	if err := x.r.Visitors(func(v model.Visitor) error {
		if ok, err := x.visitorSelected(v.ID); err != nil || !ok {
			return err
		}
		return x.line(&Line{Type: store.RecVisitor, Visitor: &v})
	}); err != nil {
		return err
	}
	if err := x.r.Conversations(func(c model.Conversation) error {
		if !f.Match(&c) {
			return nil
		}
		if err := x.line(&Line{Type: store.RecConversation, Conversation: &c}); err != nil {
			return err
		}
		return x.r.Events(c.ID, func(e model.Event) error {
			if e.File != nil {
				if err := x.file(e.File.URL); err != nil {
					return err
				}
			}
			return x.line(&Line{Type: store.RecEvent, Event: &e})
		})
	}); err != nil {
		return err
	}
	if err := x.r.Mappings(func(m store.Mapping, latest bool) error {
		if ok, err := x.coreSelected(m.Core); err != nil || !ok {
			return err
		}
		return x.line(&Line{Type: store.RecMapping, Mapping: &MappingRecord{System: m.System, Tenant: m.Tenant, Kind: m.Kind,
			Foreign: m.Foreign, Core: m.Core, Latest: latest}})
	}); err != nil {
		return err
	}
	if err := x.r.Idems(func(id store.Idem) error {
		if ok, err := x.convSelected(id.Conv); err != nil || !ok {
			return err
		}
		return x.line(&Line{Type: store.RecIdem, Idem: &IdemRecord{System: id.System, Key: id.Key, Conv: id.Conv, Seq: id.Seq}})
	}); err != nil {
		return err
	}
	if err := x.r.Outbox(func(row store.OutboxRow) error {
		if ok, err := x.convSelected(row.Conv); err != nil || !ok {
			return err
		}
		return x.line(&Line{Type: store.RecOutbox, Outbox: &row})
	}); err != nil {
		return err
	}
	counts := make(map[string]int, len(x.counts))
	for k, v := range x.counts {
		counts[k] = v
	}
	if err := x.enc.Encode(&Line{Type: RecEnd, Counts: counts}); err != nil {
		return fmt.Errorf("write end: %w", err)
	}
	return x.ctx.Err()
}

// convSelected reports whether conversation id passes the filters; a
// record of a conversation that no longer exists goes with an unfiltered
// export only.
func (x *exporter) convSelected(id model.ConvID) (bool, error) {
	f := &x.o.Filters
	if f.Empty() {
		return true, nil
	}
	c, err := x.r.Conversation(id)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return f.Match(&c), nil
}

// visitorSelected reports whether a visitor has a selected conversation.
func (x *exporter) visitorSelected(id model.VisitorID) (bool, error) {
	if x.o.Filters.Empty() {
		return true, nil
	}
	convs, err := x.r.VisitorConversations(id)
	if err != nil {
		return false, err
	}
	for _, c := range convs {
		if ok, err := x.convSelected(c); err != nil || ok {
			return ok, err
		}
	}
	return false, nil
}

// coreSelected reports whether a mapping's core id is a selected visitor
// or conversation (with filters, mappings of anything else are left out).
func (x *exporter) coreSelected(core string) (bool, error) {
	if x.o.Filters.Empty() {
		return true, nil
	}
	if ok, err := x.convSelected(model.ConvID(core)); err != nil || ok {
		return ok, err
	}
	if _, err := x.r.Visitor(model.VisitorID(core)); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return false, nil
		}
		return false, err
	}
	return x.visitorSelected(model.VisitorID(core))
}

// file writes the record (and, the first time its content is seen, the
// body) of the stored file behind url, if it is one of ours.
func (x *exporter) file(url string) error {
	id, ok := files.IDFromURL(url)
	if !ok || x.fs == nil || x.fileIDs[id] {
		return nil
	}
	x.fileIDs[id] = true
	meta, sum, err := x.fs.Hash(x.ctx, id)
	if errors.Is(err, files.ErrNotFound) {
		return nil // the event keeps its URL; there is no body to move
	}
	if err != nil {
		return err
	}
	if err := x.line(&Line{Type: RecFile, File: &FileRecord{File: meta, SHA256: sum}}); err != nil {
		return err
	}
	if x.hashes[sum] {
		return nil
	}
	x.hashes[sum] = true
	_, fh, err := x.fs.Get(x.ctx, id)
	if err != nil {
		return err
	}
	defer fh.Close()
	if x.o.FilesDir != "" {
		return writeBody(filepath.Join(x.o.FilesDir, sum), fh)
	}
	buf := make([]byte, blobChunk)
	for {
		n, err := io.ReadFull(fh, buf)
		last := errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
		if err != nil && !last {
			return fmt.Errorf("read file %s: %w", id, err)
		}
		if err := x.line(&Line{Type: RecBlob, SHA256: sum, Data: buf[:n], EOF: last}); err != nil {
			return err
		}
		if last {
			return nil
		}
	}
}

// writeBody copies r to path unless path exists (bodies are named by
// their hash, so an existing one is the same).
func writeBody(path string, r io.Reader) error {
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".body-*")
	if err != nil {
		return fmt.Errorf("files dir: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := io.Copy(tmp, r); err != nil {
		tmp.Close()
		return fmt.Errorf("files dir: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("files dir: %w", err)
	}
	return os.Rename(tmp.Name(), path)
}
