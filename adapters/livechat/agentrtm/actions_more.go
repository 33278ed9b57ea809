package agentrtm

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"

	"chatgate/adapters/livechat/wire"
	"chatgate/core/desk"
	"chatgate/core/hub"
	"chatgate/core/model"
	"chatgate/core/routing"
	"chatgate/store"
	"chatgate/store/files"
)

// pushTo sends a push caused by the current request to one connection: on
// the requester's own RTM connection it carries the request_id and follows
// the response.
func (c *caller) pushTo(o *client, action string, payload any) {
	if o == c.conn && c.conn != nil {
		rid := c.requestID()
		c.after(func() { o.Push(rid, action, payload) })
		return
	}
	o.Push("", action, payload)
}

// requestID is the current RTM request's request_id ("" on the Web API).
func (c *caller) requestID() string {
	if c.conn == nil {
		return ""
	}
	_, rid, _ := c.conn.RequestOf(c.origin)
	return rid
}

// deptOfGroup maps a LiveChat group id back to a configured department
// (group 0 is the default department "").
func (s *Surface) deptOfGroup(id int) (model.DeptID, bool) {
	if id == 0 {
		return "", true
	}
	for _, d := range s.d.Departments() {
		if wire.GroupID(d.ID) == id {
			return d.ID, true
		}
	}
	return "", false
}

// ---- transfer_chat ----

type transferRequest struct {
	ID     string `json:"id"`
	Target *struct {
		Type string            `json:"type"`
		IDs  []json.RawMessage `json:"ids"`
	} `json:"target"`
	// ignore_agents_availability and ignore_requester_presence are
	// accepted and ignored.
}

// transferChat moves an active chat the agent serves (or may take from the
// queue) to a group (desk.Transfer: routing picks an agent there or it
// waits in that queue) or to one agent (desk.Assign). chat_transferred is
// pushed by the pump (onNotice) to the agents concerned.
func transferChat(ctx context.Context, c *caller, req *wire.Request) (any, error) {
	var p transferRequest
	if err := wire.DecodePayload(req, &p); err != nil {
		return nil, err
	}
	if p.ID == "" {
		return nil, wire.Errorf(wire.Validation, "id is required")
	}
	if p.Target == nil {
		return nil, wire.Errorf(wire.Validation, "target is required")
	}
	if len(p.Target.IDs) != 1 {
		return nil, wire.Errorf(wire.Validation, "target.ids must name exactly one group or agent")
	}
	conv, err := c.latestThread(ctx, p.ID)
	if err != nil {
		return nil, err
	}
	if !conv.Active() {
		return nil, wire.NewError(wire.ChatInactive)
	}
	switch p.Target.Type {
	case "group":
		var gid int
		if err := json.Unmarshal(p.Target.IDs[0], &gid); err != nil || gid < 0 {
			return nil, wire.Errorf(wire.Validation, "target.ids must hold group ids (integers)")
		}
		dept, ok := c.s.deptOfGroup(gid)
		if !ok {
			return nil, wire.Errorf(wire.NotFound, "Group not found")
		}
		return nil, c.s.d.Transfer(ctx, conv.ID, dept, c.author(), c.origin)
	case "agent":
		var id string
		if err := json.Unmarshal(p.Target.IDs[0], &id); err != nil || id == "" {
			return nil, wire.Errorf(wire.Validation, "target.ids must hold agent ids (strings)")
		}
		if _, ok := c.s.d.Router().Agent(model.AgentID(id)); !ok {
			return nil, wire.Errorf(wire.NotFound, "Agent not found")
		}
		return nil, c.s.d.Assign(ctx, conv.ID, model.AgentID(id), c.author(), c.origin)
	default:
		return nil, wire.Errorf(wire.Validation, "target.type must be group or agent")
	}
}

// ---- list_threads / list_archives ----

// offsetCursor is the page_id of list_threads and list_archives: the
// listing's order and limit and the offset of the page. Offsets may skip or
// repeat an item when the listing changes between calls.
type offsetCursor struct {
	Order  string `json:"o"`
	Limit  int    `json:"l"`
	Offset int    `json:"f"`
}

func (k offsetCursor) encode() string {
	b, _ := json.Marshal(k)
	return base64.RawURLEncoding.EncodeToString(b)
}

