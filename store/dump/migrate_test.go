package dump

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"chatgate/core/model"
	"chatgate/store"
	"chatgate/store/bolt"
	"chatgate/store/files"
)

var t0 = time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)

type env struct {
	st store.Store
	fs *files.Store
}

func openEnv(t *testing.T) env {
	t.Helper()
	dir := t.TempDir()
	st, err := bolt.Open(filepath.Join(dir, "data.db"), bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	fs, err := files.Open(filepath.Join(dir, "files"), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	return env{st, fs}
}

// seed writes visitors, conversations of two departments, every event
// kind, an uploaded file (twice, same content), mappings, idempotency
// keys, meta and outbox rows.
func seed(t *testing.T, e env, convs, events int) []model.ConvID {
	t.Helper()
	ctx := t.Context()
	f, err := e.fs.Put(ctx, "photo.png", "image/png", strings.NewReader(strings.Repeat("png-bytes", 40000)))
	if err != nil {
		t.Fatal(err)
	}
	f2, err := e.fs.Put(ctx, "copy.png", "image/png", strings.NewReader(strings.Repeat("png-bytes", 40000)))
	if err != nil {
		t.Fatal(err)
	}
	var ids []model.ConvID
	for i := range convs {
		v := model.Visitor{ID: model.VisitorID(fmt.Sprintf("v%03d", i)), Name: "Vera", CreatedAt: t0,
			SeenUpTo: map[string]time.Time{"agent-1": t0.Add(time.Minute)}}
		c := model.Conversation{ID: model.ConvID(fmt.Sprintf("c%03d", i)), Visitor: v.ID, State: model.StateClosed,
			Department: model.DeptID([]string{"sales", "support"}[i%2]), CreatedAt: t0.Add(time.Duration(i) * time.Hour),
			LastSeq: uint64(events), Props: map[string]map[string]json.RawMessage{"routing": {"pinned": json.RawMessage("true")}}}
		b := &store.Batch{Visitors: []model.Visitor{v}, Convs: []model.Conversation{c},
			Maps:   []store.Mapping{{MapKey: store.MapKey{System: "livechat.v2", Tenant: "100", Kind: "visitor", Foreign: "S" + string(v.ID)}, Core: string(v.ID)}},
			Idems:  []store.Idem{{System: "rocketchat", Key: "k" + string(c.ID), Conv: c.ID, Seq: 1}},
			Outbox: []store.OutboxRow{{ID: "o" + string(c.ID), Target: "webhook:1", Conv: c.ID, Payload: []byte(`{"a":1}`), CreatedAt: t0}},
			Meta:   map[string][]byte{"survey:" + string(c.ID): []byte(`{"rating":5}`)}}
		for s := 1; s <= events; s++ {
			ev := model.Event{Conv: c.ID, Seq: uint64(s), ID: fmt.Sprintf("%s-%d", c.ID, s), Kind: model.KindMessage,
				Author: model.Author{Kind: model.AuthorVisitor, ID: string(v.ID)}, At: t0.Add(time.Duration(s) * time.Second), Text: "hello"}
			switch s % 5 {
			case 1:
				ev.Kind, ev.File = model.KindFile, &model.File{Name: "photo.png", URL: "https://gw.example" + files.URLPrefix + f.ID + "/photo.png"}
				if s%2 == 0 {
					ev.File.URL = files.URLPrefix + f2.ID + "/copy.png"
				}
			case 2:
				ev.Kind, ev.Form = model.KindForm, &model.Form{Type: "prechat", Fields: []model.FormField{{Label: "Name", Answer: json.RawMessage(`"Vera"`)}}}
			case 3:
				ev.Visibility, ev.Author = model.VisibleAgents, model.Author{Kind: model.AuthorAgent, ID: "agent-1"}
			case 4:
				ev.Kind, ev.Subtype = model.KindSystem, model.SysClosed
			}
			b.Events = append(b.Events, ev)
		}
		if err := e.st.Commit(ctx, b); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, c.ID)
	}
	return ids
}

func export(t *testing.T, e env, o ExportOptions) []byte {
	t.Helper()
	var out bytes.Buffer
	o.Now = func() time.Time { return t0 }
	if _, err := Export(t.Context(), e.st, e.fs, &out, o); err != nil {
		t.Fatalf("export: %v", err)
	}
	return out.Bytes()
}

func importBytes(t *testing.T, e env, b []byte, o ImportOptions) ImportSummary {
	t.Helper()
	sum, err := Import(t.Context(), e.st, e.fs, bytes.NewReader(b), o)
	if err != nil {
		t.Fatalf("import: %v", err)
	}
	if sum.Failed != 0 {
		t.Fatalf("import failed records: %+v", sum.Failures)
	}
	return sum
}

func TestRoundTripIdentical(t *testing.T) {
	for _, tc := range []struct {
		name     string
		filesDir bool
		batch    int
	}{{"inline bodies", false, 0}, {"bodies in a directory", true, 0}, {"small batches", false, 7}} {
		t.Run(tc.name, func(t *testing.T) {
			src := openEnv(t)
			seed(t, src, 6, 23)
			var o ExportOptions
			var io ImportOptions
			if tc.filesDir {
				o.FilesDir = t.TempDir()
				io.FilesDir = o.FilesDir
			}
			io.BatchSize = tc.batch
			dump := export(t, src, o)
			dst := openEnv(t)
			sum := importBytes(t, dst, dump, io)
			if !sum.Complete || sum.Counts[store.RecEvent].Written != 6*23 || sum.Counts[RecFile].Written != 2 {
				t.Fatalf("summary %+v", sum)
			}
			if again := export(t, dst, o); !bytes.Equal(again, dump) {
				t.Fatalf("export of the imported store differs:\n%s\n---\n%s", firstDiff(dump, again), "")
			}
			// The file bodies came along under their ids.
			_, fh, err := dst.fs.Get(t.Context(), firstFileID(t, dump))
			if err != nil {
				t.Fatalf("imported file: %v", err)
			}
			fh.Close()

			// Twice: nothing changes, everything skipped as present.
			sum = importBytes(t, dst, dump, io)
			for kind, c := range sum.Counts {
				if c.Written != 0 || c.Replaced != 0 || c.Kept != 0 {
					t.Errorf("second import changed %s: %+v", kind, c)
				}
			}
			if sum.Counts[store.RecEvent].Same != 6*23 {
				t.Errorf("second import: %+v", sum.Counts)
			}
			if again := export(t, dst, o); !bytes.Equal(again, dump) {
				t.Fatalf("second import changed the store:\n%s", firstDiff(dump, again))
			}
		})
	}
}

// TestCutAndResume imports every prefix of an export (as a killed import
// leaves the store), then the whole: the result is the same as one import.
func TestCutAndResume(t *testing.T) {
	src := openEnv(t)
	seed(t, src, 3, 11)
	dump := export(t, src, ExportOptions{})
	lines := bytes.SplitAfter(dump, []byte("\n"))
	for _, cut := range []int{1, 2, len(lines) / 3, len(lines) / 2, len(lines) - 2} {
		dst := openEnv(t)
		part := bytes.Join(lines[:cut], nil)
		sum, err := Import(t.Context(), dst.st, dst.fs, bytes.NewReader(part), ImportOptions{BatchSize: 5})
		if err != nil {
			t.Fatalf("cut at %d: %v", cut, err)
		}
		if sum.Complete {
			t.Errorf("cut at %d: summary says complete", cut)
		}
		// A conversation in the store has all of its events the stream
		// had: it is committed with its last one.
		err = dst.st.Conversations(t.Context(), func(c model.Conversation) bool {
			evs, err := dst.st.Events(t.Context(), c.ID, 1, 0)
			if err != nil || uint64(len(evs)) != c.LastSeq {
				t.Errorf("cut at %d: conversation %s stored with %d of %d events", cut, c.ID, len(evs), c.LastSeq)
			}
			return true
		})
		if err != nil {
			t.Fatal(err)
		}
		importBytes(t, dst, dump, ImportOptions{BatchSize: 5})
		if again := export(t, dst, ExportOptions{}); !bytes.Equal(again, dump) {
			t.Fatalf("cut at %d, resumed: export differs:\n%s", cut, firstDiff(dump, again))
		}
	}
}

func TestDryRunWritesNothing(t *testing.T) {
	src := openEnv(t)
	seed(t, src, 2, 6)
	dump := export(t, src, ExportOptions{})
	dst := openEnv(t)
	empty := export(t, dst, ExportOptions{})
	sum := importBytes(t, dst, dump, ImportOptions{DryRun: true})
	if !sum.DryRun || sum.Counts[store.RecEvent].Written != 12 || sum.Counts[store.RecVisitor].Written != 2 {
		t.Errorf("dry run summary %+v", sum.Counts)
	}
	if got := export(t, dst, ExportOptions{}); !bytes.Equal(got, empty) {
		t.Errorf("dry run wrote:\n%s", got)
	}
}

func TestFilters(t *testing.T) {
	src := openEnv(t)
	ids := seed(t, src, 6, 5)
	for _, tc := range []struct {
		name string
		f    Filters
		want []model.ConvID
	}{
		{"department", Filters{Department: "support"}, []model.ConvID{ids[1], ids[3], ids[5]}},
		{"conversation", Filters{Conversations: []model.ConvID{ids[2]}}, []model.ConvID{ids[2]}},
		{"since and until", Filters{Since: t0.Add(2 * time.Hour), Until: t0.Add(4 * time.Hour)}, []model.ConvID{ids[2], ids[3]}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dump := export(t, src, ExportOptions{Filters: tc.f})
			got := map[string][]string{}
			for _, ln := range bytes.Split(bytes.TrimSpace(dump), []byte("\n")) {
				var l Line
				if err := json.Unmarshal(ln, &l); err != nil {
					t.Fatal(err)
				}
				switch {
				case l.Conversation != nil:
					got["conv"] = append(got["conv"], string(l.Conversation.ID))
				case l.Visitor != nil:
					got["visitor"] = append(got["visitor"], string(l.Visitor.ID))
				case l.Mapping != nil:
					got["mapping"] = append(got["mapping"], l.Mapping.Core)
				case l.Idem != nil:
					got["idem"] = append(got["idem"], string(l.Idem.Conv))
				case l.Outbox != nil:
					got["outbox"] = append(got["outbox"], string(l.Outbox.Conv))
				case l.Event != nil && l.Event.Seq == 1:
					got["event"] = append(got["event"], string(l.Event.Conv))
				}
			}
			var want, wantV []string
			for _, id := range tc.want {
				want = append(want, string(id))
				wantV = append(wantV, "v"+strings.TrimPrefix(string(id), "c"))
			}
			for kind, w := range map[string][]string{"conv": want, "event": want, "idem": want, "outbox": want, "visitor": wantV, "mapping": wantV} {
				if fmt.Sprint(got[kind]) != fmt.Sprint(w) {
					t.Errorf("%s records %v, want %v", kind, got[kind], w)
				}
			}
		})
	}
}

