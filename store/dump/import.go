package dump

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	// goccy/go-json decodes the records: a drop-in for encoding/json's
	// Unmarshal (same struct tags, Unmarshaler methods, unknown fields
	// ignored) that decodes an export about twice as fast, and the import
	// is mostly decoding (docs/migration.md, "Measured"). Already in the
	// module graph through gin.
	json "github.com/goccy/go-json"

	"chatgate/core/model"
	"chatgate/store"
	"chatgate/store/files"
)

// MaxLine bounds one NDJSON line (a record or a blob chunk); a longer one
// is refused rather than read into memory.
const MaxLine = 16 << 20

// maxFailures is how many failure reasons a summary keeps (all are
// counted).
const maxFailures = 100

// ImportOptions tune Import.
type ImportOptions struct {
	// FilesDir holds the bodies of an export written with files "dir".
	FilesDir string
	// BatchSize is the records per commit (default 5,000: measured on 1M
	// events against 2,000, 10,000, 20,000 and 100,000, it was the fastest;
	// smaller batches commit while the next is decoded and hold less).
	BatchSize int
	// DryRun counts what would change and writes nothing.
	DryRun bool
	// Progress, if set, is told of every record read.
	Progress func(n int)
	// ForgetIdleBefore, if set, deletes after a complete import the
	// anonymous visitors idle since before it (store.Store
	// .ForgetIdleVisitors): an export made before the gateway expired
	// them must not bring them (and their tokens) back.
	ForgetIdleBefore time.Time
}

// Failure is a record that was not imported, and why.
type Failure struct {
	Line   int    `json:"line"`
	Type   string `json:"type,omitempty"`
	Reason string `json:"reason"`
}

// ImportSummary says what Import did.
type ImportSummary struct {
	Header Header `json:"header"`
	// Counts per record type: written, same (skipped as already present),
	// kept (present with other content: the store's kept), replaced
	// (meta only).
	Counts store.RestoreResult `json:"counts"`
	// Records read, blobs not counted.
	Records int `json:"records"`
	// Failed counts the records not imported; Failures lists the first
	// ones with their reasons.
	Failed   int       `json:"failed"`
	Failures []Failure `json:"failures,omitempty"`
	// Complete is true when the stream's end line was read (a cut stream
	// imports what it has, and says so).
	Complete bool `json:"complete"`
	DryRun   bool `json:"dry_run,omitempty"`
	// ExpiredVisitors counts the idle anonymous visitors deleted after
	// the import (ImportOptions.ForgetIdleBefore).
	ExpiredVisitors int     `json:"expired_visitors,omitempty"`
	Seconds         float64 `json:"seconds"`
	EventsPerSecond float64 `json:"events_per_second"`
}

func (s *ImportSummary) fail(line int, typ string, err error) {
	s.Failed++
	if len(s.Failures) < maxFailures {
		s.Failures = append(s.Failures, Failure{Line: line, Type: typ, Reason: err.Error()})
	}
}

// importer reads one export.
type importer struct {
	ctx  context.Context
	st   store.Store
	fs   *files.Store
	o    ImportOptions
	sum  ImportSummary
	line int

	batch *store.Restore
	// conv is the conversation whose events are being read: its record
	// is committed with (or after) its last event, so that a
	// conversation in the store is never missing events of the stream.
	conv *model.Conversation

	// Commits run on their own goroutine while the next batch is parsed.
	work  chan *store.Restore
	free  chan *store.Restore
	done  chan struct{}
	mu    sync.Mutex
	err   error
	total store.RestoreResult

	// body is the file whose blob lines are being read, if any.
	body *bodyWriter
	// bodies maps a content hash to a stored file id with that body.
	bodies map[string]string
}

