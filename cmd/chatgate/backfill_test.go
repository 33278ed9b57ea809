//go:build unix

package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestBackfillIntoLiveChatDesk: a visitor of the front gateway chatted with
// its embedded desk before the relay was configured; its next conversation
// is relayed into a gateway playing the upstream LiveChat desk, whose agent
// closes it. `chatgate backfill --to lc` (a process) adds the earlier
// conversation there as one agents-only transcript message in the
// visitor's chat (its archived last thread: attach_to_last_thread); the desk's agent,
// on its RTM socket, sees it once after a second run and after a run on a
// copy of the store taken before the first (a backfill killed between
// its send and its record): the transcript already upstream is found and
// not sent again.
func TestBackfillIntoLiveChatDesk(t *testing.T) {
	desk := startProc(t, deskConfig(t), filepath.Join(t.TempDir(), "desk.db"), "127.0.0.1:0")
	ag := deskAgent(t, desk.addr)
	frontData := filepath.Join(t.TempDir(), "front.db")
	v := earlierConversation(t, frontData)

	relayCfg := frontConfig(t, lcRelay("lc", desk.addr))
	g := startGateway(t, relayCfg, frontData)
	v.base = "http://" + g.addr
	v.start()
	v.send("hello again")
	chatID := ag.next("push", "incoming_chat")["payload"].(map[string]any)["chat"].(map[string]any)["id"].(string)
	waitFor(t, "the live message upstream", waitLimit, func() bool {
		texts, _ := customerTexts(ag, chatID)
		return slices.Contains(texts, "hello again")
	})
	// The desk's agent closes the chat: the transcript goes into its last
	// (archived) thread, with attach_to_last_thread.
	ag.call("deactivate_chat", map[string]any{"id": chatID})
	waitFor(t, "the close at the visitor", waitLimit, func() bool {
		evs := v.poll()
		return len(evs) > 0 && evs[len(evs)-1]["type"] == "chat_closed"
	})
	g.stop()

	copyData := filepath.Join(t.TempDir(), "front-copy.db")
	raw, err := os.ReadFile(frontData)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(copyData, raw, 0o600); err != nil {
		t.Fatal(err)
	}

	args := []string{"backfill", "--config", relayCfg, "--data", frontData, "--to", "lc", "--json"}
	runs := []struct {
		name string
		args []string
		want string
	}{
		{"dry run", append(slices.Clone(args), "--dry-run"), `"messages_sent":1,"messages_skipped":0`},
		{"first", args, `"messages_sent":1,"messages_skipped":0`},
		{"second", args, `"visitors_skipped":1,"messages_sent":0`},
		{"killed before its record", []string{"backfill", "--config", relayCfg, "--data", copyData, "--to", "lc", "--json"}, `"messages_sent":0,"messages_skipped":1`},
	}
	for _, r := range runs {
		out := chatgateRun(t, nil, r.args...)
		if !bytes.Contains(out, []byte(r.want)) || !bytes.Contains(out, []byte(`"failed":0`)) {
			t.Fatalf("%s backfill: %s, want %s", r.name, out, r.want)
		}
	}

	// The desk's agent reads the chat's threads.
	threads := ag.call("list_threads", map[string]any{"chat_id": chatID, "limit": 100})
	var transcripts []map[string]any
	for _, th := range threads["threads"].([]any) {
		for _, e := range th.(map[string]any)["events"].([]any) {
			ev := e.(map[string]any)
			if strings.Contains(fmt.Sprint(ev["text"]), "chatgate:transcript/") {
				transcripts = append(transcripts, ev)
			}
		}
	}
	if len(transcripts) != 1 {
		b, _ := json.Marshal(threads)
		t.Fatalf("want one transcript upstream, got %d: %s", len(transcripts), b)
	}
	tr := transcripts[0]
	text := fmt.Sprint(tr["text"])
	if tr["type"] != "message" || tr["visibility"] != "agents" {
		t.Errorf("transcript event: %v", tr)
	}
	// Order kept; the agents-only note is marked as such.
	want := []string{"Earlier conversations of Vera (1,", "system: Welcome!", "system: Jane Doe joined the chat", "Vera: my order 42 never arrived",
		"Jane Doe (agents only): note: check the warehouse", "Vera: it was a blue teapot", "system: Vera closed the chat", "chatgate:transcript/"}
	at := 0
	for _, w := range want {
		i := strings.Index(text[at:], w)
		if i < 0 {
			t.Fatalf("transcript lacks %q after byte %d:\n%s", w, at, text)
		}
		at += i + len(w)
	}
	if strings.Contains(text, "hello again") {
		t.Errorf("the relayed conversation is in the transcript:\n%s", text)
	}
}
