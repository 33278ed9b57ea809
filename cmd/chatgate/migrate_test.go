//go:build unix

package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"chatgate/core/model"
	"chatgate/store"
	"chatgate/store/bolt"
	"chatgate/store/postgres/pgtest"
)

// TestMainChild runs `chatgate <args>` as a process of its own for the
// migration tests (args from CHATGATE_MAIN_ARGS, a JSON array).
func TestMainChild(t *testing.T) {
	raw := os.Getenv("CHATGATE_MAIN_ARGS")
	if raw == "" {
		t.Skip("started by the migration tests only")
	}
	var args []string
	if err := json.Unmarshal([]byte(raw), &args); err != nil {
		t.Fatal(err)
	}
	if err := run(context.Background(), args, os.Stderr, func(string) string { return "" }); err != nil {
		fmt.Fprintln(os.Stderr, "chatgate:", err)
		os.Exit(3)
	}
	os.Exit(0)
}

// chatgateCmd is `chatgate args...` as a child process.
func chatgateCmd(args ...string) *exec.Cmd {
	raw, _ := json.Marshal(args)
	cmd := exec.Command(os.Args[0], "-test.run=^TestMainChild$", "-test.v=false")
	cmd.Env = append(os.Environ(), "CHATGATE_MAIN_ARGS="+string(raw))
	return cmd
}

// chatgateRun runs `chatgate args...` to its end and returns its output.
func chatgateRun(t *testing.T, stdin []byte, args ...string) (stdout []byte) {
	t.Helper()
	cmd := chatgateCmd(args...)
	var out, errb bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = bytes.NewReader(stdin), &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("chatgate %v: %v\n%s%s", args, err, errb.String(), out.String())
	}
	return out.Bytes()
}

// withoutHeader drops an export's first line (it has the time of the
// export).
func withoutHeader(t *testing.T, dump []byte) []byte {
	t.Helper()
	h, rest, ok := bytes.Cut(dump, []byte("\n"))
	if !ok || !bytes.Contains(h, []byte(`"format":"chatgate-export"`)) {
		t.Fatalf("not an export: %.200s", dump)
	}
	return rest
}

// rcHistory reads every room's whole history as the agent sees it
// (livechat/rooms, chat.syncMessages) and the Rocket.Chat visitor's own
// (livechat/messages.history), as comparable JSON.
func rcHistory(t *testing.T, base, token string) map[string]any {
	t.Helper()
	client := &http.Client{Timeout: 10 * time.Second}
	login, err := rcJSON(client, "POST", base+"/api/v1/login", nil, map[string]any{"user": "jane@example.com", "password": agentPassword})
	if err != nil {
		t.Fatal(err)
	}
	ld, _ := login["data"].(map[string]any)
	hdr := map[string]string{"X-User-Id": fmt.Sprint(ld["userId"]), "X-Auth-Token": fmt.Sprint(ld["authToken"])}
	rooms, err := rcJSON(client, "GET", base+"/api/v1/livechat/rooms", hdr, nil)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]any{}
	defer func() {
		// URLs carry the gateway's address, which changes.
		b, _ := json.Marshal(out)
		clear(out)
		if err := json.Unmarshal(bytes.ReplaceAll(b, []byte(base), []byte("BASE")), &out); err != nil {
			t.Fatal(err)
		}
	}()
	list, _ := rooms["rooms"].([]any)
	if len(list) == 0 {
		t.Fatalf("no rooms: %v", rooms)
	}
	for _, r := range list {
		room, _ := r.(map[string]any)
		rid := fmt.Sprint(room["_id"])
		m, err := rcJSON(client, "GET", base+"/api/v1/chat.syncMessages?roomId="+url.QueryEscape(rid)+"&lastUpdate=2000-01-01T00:00:00.000Z", hdr, nil)
		if err != nil {
			t.Fatal(err)
		}
		out["agent:"+rid] = m["result"]
		if v, _ := room["v"].(map[string]any); v["token"] == token {
			h, err := rcJSON(client, "GET", base+"/api/v1/livechat/messages.history/"+rid+"?token="+url.QueryEscape(token), nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			out["visitor:"+rid] = h["messages"]
		}
	}
	return out
}

// migration is a source gateway seeded by a test: serving on src with its
// agent logged in on the agent RTM, and dst, a fresh target data file.
type migration struct {
	cfg, src, dst string
	g             *gateway
	base          string
	ag            *agent
}

// newMigration starts the source gateway of a migration test on cfg.
func newMigration(t *testing.T, cfg string) *migration {
	t.Helper()
	dir := t.TempDir()
	m := &migration{cfg: cfg, src: filepath.Join(dir, "source.db"), dst: filepath.Join(dir, "target.db")}
	m.g = startGateway(t, cfg, m.src)
	m.base = "http://" + m.g.addr
	m.ag = deskAgent(t, m.g.addr)
	return m
}