// Import reads an export from r into st (and fs, for file bodies; nil
// skips them) in batches of o.BatchSize records, each one atomic.
// Importing the same stream again changes nothing, and an import stopped
// at any point and run again completes without doubling anything.
func Import(ctx context.Context, st store.Store, fs *files.Store, r io.Reader, o ImportOptions) (ImportSummary, error) {
	start := time.Now()
	if o.BatchSize <= 0 {
		o.BatchSize = 5000
	}
	im := &importer{ctx: ctx, st: st, fs: fs, o: o, batch: &store.Restore{DryRun: o.DryRun},
		work: make(chan *store.Restore, 1), free: make(chan *store.Restore, 1), done: make(chan struct{}),
		total: store.RestoreResult{}, bodies: map[string]string{}}
	im.free <- &store.Restore{DryRun: o.DryRun}
	im.sum.DryRun = o.DryRun
	go im.committer()
	err := im.read(r)
	if im.body != nil {
		im.body.abort(errors.New("stream ended inside a file body"))
		im.body = nil
	}
	if err == nil {
		if im.sum.Complete {
			im.flushConv()
		} else if im.conv != nil {
			// The stream ends among a conversation's events: it may have
			// lost some. Its record waits for an import of the whole.
			im.sum.fail(im.line, store.RecConversation, fmt.Errorf("conversation %s: stream cut among its events", im.conv.ID))
			im.conv = nil
		}
		err = im.flush()
	}
	close(im.work)
	<-im.done
	if err == nil {
		err = im.commitErr()
	}
	if err == nil && im.sum.Complete && !o.DryRun && !o.ForgetIdleBefore.IsZero() {
		// Only after the whole stream: a visitor's conversations may
		// come in a later batch than the visitor.
		for {
			gone, ferr := st.ForgetIdleVisitors(ctx, o.ForgetIdleBefore, 1000)
			im.sum.ExpiredVisitors += len(gone)
			if ferr != nil {
				err = fmt.Errorf("expire idle anonymous visitors: %w", ferr)
			}
			if ferr != nil || len(gone) < 1000 {
				break
			}
		}
	}
	im.sum.Counts = im.total
	im.sum.Seconds = time.Since(start).Seconds()
	if im.sum.Seconds > 0 {
		c := im.total[store.RecEvent]
		im.sum.EventsPerSecond = float64(c.Written+c.Same+c.Kept) / im.sum.Seconds
	}
	return im.sum, err
}

func (im *importer) committer() {
	defer close(im.done)
	for b := range im.work {
		if im.commitErr() == nil {
			res, err := im.st.Restore(im.ctx, b)
			im.mu.Lock()
			if err != nil {
				im.err = fmt.Errorf("commit batch: %w", err)
			} else {
				im.total.Add(res)
			}
			im.mu.Unlock()
		}
		b.Reset()
		im.free <- b
	}
}

func (im *importer) commitErr() error {
	im.mu.Lock()
	defer im.mu.Unlock()
	return im.err
}

// flush hands the current batch to the committer and takes a free one.
func (im *importer) flush() error {
	if im.batch.Len() == 0 {
		return im.commitErr()
	}
	select {
	case im.work <- im.batch:
	case <-im.ctx.Done():
		return im.ctx.Err()
	}
	select {
	case im.batch = <-im.free:
	case <-im.ctx.Done():
		return im.ctx.Err()
	}
	return im.commitErr()
}

func (im *importer) flushConv() {
	if im.conv != nil {
		im.batch.Convs = append(im.batch.Convs, *im.conv)
		im.conv = nil
	}
}

// chunk is a run of lines read, and decoded as records, off the
// importer's goroutine: the reader copies lines into chunks, decoders
// (one per CPU) decode them, and the importer takes the chunks in order.
// Decoding is most of an import's work; on several cores it runs beside
// the batch being committed.
type chunk struct {
	first int      // the line number of raw[0]
	raw   [][]byte // the lines, without their newlines, in buf
	buf   []byte
	recs  []Line
	errs  []error
	// err ends the stream after the lines: io.EOF, or a read error.
	err  error
	done chan struct{}
}

// chunkLines and chunkBytes bound a chunk (a longer line makes a chunk
// of its own); chunksAhead bounds how many are read ahead of the importer.
const (
	chunkLines  = 512
	chunkBytes  = 1 << 20
	chunksAhead = 4
)

