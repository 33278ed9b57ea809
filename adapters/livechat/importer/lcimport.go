// Package lcimport pulls a LiveChat account's archived chats into a
// chatgate store through the Agent Chat API (Web API, v3.5): every
// archived chat of list_archives (paged by page_id), every thread of that
// chat (list_threads, paged by page_id), and get_chat for the chat's
// customer and properties. A LiveChat chat is a customer's container of
// threads: the customer becomes a visitor (chat id = customer id = visitor
// id when free), each thread a conversation (thread id kept when free),
// each event an event in order, with its id kept as a mapping and its
// custom_id as the client key.
//
// Each thread is committed in one batch with a progress record
// (import/livechat/<host>/thread/<id> in meta); archived threads are over,
// so a thread once imported is skipped: a stopped import resumes, a second
// run changes nothing.
package importer

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"chatgate/adapters/internal/httpsource"
	"chatgate/adapters/livechat/wire"
	"chatgate/core/model"
	"chatgate/store"
	"chatgate/store/files"
)

// Options configure an import.
type Options struct {
	// URL is the Agent Chat API's base (https://api.livechatinc.com, or a
	// chatgate's address).
	URL string
	// Token is the agent's access token (sent as "Bearer <token>"), or
	// Basic "<account id>:<personal access token>" credentials.
	Token, Basic string
	// Version is the API version in the path (default "3.5").
	Version string
	RPS     float64
	// Agents maps a LiveChat agent id (e-mail) to a chatgate agent id;
	// others keep their id.
	Agents   map[string]model.AgentID
	DryRun   bool
	Progress func(done, total int)
}

// Summary says what an import did.
type Summary struct {
	Chats    int       `json:"chats"`
	Threads  int       `json:"threads"`
	Imported int       `json:"conversations_imported"`
	Skipped  int       `json:"conversations_skipped"`
	Events   int       `json:"events_imported"`
	Visitors int       `json:"visitors_imported"`
	Files    int       `json:"files_imported"`
	Failed   int       `json:"failed"`
	Failures []Failure `json:"failures,omitempty"`
	Requests int64     `json:"requests"`
	DryRun   bool      `json:"dry_run,omitempty"`
	Seconds  float64   `json:"seconds"`
}

// Failure is a chat or thread not imported, and why.
type Failure struct {
	Chat   string `json:"chat"`
	Thread string `json:"thread,omitempty"`
	Reason string `json:"reason"`
}

// System names the mappings of imported LiveChat ids.
const System = "import.livechat"

// Mapping kinds under System.
const (
	KindChat   = "chat"
	KindThread = "thread"
	KindEvent  = "event"
)

type importer struct {
	o   Options
	c   *httpsource.Client
	st  store.Store
	fs  *files.Store
	sum Summary
	src string
}

// Import runs one import into st (and fs for file bodies; nil keeps the
// source's URLs).
func Import(ctx context.Context, st store.Store, fs *files.Store, o Options) (Summary, error) {
	start := time.Now()
	if o.RPS == 0 {
		o.RPS = 10
	}
	if o.Version == "" {
		o.Version = "3.5"
	}
	u, err := url.Parse(o.URL)
	if err != nil || u.Host == "" {
		return Summary{}, fmt.Errorf("--url %q: not an absolute URL", o.URL)
	}
	im := &importer{o: o, c: httpsource.New(o.URL, o.RPS), st: st, fs: fs, src: u.Host}
	switch {
	case o.Token != "":
		im.c.Header.Set("Authorization", "Bearer "+o.Token)
	case o.Basic != "":
		im.c.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(o.Basic)))
	default:
		return Summary{}, errors.New("LiveChat credentials: give --auth-token (an agent access token) or --basic ACCOUNT_ID:PAT")
	}
	im.sum.DryRun = o.DryRun
	err = im.run(ctx)
	im.sum.Requests = im.c.Requests()
	im.sum.Seconds = time.Since(start).Seconds()
	return im.sum, err
}

