package rocketchat

import (
	"context"
	"encoding/json"
	"io"
	"mime"
	"mime/multipart"
	"net/mail"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"chatgate/core/desk"
	cmail "chatgate/core/mail"
	"chatgate/core/mail/mailtest"
	"chatgate/core/model"
)

// withMail gives h's surface a real e-mail sender talking to a real SMTP
// server on loopback, running until the test ends.
func withMail(t *testing.T, h *rh) *mailtest.Server {
	t.Helper()
	srv := mailtest.Start(t, "chatgate", "smtp-secret")
	snd, err := cmail.NewSender(h.st, cmail.Config{Host: srv.Host, Port: srv.Port, Username: "chatgate", Password: "smtp-secret",
		From: "Support <support@example.com>", TLS: cmail.TLSNone, PollInterval: 10 * time.Millisecond}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	h.s.cfg.Mail = snd
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = snd.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return srv
}

// mailParts reads a message's headers and its text/plain and text/html
// parts.
func mailParts(t *testing.T, raw []byte) (mail.Header, string, string) {
	t.Helper()
	msg, err := mail.ReadMessage(strings.NewReader(string(raw)))
	if err != nil {
		t.Fatal(err)
	}
	dec := new(mime.WordDecoder)
	for k, vs := range msg.Header {
		for i, v := range vs {
			if d, err := dec.DecodeHeader(v); err == nil {
				msg.Header[k][i] = d
			}
		}
	}
	mt, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil || !strings.HasPrefix(mt, "multipart/") {
		t.Fatalf("content type %q: %v", msg.Header.Get("Content-Type"), err)
	}
	var text, htm string
	mr := multipart.NewReader(msg.Body, params["boundary"])
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(p) // quoted-printable is decoded by NextPart
		switch ct, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type")); ct {
		case "text/plain":
			text = string(b)
		case "text/html":
			htm = string(b)
		}
	}
	return msg.Header, text, htm
}

// TestTranscriptEmail: POST livechat/transcript e-mails the room's
// transcript (the messages the visitor saw, with their authors; not
// system or agents-only events) to the given address through SMTP, as
// Rocket.Chat's Livechat.sendTranscript does, and answers its success
// body; livechat/config then offers transcripts.
func TestTranscriptEmail(t *testing.T) {
	h := newRH(t)
	h.online("ann@x")
	srv := withMail(t, h)
	h.visitor("tok-tr", "Tina")
	rid := h.room("tok-tr")
	h.send("tok-tr", rid, "Where is my <order>?")
	conv, err := h.s.conversation(context.Background(), rid)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := h.d.Post(context.Background(), deskPost(conv.ID, "ann@x", "It ships today.")); err != nil {
		t.Fatal(err)
	}
	h.ok("POST", "/api/v1/livechat/room.close", map[string]any{"rid": rid, "token": "tok-tr"}, nil)
	cfg := h.ok("GET", "/api/v1/livechat/config", nil, nil)["config"].(map[string]any)
	if cfg["settings"].(map[string]any)["transcript"] != true || cfg["messages"].(map[string]any)["transcriptMessage"] == "" {
		t.Errorf("config with e-mail: %v %v", cfg["settings"], cfg["messages"])
	}
	m := h.ok("POST", "/api/v1/livechat/transcript", map[string]any{"token": "tok-tr", "rid": rid, "email": "tina@example.com"}, nil)
	if m["message"] != "Omnichannel transcript sent" {
		t.Errorf("transcript answer %v", m)
	}
	got := srv.Wait(t, 1, 10*time.Second)
	if len(got.To) != 1 || got.To[0] != "tina@example.com" || got.From != "support@example.com" {
		t.Errorf("envelope %q -> %v", got.From, got.To)
	}
	hdr, text, htm := mailParts(t, got.Data)
	if hdr.Get("Subject") != transcriptSubject {
		t.Errorf("subject %q", hdr.Get("Subject"))
	}
	for _, want := range []string{"Tina (", "Where is my <order>?", "Ann (", "It ships today."} {
		if !strings.Contains(text, want) {
			t.Errorf("text part lacks %q:\n%s", want, text)
		}
	}
	if !strings.Contains(htm, "Where is my &lt;order&gt;?") || strings.Contains(htm, "<order>") {
		t.Errorf("html part not escaped:\n%s", htm)
	}
	for _, not := range []string{"Chat started", "Closed by visitor"} {
		if strings.Contains(text, not) {
			t.Errorf("system message %q in the transcript:\n%s", not, text)
		}
	}
	// A bad address or another visitor's room sends nothing.
	code, m, _ := h.do("POST", "/api/v1/livechat/transcript", map[string]any{"token": "tok-tr", "rid": rid, "email": "not-an-address"}, nil)
	wantErr(t, "bad address", code, m, 400, map[string]any{"success": false, "message": "Error sending Omnichannel transcript"})
	h.visitor("tok-other", "")
	code, m, _ = h.do("POST", "/api/v1/livechat/transcript", map[string]any{"token": "tok-other", "rid": rid, "email": "x@example.com"}, nil)
	wantErr(t, "other visitor", code, m, 400, map[string]any{"success": false, "error": "error-invalid-room"})
	time.Sleep(50 * time.Millisecond) // not an assertion: gives a wrong send time to show up
	if n := len(srv.Mails()); n != 1 {
		t.Errorf("%d mails, want 1", n)
	}
}