func listParams(sortOrder string, limit *int, pageID string, defLimit int) (offsetCursor, error) {
	k := offsetCursor{Order: orderDesc, Limit: defLimit}
	switch sortOrder {
	case "", orderDesc:
	case orderAsc:
		k.Order = orderAsc
	default:
		return k, wire.Errorf(wire.Validation, "sort_order must be asc or desc")
	}
	if limit != nil {
		if *limit < 1 || *limit > maxListLimit {
			return k, wire.Errorf(wire.Validation, "limit must be between 1 and %d", maxListLimit)
		}
		k.Limit = *limit
	}
	if pageID != "" {
		var pk offsetCursor
		b, err := base64.RawURLEncoding.DecodeString(pageID)
		if err == nil {
			err = json.Unmarshal(b, &pk)
		}
		if err != nil || (pk.Order != orderAsc && pk.Order != orderDesc) || pk.Limit < 1 || pk.Limit > maxListLimit || pk.Offset < 0 {
			return k, wire.Errorf(wire.Validation, "Invalid page_id")
		}
		k = pk
	}
	return k, nil
}

// window cuts [k.Offset, k.Offset+k.Limit) out of n items and returns the
// bounds and the neighbouring page ids.
func window(n int, k offsetCursor) (start, end int, next, prev string) {
	start = min(k.Offset, n)
	end = min(start+k.Limit, n)
	if end < n {
		next = offsetCursor{Order: k.Order, Limit: k.Limit, Offset: end}.encode()
	}
	if start > 0 {
		prev = offsetCursor{Order: k.Order, Limit: k.Limit, Offset: max(0, start-k.Limit)}.encode()
	}
	return start, end, next, prev
}

type timeRange struct {
	From string `json:"from"`
	To   string `json:"to"`
}

// parseRange reads from/to: RFC 3339 or a date (YYYY-MM-DD; "to" then
// covers the whole day).
func (r timeRange) parse() (from, to time.Time, err error) {
	parse := func(s string, end bool) (time.Time, error) {
		if s == "" {
			return time.Time{}, nil
		}
		if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
			return t, nil
		}
		t, err := time.Parse(time.DateOnly, s)
		if err != nil {
			return t, wire.Errorf(wire.Validation, "filters.from and filters.to must be RFC 3339 times or dates")
		}
		if end {
			t = t.Add(24*time.Hour - time.Nanosecond)
		}
		return t, nil
	}
	if from, err = parse(r.From, false); err != nil {
		return
	}
	to, err = parse(r.To, true)
	return
}

func inRange(t, from, to time.Time) bool {
	return (from.IsZero() || !t.Before(from)) && (to.IsZero() || !t.After(to))
}

func sortThreads(convs []model.Conversation, order string) {
	sort.Slice(convs, func(i, j int) bool {
		if order == orderAsc {
			return newer(convs[j], convs[i])
		}
		return newer(convs[i], convs[j])
	})
}

type listThreadsRequest struct {
	ChatID    string    `json:"chat_id"`
	SortOrder string    `json:"sort_order"`
	Limit     *int      `json:"limit"`
	PageID    string    `json:"page_id"`
	Filters   timeRange `json:"filters"`
	// min_events_count is accepted and ignored.
}

// ListThreadsResponse is list_threads' payload.
type ListThreadsResponse struct {
	Threads        []wire.Thread `json:"threads"`
	FoundThreads   int           `json:"found_threads"`
	NextPageID     string        `json:"next_page_id,omitempty"`
	PreviousPageID string        `json:"previous_page_id,omitempty"`
}

// chatThreads returns the threads of a chat the agent may see; not_found
// when none.
func (c *agentView) chatThreads(ctx context.Context, chatID string) ([]model.Conversation, error) {
	ids, err := c.s.d.Store().VisitorConversations(ctx, model.VisitorID(chatID))
	if errors.Is(err, store.ErrNotFound) || (err == nil && len(ids) == 0) {
		return nil, errChatNotFound()
	}
	if err != nil {
		return nil, fmt.Errorf("threads of %s: %w", chatID, err)
	}
	out := make([]model.Conversation, 0, len(ids))
	for _, id := range ids {
		conv, err := c.s.d.Store().Conversation(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("thread %s: %w", id, err)
		}
		if c.canSee(conv) {
			out = append(out, conv)
		}
	}
	if len(out) == 0 {
		return nil, errChatNotFound()
	}
	return out, nil
}

