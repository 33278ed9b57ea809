// Package rcimport pulls a Rocket.Chat server's livechat history into a
// chatgate store through Rocket.Chat's REST API, as an agent: every room
// of GET livechat/rooms, its messages (GET chat.syncMessages, the agent's
// view, and GET livechat/messages.history, the visitor's), its visitor
// (GET livechat/visitor/:token, custom fields included) and uploaded
// files.
//
// What Rocket.Chat shows is what comes over: the ids are kept where they
// are free in the store (room id = conversation id, visitor _id, message
// _id as the event's client key and idempotency key), and the mapping
// tables bind the visitor's token and username, so a widget that still
// holds its token finds its history on chatgate's Rocket.Chat surface.
// Messages the agent sees but the visitor's history leaves out are
// imported as agents-only.
//
// Each room is committed in one batch, so a stopped import leaves whole
// rooms; progress is in the store (a meta value per room with the count of
// messages imported), and a run skips rooms that are closed and complete
// and, in others, messages already imported: running it again changes
// nothing, and an open room gets only its new messages.
package importer

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"chatgate/adapters/internal/httpsource"
	"chatgate/adapters/rocketchat"
	"chatgate/core/model"
	"chatgate/store"
	"chatgate/store/files"
)

// Options configure an import.
type Options struct {
	// URL is the Rocket.Chat server's base URL.
	URL string
	// User and Password log in (POST /api/v1/login); or UserID and
	// AuthToken of an existing session (personal access token).
	User, Password    string
	UserID, AuthToken string
	// RPS caps requests per second (0: 10).
	RPS float64
	// Tenant is the target's Rocket.Chat surface tenant (rocketchat.tenant
	// in the config; default "default").
	Tenant string
	// Agents maps a Rocket.Chat agent's _id or username to a chatgate
	// agent id (from the target's configuration); others keep their id.
	Agents map[string]model.AgentID
	// PageSize is the rooms per livechat/rooms page (default 50).
	PageSize int
	DryRun   bool
	// Progress, if set, is told of every room handled and of the total
	// once known.
	Progress func(done int, total int)
}

// Summary says what an import did.
type Summary struct {
	Rooms         int       `json:"rooms"`
	Imported      int       `json:"conversations_imported"`
	Updated       int       `json:"conversations_updated"`
	SkippedRooms  int       `json:"conversations_skipped"`
	Events        int       `json:"events_imported"`
	EventsPresent int       `json:"events_skipped"`
	Visitors      int       `json:"visitors_imported"`
	Files         int       `json:"files_imported"`
	Failed        int       `json:"failed"`
	Failures      []Failure `json:"failures,omitempty"`
	Requests      int64     `json:"requests"`
	DryRun        bool      `json:"dry_run,omitempty"`
	Seconds       float64   `json:"seconds"`
}

// Failure is a room (or a file) not imported, and why.
type Failure struct {
	Room   string `json:"room"`
	Reason string `json:"reason"`
}

// ProgressKeyPrefix starts the meta keys that record imported rooms.
const ProgressKeyPrefix = "import/rocketchat/"

type importer struct {
	o   Options
	c   *httpsource.Client
	st  store.Store
	fs  *files.Store
	sum Summary
	src string // the source's host, for the progress keys
}

// Import runs one import into st (and fs for file bodies; nil skips them).
func Import(ctx context.Context, st store.Store, fs *files.Store, o Options) (Summary, error) {
	start := time.Now()
	if o.RPS == 0 {
		o.RPS = 10
	}
	if o.Tenant == "" {
		o.Tenant = "default"
	}
	if o.PageSize <= 0 {
		o.PageSize = 50
	}
	u, err := url.Parse(o.URL)
	if err != nil || u.Host == "" {
		return Summary{}, fmt.Errorf("--url %q: not an absolute URL", o.URL)
	}
	im := &importer{o: o, c: httpsource.New(o.URL, o.RPS), st: st, fs: fs, src: u.Host}
	im.sum.DryRun = o.DryRun
	err = im.run(ctx)
	im.sum.Requests = im.c.Requests()
	im.sum.Seconds = time.Since(start).Seconds()
	return im.sum, err
}

func (im *importer) fail(room string, err error) {
	im.sum.Failed++
	if len(im.sum.Failures) < 100 {
		im.sum.Failures = append(im.sum.Failures, Failure{Room: room, Reason: err.Error()})
	}
}