// readChunks reads r into chunks (taken from free when one is there), sent
// to jobs (for the decoders) and order (for the importer) until the stream
// ends or ctx is done.
func readChunks(ctx context.Context, r io.Reader, free <-chan *chunk, jobs, order chan<- *chunk) {
	defer close(order)
	defer close(jobs)
	br := bufio.NewReaderSize(r, 1<<20)
	var buf []byte
	n := 0
	for {
		var c *chunk
		select {
		case c = <-free:
			c.raw, c.buf, c.err = c.raw[:0], c.buf[:0], nil
		default:
			c = &chunk{buf: make([]byte, 0, chunkBytes)}
		}
		c.first, c.done = n+1, make(chan struct{})
		for len(c.raw) < chunkLines && len(c.buf) < chunkBytes {
			ln, err := readLine(br, &buf)
			if errors.Is(err, io.EOF) && len(ln) == 0 {
				c.err = io.EOF
				break
			}
			if err != nil && !errors.Is(err, io.EOF) {
				c.err = fmt.Errorf("line %d: %w", n+1, err)
				break
			}
			n++
			start := len(c.buf)
			c.buf = append(c.buf, ln...)
			c.raw = append(c.raw, c.buf[start:len(c.buf):len(c.buf)])
		}
		select {
		case jobs <- c:
		case <-ctx.Done():
			return
		}
		select {
		case order <- c:
		case <-ctx.Done():
			return
		}
		if c.err != nil {
			return
		}
	}
}

// decodeChunks decodes the chunks of jobs as records. goccy/go-json's
// Unmarshal copies its input, so nothing decoded points into a chunk's
// buffer and the buffer can be reused.
func decodeChunks(jobs <-chan *chunk) {
	for c := range jobs {
		n := len(c.raw)
		if cap(c.recs) < n {
			c.recs, c.errs = make([]Line, n), make([]error, n)
		}
		c.recs, c.errs = c.recs[:n], c.errs[:n]
		clear(c.recs)
		clear(c.errs)
		for i, ln := range c.raw {
			if c.first+i == 1 || len(bytes.TrimSpace(ln)) == 0 {
				continue // the header, or nothing
			}
			c.errs[i] = json.Unmarshal(ln, &c.recs[i])
		}
		close(c.done)
	}
}

func (im *importer) read(r io.Reader) error {
	ctx, cancel := context.WithCancel(im.ctx)
	defer cancel()
	jobs, order := make(chan *chunk, chunksAhead), make(chan *chunk, chunksAhead)
	free := make(chan *chunk, 2*chunksAhead+2)
	go readChunks(ctx, r, free, jobs, order)
	for range max(1, runtime.GOMAXPROCS(0)) {
		go decodeChunks(jobs)
	}
	for c := range order {
		select {
		case <-c.done:
		case <-ctx.Done():
			return ctx.Err()
		}
		for i, ln := range c.raw {
			im.line = c.first + i
			if len(bytes.TrimSpace(ln)) == 0 {
				continue
			}
			if im.line == 1 {
				if err := im.header(ln); err != nil {
					return err
				}
				continue
			}
			if im.sum.Complete {
				return fmt.Errorf("line %d: data after the end line", im.line)
			}
			if err := im.record(&c.recs[i], c.errs[i]); err != nil {
				return err
			}
			if im.batch.Len() >= im.o.BatchSize {
				if err := im.flush(); err != nil {
					return err
				}
			}
		}
		end := c.err
		select {
		case free <- c: // the batch holds copies of its records
		default:
		}
		if errors.Is(end, io.EOF) {
			if im.line == 0 {
				return errors.New("empty stream: no header")
			}
			return nil
		}
		if end != nil {
			return end
		}
	}
	return im.ctx.Err()
}

// readLine reads one line (without its newline) of at most MaxLine bytes.
func readLine(br *bufio.Reader, buf *[]byte) ([]byte, error) {
	ln, err := br.ReadSlice('\n')
	if err == nil || !errors.Is(err, bufio.ErrBufferFull) {
		return bytes.TrimSuffix(ln, []byte{'\n'}), err
	}
	*buf = append((*buf)[:0], ln...)
	for errors.Is(err, bufio.ErrBufferFull) && len(*buf) <= MaxLine {
		ln, err = br.ReadSlice('\n')
		*buf = append(*buf, ln...)
	}
	if len(*buf) > MaxLine+1 {
		return nil, fmt.Errorf("line longer than %d bytes", MaxLine)
	}
	return bytes.TrimSuffix(*buf, []byte{'\n'}), err
}