// listThreads pages through the threads of a chat that the agent may see
// (those it served, and the queued one), newest first by default.
func listThreads(ctx context.Context, c *caller, req *wire.Request) (any, error) {
	var p listThreadsRequest
	if err := wire.DecodePayload(req, &p); err != nil {
		return nil, err
	}
	if p.ChatID == "" {
		return nil, wire.Errorf(wire.Validation, "chat_id is required")
	}
	k, err := listParams(p.SortOrder, p.Limit, p.PageID, 3)
	if err != nil {
		return nil, err
	}
	from, to, err := p.Filters.parse()
	if err != nil {
		return nil, err
	}
	all, err := c.chatThreads(ctx, p.ChatID)
	if err != nil {
		return nil, err
	}
	convs := all[:0]
	for _, conv := range all {
		if inRange(conv.CreatedAt, from, to) {
			convs = append(convs, conv)
		}
	}
	sortThreads(convs, k.Order)
	start, end, next, prev := window(len(convs), k)
	out := ListThreadsResponse{Threads: make([]wire.Thread, 0, end-start), FoundThreads: len(convs),
		NextPageID: next, PreviousPageID: prev}
	for _, conv := range convs[start:end] {
		d, err := c.s.src.Load(ctx, conv, wire.LoadOptions{Neighbour: c.canSee})
		if err != nil {
			return nil, err
		}
		out.Threads = append(out.Threads, wire.RenderThread(&d, wire.ForAgent))
	}
	return out, nil
}

type listArchivesRequest struct {
	SortOrder string `json:"sort_order"`
	Limit     *int   `json:"limit"`
	PageID    string `json:"page_id"`
	Filters   struct {
		timeRange
		Query    string `json:"query"`
		GroupIDs []int  `json:"group_ids"`
	} `json:"filters"`
	// other filters and highlights are accepted and ignored.
}

// ListArchivesResponse is list_archives' payload.
type ListArchivesResponse struct {
	Chats          []wire.Chat `json:"chats"`
	FoundChats     int         `json:"found_chats"`
	NextPageID     string      `json:"next_page_id,omitempty"`
	PreviousPageID string      `json:"previous_page_id,omitempty"`
}

// listArchives pages through the closed threads the agent served (or, never
// served, of its departments: offline messages), each as
// a chat with that one thread. Filters: from/to (thread creation),
// group_ids, query (case-insensitive substring of a message's text, a
// filled form's answers, or the customer's name or e-mail). It scans every conversation (and, with
// query, loads their events): the store has no archive index yet.
func listArchives(ctx context.Context, c *caller, req *wire.Request) (any, error) {
	var p listArchivesRequest
	if err := wire.DecodePayload(req, &p); err != nil {
		return nil, err
	}
	k, err := listParams(p.SortOrder, p.Limit, p.PageID, defaultListLimit)
	if err != nil {
		return nil, err
	}
	from, to, err := p.Filters.parse()
	if err != nil {
		return nil, err
	}
	query := strings.ToLower(strings.TrimSpace(p.Filters.Query))
	var convs []model.Conversation
	err = c.s.d.Store().Conversations(ctx, func(conv model.Conversation) bool {
		if conv.State == model.StateClosed && c.serves(conv) && inRange(conv.CreatedAt, from, to) &&
			(len(p.Filters.GroupIDs) == 0 || slices.Contains(p.Filters.GroupIDs, wire.GroupID(conv.Department))) {
			convs = append(convs, conv)
		}
		return ctx.Err() == nil
	})
	if err == nil {
		err = ctx.Err()
	}
	if err != nil {
		return nil, fmt.Errorf("scan conversations: %w", err)
	}
	sortThreads(convs, k.Order)
	var data []wire.ChatData
	if query != "" {
		kept := convs[:0]
		for _, conv := range convs {
			d, err := c.s.src.Load(ctx, conv, wire.LoadOptions{Neighbour: c.canSee})
			if err != nil {
				return nil, err
			}
			if matches(&d, query) {
				kept = append(kept, conv)
				data = append(data, d)
			}
		}
		convs = kept
	}
	start, end, next, prev := window(len(convs), k)
	out := ListArchivesResponse{Chats: make([]wire.Chat, 0, end-start), FoundChats: len(convs),
		NextPageID: next, PreviousPageID: prev}
	for i := start; i < end; i++ {
		var d wire.ChatData
		if data != nil {
			d = data[i]
		} else if d, err = c.s.src.Load(ctx, convs[i], wire.LoadOptions{Neighbour: c.canSee}); err != nil {
			return nil, err
		}
		out.Chats = append(out.Chats, c.chatView(&d))
	}
	return out, nil
}

