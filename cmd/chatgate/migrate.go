package main

// `chatgate export` and `chatgate import`: the whole model as NDJSON, in
// and out of the store `serve` would open (see docs/migration.md).

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/schollz/progressbar/v3"
	bbolt "go.etcd.io/bbolt"

	"chatgate/configs"
	"chatgate/core/model"
	"chatgate/store"
	"chatgate/store/dump"
)

// storeFlags choose the store as serve does: the config file, then
// --data (a bbolt file) or --store (a URL).
type storeFlags struct {
	config, data, url string
}

func (f *storeFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.config, "config", "", "YAML config file, as for serve (default: the embedded example)")
	fs.StringVar(&f.data, "data", "", "bbolt data file (overrides store.path and CHATGATE_DATA)")
	fs.StringVar(&f.url, "store", "", "PostgreSQL URL postgres://… (overrides store.url and CHATGATE_STORE); empty: the bbolt file")
}

// cmdStore is a store opened for a command, with its configuration.
type cmdStore struct {
	*openedStore
	cfg *configs.Config
}

// open opens the store as serve would; mustExist refuses to create a bbolt
// file (an export of a mistyped path must not export a new empty store).
func (f *storeFlags) open(ctx context.Context, getenv func(string) string, mustExist bool) (*cmdStore, error) {
	cfg, err := configs.Load(f.config, getenv)
	if err != nil {
		return nil, err
	}
	if f.url != "" {
		cfg.Store.URL = f.url
	}
	if f.data != "" {
		cfg.Store.Path = f.data
		cfg.Store.URL = ""
	}
	if mustExist && cfg.Store.URL == "" {
		if _, err := os.Stat(cfg.Store.Path); err != nil {
			return nil, fmt.Errorf("data file: %w", err)
		}
	}
	opened, err := openStore(ctx, cfg, nil)
	if err != nil {
		if errors.Is(err, bbolt.ErrTimeout) {
			return nil, fmt.Errorf("%w (the data file is locked: a running chatgate holds it; stop it first, bbolt allows one process)", err)
		}
		return nil, err
	}
	return &cmdStore{openedStore: opened, cfg: cfg}, nil
}

// progress shows a progress bar on a terminal (items or bytes, rate,
// ETA when the total is known) and nothing elsewhere.
type progress struct {
	bar *progressbar.ProgressBar
}

func newProgress(stderr io.Writer, off bool, total int64, bytes bool, what string) *progress {
	f, ok := stderr.(*os.File)
	if off || !ok || !isatty.IsTerminal(f.Fd()) {
		return &progress{}
	}
	opts := []progressbar.Option{progressbar.OptionSetWriter(stderr), progressbar.OptionSetDescription(what),
		progressbar.OptionShowCount(), progressbar.OptionThrottle(100 * time.Millisecond), progressbar.OptionSetPredictTime(true),
		progressbar.OptionFullWidth(), progressbar.OptionOnCompletion(func() { fmt.Fprintln(stderr) })}
	if bytes {
		// Bytes read of a file of known size: the rate and ETA are in
		// bytes (records per second would need the record count first).
		opts = append(opts, progressbar.OptionShowBytes(true))
	} else {
		opts = append(opts, progressbar.OptionSetItsString("records"), progressbar.OptionShowIts())
	}
	if total <= 0 {
		total = -1
		opts = append(opts, progressbar.OptionSpinnerType(14))
	}
	return &progress{bar: progressbar.NewOptions64(total, opts...)}
}

func (p *progress) add(n int) {
	if p.bar != nil {
		_ = p.bar.Add(n)
	}
}

func (p *progress) done() {
	if p.bar != nil {
		_ = p.bar.Finish()
	}
}

// countingReader tells a progress bar of the bytes read.
type countingReader struct {
	r io.Reader
	p *progress
}

func (c countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.p.add(n)
	return n, err
}

// parseTime accepts RFC 3339 or a date (UTC midnight).
func parseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	t, err := time.Parse("2006-01-02", s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q: want RFC 3339 (2025-01-02T15:04:05Z) or a date (2025-01-02)", s)
	}
	return t, nil
}

// listFlag is a repeatable, comma-separated flag.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error {
	for _, x := range strings.Split(v, ",") {
		if x = strings.TrimSpace(x); x != "" {
			*l = append(*l, x)
		}
	}
	return nil
}

const exportUsage = `Usage: chatgate export [flags]

Writes chatgate's whole model (or the conversations the filters select) as
NDJSON: a header line (format "chatgate-export", version, source), then meta
values (settings, webhooks, property configuration, generated secrets),
visitors (with their seen markers), conversations each followed by its
events (and, before an event that shows an uploaded file, the file's record
and body), mappings of foreign ids, idempotency keys, outbox rows, and an end
line with the counts. The store is read in one read transaction, so the
export is one consistent instant. A bbolt file can be read by one process:
stop serve first (or export from PostgreSQL while it serves).

Moving stores: chatgate export --data old.db | chatgate import --data new.db
Format reference: docs/migration.md

Flags:
`