func (im *importer) header(ln []byte) error {
	var h Header
	if err := json.Unmarshal(ln, &h); err != nil || h.Type != RecHeader || h.Format != Format {
		return errors.New("line 1 is not a chatgate export header")
	}
	if h.Version < 1 || h.Version > Version {
		return fmt.Errorf("export format version %d; this build reads up to %d", h.Version, Version)
	}
	if h.Files == "dir" && im.fs != nil && im.o.FilesDir == "" {
		return errors.New("the export keeps file bodies in a directory: give it with --files-dir")
	}
	im.sum.Header = h
	return nil
}

// record handles one line after the header, decoded as l (or not, err).
func (im *importer) record(l *Line, err error) error {
	if err != nil {
		if im.body != nil {
			im.body.abort(err)
			im.body = nil
		}
		im.sum.fail(im.line, "", fmt.Errorf("not a record: %w", err))
		return nil
	}
	if l.Type == RecBlob {
		return im.blob(l)
	}
	if im.body != nil {
		// A body cut short: the file is not stored; its events keep their
		// URLs.
		im.body.abort(errors.New("file body cut short"))
		im.sum.fail(im.line, RecFile, fmt.Errorf("body of %s cut short", im.body.f.ID))
		im.body = nil
	}
	im.sum.Records++
	if im.o.Progress != nil {
		im.o.Progress(1)
	}
	// File records come among a conversation's events (before the first
	// event that shows them).
	if l.Type != RecFile && (l.Type != store.RecEvent || l.Event == nil || im.conv == nil || l.Event.Conv != im.conv.ID) {
		im.flushConv()
	}
	if err := im.add(l); err != nil {
		im.sum.fail(im.line, l.Type, err)
	}
	return nil
}

// add puts a valid record into the batch.
func (im *importer) add(l *Line) error {
	b := im.batch
	missing := missingError(l.Type)
	switch l.Type {
	case store.RecMeta:
		if l.Key == "" || l.Key == "schema" {
			return fmt.Errorf("meta key %q is reserved", l.Key)
		}
		b.Meta = append(b.Meta, store.MetaValue{Key: l.Key, Value: l.Value})
	case store.RecVisitor:
		if l.Visitor == nil || l.Visitor.ID == "" {
			return missing
		}
		b.Visitors = append(b.Visitors, *l.Visitor)
	case store.RecConversation:
		if l.Conversation == nil || l.Conversation.ID == "" || l.Conversation.Visitor == "" {
			return missing
		}
		im.conv = l.Conversation
	case store.RecEvent:
		e := l.Event
		if e == nil || e.Conv == "" || e.Seq == 0 {
			return missing
		}
		if !e.Kind.Valid() {
			return fmt.Errorf("event %s/%d has unknown kind %q", e.Conv, e.Seq, e.Kind)
		}
		b.Events = append(b.Events, *e)
	case store.RecMapping:
		m := l.Mapping
		if m == nil || m.System == "" || m.Kind == "" || m.Foreign == "" || m.Core == "" {
			return missing
		}
		b.Maps = append(b.Maps, store.RestoreMapping{Mapping: store.Mapping{MapKey: store.MapKey{System: m.System, Tenant: m.Tenant,
			Kind: m.Kind, Foreign: m.Foreign}, Core: m.Core}, Latest: m.Latest})
	case store.RecIdem:
		id := l.Idem
		if id == nil || id.System == "" || id.Key == "" || id.Conv == "" {
			return missing
		}
		b.Idems = append(b.Idems, store.Idem{System: id.System, Key: id.Key, Conv: id.Conv, Seq: id.Seq})
	case store.RecOutbox:
		r := l.Outbox
		if r == nil || r.ID == "" || r.Target == "" || r.Conv == "" || r.Seq == 0 ||
			(r.State != store.OutboxPending && r.State != store.OutboxExhausted) {
			return missing
		}
		b.Outbox = append(b.Outbox, *r)
	case RecFile:
		if l.File == nil || l.File.ID == "" || l.File.SHA256 == "" {
			return missing
		}
		return im.file(l.File)
	case RecEnd:
		im.sum.Complete = true
		im.sum.Records-- // the end line is no record
	default:
		// A record type of a later minor revision: not ours to judge.
		return fmt.Errorf("unknown record type %q", l.Type)
	}
	return nil
}