func (im *importer) fail(chat, thread string, err error) {
	im.sum.Failed++
	if len(im.sum.Failures) < 100 {
		im.sum.Failures = append(im.sum.Failures, Failure{Chat: chat, Thread: thread, Reason: err.Error()})
	}
}

func (im *importer) action(ctx context.Context, name string, payload, out any) error {
	if err := im.c.JSON(ctx, "POST", "/v"+im.o.Version+"/agent/action/"+name, payload, out); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

func (im *importer) run(ctx context.Context) error {
	seen := map[string]bool{} // chats handled this run (grows with chats, not events)
	page := ""
	done := 0
	for {
		req := map[string]any{"limit": 100}
		if page != "" {
			req = map[string]any{"page_id": page}
		}
		var res struct {
			Chats      []wire.Chat `json:"chats"`
			FoundChats int         `json:"found_chats"`
			NextPageID string      `json:"next_page_id"`
		}
		if err := im.action(ctx, "list_archives", req, &res); err != nil {
			return err
		}
		for _, ch := range res.Chats {
			done++
			if !seen[ch.ID] {
				seen[ch.ID] = true
				im.sum.Chats++
				if err := im.chat(ctx, ch.ID); err != nil {
					if ctx.Err() != nil {
						return ctx.Err()
					}
					im.fail(ch.ID, "", err)
				}
			}
			if im.o.Progress != nil {
				im.o.Progress(done, res.FoundChats)
			}
		}
		if res.NextPageID == "" || len(res.Chats) == 0 {
			return nil
		}
		page = res.NextPageID
	}
}

func (im *importer) progressKey(thread string) string {
	return "import/livechat/" + im.src + "/thread/" + thread
}

var idRe = regexp.MustCompile(`^[A-Za-z0-9_.@:-]{1,128}$`)

// chat imports every thread of a chat, oldest first.
func (im *importer) chat(ctx context.Context, chatID string) error {
	var chat wire.Chat
	if err := im.action(ctx, "get_chat", map[string]any{"chat_id": chatID}, &chat); err != nil {
		return err
	}
	var threads []wire.Thread
	page := ""
	for {
		req := map[string]any{"chat_id": chatID, "sort_order": "asc", "limit": 100}
		if page != "" {
			req = map[string]any{"chat_id": chatID, "page_id": page}
		}
		var res struct {
			Threads    []wire.Thread `json:"threads"`
			NextPageID string        `json:"next_page_id"`
		}
		if err := im.action(ctx, "list_threads", req, &res); err != nil {
			return err
		}
		threads = append(threads, res.Threads...)
		if res.NextPageID == "" || len(res.Threads) == 0 {
			break
		}
		page = res.NextPageID
	}
	var customer *wire.User
	for i := range chat.Users {
		if chat.Users[i].Type == "customer" {
			customer = &chat.Users[i]
		}
	}
	if customer == nil {
		return errors.New("chat without a customer")
	}
	for i := range threads {
		im.sum.Threads++
		if threads[i].Active {
			continue // not archived yet: a later run takes it
		}
		if err := im.thread(ctx, &chat, customer, &threads[i]); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			im.fail(chatID, threads[i].ID, err)
		}
	}
	return nil
}

// visitor returns the customer's visitor, creating it in b the first time.
func (im *importer) visitor(ctx context.Context, chat *wire.Chat, u *wire.User, b *store.Batch) (model.VisitorID, error) {
	key := store.MapKey{System: System, Tenant: im.src, Kind: KindChat, Foreign: chat.ID}
	if id, err := im.st.Resolve(ctx, key); err == nil {
		return model.VisitorID(id), nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return "", err
	}
	id := model.VisitorID(model.NewID())
	if idRe.MatchString(chat.ID) {
		if _, err := im.st.Visitor(ctx, model.VisitorID(chat.ID)); errors.Is(err, store.ErrNotFound) {
			id = model.VisitorID(chat.ID)
		}
	}
	v := model.Visitor{ID: id, Name: u.Name, Email: u.Email, Props: chat.Properties}
	if t, err := time.Parse(time.RFC3339Nano, u.CreatedAt); err == nil {
		v.CreatedAt = t
	}
	for _, f := range u.SessionFields {
		for k, val := range f {
			if v.Fields == nil {
				v.Fields = map[string]string{}
			}
			v.Fields[k] = val
		}
	}
	b.Visitors = append(b.Visitors, v)
	b.Maps = append(b.Maps, store.Mapping{MapKey: key, Core: string(id)})
	if u.ID != chat.ID {
		b.Maps = append(b.Maps, store.Mapping{MapKey: store.MapKey{System: System, Tenant: im.src, Kind: "customer", Foreign: u.ID}, Core: string(id)})
	}
	im.sum.Visitors++
	return id, nil
}