// TestExportImportProcesses: a gateway seeded through its public APIs (a
// LiveChat v2 visitor, a Rocket.Chat visitor with client ids and an
// uploaded file, an agent answering on the RTM) is stopped; `chatgate
// export` and `chatgate import` (processes) move it into a new data file; a
// gateway on the new file shows the same history on the Rocket.Chat agent
// and visitor routes, the v2 visitor's session still works, and the
// export of the new store is identical to the first.
func TestExportImportProcesses(t *testing.T) {
	m := newMigration(t, writeConfig(t, true))
	cfg, src, dst, g, base := m.cfg, m.src, m.dst, m.g, m.base

	v := &visitor{t: t, base: base, id: "migrate-v2-visitor"}
	v.start()
	v.send("hello from the v2 widget")

	client := &http.Client{Timeout: 10 * time.Second}
	w := &rcWriter{idWriter: idWriter{name: "rcmig"}, token: "migrate-rc-visitor-token"}
	if err := w.setup(client, base); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		id := fmt.Sprintf("rcmig-%d", i)
		if _, err := rcJSON(client, "POST", base+"/api/v1/livechat/message", nil, map[string]any{"token": w.token, "rid": w.rid, "msg": "rc " + id, "_id": id}); err != nil {
			t.Fatal(err)
		}
	}
	rcUpload(t, client, base, w)
	before := rcHistory(t, base, w.token)
	g.stop()

	dump := chatgateRun(t, nil, "export", "--config", cfg, "--data", src)
	if !bytes.Contains(dump, []byte(`"type":"blob"`)) {
		t.Fatalf("export has no file body:\n%s", dump)
	}
	sum := chatgateRun(t, dump, "import", "--config", cfg, "--data", dst, "--json")
	var s struct {
		Complete bool                `json:"complete"`
		Failed   int                 `json:"failed"`
		Counts   store.RestoreResult `json:"counts"`
	}
	if err := json.Unmarshal(sum, &s); err != nil || !s.Complete || s.Failed != 0 || s.Counts[store.RecEvent].Written == 0 || s.Counts["file"].Written != 1 {
		t.Fatalf("import summary %s (%v)", sum, err)
	}
	again := chatgateRun(t, nil, "export", "--config", cfg, "--data", dst)
	if !bytes.Equal(withoutHeader(t, again), withoutHeader(t, dump)) {
		t.Fatalf("export of the imported store differs")
	}
	// Twice: nothing written.
	sum = chatgateRun(t, dump, "import", "--config", cfg, "--data", dst, "--json")
	if err := json.Unmarshal(sum, &s); err != nil {
		t.Fatal(err)
	}
	for kind, c := range s.Counts {
		if c.Written+c.Kept+c.Replaced != 0 {
			t.Errorf("second import changed %s: %+v", kind, c)
		}
	}

	g2 := startGateway(t, cfg, dst)
	base2 := "http://" + g2.addr
	after := rcHistory(t, base2, w.token)
	if !reflect.DeepEqual(after, before) {
		a, _ := json.Marshal(after)
		b, _ := json.Marshal(before)
		t.Fatalf("history differs after the move:\nbefore %s\nafter  %s", b, a)
	}
	// The v2 widget's session still works on the new gateway.
	v.base = base2
	v.send("still here after the move")
	// The uploaded file is served under its old URL.
	for _, x := range after {
		if res, ok := x.(map[string]any); ok {
			for _, m := range res["updated"].([]any) {
				if f, ok := m.(map[string]any)["file"].(map[string]any); ok {
					resp, err := client.Get(base2 + "/file-upload/" + fmt.Sprint(f["_id"]) + "/" + url.PathEscape(fmt.Sprint(f["name"])))
					if err != nil {
						t.Fatal(err)
					}
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 || string(b) != strings.Repeat("file body ", 100) {
						t.Errorf("file after the move: %d %q", resp.StatusCode, b)
					}
				}
			}
		}
	}
}