func TestBadStreams(t *testing.T) {
	src := openEnv(t)
	seed(t, src, 1, 3)
	dump := export(t, src, ExportOptions{})
	header, rest, _ := bytes.Cut(dump, []byte("\n"))
	for _, tc := range []struct {
		name    string
		in      string
		wantErr string
		failed  int
	}{
		{"empty", "", "no header", 0},
		{"not a header", `{"type":"visitor"}` + "\n", "not a chatgate export header", 0},
		{"newer version", `{"type":"header","format":"chatgate-export","version":99}` + "\n", "version 99", 0},
		{"garbage line", string(header) + "\n{oops\n" + string(rest), "", 1},
		{"event without seq", string(header) + "\n" + `{"type":"event","event":{"conv":"c"}}` + "\n", "", 1},
		{"unknown kind", string(header) + "\n" + `{"type":"event","event":{"conv":"c","seq":1,"kind":"bogus"}}` + "\n", "", 1},
		{"reserved meta", string(header) + "\n" + `{"type":"meta","key":"schema","value":"OQ=="}` + "\n", "", 1},
		{"line too long", string(header) + "\n" + strings.Repeat("x", MaxLine+10), "longer than", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dst := openEnv(t)
			sum, err := Import(context.Background(), dst.st, dst.fs, strings.NewReader(tc.in), ImportOptions{})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if sum.Failed != tc.failed || len(sum.Failures) != tc.failed || (tc.failed > 0 && sum.Failures[0].Reason == "") {
				t.Errorf("failed %d %+v, want %d", sum.Failed, sum.Failures, tc.failed)
			}
		})
	}
}

