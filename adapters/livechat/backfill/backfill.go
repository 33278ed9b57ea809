// Package backfill adds relayed visitors' earlier conversations to the
// upstream LiveChat desk their chats are relayed to.
//
// LiveChat has no way to write past events: every event a client sends
// is appended with the server's time. So a visitor's earlier
// conversations (those the connector did not carry) go up as ONE
// transcript event, added to the LiveChat chat that the visitor's first
// relayed conversation opened (a LiveChat customer keeps one chat across
// threads). It is a `message` with `visibility: "agents"`, sent with the
// Agent Chat API (send_event, with attach_to_last_thread so that an
// archived chat takes it into its last thread, per the Agent Chat API
// v3.5 and lc-sdk-js's agent sendEvent):
//
//   - a message, because it is the event type every LiveChat agent app
//     renders as text; a system_message carries a system_message_type the
//     apps render by type, a file needs a CDN upload the agent app shows as
//     a download, a rich_message holds at most 10 cards, and custom and
//     form events are not rendered at all (spec §2.4);
//   - agents-only, because it is history for the desk's agents: the
//     visitor's widget does not show it again in the current chat, and the
//     earlier conversations' agents-only notes can be part of it (marked
//     "(agents only)") without reaching the visitor.
//
// Its custom_id is "chatgate-transcript/<visitor id>" and its last line
// "chatgate:transcript/<visitor id>": before sending, the chat's threads
// are read (list_threads) and a transcript already there is not sent
// again, so a backfill killed between the send and its record, or run
// twice, leaves one transcript upstream. A LiveChat message holds 16 KB
// of text (§2.4): a longer history keeps its newest lines, and the first
// line says how many older ones were left out.
package backfill

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"chatgate/adapters/backfill"
	"chatgate/adapters/internal/httpsource"
	"chatgate/core/model"
	"chatgate/core/relay"
)

// MaxText is the most text a transcript holds: LiveChat's message text
// limit (16 KB), less room for the JSON escapes a server may count.
const MaxText = 16000

// maxLine bounds one event's line, so that one long message cannot crowd
// out the rest of the transcript.
const maxLine = 2000

// Options configure the desk.
type Options struct {
	// URL is the Agent Chat API host (the connector's url:
	// https://api.livechatinc.com, or a chatgate playing the desk).
	URL string
	// Version is the API version (default 3.5).
	Version string
	// Token is an agent access token (sent as "Bearer <token>"), or Basic
	// "<account id>:<personal access token>" credentials.
	Token, Basic string
	RPS          float64
}

type desk struct {
	o Options
	c *httpsource.Client
}

// New returns the desk of a LiveChat upstream, for backfill.Run.
func New(o Options) backfill.Desk {
	if o.Version == "" {
		o.Version = "3.5"
	}
	return &desk{o: o, c: httpsource.New(o.URL, backfill.RPS(o.RPS))}
}

// Requests implements backfill.Desk.
func (d *desk) Requests() int64 { return d.c.Requests() }

// Login implements backfill.Desk: the Web API takes the credentials on
// every request.
func (d *desk) Login(context.Context) error {
	switch {
	case d.o.Token != "":
		d.c.Header.Set("Authorization", "Bearer "+d.o.Token)
	case d.o.Basic != "":
		d.c.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(d.o.Basic)))
	default:
		return errors.New("upstream agent credentials: give --auth-token (or the connector's agent_token) or --basic")
	}
	return nil
}