// TestImportKilledAndRerun: an import killed with SIGKILL while it commits,
// run again, leaves the same store as one whole import; a third run
// writes nothing.
func TestImportKilledAndRerun(t *testing.T) {
	if testing.Short() {
		t.Skip("imports 40,000 events three times")
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "src.db")
	st, err := bolt.Open(src, bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	for c := range 200 {
		vid, cid := model.VisitorID(fmt.Sprintf("v%04d", c)), model.ConvID(fmt.Sprintf("c%04d", c))
		b := &store.Batch{Visitors: []model.Visitor{{ID: vid, Name: "V", CreatedAt: t0}},
			Convs: []model.Conversation{{ID: cid, Visitor: vid, State: model.StateClosed, CreatedAt: t0, LastSeq: 200}},
			Maps:  []store.Mapping{{MapKey: store.MapKey{System: "rocketchat", Kind: "token", Foreign: "tok" + string(vid)}, Core: string(vid)}}}
		for s := 1; s <= 200; s++ {
			b.Events = append(b.Events, model.Event{Conv: cid, Seq: uint64(s), ID: fmt.Sprintf("%s-%d", cid, s), Kind: model.KindMessage,
				Author: model.Author{Kind: model.AuthorVisitor, ID: string(vid)}, At: t0.Add(time.Duration(s) * time.Second), Text: "some text"})
		}
		if err := st.Commit(t.Context(), b); err != nil {
			t.Fatal(err)
		}
	}
	st.Close()
	dump := filepath.Join(dir, "dump.ndjson")
	chatgateRun(t, nil, "export", "--data", src, "--out", dump)

	dst := filepath.Join(dir, "dst.db")
	var s struct {
		Counts store.RestoreResult `json:"counts"`
	}
	midway := false
	for attempt := 0; attempt < 5 && !midway; attempt++ {
		os.RemoveAll(dst)
		os.RemoveAll(dst + ".files")
		cmd := chatgateCmd("import", "--data", dst, "--batch", "1000", dump)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Kill once the data file holds data (commits are under way): its
		// disk blocks, not its size, which bbolt grows ahead of the data
		// (16 MiB at the first commit with bolt.InitialMmapSize).
		deadline := time.Now().Add(60 * time.Second)
		for time.Now().Before(deadline) {
			if fi, err := os.Stat(dst); err == nil {
				if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Blocks*512 > 1<<20 {
					break
				}
			}
			time.Sleep(2 * time.Millisecond)
		}
		_ = cmd.Process.Signal(syscall.SIGKILL)
		_ = cmd.Wait()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() {
			continue // finished before the kill
		}
		// Midway: some events committed, some not.
		out := chatgateRun(t, nil, "import", "--data", dst, "--json", "--dry-run", dump)
		if err := json.Unmarshal(out, &s); err != nil {
			t.Fatal(err)
		}
		ev := s.Counts[store.RecEvent]
		midway = ev.Same > 0 && ev.Written > 0
		t.Logf("attempt %d: the killed import had committed %d of %d events", attempt, ev.Same, ev.Same+ev.Written)
	}
	if !midway {
		t.Fatal("the import was never killed midway")
	}
	chatgateRun(t, nil, "import", "--data", dst, dump)
	want, _ := os.ReadFile(dump)
	got := chatgateRun(t, nil, "export", "--data", dst)
	if !bytes.Equal(withoutHeader(t, got), withoutHeader(t, want)) {
		t.Fatal("store after a killed and resumed import differs from the source")
	}
	out := chatgateRun(t, nil, "import", "--data", dst, "--json", dump)
	if err := json.Unmarshal(out, &s); err != nil {
		t.Fatal(err)
	}
	for kind, c := range s.Counts {
		if c.Written+c.Kept+c.Replaced != 0 {
			t.Errorf("third import changed %s: %+v", kind, c)
		}
	}
	if s.Counts[store.RecEvent].Same != 200*200 {
		t.Errorf("third import: %+v", s.Counts)
	}
}

// rcUpload uploads notes.txt (1,000 bytes) into the writer's room as its
// Rocket.Chat visitor (livechat/upload).
func rcUpload(t *testing.T, client *http.Client, base string, w *rcWriter) {
	t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	fw, _ := mw.CreateFormFile("file", "notes.txt")
	io.WriteString(fw, strings.Repeat("file body ", 100))
	mw.Close()
	req, _ := http.NewRequest("POST", base+"/api/v1/livechat/upload/"+w.rid, &body)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("X-Visitor-Token", w.token)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("upload: %d", resp.StatusCode)
	}
}

// seedConfig is writeConfig's gateway with the Rocket.Chat custom field
// seedRocketChat sets.
func seedConfig(t *testing.T) string {
	t.Helper()
	p := writeConfig(t, true)
	f, err := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString("rocketchat:\n  custom_fields:\n    - {id: plan, label: Plan}\n"); err != nil {
		t.Fatal(err)
	}
	return p
}