func matches(d *wire.ChatData, query string) bool {
	if strings.Contains(strings.ToLower(d.Visitor.Name), query) || strings.Contains(strings.ToLower(d.Visitor.Email), query) {
		return true
	}
	for i := range d.Events {
		e := &d.Events[i]
		switch {
		case e.Kind == model.KindMessage && strings.Contains(strings.ToLower(e.Text), query):
			return true
		case e.Kind == model.KindForm && e.Form != nil && strings.Contains(strings.ToLower(e.Form.Summary()), query):
			return true
		}
	}
	return false
}

// ---- customers ----

type customerRequest struct {
	ID            string              `json:"id"`
	Name          *string             `json:"name"`
	Email         *string             `json:"email"`
	Avatar        *string             `json:"avatar"`
	SessionFields []map[string]string `json:"session_fields"`
}

// CustomerStatistics is get_customer's statistics.
type CustomerStatistics struct {
	ChatsCount   int `json:"chats_count"`
	ThreadsCount int `json:"threads_count"`
}

// CustomerResponse is get_customer's payload.
type CustomerResponse struct {
	wire.User
	Statistics CustomerStatistics `json:"statistics"`
	ChatIDs    []string           `json:"chat_ids,omitempty"`
}

// customerOf returns a customer the agent may see: one with a thread the
// agent may see (customer ids are chat ids in chatgate). Others answer
// not_found.
func (c *agentView) customerOf(ctx context.Context, id string) (model.Visitor, []model.Conversation, error) {
	threads, err := c.chatThreads(ctx, id)
	if err != nil {
		return model.Visitor{}, nil, wire.Errorf(wire.NotFound, "Customer not found")
	}
	v, err := c.s.d.Store().Visitor(ctx, model.VisitorID(id))
	if errors.Is(err, store.ErrNotFound) {
		return v, nil, wire.Errorf(wire.NotFound, "Customer not found")
	}
	return v, threads, err
}

func getCustomer(ctx context.Context, c *caller, req *wire.Request) (any, error) {
	var p customerRequest
	if err := wire.DecodePayload(req, &p); err != nil {
		return nil, err
	}
	if p.ID == "" {
		return nil, wire.Errorf(wire.Validation, "id is required")
	}
	v, _, err := c.customerOf(ctx, p.ID)
	if err != nil {
		return nil, err
	}
	ids, err := c.s.d.Store().VisitorConversations(ctx, v.ID)
	if err != nil {
		return nil, err
	}
	latest, _ := c.latestThread(ctx, p.ID)
	u := wire.Customer(&v, latest.Active(), wire.ForAgent)
	return CustomerResponse{User: u, Statistics: CustomerStatistics{ChatsCount: 1, ThreadsCount: len(ids)},
		ChatIDs: []string{string(v.ID)}}, nil
}

// CustomerUpdated is the customer_updated push (v3.3+: the changed fields).
type CustomerUpdated struct {
	ID            string              `json:"id"`
	Type          string              `json:"type"`
	Name          *string             `json:"name,omitempty"`
	Email         *string             `json:"email,omitempty"`
	SessionFields []map[string]string `json:"session_fields,omitempty"`
}

