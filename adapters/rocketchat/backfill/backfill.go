// Package backfill sends the history of relayed visitors into the upstream
// desk their conversations are relayed to, so that the desk's agents see
// what the visitor said before: the conversations of the visitor that the
// connector did not carry (served by embedded agents, imported from
// another vendor, or before the relay was configured).
//
// Rocket.Chat: the visitor-visible messages, files and forms of those
// conversations are posted with POST /api/v1/livechat/messages (the batch
// route for importing visitor messages, which needs an agent's
// credentials) under the visitor's upstream token, so they land in the
// visitor's open upstream room (Rocket.Chat opens one when none is). Each
// text is marked: it starts with "[imported · <time> · <author>]" and ends
// with a line "chatgate:<conversation>/<seq>". The marks make the backfill
// idempotent and resumable even when it was killed between a post and the
// record of it: before posting, the visitor's upstream rooms are read and
// every message whose mark is already there is skipped. Agents-only events
// are never sent: the route posts as the visitor, who would see them. The
// rest (which visitors, their earlier conversations, the progress record)
// is adapters/backfill's.
package backfill

import (
	"context"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"

	"chatgate/adapters/backfill"
	"chatgate/adapters/internal/httpsource"
	"chatgate/core/model"
)

// Options configure the desk.
type Options struct {
	// URL is the upstream Rocket.Chat's base URL (the connector's).
	URL string
	// Agent credentials on the upstream desk.
	User, Password, UserID, AuthToken string
	RPS                               float64
	// Chunk is the messages per POST (default 50).
	Chunk int
}

// desk posts histories into one Rocket.Chat.
type desk struct {
	o Options
	c *httpsource.Client
}

// New returns the desk of a Rocket.Chat upstream, for backfill.Run.
func New(o Options) backfill.Desk {
	if o.Chunk <= 0 {
		o.Chunk = 50
	}
	return &desk{o: o, c: httpsource.New(o.URL, backfill.RPS(o.RPS))}
}

// Requests implements backfill.Desk.
func (d *desk) Requests() int64 { return d.c.Requests() }

// Login implements backfill.Desk.
func (d *desk) Login(ctx context.Context) error {
	return d.c.RocketChatLogin(ctx, "upstream agent credentials", d.o.User, d.o.Password, d.o.UserID, d.o.AuthToken)
}

// item is one message to send.
type item struct {
	mark, text string
}

// Send implements backfill.Desk: the visitor-visible events of the earlier
// conversations, one message each, those whose mark is upstream left out.
func (d *desk) Send(ctx context.Context, h *backfill.History, dryRun bool) (backfill.Result, error) {
	var res backfill.Result
	var items []item
	for _, c := range h.Earlier {
		for i := range c.Events {
			if it, ok := render(&c.Events[i]); ok {
				items = append(items, it)
			}
		}
	}
	token := h.Upstream
	present, err := d.present(ctx, token)
	if err != nil {
		return res, err
	}
	var todo []item
	for _, it := range items {
		if present[it.mark] {
			res.Present++
		} else {
			todo = append(todo, it)
		}
	}
	if dryRun {
		res.Sent = len(todo)
		return res, nil
	}
	name := h.Visitor.Name
	if name == "" {
		name = "Visitor"
	}
	for len(todo) > 0 {
		n := min(len(todo), d.o.Chunk)
		msgs := make([]map[string]string, n)
		for i := range n {
			msgs[i] = map[string]string{"msg": todo[i].text}
		}
		body := map[string]any{"visitor": map[string]any{"token": token, "name": name}, "messages": msgs}
		if err := d.c.JSON(ctx, "POST", "/api/v1/livechat/messages", body, nil); err != nil {
			return res, fmt.Errorf("livechat/messages: %w", err)
		}
		res.Sent += n
		todo = todo[n:]
	}
	return res, nil
}

var markRe = regexp.MustCompile(`(?m)^chatgate:[^\s/]+/[0-9]+$`)

// present returns the marks of the messages already in the visitor's
// upstream rooms.
func (d *desk) present(ctx context.Context, token string) (map[string]bool, error) {
	out := map[string]bool{}
	var rooms struct {
		Rooms []struct {
			ID string `json:"_id"`
		} `json:"rooms"`
	}
	err := d.c.JSON(ctx, "GET", "/api/v1/livechat/visitor/"+url.PathEscape(token)+"/room", nil, &rooms)
	if err != nil && !httpsource.IsStatus(err, 400) && !httpsource.IsStatus(err, 404) {
		return nil, fmt.Errorf("visitor rooms: %w", err)
	}
	for _, r := range rooms.Rooms {
		end := ""
		for {
			q := url.Values{"token": {token}, "limit": {"1000"}}
			if end != "" {
				q.Set("end", end)
			}
			var h struct {
				Messages []struct {
					Msg string    `json:"msg"`
					TS  time.Time `json:"ts"`
				} `json:"messages"`
			}
			if err := d.c.JSON(ctx, "GET", "/api/v1/livechat/messages.history/"+url.PathEscape(r.ID)+"?"+q.Encode(), nil, &h); err != nil {
				return nil, fmt.Errorf("room history: %w", err)
			}
			for _, m := range h.Messages {
				for _, mark := range markRe.FindAllString(m.Msg, -1) {
					out[mark] = true
				}
			}
			if len(h.Messages) < 1000 {
				break
			}
			end = h.Messages[len(h.Messages)-1].TS.Format(time.RFC3339Nano)
		}
	}
	return out, nil
}

// render is the marked text of an event the visitor saw, if it has one.
func render(e *model.Event) (item, bool) {
	if !e.VisibleToVisitor() || e.Deleted {
		return item{}, false
	}
	var text string
	switch e.Kind {
	case model.KindMessage:
		text = e.Text
	case model.KindFile:
		if e.File == nil {
			return item{}, false
		}
		text = strings.TrimSpace("file " + e.File.Name + " " + e.File.URL + "\n" + e.Text)
	case model.KindForm:
		if e.Form == nil {
			return item{}, false
		}
		text = e.Form.Summary()
	case model.KindSystem:
		if e.Subtype != model.SysWelcome || e.Text == "" {
			return item{}, false
		}
		text = e.Text
	default:
		return item{}, false
	}
	if strings.TrimSpace(text) == "" {
		return item{}, false
	}
	who := e.Author.Name
	if who == "" {
		who = string(e.Author.Kind)
	}
	mark := fmt.Sprintf("chatgate:%s/%d", e.Conv, e.Seq)
	return item{mark: mark, text: fmt.Sprintf("[imported · %s · %s] %s\n%s", e.At.UTC().Format("2006-01-02 15:04 UTC"), who, text, mark)}, true
}
