package customer

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"time"

	"chatgate/adapters/livechat/wire"
	"chatgate/core/model"
)

func parseTime(s string) (time.Time, error) { return time.Parse(time.RFC3339Nano, s) }

const (
	orderAsc  = "asc"
	orderDesc = "desc"
	// summaryEvents bounds the events read for last_event_per_type.
	summaryEvents = 50
)

// ChatSummary is a customer chat summary (list_chats, §2.4).
type ChatSummary struct {
	ID                  string                    `json:"id"`
	LastThreadID        string                    `json:"last_thread_id"`
	LastThreadCreatedAt string                    `json:"last_thread_created_at"`
	Active              bool                      `json:"active"`
	Access              wire.Access               `json:"access"`
	Properties          wire.Properties           `json:"properties"`
	Users               []wire.User               `json:"users"`
	LastEventPerType    map[string]wire.LastEvent `json:"last_event_per_type"`
}

// ListChatsResponse is list_chats' payload.
type ListChatsResponse struct {
	ChatsSummary   []ChatSummary `json:"chats_summary"`
	TotalChats     int           `json:"total_chats"`
	NextPageID     string        `json:"next_page_id,omitempty"`
	PreviousPageID string        `json:"previous_page_id,omitempty"`
}

type listRequest struct {
	ChatID         string `json:"chat_id"`
	Limit          *int   `json:"limit"`
	SortOrder      string `json:"sort_order"`
	PageID         string `json:"page_id"`
	MinEventsCount *int   `json:"min_events_count"`
}

// page is what an opaque page_id carries: order, page size, offset.
type page struct {
	Order  string `json:"o"`
	Limit  int    `json:"l"`
	Offset int    `json:"f"`
}

func (p page) encode() string {
	b, _ := json.Marshal(p)
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodePage(s string, maxLimit int) (page, error) {
	var p page
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err == nil {
		err = json.Unmarshal(b, &p)
	}
	if err != nil || (p.Order != orderAsc && p.Order != orderDesc) || p.Limit < 1 || p.Limit > maxLimit || p.Offset < 0 {
		return page{}, wire.Errorf(wire.Validation, "Invalid page_id")
	}
	return p, nil
}

// paging reads sort_order/limit/page_id (a page_id wins).
func (r *listRequest) paging(def, maxLimit int) (page, error) {
	pg := page{Order: orderDesc, Limit: def}
	switch r.SortOrder {
	case "", orderDesc:
	case orderAsc:
		pg.Order = orderAsc
	default:
		return pg, wire.Errorf(wire.Validation, "sort_order must be asc or desc")
	}
	if r.Limit != nil {
		if *r.Limit < 1 || *r.Limit > maxLimit {
			return pg, wire.Errorf(wire.Validation, "limit must be between 1 and %d", maxLimit)
		}
		pg.Limit = *r.Limit
	}
	if r.PageID != "" {
		return decodePage(r.PageID, maxLimit)
	}
	return pg, nil
}

// cut returns the window of n items pg selects and its neighbours' ids.
func (pg page) cut(n int) (from, to int, next, prev string) {
	from = min(pg.Offset, n)
	to = min(from+pg.Limit, n)
	if to < n {
		next = page{Order: pg.Order, Limit: pg.Limit, Offset: to}.encode()
	}
	if from > 0 {
		prev = page{Order: pg.Order, Limit: pg.Limit, Offset: max(0, from-pg.Limit)}.encode()
	}
	return from, to, next, prev
}

// listChats lists the customer's chat: a customer has at most one.
func listChats(ctx context.Context, c *client, req *wire.Request) (any, error) {
	var p listRequest
	if err := wire.DecodePayload(req, &p); err != nil {
		return nil, err
	}
	pg, err := p.paging(10, 25)
	if err != nil {
		return nil, err
	}
	out := ListChatsResponse{ChatsSummary: []ChatSummary{}}
	conv, err := c.latestThread(ctx, string(c.me))
	if err != nil {
		if we, _ := wire.FromError(err); we.Type == wire.NotFound {
			return out, nil
		}
		return nil, err
	}
	out.TotalChats = 1
	from, to, next, prev := pg.cut(1)
	out.NextPageID, out.PreviousPageID = next, prev
	if from == to {
		return out, nil
	}
	d, err := c.s.src.Load(ctx, conv, wire.LoadOptions{Last: summaryEvents})
	if err != nil {
		return nil, err
	}
	out.ChatsSummary = append(out.ChatsSummary, renderSummary(&d))
	return out, nil
}

func renderSummary(d *wire.ChatData) ChatSummary {
	chat := wire.RenderChat(d, wire.ForCustomer)
	last := make(map[string]wire.LastEvent)
	for _, ev := range chat.Thread.Events {
		last[ev.Type] = wire.LastEvent{ThreadID: chat.Thread.ID, ThreadCreatedAt: chat.Thread.CreatedAt, Event: ev}
	}
	return ChatSummary{ID: chat.ID, LastThreadID: chat.Thread.ID, LastThreadCreatedAt: chat.Thread.CreatedAt,
		Active: chat.Thread.Active, Access: chat.Access, Properties: chat.Properties, Users: chat.Users,
		LastEventPerType: last}
}

// ListThreadsResponse is list_threads' payload.
type ListThreadsResponse struct {
	Threads        []wire.Thread `json:"threads"`
	FoundThreads   int           `json:"found_threads"`
	NextPageID     string        `json:"next_page_id,omitempty"`
	PreviousPageID string        `json:"previous_page_id,omitempty"`
}

// listThreads pages through the chat's threads (newest first by default),
// each with all its events visible to the customer. min_events_count is
// accepted and treated as a limit of threads (chatgate pages by threads).
func listThreads(ctx context.Context, c *client, req *wire.Request) (any, error) {
	var p listRequest
	if err := wire.DecodePayload(req, &p); err != nil {
		return nil, err
	}
	if p.ChatID == "" {
		return nil, wire.Errorf(wire.Validation, "chat_id is required")
	}
	if p.MinEventsCount != nil {
		if p.Limit != nil {
			return nil, wire.Errorf(wire.Validation, "limit and min_events_count are exclusive")
		}
		if *p.MinEventsCount < 1 || *p.MinEventsCount > 100 {
			return nil, wire.Errorf(wire.Validation, "min_events_count must be between 1 and 100")
		}
	}
	pg, err := p.paging(3, 100)
	if err != nil {
		return nil, err
	}
	ids, err := c.threads(ctx, p.ChatID)
	if err != nil {
		return nil, err
	}
	ordered := make([]model.ConvID, len(ids))
	for i := range ids {
		if pg.Order == orderDesc {
			ordered[i] = ids[len(ids)-1-i]
		} else {
			ordered[i] = ids[i]
		}
	}
	from, to, next, prev := pg.cut(len(ordered))
	out := ListThreadsResponse{Threads: []wire.Thread{}, FoundThreads: len(ids), NextPageID: next, PreviousPageID: prev}
	for _, id := range ordered[from:to] {
		conv, err := c.thread(ctx, p.ChatID, id)
		if err != nil {
			return nil, err
		}
		d, err := c.s.src.Load(ctx, conv, wire.LoadOptions{Neighbour: c.mine})
		if err != nil {
			return nil, err
		}
		out.Threads = append(out.Threads, wire.RenderThread(&d, wire.ForCustomer))
	}
	return out, nil
}