// seedRocketChat writes a Rocket.Chat visitor's conversation through the
// widget's REST routes: messages with client ids, a custom field, a page
// visit (agents-only), an edit, a deletion, an uploaded file, the close;
// and a LiveChat v2 visitor's chat. It returns the Rocket.Chat token.
func seedRocketChat(t *testing.T, base string) string {
	t.Helper()
	client := &http.Client{Timeout: 10 * time.Second}
	w := &rcWriter{idWriter: idWriter{name: "Rita"}, token: "seed-rc-visitor-token"}
	if err := w.setup(client, base); err != nil {
		t.Fatal(err)
	}
	call := func(method, path string, body map[string]any) {
		t.Helper()
		if _, err := rcJSON(client, method, base+"/api/v1/"+path, nil, body); err != nil {
			t.Fatal(err)
		}
	}
	call("POST", "livechat/custom.field", map[string]any{"token": w.token, "key": "plan", "value": "gold", "overwrite": true})
	for i := range 3 {
		id := fmt.Sprintf("seed-%d", i)
		call("POST", "livechat/message", map[string]any{"token": w.token, "rid": w.rid, "msg": "rc " + id, "_id": id})
	}
	call("POST", "livechat/page.visited", map[string]any{"token": w.token, "rid": w.rid,
		"pageInfo": map[string]any{"change": "url", "title": "Pricing", "location": map[string]any{"href": "https://shop.example/pricing"}}})
	call("PUT", "livechat/message/seed-1", map[string]any{"token": w.token, "rid": w.rid, "msg": "rc seed-1, edited"})
	call("DELETE", "livechat/message/seed-2", map[string]any{"token": w.token, "rid": w.rid})
	rcUpload(t, client, base, w)
	call("POST", "livechat/room.close", map[string]any{"token": w.token, "rid": w.rid})

	v := &visitor{t: t, base: base, id: "seed-v2-visitor"}
	v.start()
	v.send("hello from the v2 widget")
	return w.token
}

var fileIDRe = regexp.MustCompile(`[0-9a-f]{32}`)

// sameHistory compares two rcHistory results; uploaded files get new ids
// in an import from another server.
func sameHistory(t *testing.T, what string, got, want map[string]any) {
	t.Helper()
	g, _ := json.Marshal(got)
	w, _ := json.Marshal(want)
	g, w = fileIDRe.ReplaceAll(g, []byte("FILE")), fileIDRe.ReplaceAll(w, []byte("FILE"))
	if !bytes.Equal(g, w) {
		t.Fatalf("%s: history differs:\nwant %s\ngot  %s", what, w, g)
	}
}