func (im *importer) agent(id string) model.AgentID {
	if a, ok := im.o.Agents[id]; ok {
		return a
	}
	return model.AgentID(id)
}

func (im *importer) thread(ctx context.Context, chat *wire.Chat, cust *wire.User, t *wire.Thread) error {
	pk := im.progressKey(t.ID)
	if _, err := im.st.Meta(ctx, pk); err == nil {
		im.sum.Skipped++
		return nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	b := &store.Batch{}
	vid, err := im.visitor(ctx, chat, cust, b)
	if err != nil {
		return err
	}
	id := model.ConvID(model.NewID())
	if idRe.MatchString(t.ID) {
		if _, err := im.st.Conversation(ctx, model.ConvID(t.ID)); errors.Is(err, store.ErrNotFound) {
			id = model.ConvID(t.ID)
		}
	}
	c := model.Conversation{ID: id, Visitor: vid, State: model.StateClosed, Origin: "livechat.import", Props: t.Properties, Tags: t.Tags}
	if t.Source != nil && t.Source.Origin != "" {
		// A chatgate source says where the thread started (its own
		// addition to the thread); keep it. Its relay owner is not
		// carried: that relay is the source's.
		c.Origin = t.Source.Origin
	}
	if ct, err := time.Parse(time.RFC3339Nano, t.CreatedAt); err == nil {
		c.CreatedAt = ct
	}
	if len(t.Access.GroupIDs) > 0 && t.Access.GroupIDs[0] != 0 {
		c.Department = model.DeptID(strconv.Itoa(t.Access.GroupIDs[0]))
	}
	for i := range t.Events {
		e, err := im.event(ctx, id, vid, cust.ID, &t.Events[i])
		if err != nil {
			return fmt.Errorf("event %s: %w", t.Events[i].ID, err)
		}
		c.LastSeq++
		e.Seq = c.LastSeq
		b.Events = append(b.Events, e)
		if t.Events[i].ID != "" {
			b.Maps = append(b.Maps, store.Mapping{MapKey: store.MapKey{System: System, Tenant: im.src, Kind: KindEvent, Foreign: t.Events[i].ID},
				Core: wire.EventID(id, e.Seq)})
		}
		if e.Author.Kind == model.AuthorAgent && c.Agent == "" {
			c.Agent = model.AgentID(e.Author.ID)
		}
		if e.Kind == model.KindSystem && e.Subtype == model.SysAssigned && e.Vars["agent_id"] != "" {
			c.Agent = model.AgentID(e.Vars["agent_id"])
		}
		if e.Kind == model.KindSystem && e.Subtype == model.SysClosed {
			c.ClosedAt = e.At
			if k := model.AuthorKind(e.Vars["by_kind"]); k != "" {
				c.ClosedBy = &model.Author{Kind: k, ID: e.Vars["by_id"]}
			}
		}
		if c.ClosedAt.Before(e.At) {
			c.ClosedAt = e.At
		}
	}
	if c.Agent != "" {
		c.AssignedAt = c.CreatedAt
	}
	b.Convs = []model.Conversation{c}
	b.Maps = append(b.Maps, store.Mapping{MapKey: store.MapKey{System: System, Tenant: im.src, Kind: KindThread, Foreign: t.ID}, Core: string(id)})
	b.Meta = map[string][]byte{pk: []byte(strconv.Quote(string(id)))}
	im.sum.Imported++
	im.sum.Events += len(b.Events)
	if im.o.DryRun {
		return nil
	}
	return im.st.Commit(ctx, b)
}

// event translates a v3 event (the inverse of wire.RenderEvent).
func (im *importer) event(ctx context.Context, conv model.ConvID, vid model.VisitorID, customer string, w *wire.Event) (model.Event, error) {
	e := model.Event{Conv: conv, ID: model.NewID(), ClientKey: w.CustomID, Kind: model.EventKind(w.Type), Text: w.Text,
		Visibility: model.VisibleAll, Props: w.Properties}
	if w.Visibility == string(model.VisibleAgents) {
		e.Visibility = model.VisibleAgents
	}
	at, err := time.Parse(time.RFC3339Nano, w.CreatedAt)
	if err != nil {
		return e, fmt.Errorf("created_at %q: %w", w.CreatedAt, err)
	}
	e.At = at
	switch {
	case w.AuthorID == "":
		e.Author = model.System
	case w.AuthorID == customer:
		e.Author = model.Author{Kind: model.AuthorVisitor, ID: string(vid)}
	default:
		e.Author = model.Author{Kind: model.AuthorAgent, ID: string(im.agent(w.AuthorID))}
	}
	switch w.Type {
	case "message":
	case "system_message":
		e.Kind, e.Vars = model.KindSystem, w.TextVars
		switch w.SystemMessageType {
		case "routing.assigned":
			e.Subtype = model.SysAssigned
		case "manual_archived_agent", "manual_archived_customer", "routing.archived_other":
			e.Subtype = model.SysClosed
		case "system":
			e.Subtype = ""
		default:
			e.Subtype = w.SystemMessageType
		}
		// wire.textVars adds the agent's name as "agent"; it is derived.
		if e.Vars != nil {
			delete(e.Vars, "agent")
			if len(e.Vars) == 0 {
				e.Vars = nil
			}
		}
	case "file":
		e.Kind, e.Text = model.KindFile, ""
		f := &model.File{Name: w.Name, URL: w.URL, ContentType: w.ContentType, Size: w.Size, Width: w.Width, Height: w.Height}
		if err := im.download(ctx, f); err != nil {
			return e, err
		}
		e.File = f
	case "filled_form":
		e.Kind, e.Text = model.KindForm, ""
		form := &model.Form{ID: w.FormID, Type: w.FormType}
		for _, fl := range w.Fields {
			form.Fields = append(form.Fields, model.FormField(fl))
		}
		e.Form = form
	default:
		// custom, rich_message and types this build does not know: kept
		// whole as a custom event.
		e.Kind, e.Text = model.KindCustom, ""
		e.Custom = w.Content
		if w.Type != "custom" {
			raw, _ := json.Marshal(w)
			e.Custom, e.Subtype = raw, w.Type
		}
	}
	return e, nil
}

// download stores a file event's body and points the event at the copy.
func (im *importer) download(ctx context.Context, f *model.File) error {
	if im.fs == nil || im.o.DryRun || f.URL == "" {
		return nil
	}
	u := f.URL
	if strings.HasPrefix(u, "/") {
		u = strings.TrimRight(im.o.URL, "/") + u
	}
	resp, err := im.c.Do(ctx, "GET", u, nil, "")
	if err != nil {
		return fmt.Errorf("download %s: %w", f.URL, err)
	}
	defer resp.Body.Close()
	stored, err := im.fs.Put(ctx, f.Name, f.ContentType, io.LimitReader(resp.Body, im.fs.MaxSize()+1))
	if err != nil {
		return fmt.Errorf("store %s: %w", f.URL, err)
	}
	im.sum.Files++
	f.URL = files.URLPrefix + stored.ID + "/" + url.PathEscape(stored.Name)
	f.Size = stored.Size
	return nil
}
