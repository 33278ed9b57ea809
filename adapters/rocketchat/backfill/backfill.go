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
// are never sent: the route posts as the visitor, who would see them.
package backfill

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"

	"chatgate/adapters/internal/httpsource"
	"chatgate/core/model"
	"chatgate/core/relay"
	"chatgate/store"
)

// Options configure a backfill.
type Options struct {
	// Connector is the relay connector's name.
	Connector string
	// URL is the upstream Rocket.Chat's base URL (the connector's).
	URL string
	// Agent credentials on the upstream desk.
	User, Password, UserID, AuthToken string
	RPS                               float64
	// Chunk is the messages per POST (default 50).
	Chunk  int
	DryRun bool
	// Progress, if set, is told of every visitor handled.
	Progress func(n int)
}

// Summary says what a backfill did.
type Summary struct {
	Visitors        int       `json:"visitors"`
	VisitorsDone    int       `json:"visitors_backfilled"`
	VisitorsSkipped int       `json:"visitors_skipped"`
	Messages        int       `json:"messages_sent"`
	MessagesPresent int       `json:"messages_skipped"`
	Failed          int       `json:"failed"`
	Failures        []Failure `json:"failures,omitempty"`
	Requests        int64     `json:"requests"`
	DryRun          bool      `json:"dry_run,omitempty"`
	Seconds         float64   `json:"seconds"`
}

// Failure is a visitor not backfilled, and why.
type Failure struct {
	Visitor string `json:"visitor"`
	Reason  string `json:"reason"`
}

// progressKey is the meta key recording that a visitor was backfilled.
func progressKey(conn string, v model.VisitorID) string {
	return "backfill/" + conn + "/visitor/" + string(v)
}

type backfiller struct {
	o   Options
	c   *httpsource.Client
	st  store.Store
	sum Summary
}

// RocketChat runs a backfill into a Rocket.Chat upstream.
func RocketChat(ctx context.Context, st store.Store, o Options) (Summary, error) {
	start := time.Now()
	if o.Chunk <= 0 {
		o.Chunk = 50
	}
	if o.RPS == 0 {
		o.RPS = 10
	}
	b := &backfiller{o: o, c: httpsource.New(o.URL, o.RPS), st: st}
	b.sum.DryRun = o.DryRun
	err := b.run(ctx)
	b.sum.Requests = b.c.Requests()
	b.sum.Seconds = time.Since(start).Seconds()
	return b.sum, err
}

func (b *backfiller) login(ctx context.Context) error {
	if b.o.AuthToken != "" {
		b.c.Header.Set("X-User-Id", b.o.UserID)
		b.c.Header.Set("X-Auth-Token", b.o.AuthToken)
		return nil
	}
	if b.o.User == "" || b.o.Password == "" {
		return errors.New("upstream agent credentials: give --user and --password, or --user-id and --auth-token")
	}
	var out struct {
		Data struct {
			UserID    string `json:"userId"`
			AuthToken string `json:"authToken"`
		} `json:"data"`
	}
	if err := b.c.JSON(ctx, "POST", "/api/v1/login", map[string]string{"user": b.o.User, "password": b.o.Password}, &out); err != nil {
		return fmt.Errorf("login: %w", err)
	}
	b.c.Header.Set("X-User-Id", out.Data.UserID)
	b.c.Header.Set("X-Auth-Token", out.Data.AuthToken)
	return nil
}

func (b *backfiller) run(ctx context.Context) error {
	if err := b.login(ctx); err != nil {
		return err
	}
	system := relay.System(b.o.Connector)
	// The visitors whose conversations the connector carries; the set
	// grows with them (not with events).
	seen := map[model.VisitorID]bool{}
	var visitors []model.VisitorID
	err := b.st.Conversations(ctx, func(c model.Conversation) bool {
		if c.Owner == b.o.Connector && !seen[c.Visitor] {
			seen[c.Visitor] = true
			visitors = append(visitors, c.Visitor)
		}
		return true
	})
	if err != nil {
		return err
	}
	for _, v := range visitors {
		b.sum.Visitors++
		if err := b.visitor(ctx, system, v); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			b.sum.Failed++
			if len(b.sum.Failures) < 100 {
				b.sum.Failures = append(b.sum.Failures, Failure{Visitor: string(v), Reason: err.Error()})
			}
		}
		if b.o.Progress != nil {
			b.o.Progress(1)
		}
	}
	return nil
}

// item is one message to send.
type item struct {
	mark, text string
}

func (b *backfiller) visitor(ctx context.Context, system string, v model.VisitorID) error {
	key := progressKey(b.o.Connector, v)
	if _, err := b.st.Meta(ctx, key); err == nil {
		b.sum.VisitorsSkipped++
		return nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	token, err := b.st.Reverse(ctx, system, "", relay.KindVisitor, string(v))
	if errors.Is(err, store.ErrNotFound) {
		b.sum.VisitorsSkipped++ // never reached the upstream desk
		return nil
	}
	if err != nil {
		return err
	}
	convs, err := b.st.VisitorConversations(ctx, v)
	if err != nil {
		return err
	}
	var items []item
	for _, id := range convs {
		c, err := b.st.Conversation(ctx, id)
		if err != nil {
			return err
		}
		if c.Owner == b.o.Connector {
			continue
		}
		evs, err := b.st.Events(ctx, id, 1, 0)
		if err != nil {
			return err
		}
		for i := range evs {
			if it, ok := render(&evs[i]); ok {
				items = append(items, it)
			}
		}
	}
	vis, err := b.st.Visitor(ctx, v)
	if err != nil {
		return err
	}
	present, err := b.present(ctx, token)
	if err != nil {
		return err
	}
	var todo []item
	for _, it := range items {
		if present[it.mark] {
			b.sum.MessagesPresent++
		} else {
			todo = append(todo, it)
		}
	}
	if b.o.DryRun {
		b.sum.Messages += len(todo)
		b.sum.VisitorsDone++
		return nil
	}
	name := vis.Name
	if name == "" {
		name = "Visitor"
	}
	for len(todo) > 0 {
		n := min(len(todo), b.o.Chunk)
		msgs := make([]map[string]string, n)
		for i := range n {
			msgs[i] = map[string]string{"msg": todo[i].text}
		}
		body := map[string]any{"visitor": map[string]any{"token": token, "name": name}, "messages": msgs}
		if err := b.c.JSON(ctx, "POST", "/api/v1/livechat/messages", body, nil); err != nil {
			return fmt.Errorf("livechat/messages: %w", err)
		}
		b.sum.Messages += n
		todo = todo[n:]
	}
	done, _ := json.Marshal(map[string]any{"at": time.Now().UTC(), "messages": len(items)})
	if err := b.st.Commit(ctx, &store.Batch{Meta: map[string][]byte{key: done}}); err != nil {
		return err
	}
	b.sum.VisitorsDone++
	return nil
}

var markRe = regexp.MustCompile(`(?m)^chatgate:[^\s/]+/[0-9]+$`)

// present returns the marks of the messages already in the visitor's
// upstream rooms.
func (b *backfiller) present(ctx context.Context, token string) (map[string]bool, error) {
	out := map[string]bool{}
	var rooms struct {
		Rooms []struct {
			ID string `json:"_id"`
		} `json:"rooms"`
	}
	err := b.c.JSON(ctx, "GET", "/api/v1/livechat/visitor/"+url.PathEscape(token)+"/room", nil, &rooms)
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
			if err := b.c.JSON(ctx, "GET", "/api/v1/livechat/messages.history/"+url.PathEscape(r.ID)+"?"+q.Encode(), nil, &h); err != nil {
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