// TestImportFromRocketChat: a chatgate seeded through its public APIs
// (the Rocket.Chat seed's room with a file, an edit, a deletion, a page
// visit and a custom field; the same visitor's second room answered by an
// agent on the LiveChat agent RTM, with an agents-only note the visitor's
// history leaves out; v2 visitors' chats) plays the Rocket.Chat server; `chatgate import --from rocketchat`
// (a process) pulls it into a new data file, once killed with SIGKILL
// midway and run again, then a third time. A gateway on the new file shows
// the same rooms and messages to the agent and to the visitor (by its old
// token), and the third run changes nothing.
func TestImportFromRocketChat(t *testing.T) {
	m := newMigration(t, seedConfig(t))
	cfg, dst, g, base := m.cfg, m.dst, m.g, m.base
	token := seedRocketChat(t, base)
	// The seed visitor comes back: the agent (on the LiveChat agent RTM,
	// the same desk) answers, leaves an agents-only note, tags and closes
	// the room. The visitor's own history must keep leaving the note out.
	client := &http.Client{Timeout: 10 * time.Second}
	w := &rcWriter{idWriter: idWriter{name: "Rita"}, token: token}
	if err := w.setup(client, base); err != nil {
		t.Fatal(err)
	}
	if _, err := rcJSON(client, "POST", base+"/api/v1/livechat/message", nil, map[string]any{"token": token, "rid": w.rid, "msg": "back with a question", "_id": "back-1"}); err != nil {
		t.Fatal(err)
	}
	var chatID string
	for chatID == "" {
		c := m.ag.next("push", "incoming_chat")["payload"].(map[string]any)["chat"].(map[string]any)
		if c["thread"].(map[string]any)["id"] == w.rid {
			chatID = c["id"].(string)
		}
	}
	m.ag.call("send_event", map[string]any{"chat_id": chatID, "event": map[string]any{"type": "message", "text": "Jane answering on the RTM"}})
	m.ag.call("send_event", map[string]any{"chat_id": chatID, "event": map[string]any{"type": "message", "text": "agents only: VIP", "visibility": "agents"}})
	m.ag.call("deactivate_chat", map[string]any{"id": chatID})
	for i := range 6 {
		v := &visitor{t: t, base: base, id: fmt.Sprintf("more-v2-visitor-%d", i)}
		v.start()
		v.send(fmt.Sprintf("visitor %d here", i))
	}
	want := rcHistory(t, base, token)
	seeded, _ := json.Marshal(want)
	for _, x := range []string{"Jane answering on the RTM", "agents only: VIP", "rc seed-1, edited", "notes.txt"} {
		if !bytes.Contains(seeded, []byte(x)) {
			t.Fatalf("the seeding lacks %q: %s", x, seeded)
		}
	}
	for k, msgs := range want {
		if vb, _ := json.Marshal(msgs); strings.HasPrefix(k, "visitor:") && bytes.Contains(vb, []byte("agents only: VIP")) {
			t.Fatalf("the visitor's own history shows the agents-only note: %s", vb)
		}
	}

	args := []string{"import", "--config", cfg, "--data", dst, "--from", "rocketchat", "--url", base,
		"--user", "jane@example.com", "--password", agentPassword, "--json"}
	// Slowly (4 requests/s), killed after the first rooms are in.
	cmd := chatgateCmd(append(args, "--rps", "4")...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2500 * time.Millisecond)
	_ = cmd.Process.Signal(syscall.SIGKILL)
	_ = cmd.Wait()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() {
		t.Fatalf("the import was not killed midway: %v", cmd.ProcessState)
	}
	var sum struct {
		Imported, Skipped, Events, Present, Failed int
	}
	decode := func(out []byte) {
		t.Helper()
		var m map[string]any
		if err := json.Unmarshal(out, &m); err != nil {
			t.Fatalf("summary %s: %v", out, err)
		}
		sum.Imported, sum.Skipped = int(m["conversations_imported"].(float64)), int(m["conversations_skipped"].(float64))
		sum.Events, sum.Present, sum.Failed = int(m["events_imported"].(float64)), int(m["events_skipped"].(float64)), int(m["failed"].(float64))
		if sum.Failed != 0 {
			t.Fatalf("failures: %s", out)
		}
	}
	decode(chatgateRun(t, nil, args...))
	if sum.Skipped == 0 || sum.Imported == 0 {
		t.Logf("resumed run: %+v (the kill came before or after every room)", sum)
	}
	first := chatgateRun(t, nil, "export", "--config", cfg, "--data", dst)
	decode(chatgateRun(t, nil, args...))
	if sum.Imported != 0 || sum.Events != 0 || sum.Skipped != 9 { // 2 Rocket.Chat rooms, 7 v2 chats
		t.Errorf("third run imported: %+v", sum)
	}
	if again := chatgateRun(t, nil, "export", "--config", cfg, "--data", dst); !bytes.Equal(withoutHeader(t, again), withoutHeader(t, first)) {
		t.Error("third run changed the store")
	}
	g.stop()

	g2 := startGateway(t, cfg, dst)
	got := rcHistory(t, "http://"+g2.addr, token)
	sameHistory(t, "import from Rocket.Chat", got, want)
}

// earlierConversation is a visitor's conversation with the embedded desk
// of the gateway on data, before any relay: the visitor writes twice, the
// agent leaves an agents-only note, the visitor closes. It returns the
// visitor (its gateway stopped).
func earlierConversation(t *testing.T, data string) *visitor {
	t.Helper()
	g := startGateway(t, writeConfig(t, true), data)
	ag := deskAgent(t, g.addr)
	v := &visitor{t: t, base: "http://" + g.addr, id: "backfill-visitor"}
	v.start()
	v.send("my order 42 never arrived")
	chat := ag.next("push", "incoming_chat")["payload"].(map[string]any)["chat"].(map[string]any)["id"].(string)
	ag.call("send_event", map[string]any{"chat_id": chat, "event": map[string]any{"type": "message", "text": "note: check the warehouse", "visibility": "agents"}})
	v.send("it was a blue teapot")
	if code, m := v.do(http.MethodPost, "close", url.Values{"secured_session_id": {v.sid}}); code != 200 {
		t.Fatalf("close: %d %v", code, m)
	}
	g.stop()
	return v
}