// updateCustomer changes a visible customer's name, e-mail or session
// fields (desk.UpdateVisitor) and pushes customer_updated to the agents
// who may see its chat. avatar is not stored by the core: a request
// changing only the avatar is a validation error.
func updateCustomer(ctx context.Context, c *caller, req *wire.Request) (any, error) {
	var p customerRequest
	if err := wire.DecodePayload(req, &p); err != nil {
		return nil, err
	}
	if p.ID == "" {
		return nil, wire.Errorf(wire.Validation, "id is required")
	}
	if p.Name == nil && p.Email == nil && p.SessionFields == nil {
		return nil, wire.Errorf(wire.Validation, "name, email or session_fields is required")
	}
	if _, _, err := c.customerOf(ctx, p.ID); err != nil {
		return nil, err
	}
	upd := desk.VisitorUpdate{Name: p.Name, Email: p.Email}
	if p.SessionFields != nil {
		upd.Fields = make(map[string]string)
		for _, f := range p.SessionFields {
			if len(f) != 1 {
				return nil, wire.Errorf(wire.Validation, "session_fields items must be objects with one key")
			}
			for k, v := range f {
				upd.Fields[k] = v
			}
		}
	}
	v, err := c.s.d.UpdateVisitor(ctx, model.VisitorID(p.ID), upd)
	if err != nil {
		return nil, err
	}
	push := CustomerUpdated{ID: string(v.ID), Type: "customer", Name: p.Name, Email: p.Email}
	if p.SessionFields != nil {
		push.SessionFields = p.SessionFields
	}
	latest, err := c.latestThread(ctx, p.ID)
	for _, o := range c.s.clients.All() {
		if o == c.conn || (err == nil && o.canSee(latest)) || o.agent.ID == c.agent.ID {
			c.pushTo(o, "customer_updated", push)
		}
	}
	return nil, nil
}

// ---- agents ----

type groupFilter struct {
	Filters struct {
		GroupIDs []int `json:"group_ids"`
	} `json:"filters"`
}

// RoutingStatus is one item of list_routing_statuses.
type RoutingStatus struct {
	AgentID string `json:"agent_id"`
	Status  string `json:"status"`
}

// listRoutingStatuses lists the configured agents' statuses, optionally
// only those serving one of filters.group_ids.
func listRoutingStatuses(_ context.Context, c *caller, req *wire.Request) (any, error) {
	var p groupFilter
	if err := wire.DecodePayload(req, &p); err != nil {
		return nil, err
	}
	var depts []model.DeptID
	for _, g := range p.Filters.GroupIDs {
		d, ok := c.s.deptOfGroup(g)
		if !ok {
			return nil, wire.Errorf(wire.NotFound, "Group not found")
		}
		depts = append(depts, d)
	}
	out := []RoutingStatus{}
	for _, a := range c.s.d.Router().Agents() {
		if len(depts) > 0 && !slices.ContainsFunc(depts, a.Serves) {
			continue
		}
		out = append(out, RoutingStatus{AgentID: string(a.ID), Status: string(c.s.d.Router().Status(a.ID))})
	}
	return out, nil
}

// AgentForTransfer is one item of list_agents_for_transfer.
type AgentForTransfer struct {
	AgentID     string `json:"agent_id"`
	ActiveChats int    `json:"active_chats"`
}

// listAgentsForTransfer lists the other agents accepting chats who serve
// the chat's department, fewest open chats first.
func listAgentsForTransfer(ctx context.Context, c *caller, req *wire.Request) (any, error) {
	var p getChatRequest
	if err := wire.DecodePayload(req, &p); err != nil {
		return nil, err
	}
	if p.ChatID == "" {
		return nil, wire.Errorf(wire.Validation, "chat_id is required")
	}
	conv, err := c.latestThread(ctx, p.ChatID)
	if err != nil {
		return nil, err
	}
	r := c.s.d.Router()
	out := []AgentForTransfer{}
	for _, a := range r.Agents() {
		if a.ID == c.agent.ID || !a.Serves(conv.Department) || r.Status(a.ID) != routing.Accepting {
			continue
		}
		out = append(out, AgentForTransfer{AgentID: string(a.ID), ActiveChats: r.Open(a.ID)})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].ActiveChats < out[j].ActiveChats })
	return out, nil
}

// ---- mark_events_as_seen ----

// EventsMarkedAsSeen is the events_marked_as_seen push.
type EventsMarkedAsSeen = wire.EventsMarkedAsSeen