// runExport is the `export` action.
func runExport(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	var sf storeFlags
	var out, filesDir, since, until, dept string
	var convs listFlag
	var jsonOut, noProgress bool
	fs := flag.NewFlagSet("chatgate export", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, exportUsage); fs.PrintDefaults() }
	sf.register(fs)
	fs.StringVar(&out, "out", "-", "where to write the export (- is standard output)")
	fs.StringVar(&filesDir, "files-dir", "", "write file bodies into this directory (one file per SHA-256) instead of into the stream")
	fs.StringVar(&since, "since", "", "only conversations created at or after this time (RFC 3339 or YYYY-MM-DD)")
	fs.StringVar(&until, "until", "", "only conversations created before this time (RFC 3339 or YYYY-MM-DD)")
	fs.StringVar(&dept, "department", "", "only conversations of this department id")
	fs.Var(&convs, "conversation", "only these conversation ids (repeatable, comma-separated)")
	fs.BoolVar(&jsonOut, "json", false, "print the summary as JSON")
	fs.BoolVar(&noProgress, "no-progress", false, "no progress bar, even on a terminal")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	var f dump.Filters
	var err error
	if f.Since, err = parseTime(since); err != nil {
		return fmt.Errorf("--since %w", err)
	}
	if f.Until, err = parseTime(until); err != nil {
		return fmt.Errorf("--until %w", err)
	}
	f.Department = model.DeptID(dept)
	for _, c := range convs {
		f.Conversations = append(f.Conversations, model.ConvID(c))
	}
	opened, err := sf.open(ctx, getenv, true)
	if err != nil {
		return err
	}
	defer opened.Close()
	w, summaryTo, closeOut, err := openOut(out, stdout, stderr)
	if err != nil {
		return err
	}
	p := newProgress(stderr, noProgress, -1, false, "export")
	sum, err := dump.Export(ctx, opened.Store, opened.Files, w, dump.ExportOptions{Filters: f, FilesDir: filesDir,
		Source: dump.Source{Store: opened.Kind, Schema: store.SchemaVersion}, Progress: p.add})
	p.done()
	if cerr := closeOut(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	if jsonOut {
		return json.NewEncoder(summaryTo).Encode(sum)
	}
	fmt.Fprintf(summaryTo, "exported %s in %.1fs (%.0f events/s)\n", countsText(sum.Counts), sum.Seconds, sum.EventsPerSecond)
	return nil
}

// openOut opens the export's destination; the summary goes to standard
// output unless the export does.
func openOut(out string, stdout, stderr io.Writer) (io.Writer, io.Writer, func() error, error) {
	if out == "-" || out == "" {
		return stdout, stderr, func() error { return nil }, nil
	}
	f, err := os.OpenFile(out, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("--out: %w", err)
	}
	return f, stdout, func() error {
		// A regular file is synced so that the summary means "on disk";
		// a device or pipe (/dev/null) cannot be.
		if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
			if err := f.Sync(); err != nil {
				f.Close()
				return err
			}
		}
		return f.Close()
	}, nil
}

func countsText(c map[string]int) string {
	order := []string{store.RecVisitor, store.RecConversation, store.RecEvent, dump.RecFile, store.RecMapping, store.RecIdem, store.RecMeta, store.RecOutbox}
	parts := make([]string, 0, len(order))
	for _, k := range order {
		if n, ok := c[k]; ok {
			parts = append(parts, fmt.Sprintf("%d %s", n, plural(k, n)))
		}
	}
	if len(parts) == 0 {
		return "nothing"
	}
	return strings.Join(parts, ", ")
}

func plural(k string, n int) string {
	if n == 1 {
		return k
	}
	return k + "s"
}

const importUsage = `Usage: chatgate import [flags] [FILE]
       chatgate import --from rocketchat --url URL --user U --password P [flags]
       chatgate import --from livechat --url URL --auth-token T [flags]

Without --from: reads an export (FILE, or standard input) into the store
serve would open, in batches of --batch records, each committed atomically.
A record already present is skipped; one present with other content keeps
the store's version (counted as kept); meta values (settings) take the
export's. Importing the same export twice changes nothing; an import that
was stopped at any point and run again completes with nothing doubled.

With --from rocketchat: pulls a Rocket.Chat server's livechat rooms through
its REST API as an agent (--url, and --user/--password or
--user-id/--auth-token), at most --rps requests per second, backing off on
429. Room ids, visitor ids, tokens, usernames and message ids are kept, so
old widgets find their history. Progress is kept in the store: a stopped
import resumes, a second run fetches only what is new.

With --from livechat: pulls a LiveChat account's archived chats through the
Agent Chat API (list_archives, list_threads, get_chat; paged by page_id) with
an agent access token (--auth-token) or --basic ACCOUNT_ID:PAT. Chat, thread
and event ids are kept where free; each thread is committed whole with its
progress, so a stopped import resumes and a second run changes nothing.

Prints a summary (imported, skipped as present, kept, failed with reasons);
--json prints it as JSON; --dry-run counts what would change and writes
nothing.

Flags:
`