func firstFileID(t *testing.T, dump []byte) string {
	t.Helper()
	for _, ln := range bytes.Split(dump, []byte("\n")) {
		var l Line
		if json.Unmarshal(ln, &l) == nil && l.File != nil {
			return l.File.ID
		}
	}
	t.Fatal("no file record in the export")
	return ""
}

func firstDiff(a, b []byte) string {
	la, lb := bytes.Split(a, []byte("\n")), bytes.Split(b, []byte("\n"))
	for i := 0; i < len(la) || i < len(lb); i++ {
		var x, y []byte
		if i < len(la) {
			x = la[i]
		}
		if i < len(lb) {
			y = lb[i]
		}
		if !bytes.Equal(x, y) {
			return fmt.Sprintf("line %d:\n- %s\n+ %s", i+1, x, y)
		}
	}
	return "(same)"
}

// TestImportDoesNotResurrectExpiredVisitors: an export taken before the
// gateway deleted an idle anonymous visitor brings neither the visitor
// nor its token back when imported with ForgetIdleBefore (what `chatgate
// import` sets from store.anonymous_visitor_ttl); without it, it would.
func TestImportDoesNotResurrectExpiredVisitors(t *testing.T) {
	src := openEnv(t)
	seed(t, src, 2, 3)
	anon := model.Visitor{ID: "anon-1", CreatedAt: t0}
	tokKey := store.MapKey{System: "livechat.customer", Tenant: "org", Kind: "token", Foreign: "h1"}
	if err := src.st.Commit(t.Context(), &store.Batch{Visitors: []model.Visitor{anon},
		Maps: []store.Mapping{{MapKey: tokKey, Core: string(anon.ID)}}}); err != nil {
		t.Fatal(err)
	}
	stream := export(t, src, ExportOptions{})
	cutoff := t0.Add(24 * time.Hour)
	for _, tc := range []struct {
		name    string
		forget  time.Time
		present bool
	}{{"without expiry", time.Time{}, true}, {"with expiry", cutoff, false}} {
		t.Run(tc.name, func(t *testing.T) {
			dst := openEnv(t)
			sum, err := Import(t.Context(), dst.st, dst.fs, bytes.NewReader(stream), ImportOptions{ForgetIdleBefore: tc.forget})
			if err != nil || !sum.Complete {
				t.Fatalf("import: %v %+v", err, sum)
			}
			_, verr := dst.st.Visitor(t.Context(), anon.ID)
			_, merr := dst.st.Resolve(t.Context(), tokKey)
			if got := verr == nil && merr == nil; got != tc.present {
				t.Fatalf("anonymous visitor present = %v (visitor %v, token %v), want %v", got, verr, merr, tc.present)
			}
			if !tc.present && (verr == nil || merr == nil || sum.ExpiredVisitors != 1) {
				t.Fatalf("visitor %v, token %v, expired %d", verr, merr, sum.ExpiredVisitors)
			}
			// Visitors with conversations stay, however old.
			if _, err := dst.st.Visitor(t.Context(), "v000"); err != nil {
				t.Fatalf("visitor with a conversation: %v", err)
			}
		})
	}
}