func (im *importer) login(ctx context.Context) error {
	return im.c.RocketChatLogin(ctx, "Rocket.Chat credentials", im.o.User, im.o.Password, im.o.UserID, im.o.AuthToken)
}

// room is what livechat/rooms says of a room.
type room struct {
	ID           string    `json:"_id"`
	Fname        string    `json:"fname"`
	TS           time.Time `json:"ts"`
	Open         bool      `json:"open"`
	ClosedAt     time.Time `json:"closedAt"`
	Closer       string    `json:"closer"`
	DepartmentID string    `json:"departmentId"`
	Msgs         int       `json:"msgs"`
	V            struct {
		ID       string `json:"_id"`
		Username string `json:"username"`
		Token    string `json:"token"`
	} `json:"v"`
	ServedBy *struct {
		ID       string    `json:"_id"`
		Username string    `json:"username"`
		TS       time.Time `json:"ts"`
	} `json:"servedBy"`
	Source struct {
		Type  string `json:"type"`
		Alias string `json:"alias"`
	} `json:"source"`
}

func (im *importer) run(ctx context.Context) error {
	if err := im.login(ctx); err != nil {
		return err
	}
	// Rooms are read page by page, oldest first where the server sorts
	// (sort={"ts":1}); the progress markers make the order irrelevant to
	// correctness.
	done := 0
	for offset := 0; ; {
		var page struct {
			Rooms []room `json:"rooms"`
			Total int    `json:"total"`
			Count int    `json:"count"`
		}
		q := url.Values{"offset": {strconv.Itoa(offset)}, "count": {strconv.Itoa(im.o.PageSize)}, "sort": {`{"ts":1}`}}
		if err := im.c.JSON(ctx, "GET", "/api/v1/livechat/rooms?"+q.Encode(), nil, &page); err != nil {
			return fmt.Errorf("livechat/rooms: %w", err)
		}
		for i := range page.Rooms {
			im.sum.Rooms++
			if err := im.room(ctx, &page.Rooms[i]); err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				im.fail(page.Rooms[i].ID, err)
			}
			done++
			if im.o.Progress != nil {
				im.o.Progress(done, page.Total)
			}
		}
		offset += len(page.Rooms)
		if len(page.Rooms) == 0 || offset >= page.Total {
			return nil
		}
	}
}

// progress is the meta value recorded for an imported room.
type progress struct {
	Conv     model.ConvID `json:"conv"`
	Messages int          `json:"messages"`
	Closed   bool         `json:"closed"`
}

func (im *importer) progressKey(rid string) string {
	return ProgressKeyPrefix + im.src + "/room/" + rid
}

// message is a Rocket.Chat message as the REST API gives it.
type message struct {
	ID       string    `json:"_id"`
	T        string    `json:"t"`
	Msg      string    `json:"msg"`
	TS       time.Time `json:"ts"`
	EditedAt time.Time `json:"editedAt"`
	EditedBy *user     `json:"editedBy"`
	U        user      `json:"u"`
	Token    string    `json:"token"`
	Alias    string    `json:"alias"`
	File     *struct {
		ID   string `json:"_id"`
		Name string `json:"name"`
		Type string `json:"type"`
	} `json:"file"`
	Attachments []struct {
		Title       string `json:"title"`
		TitleLink   string `json:"title_link"`
		Description string `json:"description"`
		ImageSize   int64  `json:"image_size"`
		Fields      []struct {
			Title string `json:"title"`
			Value string `json:"value"`
		} `json:"fields"`
	} `json:"attachments"`
	TransferData *struct {
		TransferredBy struct {
			ID       string `json:"_id"`
			Username string `json:"username"`
			Type     string `json:"type"`
		} `json:"transferredBy"`
		TransferredTo *struct {
			ID       string `json:"_id"`
			Username string `json:"username"`
		} `json:"transferredTo"`
		Scope              string `json:"scope"`
		Comment            string `json:"comment"`
		PreviousDepartment string `json:"previousDepartment"`
		NextDepartment     *struct {
			ID string `json:"_id"`
		} `json:"nextDepartment"`
	} `json:"transferData"`
}

type user struct {
	ID       string `json:"_id"`
	Username string `json:"username"`
	Name     string `json:"name"`
}