// onSeen pushes events_marked_as_seen for a chat the agent sees (or its
// own marker, to all of its connections).
func (c *client) onSeen(ctx context.Context, n hub.Notice) error {
	s := n.Seen
	if !c.relevant(n.Conv) && s.User != string(c.agent.ID) {
		return nil
	}
	num, rid, mine := c.RequestOf(n.Origin)
	if mine {
		c.AwaitResponse(ctx, num)
	}
	c.Push(rid, "events_marked_as_seen", EventsMarkedAsSeen{UserID: s.User, ChatID: string(n.Conv.Visitor), SeenUpTo: wire.Time(s.UpTo)})
	return nil
}

// ---- multicast ----

type multicastRequest struct {
	Recipients *struct {
		Agents *struct {
			All    *bool    `json:"all"`
			IDs    []string `json:"ids"`
			Groups []int    `json:"groups"`
		} `json:"agents"`
		Customers json.RawMessage `json:"customers"`
	} `json:"recipients"`
	Content json.RawMessage `json:"content"`
	Type    string          `json:"type"`
}

// IncomingMulticast is the incoming_multicast push.
type IncomingMulticast struct {
	AuthorID string          `json:"author_id,omitempty"`
	Content  json.RawMessage `json:"content"`
	Type     string          `json:"type,omitempty"`
}

// multicast pushes incoming_multicast to the connected agents named by
// recipients.agents (all, ids, groups). Customers are not supported.
func multicast(_ context.Context, c *caller, req *wire.Request) (any, error) {
	var p multicastRequest
	if err := wire.DecodePayload(req, &p); err != nil {
		return nil, err
	}
	if p.Recipients == nil || p.Recipients.Agents == nil {
		return nil, wire.Errorf(wire.Validation, "recipients.agents is required")
	}
	if len(p.Recipients.Customers) > 0 && string(p.Recipients.Customers) != "null" {
		return nil, wire.Errorf(wire.Validation, "Multicast to customers is not supported")
	}
	if len(p.Content) == 0 || string(p.Content) == "null" {
		return nil, wire.Errorf(wire.Validation, "content is required")
	}
	ra := p.Recipients.Agents
	all := ra.All != nil && *ra.All
	if !all && len(ra.IDs) == 0 && len(ra.Groups) == 0 {
		return nil, wire.Errorf(wire.Validation, "recipients.agents needs all, ids or groups")
	}
	var depts []model.DeptID
	for _, g := range ra.Groups {
		d, ok := c.s.deptOfGroup(g)
		if !ok {
			return nil, wire.Errorf(wire.NotFound, "Group not found")
		}
		depts = append(depts, d)
	}
	push := IncomingMulticast{AuthorID: string(c.agent.ID), Content: p.Content, Type: p.Type}
	for _, o := range c.s.clients.All() {
		if all || slices.Contains(ra.IDs, string(o.agent.ID)) || slices.ContainsFunc(depts, o.agent.Serves) {
			c.pushTo(o, "incoming_multicast", push)
		}
	}
	return nil, nil
}

// ---- logout ----

// logout disconnects every RTM connection of the agent
// (agent_disconnected, reason agent_logged_out_remotely) after the
// response. Tokens come from configuration and stay valid.
func logout(_ context.Context, c *caller, _ *wire.Request) (any, error) {
	for _, o := range c.s.clients.Of(c.agent.ID) {
		if o == c.conn {
			c.after(func() { o.bye("agent_logged_out_remotely") })
			continue
		}
		o.bye("agent_logged_out_remotely")
	}
	return nil, nil
}

// ---- file events ----

// fileOf checks a file event's url: it must be a URL upload_file returned
// (path /file-upload/<id>/<name> of a stored file). Name, type and size
// come from the store.
func (c *agentView) fileOf(ctx context.Context, raw string) (*model.File, error) {
	bad := wire.Errorf(wire.Validation, "event.url must be a URL returned by upload_file")
	u, err := url.Parse(raw)
	if err != nil || raw == "" || c.s.cfg.Files == nil || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, bad
	}
	id, ok := files.IDFromURL(raw)
	if !ok {
		return nil, bad
	}
	// Claimed: referenced by an event from now on, so never swept.
	f, err := c.s.cfg.Files.Claim(ctx, id)
	if err != nil {
		return nil, bad
	}
	return &model.File{Name: f.Name, URL: raw, ContentType: f.ContentType, Size: f.Size}, nil
}