type importOptions struct {
	sf              storeFlags
	from            string
	source          sourceFlags
	filesDir        string
	batch           int
	dryRun, jsonOut bool
	noProgress      bool
	stdin           io.Reader
	stdout, stderr  io.Writer
	getenv          func(string) string
	positional      []string
}

// runImport is the `import` action.
func runImport(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) error {
	o := importOptions{stdin: stdin, stdout: stdout, stderr: stderr, getenv: getenv}
	fs := flag.NewFlagSet("chatgate import", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, importUsage); fs.PrintDefaults() }
	o.sf.register(fs)
	fs.StringVar(&o.filesDir, "files-dir", "", "directory of file bodies of an export written with --files-dir")
	fs.IntVar(&o.batch, "batch", 5000, "records per commit")
	fs.BoolVar(&o.dryRun, "dry-run", false, "count what would change; write nothing")
	fs.BoolVar(&o.jsonOut, "json", false, "print the summary as JSON")
	fs.BoolVar(&o.noProgress, "no-progress", false, "no progress bar, even on a terminal")
	fs.StringVar(&o.from, "from", "", "pull history from a vendor's API instead of reading an export: rocketchat or livechat")
	o.source.register(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	o.positional = fs.Args()
	if o.from != "" {
		if len(o.positional) > 0 {
			return fmt.Errorf("unexpected arguments with --from: %v", o.positional)
		}
		return runVendorImport(ctx, &o)
	}
	if len(o.positional) > 1 {
		return fmt.Errorf("unexpected arguments: %v", o.positional[1:])
	}
	in, size := o.stdin, int64(-1)
	if len(o.positional) == 1 && o.positional[0] != "-" {
		f, err := os.Open(o.positional[0])
		if err != nil {
			return err
		}
		defer f.Close()
		if st, err := f.Stat(); err == nil {
			size = st.Size()
		}
		in = f
	}
	st, err := o.sf.open(ctx, o.getenv, false)
	if err != nil {
		return err
	}
	defer st.Close()
	var p *progress
	opts := dump.ImportOptions{FilesDir: o.filesDir, BatchSize: o.batch, DryRun: o.dryRun}
	if ttl := st.cfg.Store.AnonymousVisitorTTL; ttl > 0 {
		opts.ForgetIdleBefore = time.Now().Add(-ttl)
	}
	if size > 0 {
		p = newProgress(stderr, o.noProgress, size, true, "import")
		in = countingReader{r: in, p: p}
	} else {
		p = newProgress(stderr, o.noProgress, -1, false, "import")
		opts.Progress = p.add
	}
	sum, err := dump.Import(ctx, st.Store, st.Files, in, opts)
	p.done()
	if err != nil {
		// What was committed stays; a second run completes it.
		printImportSummary(stdout, &sum, o.jsonOut)
		return fmt.Errorf("import: %w", err)
	}
	if err := printImportSummary(stdout, &sum, o.jsonOut); err != nil {
		return err
	}
	if !sum.Complete {
		return errors.New("import: the stream has no end line (cut short?): imported what it had; run again with the whole export")
	}
	return nil
}

func printImportSummary(w io.Writer, sum *dump.ImportSummary, jsonOut bool) error {
	if jsonOut {
		return json.NewEncoder(w).Encode(sum)
	}
	verb := "imported"
	if sum.DryRun {
		verb = "dry run: would import"
	}
	fmt.Fprintf(w, "%s %s\n", verb, restoreText(sum.Counts, func(c store.RestoreCount) int { return c.Written }))
	fmt.Fprintf(w, "skipped as already present: %s\n", restoreText(sum.Counts, func(c store.RestoreCount) int { return c.Same }))
	if s := restoreText(sum.Counts, func(c store.RestoreCount) int { return c.Kept }); s != "nothing" {
		fmt.Fprintf(w, "present with other content, the store's kept: %s\n", s)
	}
	if s := restoreText(sum.Counts, func(c store.RestoreCount) int { return c.Replaced }); s != "nothing" {
		fmt.Fprintf(w, "replaced: %s\n", s)
	}
	if sum.ExpiredVisitors > 0 {
		fmt.Fprintf(w, "idle anonymous visitors deleted (store.anonymous_visitor_ttl): %d\n", sum.ExpiredVisitors)
	}
	fmt.Fprintf(w, "failed: %d\n", sum.Failed)
	for _, f := range sum.Failures {
		fmt.Fprintf(w, "  line %d %s: %s\n", f.Line, f.Type, f.Reason)
	}
	if sum.Failed > len(sum.Failures) {
		fmt.Fprintf(w, "  … and %d more\n", sum.Failed-len(sum.Failures))
	}
	fmt.Fprintf(w, "%d records in %.1fs (%.0f events/s)\n", sum.Records, sum.Seconds, sum.EventsPerSecond)
	return nil
}

func restoreText(r store.RestoreResult, get func(store.RestoreCount) int) string {
	c := make(map[string]int)
	for k, v := range r {
		if n := get(v); n > 0 {
			c[k] = n
		}
	}
	return countsText(c)
}