// missingError says a record lacks its key fields (an error value: made
// only when returned).
type missingError string

func (t missingError) Error() string {
	return fmt.Sprintf("%s line without its %s", string(t), string(t))
}

// file restores a file record's body: from the files dir, from a body
// already stored under the same hash, or from the blob lines that follow.
func (im *importer) file(f *FileRecord) error {
	if im.fs == nil {
		return nil
	}
	count := func(written bool) {
		im.mu.Lock()
		c := im.total[RecFile]
		if written {
			c.Written++
		} else {
			c.Same++
		}
		im.total[RecFile] = c
		im.mu.Unlock()
	}
	if _, fh, err := im.fs.Get(im.ctx, f.ID); err == nil {
		fh.Close()
		count(false)
		im.bodies[f.SHA256] = f.ID
		return nil
	}
	if im.o.DryRun {
		count(true)
		return nil
	}
	var src io.ReadCloser
	switch {
	case im.o.FilesDir != "":
		fh, err := os.Open(filepath.Join(im.o.FilesDir, filepath.Base(f.SHA256)))
		if err != nil {
			return fmt.Errorf("body of file %s: %w", f.ID, err)
		}
		src = fh
	case im.bodies[f.SHA256] != "":
		_, fh, err := im.fs.Get(im.ctx, im.bodies[f.SHA256])
		if err != nil {
			return fmt.Errorf("body of file %s: %w", f.ID, err)
		}
		src = fh
	default:
		im.body = newBodyWriter(im.ctx, im.fs, f)
		return nil
	}
	defer src.Close()
	written, err := im.fs.Restore(im.ctx, f.File, f.SHA256, src)
	if err != nil {
		return err
	}
	im.bodies[f.SHA256] = f.ID
	count(written)
	return nil
}

func (im *importer) blob(l *Line) error {
	if im.body == nil || l.SHA256 != im.body.f.SHA256 {
		// The body of a file that is already stored (or failed): skip.
		return nil
	}
	if err := im.body.write(l.Data); err != nil {
		im.sum.fail(im.line, RecFile, err)
		im.body = nil
		return nil
	}
	if !l.EOF {
		return nil
	}
	b := im.body
	im.body = nil
	written, err := b.finish()
	if err != nil {
		im.sum.fail(im.line, RecFile, err)
		return nil
	}
	im.bodies[b.f.SHA256] = b.f.ID
	im.mu.Lock()
	c := im.total[RecFile]
	if written {
		c.Written++
	} else {
		c.Same++
	}
	im.total[RecFile] = c
	im.mu.Unlock()
	return nil
}

// bodyWriter streams blob lines into files.Store.Restore through a pipe,
// so that a body never sits whole in memory.
type bodyWriter struct {
	f       *FileRecord
	pw      *io.PipeWriter
	result  chan error
	written bool
}

func newBodyWriter(ctx context.Context, fs *files.Store, f *FileRecord) *bodyWriter {
	pr, pw := io.Pipe()
	b := &bodyWriter{f: f, pw: pw, result: make(chan error, 1)}
	go func() {
		written, err := fs.Restore(ctx, f.File, f.SHA256, pr)
		b.written = written
		pr.CloseWithError(errors.New("body not read to its end"))
		b.result <- err
	}()
	return b
}

func (b *bodyWriter) write(p []byte) error {
	if _, err := b.pw.Write(p); err != nil {
		b.pw.CloseWithError(err)
		return fmt.Errorf("body of %s: %w", b.f.ID, <-b.result)
	}
	return nil
}

func (b *bodyWriter) finish() (bool, error) {
	b.pw.Close()
	err := <-b.result
	return b.written, err
}

func (b *bodyWriter) abort(err error) {
	b.pw.CloseWithError(err)
	<-b.result
}
