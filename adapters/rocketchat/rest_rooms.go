package rocketchat

import (
	"errors"
	"sort"
	"time"

	"github.com/gin-gonic/gin"

	"chatgate/core/model"
	"chatgate/store"
)

// Agent routes for reading rooms, whichever surface they started on (a
// LiveChat v2 visitor's chat is a livechat room here too): Rocket.Chat's
// GET livechat/rooms (the omnichannel room list) and GET chat.syncMessages
// (a room's messages changed since a time), as agent apps use them.

// restRooms is GET livechat/rooms?open=&departmentId=&offset=&count=: the
// rooms the agent may read, newest first.
func (s *Surface) restRooms(c *gin.Context, r *restReq) (map[string]any, error) {
	ctx := c.Request.Context()
	open, dept := c.Query("open"), c.Query("departmentId")
	var convs []model.Conversation
	err := s.d.Store().Conversations(ctx, func(conv model.Conversation) bool {
		switch {
		case !agentMayRead(r.agent, conv):
		case open == "true" && !conv.Active(), open == "false" && conv.Active():
		case dept != "" && string(conv.Department) != dept:
		default:
			convs = append(convs, conv)
		}
		return true
	})
	if err != nil {
		return nil, err
	}
	sort.Slice(convs, func(i, j int) bool { return convs[i].ID > convs[j].ID })
	offset, count := paging(c)
	rooms := []any{}
	for i := offset; i < len(convs) && len(rooms) < count; i++ {
		rooms = append(rooms, s.renderRoom(&convs[i], nil, ""))
	}
	return map[string]any{"rooms": rooms, "count": len(rooms), "offset": offset, "total": len(convs)}, nil
}

// restSyncMessages is GET chat.syncMessages?roomId=&lastUpdate=: the room's
// messages posted or changed after lastUpdate (ISO date), oldest first, as
// {"result":{"updated":[...],"deleted":[...]}}. Agents see agents-only
// messages too.
func (s *Surface) restSyncMessages(c *gin.Context, r *restReq) (map[string]any, error) {
	ctx := c.Request.Context()
	rid, last := c.Query("roomId"), c.Query("lastUpdate")
	if rid == "" {
		return nil, &failC{body: map[string]any{"error": `The required "roomId" query param is missing.`}}
	}
	if last == "" {
		return nil, &failC{body: map[string]any{"error": `The required "lastUpdate" query param is missing.`}}
	}
	since, err := time.Parse(time.RFC3339Nano, last)
	if err != nil {
		return nil, &failC{body: map[string]any{"error": `The "lastUpdate" query parameter must be a valid date.`}}
	}
	conv, err := s.conversation(ctx, rid)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errInvalidRoom
	}
	if err != nil {
		return nil, err
	}
	if !agentMayRead(r.agent, conv) {
		return nil, errUnauthorized
	}
	evs, err := s.d.Store().Events(ctx, conv.ID, 1, 0)
	if err != nil {
		return nil, err
	}
	updated, deleted := []any{}, []any{}
	for i := range evs {
		e := evs[i]
		changed := e.At
		if e.EditedAt.After(changed) {
			changed = e.EditedAt
		}
		if !changed.After(since) {
			continue
		}
		e.Visibility = model.VisibleAll // agents read internal notes too
		m := s.renderMessage(&e)
		switch {
		case m == nil:
		case e.Deleted:
			deleted = append(deleted, map[string]any{"_id": m.id, "_deletedAt": changed})
		default:
			updated = append(updated, m)
		}
	}
	return map[string]any{"result": map[string]any{"updated": updated, "deleted": deleted}}, nil
}