func (im *importer) room(ctx context.Context, r *room) error {
	var prog progress
	if raw, err := im.st.Meta(ctx, im.progressKey(r.ID)); err == nil {
		if err := json.Unmarshal(raw, &prog); err != nil {
			return fmt.Errorf("progress record: %w", err)
		}
		if prog.Closed && (r.Msgs == 0 || prog.Messages >= r.Msgs) {
			im.sum.SkippedRooms++
			return nil
		}
	} else if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	var sync struct {
		Result struct {
			Updated []message `json:"updated"`
			Deleted []struct {
				ID        string    `json:"_id"`
				DeletedAt time.Time `json:"_deletedAt"`
			} `json:"deleted"`
		} `json:"result"`
	}
	q := url.Values{"roomId": {r.ID}, "lastUpdate": {"1970-01-01T00:00:00.000Z"}}
	if err := im.c.JSON(ctx, "GET", "/api/v1/chat.syncMessages?"+q.Encode(), nil, &sync); err != nil {
		return fmt.Errorf("chat.syncMessages: %w", err)
	}
	// Deleted messages come as ids and times only: they are kept as
	// deleted events, in time order with the others.
	msgs := sync.Result.Updated
	for _, d := range sync.Result.Deleted {
		msgs = append(msgs, message{ID: d.ID, T: "rm", TS: d.DeletedAt})
	}
	sort.SliceStable(msgs, func(i, j int) bool { return msgs[i].TS.Before(msgs[j].TS) })
	visible, err := im.visitorView(ctx, r)
	if err != nil {
		return err
	}
	b := &store.Batch{}
	conv, existing, err := im.conversation(ctx, r, prog)
	if err != nil {
		return err
	}
	before, _ := json.Marshal(conv)
	vid := conv.Visitor
	if !existing {
		if vid, err = im.visitor(ctx, r, b); err != nil {
			return err
		}
		conv.Visitor = vid
		if conv.ClosedBy != nil && conv.ClosedBy.Kind == model.AuthorVisitor {
			conv.ClosedBy.ID = string(vid)
		}
	}
	for i := range msgs {
		m := &msgs[i]
		if m.ID == "" {
			continue
		}
		if _, err := im.st.Idempotent(ctx, rocketchat.System, m.ID); err == nil {
			im.sum.EventsPresent++
			continue
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		e, err := im.event(ctx, r, conv, vid, m, visible)
		if err != nil {
			return fmt.Errorf("message %s: %w", m.ID, err)
		}
		conv.LastSeq++
		e.Seq = conv.LastSeq
		b.Events = append(b.Events, e)
		b.Idems = append(b.Idems, store.Idem{System: rocketchat.System, Key: m.ID, Conv: conv.ID, Seq: e.Seq})
	}
	im.sum.Events += len(b.Events)
	prog = progress{Conv: conv.ID, Messages: prog.Messages + len(b.Events), Closed: !r.Open}
	if prog.Messages < len(msgs) {
		prog.Messages = len(msgs)
	}
	raw, _ := json.Marshal(prog)
	b.Meta = map[string][]byte{im.progressKey(r.ID): raw}
	b.Convs = []model.Conversation{conv}
	if !existing {
		b.Maps = append(b.Maps, store.Mapping{MapKey: store.MapKey{System: rocketchat.System, Tenant: im.o.Tenant, Kind: rocketchat.KindRoomAlias, Foreign: r.ID}, Core: string(conv.ID)})
	}
	switch {
	case !existing:
		im.sum.Imported++
	case len(b.Events) > 0:
		im.sum.Updated++
	default:
		im.sum.SkippedRooms++
		if after, _ := json.Marshal(conv); string(after) == string(before) {
			old, _ := im.st.Meta(ctx, im.progressKey(r.ID))
			if string(old) == string(raw) {
				return nil // nothing new
			}
		}
	}
	if im.o.DryRun {
		return nil
	}
	if err := im.st.Commit(ctx, b); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// visitorView is the set of message ids the room's visitor sees
// (livechat/messages.history, newest first, paged by end).
func (im *importer) visitorView(ctx context.Context, r *room) (map[string]bool, error) {
	seen := map[string]bool{}
	if r.V.Token == "" {
		return seen, nil
	}
	end := ""
	for {
		q := url.Values{"token": {r.V.Token}, "limit": {"1000"}}
		if end != "" {
			q.Set("end", end)
		}
		var h struct {
			Messages []message `json:"messages"`
		}
		if err := im.c.JSON(ctx, "GET", "/api/v1/livechat/messages.history/"+url.PathEscape(r.ID)+"?"+q.Encode(), nil, &h); err != nil {
			return nil, fmt.Errorf("livechat/messages.history: %w", err)
		}
		for _, m := range h.Messages {
			seen[m.ID] = true
		}
		if len(h.Messages) < 1000 {
			return seen, nil
		}
		end = h.Messages[len(h.Messages)-1].TS.Format(time.RFC3339Nano)
	}
}

// idRe is what a foreign id must look like to be kept as a core id.
var idRe = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// visitor finds or creates the room's visitor, keeping its _id where it
// is free, and binds its token and username.
func (im *importer) visitor(ctx context.Context, r *room, b *store.Batch) (model.VisitorID, error) {
	tokenKey := store.MapKey{System: rocketchat.System, Tenant: im.o.Tenant, Kind: rocketchat.KindToken, Foreign: r.V.Token}
	if r.V.Token != "" {
		if id, err := im.st.Resolve(ctx, tokenKey); err == nil {
			return model.VisitorID(id), nil
		} else if !errors.Is(err, store.ErrNotFound) {
			return "", err
		}
	}
	var info struct {
		Visitor struct {
			ID            string `json:"_id"`
			Name          string `json:"name"`
			Username      string `json:"username"`
			TS            time.Time
			VisitorEmails []struct {
				Address string `json:"address"`
			} `json:"visitorEmails"`
			Phone []struct {
				PhoneNumber string `json:"phoneNumber"`
			} `json:"phone"`
			Department   string         `json:"department"`
			LivechatData map[string]any `json:"livechatData"`
		} `json:"visitor"`
	}
	if r.V.Token != "" {
		if err := im.c.JSON(ctx, "GET", "/api/v1/livechat/visitor/"+url.PathEscape(r.V.Token), nil, &info); err != nil && !httpsource.IsStatus(err, 400) && !httpsource.IsStatus(err, 404) {
			return "", fmt.Errorf("livechat/visitor: %w", err)
		}
	}
	vi := info.Visitor
	id := model.VisitorID(model.NewID())
	if idRe.MatchString(r.V.ID) {
		if _, err := im.st.Visitor(ctx, model.VisitorID(r.V.ID)); errors.Is(err, store.ErrNotFound) {
			id = model.VisitorID(r.V.ID)
		}
	}
	v := model.Visitor{ID: id, Name: vi.Name, Department: model.DeptID(vi.Department), CreatedAt: r.TS}
	if v.Name == "" {
		v.Name = r.Fname
	}
	if !vi.TS.IsZero() {
		v.CreatedAt = vi.TS
	}
	if len(vi.VisitorEmails) > 0 {
		v.Email = vi.VisitorEmails[0].Address
	}
	if len(vi.Phone) > 0 {
		v.Phone = vi.Phone[0].PhoneNumber
	}
	for k, val := range vi.LivechatData {
		if strings.HasPrefix(k, "_rc.") {
			continue
		}
		if v.Fields == nil {
			v.Fields = map[string]string{}
		}
		if s, ok := val.(string); ok {
			v.Fields[k] = s
		} else {
			raw, _ := json.Marshal(val)
			v.Fields[k] = string(raw)
		}
	}
	b.Visitors = append(b.Visitors, v)
	if r.V.Token != "" {
		b.Maps = append(b.Maps, store.Mapping{MapKey: tokenKey, Core: string(id)})
	}
	username := r.V.Username
	if username == "" {
		username = vi.Username
	}
	if username != "" {
		uk := store.MapKey{System: rocketchat.System, Tenant: im.o.Tenant, Kind: rocketchat.KindUsername, Foreign: username}
		if _, err := im.st.Resolve(ctx, uk); errors.Is(err, store.ErrNotFound) {
			b.Maps = append(b.Maps, store.Mapping{MapKey: uk, Core: string(id)})
			im.bumpGuestCount(ctx, username, b)
		}
	}
	im.sum.Visitors++
	return id, nil
}

// bumpGuestCount moves the target's guest counter past an imported
// guest-N username, so that new visitors do not get it again.
func (im *importer) bumpGuestCount(ctx context.Context, username string, b *store.Batch) {
	n, err := strconv.ParseUint(strings.TrimPrefix(username, "guest-"), 10, 64)
	if err != nil || !strings.HasPrefix(username, "guest-") {
		return
	}
	key := rocketchat.System + "/" + im.o.Tenant + "/guest_count"
	cur := uint64(0)
	if raw, ok := b.Meta[key]; ok && len(raw) == 8 {
		cur = binary.BigEndian.Uint64(raw)
	} else if raw, err := im.st.Meta(ctx, key); err == nil && len(raw) == 8 {
		cur = binary.BigEndian.Uint64(raw)
	}
	if n > cur {
		if b.Meta == nil {
			b.Meta = map[string][]byte{}
		}
		b.Meta[key] = binary.BigEndian.AppendUint64(nil, n)
	}
}

// conversation returns the room's conversation: the one imported before,
// or a new one under the room id if it is free.
func (im *importer) conversation(ctx context.Context, r *room, prog progress) (model.Conversation, bool, error) {
	if prog.Conv != "" {
		c, err := im.st.Conversation(ctx, prog.Conv)
		if err == nil {
			im.fillConv(&c, r)
			return c, true, nil
		}
		if !errors.Is(err, store.ErrNotFound) {
			return c, false, err
		}
	}
	id := model.ConvID(model.NewID())
	if idRe.MatchString(r.ID) {
		if _, err := im.st.Conversation(ctx, model.ConvID(r.ID)); errors.Is(err, store.ErrNotFound) {
			id = model.ConvID(r.ID)
		}
	}
	c := model.Conversation{ID: id, CreatedAt: r.TS, Origin: rocketchat.System}
	if r.Source.Type == "other" && r.Source.Alias != "" {
		c.Origin = r.Source.Alias
	}
	im.fillConv(&c, r)
	return c, false, nil
}

// fillConv sets what the room says of the conversation's state.
func (im *importer) fillConv(c *model.Conversation, r *room) {
	c.Department = model.DeptID(r.DepartmentID)
	c.State = model.StateQueued
	if r.ServedBy != nil && r.ServedBy.ID != "" {
		c.Agent = im.agent(r.ServedBy.ID, r.ServedBy.Username)
		c.AssignedAt = r.ServedBy.TS
		c.State = model.StateOpen
	}
	if !r.Open {
		c.State = model.StateClosed
		c.ClosedAt = r.ClosedAt
		if c.ClosedAt.IsZero() {
			c.ClosedAt = r.TS
		}
		switch r.Closer {
		case "visitor":
			c.ClosedBy = &model.Author{Kind: model.AuthorVisitor, ID: string(c.Visitor)}
		case "user":
			c.ClosedBy = &model.Author{Kind: model.AuthorAgent, ID: string(c.Agent)}
		}
	}
}

func (im *importer) agent(id, username string) model.AgentID {
	if a, ok := im.o.Agents[id]; ok {
		return a
	}
	if a, ok := im.o.Agents[username]; ok && username != "" {
		return a
	}
	return model.AgentID(id)
}

// author is the core author of a message's user.
func (im *importer) author(u user, vid model.VisitorID, r *room) model.Author {
	switch {
	case u.ID == r.V.ID && u.ID != "":
		return model.Author{Kind: model.AuthorVisitor, ID: string(vid), Name: u.Name}
	case u.ID == "rocket.cat" || u.ID == "":
		return model.System
	default:
		return model.Author{Kind: model.AuthorAgent, ID: string(im.agent(u.ID, u.Username)), Name: u.Name}
	}
}

// event translates a message back into a core event (the inverse of
// chatgate's own Rocket.Chat rendering, see adapters/rocketchat/wire.go).
func (im *importer) event(ctx context.Context, r *room, c model.Conversation, vid model.VisitorID, m *message, visible map[string]bool) (model.Event, error) {
	e := model.Event{Conv: c.ID, ID: model.NewID(), ClientKey: m.ID, At: m.TS, Kind: model.KindMessage,
		Author: im.author(m.U, vid, r), Text: m.Msg, Visibility: model.VisibleAll}
	if r.V.Token != "" && !visible[m.ID] {
		e.Visibility = model.VisibleAgents
	}
	by := func(u user) (string, string) {
		a := im.author(u, vid, r)
		return string(a.Kind), a.ID
	}
	switch m.T {
	case "":
		switch {
		case m.File != nil && len(m.Attachments) > 0:
			f, err := im.file(ctx, m)
			if err != nil {
				return e, err
			}
			e.Kind, e.File, e.Text = model.KindFile, f, m.Attachments[0].Description
		case len(m.Attachments) > 0 && len(m.Attachments[0].Fields) > 0:
			form := &model.Form{}
			for _, f := range m.Attachments[0].Fields {
				ans, _ := json.Marshal(f.Value)
				form.Fields = append(form.Fields, model.FormField{Label: f.Title, Answer: ans})
			}
			e.Kind, e.Form, e.Text = model.KindForm, form, ""
		case e.Author.Kind == model.AuthorSystem:
			e.Kind, e.Subtype = model.KindSystem, model.SysWelcome
			if e.Visibility == model.VisibleAgents {
				e.Kind, e.Subtype = model.KindAnnotation, ""
			}
		}
	case "livechat-started":
		e.Kind, e.Subtype, e.Text = model.KindSystem, model.SysStarted, "Chat started"
	case "command":
		if m.Msg != "connected" {
			e.Kind, e.Subtype = model.KindCustom, "rocketchat.command"
			break
		}
		e.Kind, e.Subtype, e.Author = model.KindSystem, model.SysAssigned, model.System
		e.Vars = map[string]string{"agent_id": string(im.agent(m.U.ID, m.U.Username)), "agent_name": m.U.Name}
		e.Text = ""
	case "livechat-close":
		k, id := by(m.U)
		e.Kind, e.Subtype, e.Author = model.KindSystem, model.SysClosed, model.System
		e.Vars = map[string]string{"by_kind": k, "by_id": id, "reason": m.Msg}
	case "livechat_transfer_history":
		e.Kind, e.Subtype, e.Author, e.Text = model.KindSystem, model.SysTransferred, model.System, ""
		e.Vars = map[string]string{}
		if td := m.TransferData; td != nil {
			kind := model.AuthorAgent
			if td.TransferredBy.Type == "visitor" {
				kind = model.AuthorVisitor
			}
			e.Vars["by_kind"] = string(kind)
			e.Vars["by_id"] = td.TransferredBy.ID
			if kind == model.AuthorVisitor {
				e.Vars["by_id"] = string(vid)
			} else {
				e.Vars["by_id"] = string(im.agent(td.TransferredBy.ID, td.TransferredBy.Username))
			}
			e.Vars["comment"] = td.Comment
			if td.TransferredTo != nil {
				e.Vars["to_agent"] = string(im.agent(td.TransferredTo.ID, td.TransferredTo.Username))
			}
			if td.Scope == "department" && td.NextDepartment != nil {
				e.Vars["to_department"] = td.NextDepartment.ID
				e.Vars["from_department"] = td.PreviousDepartment
			}
		}
	case "rm":
		e.Deleted, e.Text = true, ""
	default:
		// Another message type (Rocket.Chat's own system messages):
		// kept as a system message with its type as subtype.
		e.Kind, e.Subtype = model.KindSystem, "rocketchat."+m.T
	}
	if !m.EditedAt.IsZero() && m.EditedBy != nil {
		a := im.author(*m.EditedBy, vid, r)
		e.EditedAt, e.EditedBy = m.EditedAt, &a
	}
	return e, nil
}

// file downloads a message's file into fs and returns the event's file.
func (im *importer) file(ctx context.Context, m *message) (*model.File, error) {
	att := m.Attachments[0]
	f := &model.File{Name: m.File.Name, ContentType: m.File.Type, URL: att.TitleLink, Size: att.ImageSize}
	if im.fs == nil || im.o.DryRun || att.TitleLink == "" {
		return f, nil
	}
	resp, err := im.c.Do(ctx, "GET", att.TitleLink, nil, "")
	if err != nil {
		return nil, fmt.Errorf("download %s: %w", att.TitleLink, err)
	}
	defer resp.Body.Close()
	stored, err := im.fs.Put(ctx, m.File.Name, m.File.Type, io.LimitReader(resp.Body, im.fs.MaxSize()+1))
	if err != nil {
		return nil, fmt.Errorf("store %s: %w", att.TitleLink, err)
	}
	im.sum.Files++
	f.URL = files.URLPrefix + stored.ID + "/" + url.PathEscape(stored.Name)
	f.Size = stored.Size
	if f.ContentType == "" {
		f.ContentType = stored.ContentType
	}
	return f, nil
}