// TestBackfillIntoRocketChatDesk: a visitor of the front gateway chatted
// before the relay was configured; its next conversation is relayed into a
// gateway playing the upstream Rocket.Chat desk. `chatgate backfill --to
// rc` (a process, twice) sends the earlier conversation into the visitor's
// upstream room: the desk's agent sees each earlier message there once,
// marked as imported.
func TestBackfillIntoRocketChatDesk(t *testing.T) {
	deskCfg := writeFile(t, "desk.yaml", "license:\n  id: \""+testLicence+"\"\n  organization_id: desk-org\n"+
		"agents:\n  - id: jane@example.com\n    name: Jane Doe\n    token: "+agentToken+"\n    password: "+agentPassword+"\n")
	desk := startProc(t, deskCfg, filepath.Join(t.TempDir(), "desk.db"), "127.0.0.1:0")
	deskAgent(t, desk.addr)
	frontData := filepath.Join(t.TempDir(), "front.db")
	v := earlierConversation(t, frontData)

	// With the relay: the next conversation goes to the desk.
	relayCfg := frontConfig(t, rcRelay("rc", desk.addr)+"  routes:\n    - upstream: rc\n")
	g := startGateway(t, relayCfg, frontData)
	v.base = "http://" + g.addr
	v.start()
	v.send("hello again")
	var rid string
	waitFor(t, "the relayed room", waitLimit, func() bool {
		for _, c := range relayed(t, g.addr) {
			if r := upstreamRoom(c, "rc"); r != "" {
				rid = r
			}
		}
		return rid != ""
	})
	client := &http.Client{Timeout: 10 * time.Second}
	login, err := rcJSON(client, "POST", "http://"+desk.addr+"/api/v1/login", nil, map[string]any{"user": "jane@example.com", "password": agentPassword})
	if err != nil {
		t.Fatal(err)
	}
	ld, _ := login["data"].(map[string]any)
	hdr := map[string]string{"X-User-Id": fmt.Sprint(ld["userId"]), "X-Auth-Token": fmt.Sprint(ld["authToken"])}
	texts := func() []string {
		m, err := rcJSON(client, "GET", "http://"+desk.addr+"/api/v1/chat.syncMessages?roomId="+rid+"&lastUpdate=2000-01-01T00:00:00.000Z", hdr, nil)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, x := range m["result"].(map[string]any)["updated"].([]any) {
			if s := fmt.Sprint(x.(map[string]any)["msg"]); s != "" {
				out = append(out, s)
			}
		}
		return out
	}
	waitFor(t, "the live message upstream", waitLimit, func() bool { return slices.Contains(texts(), "hello again") })
	g.stop()

	args := []string{"backfill", "--config", relayCfg, "--data", frontData, "--to", "rc", "--user", "jane@example.com", "--password", agentPassword, "--json"}
	dry := chatgateRun(t, nil, append(args, "--dry-run")...)
	if !bytes.Contains(dry, []byte(`"messages_sent":3`)) {
		t.Fatalf("dry run: %s", dry)
	}
	out := chatgateRun(t, nil, args...)
	if !bytes.Contains(out, []byte(`"messages_sent":3`)) || !bytes.Contains(out, []byte(`"failed":0`)) {
		t.Fatalf("backfill: %s", out)
	}
	out = chatgateRun(t, nil, args...)
	if !bytes.Contains(out, []byte(`"messages_sent":0`)) {
		t.Fatalf("second backfill sent again: %s", out)
	}
	got := texts()
	count := map[string]int{}
	for _, s := range got {
		for _, want := range []string{"Welcome!", "my order 42 never arrived", "it was a blue teapot"} {
			if strings.HasPrefix(s, "[imported · ") && strings.Contains(s, "] "+want+"\nchatgate:") {
				count[want]++
			}
		}
	}
	if count["my order 42 never arrived"] != 1 || count["it was a blue teapot"] != 1 || count["Welcome!"] != 1 {
		t.Fatalf("upstream room after two backfills: %q", got)
	}
	for _, s := range got {
		if strings.Contains(s, "check the warehouse") {
			t.Fatalf("an agents-only note went into the visitor's room: %q", s)
		}
	}
}

// TestStoreMoveBoltPostgresBolt: the documented way between stores,
// `chatgate export --data old.db | chatgate import --store postgres://…`
// and back, gives identical exports at every step (file bodies included:
// they move into the database and out again).
func TestStoreMoveBoltPostgresBolt(t *testing.T) {
	pg := pgtest.URL(t)
	schema := pgtest.Schema(t, pg)
	sep := "?"
	if strings.Contains(pg, "?") {
		sep = "&"
	}
	pgURL := pg + sep + "search_path=" + schema
	m := newMigration(t, seedConfig(t))
	cfg, src, dst := m.cfg, m.src, m.dst
	seedRocketChat(t, m.base)
	m.g.stop()

	dump1 := chatgateRun(t, nil, "export", "--config", cfg, "--data", src)
	chatgateRun(t, dump1, "import", "--config", cfg, "--store", pgURL)
	dump2 := chatgateRun(t, nil, "export", "--config", cfg, "--store", pgURL)
	if !bytes.Equal(withoutHeader(t, dump2), withoutHeader(t, dump1)) {
		t.Fatalf("bbolt → PostgreSQL: exports differ:\n%s\n---\n%s", dump1, dump2)
	}
	chatgateRun(t, dump2, "import", "--config", cfg, "--data", dst)
	dump3 := chatgateRun(t, nil, "export", "--config", cfg, "--data", dst)
	if !bytes.Equal(withoutHeader(t, dump3), withoutHeader(t, dump1)) {
		t.Fatalf("PostgreSQL → bbolt: exports differ")
	}
	if !bytes.Contains(dump2, []byte(`"type":"blob"`)) {
		t.Fatal("the file body did not come out of PostgreSQL")
	}
}