// TestOfflineMessageEmail: livechat/offline.message forwards the message
// to the department's address (else the default one) through SMTP, with
// the visitor as reply-to, as Rocket.Chat's Livechat.sendOfflineMessage.
func TestOfflineMessageEmail(t *testing.T) {
	h := newRH(t)
	srv := withMail(t, h)
	h.s.cfg.OfflineEmail = "desk@example.com"
	h.s.cfg.DepartmentEmails = map[model.DeptID]string{"sales": "sales@example.com"}
	for i, tc := range []struct {
		dept, to string
	}{
		{"sales", "sales@example.com"},
		{"", "desk@example.com"},
		{"sup", "desk@example.com"}, // no address of its own
	} {
		h.ok("POST", "/api/v1/livechat/offline.message", map[string]any{"name": "Olga", "email": "olga@example.com",
			"message": "Please call me back about the invoice", "department": tc.dept}, nil)
		got := srv.Wait(t, i+1, 10*time.Second)
		if len(got.To) != 1 || got.To[0] != tc.to {
			t.Errorf("dept %q: sent to %v, want %s", tc.dept, got.To, tc.to)
		}
		hdr, text, _ := mailParts(t, got.Data)
		if hdr.Get("Subject") != "Livechat offline message from Olga: Please call me back" || !strings.Contains(hdr.Get("Reply-To"), "olga@example.com") {
			t.Errorf("headers %v", hdr)
		}
		if !strings.Contains(text, "Please call me back about the invoice") || !strings.Contains(text, "olga@example.com") {
			t.Errorf("text %s", text)
		}
	}
}

// TestEmailWithoutSMTP: without SMTP the transcript is refused with
// Rocket.Chat's failure body, config offers none, and offline messages
// are only stored.
func TestEmailWithoutSMTP(t *testing.T) {
	h := newRH(t)
	h.online("ann@x")
	h.visitor("tok-n", "")
	rid := h.room("tok-n")
	cfg := h.ok("GET", "/api/v1/livechat/config", nil, nil)["config"].(map[string]any)
	if cfg["settings"].(map[string]any)["transcript"] != false {
		t.Errorf("transcript offered without SMTP")
	}
	code, m, _ := h.do("POST", "/api/v1/livechat/transcript", map[string]any{"token": "tok-n", "rid": rid, "email": "n@example.com"}, nil)
	wantErr(t, "transcript", code, m, 400, map[string]any{"success": false, "message": "Error sending Omnichannel transcript"})
	h.ok("POST", "/api/v1/livechat/offline.message", map[string]any{"name": "N", "email": "n@example.com", "message": "hi"}, nil)
	due, err := h.st.OutboxDue(context.Background(), cmail.TargetPrefix, time.Now().Add(time.Hour), 0, 0)
	if err != nil || len(due) != 0 {
		t.Errorf("e-mail rows without SMTP: %v %v", due, err)
	}
}

// deskPost is an agent's message.
func deskPost(conv model.ConvID, agent model.AgentID, text string) desk.PostRequest {
	return desk.PostRequest{Conv: conv, Author: model.Author{Kind: model.AuthorAgent, ID: string(agent)}, Draft: desk.Draft{Text: text}}
}

// quietMailer is a Mailer whose sender is not running: the e-mails a
// request owes stay in the outbox, where a test counts them.
type quietMailer struct{}

func (quietMailer) Kick() {}