func (d *desk) action(ctx context.Context, name string, payload, out any) error {
	if err := d.c.JSON(ctx, "POST", "/v"+d.o.Version+"/agent/action/"+name, payload, out); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// Mark is the last line of a visitor's transcript.
func Mark(v model.VisitorID) string { return "chatgate:transcript/" + string(v) }

// customID is the transcript event's custom_id.
func customID(v model.VisitorID) string { return "chatgate-transcript/" + string(v) }

// Send implements backfill.Desk.
func (d *desk) Send(ctx context.Context, h *backfill.History, dryRun bool) (backfill.Result, error) {
	var res backfill.Result
	chat := ""
	for _, room := range h.Rooms {
		if i := strings.LastIndexByte(room, '/'); i > 0 {
			chat = room[:i] // "<chat id>/<thread id>" (adapters/livechat/upstream)
			break
		}
	}
	if chat == "" {
		return res, errors.New("the visitor's relayed conversations have no upstream chat yet: run the backfill after the relay opened one")
	}
	text, ok := Transcript(h)
	if !ok {
		return res, nil // nothing earlier to tell
	}
	there, err := d.present(ctx, chat, h.Visitor.ID)
	if err != nil {
		return res, err
	}
	if there {
		res.Present = 1
		return res, nil
	}
	res.Sent = 1
	if dryRun {
		return res, nil
	}
	ev := map[string]any{"type": "message", "text": text, "visibility": "agents", "custom_id": customID(h.Visitor.ID)}
	if err := d.action(ctx, "send_event", map[string]any{"chat_id": chat, "event": ev, "attach_to_last_thread": true}, nil); err != nil {
		res.Sent = 0
		return res, err
	}
	return res, nil
}

// present reports whether the chat holds the visitor's transcript (by its
// custom_id, or by its mark should a desk not echo custom_id).
func (d *desk) present(ctx context.Context, chat string, v model.VisitorID) (bool, error) {
	mark, cid := Mark(v), customID(v)
	page := ""
	for {
		req := map[string]any{"chat_id": chat, "sort_order": "asc", "limit": 100}
		if page != "" {
			req = map[string]any{"chat_id": chat, "page_id": page}
		}
		var out struct {
			Threads []struct {
				Events []struct {
					CustomID string `json:"custom_id"`
					Text     string `json:"text"`
				} `json:"events"`
			} `json:"threads"`
			NextPageID string `json:"next_page_id"`
		}
		if err := d.action(ctx, "list_threads", req, &out); err != nil {
			return false, err
		}
		for _, t := range out.Threads {
			for _, e := range t.Events {
				if e.CustomID == cid || strings.HasSuffix(e.Text, "\n"+mark) {
					return true, nil
				}
			}
		}
		if out.NextPageID == "" || out.NextPageID == page {
			return false, nil
		}
		page = out.NextPageID
	}
}

// Transcript renders a visitor's earlier conversations as the text of one
// LiveChat message; false when they hold nothing to tell.
func Transcript(h *backfill.History) (string, bool) {
	var lines []string
	convs := 0
	for _, c := range h.Earlier {
		var body []string
		for i := range c.Events {
			if l, ok := line(h, &c.Events[i]); ok {
				body = append(body, l)
			}
		}
		if len(body) == 0 {
			continue
		}
		convs++
		head := "— conversation of " + c.CreatedAt.UTC().Format("2006-01-02 15:04 UTC")
		if c.Department != "" {
			head += " · department " + string(c.Department)
		}
		lines = append(lines, head+" —")
		lines = append(lines, body...)
	}
	if convs == 0 {
		return "", false
	}
	name := h.Visitor.Name
	if name == "" {
		name = "this visitor"
	}
	head := fmt.Sprintf("Earlier conversations of %s (%d, imported by chatgate; shown to agents only):", name, convs)
	tail := Mark(h.Visitor.ID)
	size := len(head) + 1 + len(tail)
	keep := len(lines)
	for i := len(lines) - 1; i >= 0; i-- {
		// +1 for the newline; room for the "left out" line.
		if size+len(lines[i])+1+80 > MaxText {
			break
		}
		size += len(lines[i]) + 1
		keep = i
	}
	var b strings.Builder
	b.WriteString(head)
	b.WriteByte('\n')
	if keep > 0 {
		fmt.Fprintf(&b, "(%d older lines left out: a LiveChat message holds 16 KB)\n", keep)
	}
	for _, l := range lines[keep:] {
		b.WriteString(l)
		b.WriteByte('\n')
	}
	b.WriteString(tail)
	return b.String(), true
}

// line is an event's line in the transcript: time, author, text.
func line(h *backfill.History, e *model.Event) (string, bool) {
	if e.Deleted {
		return "", false
	}
	var text string
	switch e.Kind {
	case model.KindSystem:
		text = e.Text
	case model.KindMessage, model.KindFile, model.KindForm, model.KindRich, model.KindCustom:
		text = relay.Delivery{Event: *e}.Text()
	}
	text = strings.TrimSpace(text)
	if text == "" {
		return "", false
	}
	who := e.Author.Name
	switch {
	case who != "":
	case e.Author.Kind == model.AuthorVisitor && h.Visitor.Name != "":
		who = h.Visitor.Name
	default:
		who = string(e.Author.Kind)
	}
	if e.Visibility == model.VisibleAgents {
		who += " (agents only)"
	}
	l := fmt.Sprintf("[%s] %s: %s", e.At.UTC().Format(time.DateTime+" UTC"), who, strings.ReplaceAll(text, "\n", "\n    "))
	if len(l) > maxLine {
		cut := maxLine
		for cut > 0 && !utf8.RuneStart(l[cut]) {
			cut--
		}
		l = l[:cut] + "…"
	}
	return l, true
}