// agentWebCall calls the agent Web API of a gateway.
func agentWebCall(t *testing.T, base, action string, payload any) map[string]any {
	t.Helper()
	b, _ := json.Marshal(payload)
	req, _ := http.NewRequest("POST", base+"/v3.5/agent/action/"+action, bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+agentToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil || resp.StatusCode != 200 {
		t.Fatalf("%s: %d %v %v", action, resp.StatusCode, m, err)
	}
	return m
}

// lcArchive reads every archived chat's threads as the agent sees them
// (list_archives, list_threads), keyed by chat id.
func lcArchive(t *testing.T, base string) map[string]any {
	t.Helper()
	out := map[string]any{}
	arch := agentWebCall(t, base, "list_archives", map[string]any{"limit": 100})
	chats, _ := arch["chats"].([]any)
	for _, c := range chats {
		id := fmt.Sprint(c.(map[string]any)["id"])
		th := agentWebCall(t, base, "list_threads", map[string]any{"chat_id": id, "sort_order": "asc"})
		for _, x := range th["threads"].([]any) {
			for _, e := range x.(map[string]any)["events"].([]any) {
				if ev := e.(map[string]any); ev["type"] == "file" {
					// A file's URL names the gateway that stores it: the
					// body it serves is what must come through.
					ev["url"] = fileBody(t, base, fmt.Sprint(ev["url"]))
				}
			}
		}
		out[id] = th["threads"]
	}
	return out
}

// fileBody is the SHA-256 of what a file URL (absolute, or relative to
// base) serves.
func fileBody(t *testing.T, base, u string) string {
	t.Helper()
	if strings.HasPrefix(u, "/") {
		u = base + u
	}
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	h := sha256.New()
	if _, err := io.Copy(h, resp.Body); err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %v", u, resp.StatusCode, err)
	}
	return fmt.Sprintf("sha256:%x", h.Sum(nil))
}

// firstDiff names the first place where two decoded JSON values differ.
func firstDiff(path string, want, got any) string {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			break
		}
		keys := slices.Sorted(maps.Keys(w))
		for k := range g {
			if _, ok := w[k]; !ok {
				keys = append(keys, k)
			}
		}
		for _, k := range keys {
			if d := firstDiff(path+"."+k, w[k], g[k]); d != "" {
				return d
			}
		}
		return ""
	case []any:
		g, ok := got.([]any)
		if !ok {
			break
		}
		for i := range max(len(w), len(g)) {
			var wi, gi any
			if i < len(w) {
				wi = w[i]
			}
			if i < len(g) {
				gi = g[i]
			}
			if d := firstDiff(fmt.Sprintf("%s[%d]", path, i), wi, gi); d != "" {
				return d
			}
		}
		return ""
	}
	wb, _ := json.Marshal(want)
	gb, _ := json.Marshal(got)
	if bytes.Equal(wb, gb) {
		return ""
	}
	return fmt.Sprintf("%s: want %s, got %s", path, wb, gb)
}

// bobToken is the second agent's token of TestImportFromLiveChat's source.
const bobToken = "bob-agent-token-0123456789"