// owedTranscripts counts the transcript e-mails waiting in h's outbox.
func owedTranscripts(t *testing.T, h *rh) []cmail.Message {
	t.Helper()
	rows, err := h.st.OutboxDue(context.Background(), cmail.TargetPrefix+"transcript", time.Now().Add(time.Hour), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]cmail.Message, 0, len(rows))
	for _, r := range rows {
		var m cmail.Message
		if err := json.Unmarshal(r.Payload, &m); err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

// transcriptHistory returns the livechat_transcript_history messages of
// the room as the visitor's history shows them.
func transcriptHistory(h *rh, token, rid string) []map[string]any {
	var out []map[string]any
	for _, m := range h.history(token, rid) {
		if m["t"] == "livechat_transcript_history" {
			out = append(out, m)
		}
	}
	return out
}

// TestTranscriptRetryIdempotent: the same livechat/transcript request
// retried (the client lost the first answer) owes one e-mail, not two;
// its key is the room, the address and the last event the transcript
// covers, so a request to another address, or after a new message, owes
// a new one.
func TestTranscriptRetryIdempotent(t *testing.T) {
	h := newRH(t)
	h.online("ann@x")
	h.s.cfg.Mail = quietMailer{}
	h.visitor("tok-rt", "Rita")
	rid := h.room("tok-rt")
	h.send("tok-rt", rid, "first question")
	req := map[string]any{"token": "tok-rt", "rid": rid, "email": "rita@example.com"}
	for i := 0; i < 3; i++ {
		if m := h.ok("POST", "/api/v1/livechat/transcript", req, nil); m["message"] != "Omnichannel transcript sent" {
			t.Fatalf("attempt %d: %v", i, m)
		}
	}
	if got := owedTranscripts(t, h); len(got) != 1 {
		t.Fatalf("%d e-mails owed after a request and two retries, want 1", len(got))
	}
	if n := len(transcriptHistory(h, "tok-rt", rid)); n != 1 {
		t.Errorf("%d transcript history messages, want 1", n)
	}
	// Another address (the case of the address does not count).
	h.ok("POST", "/api/v1/livechat/transcript", map[string]any{"token": "tok-rt", "rid": rid, "email": "boss@example.com"}, nil)
	h.ok("POST", "/api/v1/livechat/transcript", map[string]any{"token": "tok-rt", "rid": rid, "email": "RITA@example.com"}, nil)
	if got := owedTranscripts(t, h); len(got) != 2 {
		t.Fatalf("%d e-mails owed after another address, want 2", len(got))
	}
	// After a new message the same address gets the longer transcript.
	h.send("tok-rt", rid, "second question")
	h.ok("POST", "/api/v1/livechat/transcript", req, nil)
	got := owedTranscripts(t, h)
	if len(got) != 3 || !strings.Contains(got[2].Text, "second question") {
		t.Fatalf("after a new message: %d e-mails owed, last %+v", len(got), got[len(got)-1])
	}
}

// TestTranscriptHistoryMessage: as Rocket.Chat's sendTranscript
// (apps/meteor/app/livechat/server/lib/sendTranscript.ts), a transcript
// request by the visitor adds a system message t
// "livechat_transcript_history", msg "", from rocket.cat, with requestData
// {type: "visitor", visitor, user: rocket.cat}, also in a room already
// closed; it reaches the room's stream, and the transcript itself leaves
// it out. The visitor's token is not in requestData (chatgate: a room's
// visitor may change).
func TestTranscriptHistoryMessage(t *testing.T) {
	h := newRH(t)
	h.online("ann@x")
	h.s.cfg.Mail = quietMailer{}
	h.visitor("tok-th", "Theo")
	rid := h.room("tok-th")
	h.send("tok-th", rid, "hello")
	c := dialDDP(t, h.srv.URL, "/websocket")
	c.connect()
	c.mustSub(streamRoomMessages, rid, "tok-th")
	h.ok("POST", "/api/v1/livechat/transcript", map[string]any{"token": "tok-th", "rid": rid, "email": "theo@example.com"}, nil)
	f := c.changed(streamRoomMessages)
	_, args := ddpStreamArgs(t, f)
	if m := args[0].(map[string]any); m["t"] != "livechat_transcript_history" {
		t.Errorf("stream frame %s", f.raw)
	}
	hist := transcriptHistory(h, "tok-th", rid)
	if len(hist) != 1 {
		t.Fatalf("history has %d transcript messages", len(hist))
	}
	m := hist[0]
	vid := h.ok("GET", "/api/v1/livechat/visitor/tok-th", nil, nil)["visitor"].(map[string]any)["_id"]
	u, _ := m["u"].(map[string]any)
	rd, _ := m["requestData"].(map[string]any)
	vis, _ := rd["visitor"].(map[string]any)
	user, _ := rd["user"].(map[string]any)
	if m["msg"] != "" || u["_id"] != "rocket.cat" || rd["type"] != "visitor" || vis["_id"] != vid || vis["name"] != "Theo" ||
		user["username"] != "rocket.cat" || m["groupable"] != false {
		t.Errorf("transcript history message %v", m)
	}
	if _, ok := vis["token"]; ok {
		t.Errorf("requestData carries the visitor's token: %v", vis)
	}
	// In a closed room too; and a later transcript leaves the record out.
	h.ok("POST", "/api/v1/livechat/room.close", map[string]any{"rid": rid, "token": "tok-th"}, nil)
	h.ok("POST", "/api/v1/livechat/transcript", map[string]any{"token": "tok-th", "rid": rid, "email": "other@example.com"}, nil)
	if n := len(transcriptHistory(h, "tok-th", rid)); n != 2 {
		t.Errorf("closed room: %d transcript messages, want 2", n)
	}
	owed := owedTranscripts(t, h)
	if len(owed) != 2 || strings.Contains(owed[1].Text, "transcript") || !strings.Contains(owed[1].Text, "hello") {
		t.Errorf("second transcript %+v", owed)
	}
}
