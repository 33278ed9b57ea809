package agentrtm

import (
	"encoding/base64"
	"encoding/json"
	"slices"
	"sort"
	"time"

	"chatgate/adapters/livechat/wire"
	"chatgate/core/model"
)

const (
	orderAsc  = "asc"
	orderDesc = "desc"
)

// cursor is what an opaque page_id carries: the sort order and page size
// of the listing, and the chat the page starts after (next) or ends before
// (previous). Keyed on (thread created_at, chat id), so pages stay right
// when chats are added between calls.
type cursor struct {
	Order string    `json:"o"`
	Limit int       `json:"l"`
	At    time.Time `json:"t"`
	Chat  string    `json:"c"`
	Prev  bool      `json:"p,omitempty"`
}

func (k cursor) encode() string {
	b, _ := json.Marshal(k) // a struct of plain fields always marshals
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeCursor(s string) (cursor, error) {
	var k cursor
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err == nil {
		err = json.Unmarshal(b, &k)
	}
	if err != nil || (k.Order != orderAsc && k.Order != orderDesc) || k.Limit < 1 || k.Limit > maxListLimit {
		return cursor{}, wire.Errorf(wire.Validation, "Invalid page_id")
	}
	return k, nil
}

// before reports whether a sorts before b in order.
func before(a, b model.Conversation, order string) bool {
	if !a.CreatedAt.Equal(b.CreatedAt) {
		return a.CreatedAt.Before(b.CreatedAt) == (order == orderAsc)
	}
	return (a.Visitor < b.Visitor) == (order == orderAsc)
}

func sortChats(convs []model.Conversation, order string) {
	sort.Slice(convs, func(i, j int) bool { return before(convs[i], convs[j], order) })
}

// page cuts one page out of convs (sorted in k.Order) and returns the
// cursors of its neighbours, "" where there is none.
func page(convs []model.Conversation, k cursor, from *cursor) (out []model.Conversation, next, prev string) {
	start, end := 0, min(k.Limit, len(convs))
	if from != nil {
		key := model.Conversation{CreatedAt: from.At, Visitor: model.VisitorID(from.Chat)}
		// i = the first chat not before the key.
		i := sort.Search(len(convs), func(i int) bool { return !before(convs[i], key, k.Order) })
		if from.Prev {
			start, end = max(0, i-k.Limit), i
		} else {
			if i < len(convs) && convs[i].Visitor == key.Visitor && convs[i].CreatedAt.Equal(key.CreatedAt) {
				i++ // the key chat itself was on the previous page
			}
			start, end = i, min(i+k.Limit, len(convs))
		}
	}
	out = slices.Clone(convs[start:end])
	if end < len(convs) && end > start {
		last := convs[end-1]
		next = cursor{Order: k.Order, Limit: k.Limit, At: last.CreatedAt, Chat: string(last.Visitor)}.encode()
	}
	if start > 0 && end > start {
		first := convs[start]
		prev = cursor{Order: k.Order, Limit: k.Limit, At: first.CreatedAt, Chat: string(first.Visitor), Prev: true}.encode()
	}
	return out, next, prev
}