// TestImportFromLiveChat: a chatgate seeded through its public APIs (LiveChat
// v2 visitors answered by an agent on the RTM, with event and thread
// properties, a tag, a post-chat filled_form, agents-only notes, a transfer
// to another agent and back, closes; and the Rocket.Chat seed's room with
// a file, an edit, a deletion and a page visit) plays the LiveChat Agent
// Chat API; `chatgate import --from livechat`
// (a process) pulls it into a new data file, twice. The new gateway's
// agent Web API shows the same archived chats and threads (ids, events,
// authors, times, visibility), and the second run changes nothing.
func TestImportFromLiveChat(t *testing.T) {
	cfg := writeFile(t, "lcsource.yaml", "license:\n  id: \""+testLicence+"\"\nlivechat:\n  v2:\n    poll_timeout: 1h\n"+
		"agents:\n  - id: jane@example.com\n    name: Jane Doe\n    token: "+agentToken+"\n"+
		"  - id: bob@example.com\n    name: Bob Moss\n    token: "+bobToken+"\n"+
		"rocketchat:\n  custom_fields:\n    - {id: plan, label: Plan}\n"+
		"properties:\n  routing:\n    tier:\n      type: string\n      access:\n        thread:\n          agent: [read, write]\n"+
		"  ev:\n    flag:\n      type: bool\n      access:\n        event:\n          agent: [read, write]\n")
	m := newMigration(t, cfg)
	dst, g, base, ag := m.dst, m.g, m.base, m.ag
	bob := dialAgent(t, g.addr)
	bob.call("login", map[string]any{"token": "Bearer " + bobToken})
	// Bob takes no new chats: Jane gets every one, Bob only the transfer.
	bob.call("set_routing_status", map[string]any{"status": "not_accepting_chats"})
	msg := func(text string) map[string]any { return map[string]any{"type": "message", "text": text} }
	for i := range 3 {
		v := &visitor{t: t, base: base, id: fmt.Sprintf("lc-source-visitor-%d", i)}
		v.start()
		v.send(fmt.Sprintf("question %d", i))
		inc := ag.next("push", "incoming_chat")
		chat := inc["payload"].(map[string]any)["chat"].(map[string]any)
		chatID, threadID := chat["id"].(string), chat["thread"].(map[string]any)["id"].(string)
		answer := msg(fmt.Sprintf("answer %d", i))
		answer["properties"] = map[string]any{"ev": map[string]any{"flag": true}}
		ag.call("send_event", map[string]any{"chat_id": chatID, "event": answer})
		note := msg("note for agents")
		note["visibility"] = "agents"
		ag.call("send_event", map[string]any{"chat_id": chatID, "event": note})
		switch i {
		case 0: // properties and tags of the thread; a post-chat form
			ag.call("update_thread_properties", map[string]any{"chat_id": chatID, "thread_id": threadID,
				"properties": map[string]any{"routing": map[string]any{"tier": "gold"}}})
			ag.call("tag_thread", map[string]any{"chat_id": chatID, "thread_id": threadID, "tag": "billing"})
			ag.call("send_event", map[string]any{"chat_id": chatID, "event": map[string]any{"type": "filled_form",
				"form_id": "postchat-1", "form_type": "postchat", "fields": []any{
					map[string]any{"type": "text", "id": "1", "label": "Comment", "answer": "quick and kind"}}}})
		case 1: // transfers: to another agent, who answers, and back (an
			// agent's archives show the chats it serves)
			ag.call("transfer_chat", map[string]any{"id": chatID, "target": map[string]any{"type": "agent", "ids": []string{"bob@example.com"}}})
			bob.call("send_event", map[string]any{"chat_id": chatID, "event": msg("Bob here, taking over")})
			bob.call("transfer_chat", map[string]any{"id": chatID, "target": map[string]any{"type": "agent", "ids": []string{"jane@example.com"}}})
		}
		ag.call("deactivate_chat", map[string]any{"id": chatID})
	}
	// Files, edits, deletions, a page visit and a closed room of the
	// Rocket.Chat surface are threads of the LiveChat surface too.
	seedRocketChat(t, base)
	want := lcArchive(t, base)
	threads := 0
	for _, th := range want {
		threads += len(th.([]any))
	}
	if len(want) != 4 {
		t.Fatalf("source archives: %v", want)
	}
	seeded, _ := json.Marshal(want)
	for _, w := range []string{`"type":"filled_form"`, `"form_type":"postchat"`, `"tier":"gold"`, `"tags":["billing"]`,
		`"properties":{"ev":{"flag":true}}`, `"visibility":"agents"`, `"system_message_type":"chat_transferred"`,
		`Bob here, taking over`, `"type":"file"`, `"text":"rc seed-1, edited"`} {
		if !bytes.Contains(seeded, []byte(w)) {
			t.Fatalf("the seeding lacks %s: %s", w, seeded)
		}
	}

	args := []string{"import", "--config", cfg, "--data", dst, "--from", "livechat", "--url", base, "--auth-token", agentToken, "--json"}
	out := chatgateRun(t, nil, args...)
	if !bytes.Contains(out, fmt.Appendf(nil, `"conversations_imported":%d`, threads)) || !bytes.Contains(out, []byte(`"failed":0`)) {
		t.Fatalf("import of %d threads: %s", threads, out)
	}
	first := chatgateRun(t, nil, "export", "--config", cfg, "--data", dst)
	out = chatgateRun(t, nil, args...)
	if !bytes.Contains(out, []byte(`"conversations_imported":0`)) || !bytes.Contains(out, fmt.Appendf(nil, `"conversations_skipped":%d`, threads)) {
		t.Fatalf("second import: %s", out)
	}
	if again := chatgateRun(t, nil, "export", "--config", cfg, "--data", dst); !bytes.Equal(withoutHeader(t, again), withoutHeader(t, first)) {
		t.Error("second run changed the store")
	}
	g.stop()

	g2 := startGateway(t, cfg, dst)
	got := lcArchive(t, "http://"+g2.addr)
	g1, _ := json.Marshal(got)
	w1, _ := json.Marshal(want)
	if !bytes.Equal(g1, w1) {
		t.Fatalf("archives differ after the import: %s", firstDiff("", want, got))
	}
}
