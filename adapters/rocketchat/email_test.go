package rocketchat

import (
	"context"
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
