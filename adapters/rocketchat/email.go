package rocketchat

// email.go: the e-mails Rocket.Chat sends for livechat (a transcript on
// request, offline messages forwarded to the department's address), as
// rows of the store's outbox that core/mail delivers through SMTP. A row
// is committed before the request is answered, so an acknowledged e-mail
// is owed across restarts. Without SMTP configured (Config.Mail nil) the
// routes answer Rocket.Chat's failure bodies and livechat/config says
// transcript:false, so the widget does not offer one.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"html"
	"strings"
	"time"

	"chatgate/core/desk"
	"chatgate/core/mail"
	"chatgate/core/model"
	"chatgate/store"
)

// Mailer is what the surface needs of the e-mail sender: a nudge after it
// committed an outbox row (core/mail.Sender).
type Mailer interface{ Kick() }

// Texts of Rocket.Chat's defaults (i18n en, settings).
const (
	transcriptSubject = "Transcript of your livechat conversation"
	transcriptPrompt  = "Would you like a copy of this chat emailed?"
)

// queueMail commits the outbox row owing m and nudges the sender.
func (s *Surface) queueMail(ctx context.Context, kind string, conv model.ConvID, m mail.Message) error {
	r, err := mail.Row(model.NewID(), kind, conv, m, s.d.Now())
	if err != nil {
		return err
	}
	if err := s.d.Store().Commit(context.WithoutCancel(ctx), &store.Batch{Outbox: []store.OutboxRow{r}}); err != nil {
		return fmt.Errorf("queue %s e-mail: %w", kind, err)
	}
	s.cfg.Mail.Kick()
	return nil
}

// idemTranscript is the idempotency system of transcript requests.
const idemTranscript = System + ".transcript"

// sendTranscript owes the transcript of conv to the address to, and
// records it in the room as Rocket.Chat's sendTranscript does: a system
// message t "livechat_transcript_history" (u rocket.cat, requestData
// type "visitor", for a request by the visitor's token), which every
// surface shows as a system event (model.SysTranscript). The e-mail's
// outbox row, the message and an idempotency key are one commit.
//
// The key is derived from the request: the room, the address (lower
// case) and the last event of the room the transcript covers, its own
// transcript records left out. A request retried after a lost answer
// therefore finds its key and sends nothing more, while a request after a
// new message, or to another address, sends a new e-mail. (Rocket.Chat
// sends one e-mail per request; it has no retry of its own to guard.)
func (s *Surface) sendTranscript(ctx context.Context, conv model.Conversation, v model.Visitor, to string) error {
	evs, err := s.d.Store().Events(ctx, conv.ID, 1, 0)
	if err != nil {
		return fmt.Errorf("transcript of %s: %w", conv.ID, err)
	}
	var last uint64
	for i := range evs {
		if evs[i].Kind != model.KindSystem || evs[i].Subtype != model.SysTranscript {
			last = evs[i].Seq
		}
	}
	m := s.transcriptMail(ctx, evs, v, to)
	row, err := mail.Row(model.NewID(), "transcript", conv.ID, m, s.d.Now())
	if err != nil {
		return err
	}
	guest := v.Name
	if guest == "" {
		guest = s.username(ctx, v.ID)
	}
	_, replayed, err := s.d.Post(ctx, desk.PostRequest{Conv: conv.ID, Author: model.System, AfterClose: true,
		Draft: desk.Draft{Kind: model.KindSystem, Subtype: model.SysTranscript,
			Text: "Chat transcript sent: " + guest + " requested the chat transcript",
			Vars: map[string]string{"by_kind": string(model.AuthorVisitor), "visitor_id": string(v.ID), "visitor_name": v.Name}},
		IdemSystem: idemTranscript, IdemKey: transcriptKey(conv.ID, to, last), Outbox: []store.OutboxRow{row}})
	if err != nil {
		return fmt.Errorf("queue transcript e-mail: %w", err)
	}
	if !replayed {
		s.cfg.Mail.Kick()
	}
	return nil
}

// transcriptKey is the idempotency key of a transcript request (a hash,
// so the address is not kept in the idempotency table).
func transcriptKey(conv model.ConvID, to string, last uint64) string {
	h := sha256.Sum256([]byte(fmt.Sprintf("%s\x00%s\x00%d", conv, strings.ToLower(to), last)))
	return hex.EncodeToString(h[:])
}

// transcriptMail renders a room's transcript as Rocket.Chat's
// Livechat.sendTranscript does: the messages the visitor saw, oldest
// first, each with its author and time; system messages (navigation,
// started, closed, transfers, commands, transcript records) and deleted
// messages are left out. Times are UTC (chatgate has no visitor time
// zone).
func (s *Surface) transcriptMail(ctx context.Context, evs []model.Event, v model.Visitor, to string) mail.Message {
	var text, htm strings.Builder
	for i := range evs {
		e := &evs[i]
		if e.Kind != model.KindMessage || e.Deleted || !e.VisibleToVisitor() {
			continue
		}
		name := e.Author.Name
		switch e.Author.Kind {
		case model.AuthorVisitor:
			if e.Author.ID == string(v.ID) && v.Name != "" {
				name = v.Name
			} else if name == "" {
				name = s.username(ctx, model.VisitorID(e.Author.ID))
			}
		case model.AuthorAgent:
			if a, ok := s.d.Router().Agent(model.AgentID(e.Author.ID)); ok {
				name = agentUsername(a)
				if a.Name != "" {
					name = a.Name
				}
			}
		}
		when := e.At.UTC().Format(time.DateTime)
		body := e.Text
		if e.File != nil && body == "" {
			body = e.File.Name
		}
		fmt.Fprintf(&text, "%s (%s UTC):\n%s\n\n", name, when, body)
		fmt.Fprintf(&htm, "<p><strong>%s</strong> <em>%s UTC</em></p><p>%s</p>\n", html.EscapeString(name), when,
			strings.ReplaceAll(html.EscapeString(body), "\n", "<br>"))
	}
	return mail.Message{To: []string{to}, Subject: transcriptSubject, Text: text.String(),
		HTML: "<div>" + htm.String() + "</div>"}
}

// offlineMail is the e-mail of an offline message, as Rocket.Chat's
// Livechat.sendOfflineMessage writes it (subject "Livechat offline
// message from <name>: <first 20 characters>", reply-to the visitor).
func offlineMail(to, name, email, dept, msg string) mail.Message {
	short := []rune(msg)
	if len(short) > 20 {
		short = short[:20]
	}
	var text strings.Builder
	fmt.Fprintf(&text, "Visitor name: %s\nVisitor email: %s\n", name, email)
	if dept != "" {
		fmt.Fprintf(&text, "Department: %s\n", dept)
	}
	fmt.Fprintf(&text, "Message:\n%s\n", msg)
	htm := strings.ReplaceAll(html.EscapeString(text.String()), "\n", "<br>")
	return mail.Message{To: []string{to}, ReplyTo: email,
		Subject: "Livechat offline message from " + name + ": " + string(short), Text: text.String(), HTML: htm}
}

// offlineRecipient is where an offline message for dept goes: the
// department's address, else the default one ("" = nowhere).
func (s *Surface) offlineRecipient(dept model.DeptID) string {
	if a := s.cfg.DepartmentEmails[dept]; dept != "" && a != "" {
		return a
	}
	return s.cfg.OfflineEmail
}

// transcriptPromptIf is livechat/config's transcriptMessage: the prompt
// when transcripts can be sent.
func transcriptPromptIf(on bool) string {
	if on {
		return transcriptPrompt
	}
	return ""
}
