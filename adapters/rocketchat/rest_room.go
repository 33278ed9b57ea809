package rocketchat

// rest_room.go: livechat/room and the room commands a visitor sends.

import (
	"context"
	"encoding/json"
	"errors"
	"slices"

	"github.com/gin-gonic/gin"

	"chatgate/core/desk"
	"chatgate/core/model"
	"chatgate/store"
)

// visitorAuthor is the visitor as the author of a command.
func visitorAuthor(v model.Visitor) model.Author {
	return model.Author{Kind: model.AuthorVisitor, ID: string(v.ID), Name: v.Name}
}

// openOrStartRoom returns the visitor's open room, or starts one (§5.6):
// in the visitor's department when it still exists, refused with
// no-agent-online when no agent accepting chats serves it. created reports
// a new room. The first event is the "chat started" notice (livechat-started).
// rid, when the client chose one for a new room, becomes the new room's _id
// (room_ids.go); a visitor's open room keeps its own. widget marks a room
// the widget starts (source type widget, else api).
func (s *Surface) openOrStartRoom(ctx context.Context, v model.Visitor, rid string, widget bool) (model.Conversation, bool, error) {
	conv, open, err := s.d.OpenConversation(ctx, v.ID)
	if err != nil {
		return model.Conversation{}, false, err
	}
	if open {
		return conv, false, nil
	}
	dept := v.Department
	if _, ok := s.d.Department(dept); !ok {
		dept = ""
	}
	if !s.online(dept) {
		return model.Conversation{}, false, errNoAgentOnline
	}
	maps, err := s.roomAlias(ctx, rid)
	if err != nil {
		return model.Conversation{}, false, err
	}
	aliased := len(maps) > 0
	if widget {
		maps = append(maps, store.Mapping{MapKey: store.MapKey{System: System, Tenant: s.cfg.Tenant, Kind: kindWidgetRoom, Foreign: model.NewID()}})
	}
	conv, _, err = s.d.Start(ctx, desk.StartRequest{Visitor: v.ID, Department: dept, Origin: System, Maps: maps,
		Author: visitorAuthor(v), Events: []desk.Draft{{Kind: model.KindSystem, Subtype: model.SysStarted, Text: "Chat started"}}})
	if errors.Is(err, desk.ErrVisitorBusy) {
		return conv, false, nil
	}
	if aliased && errors.Is(err, store.ErrConflict) {
		// The client's id was bound to another room meanwhile.
		return model.Conversation{}, false, errCannotAccess
	}
	if err != nil {
		return model.Conversation{}, false, err
	}
	return conv, true, nil
}

// restRoom is GET livechat/room (§5.6). agentId (a preferred agent) is
// accepted and ignored: routing picks the agent.
func (s *Surface) restRoom(c *gin.Context, _ *restReq) (map[string]any, error) {
	ctx := c.Request.Context()
	token, err := query(c, "token", true)
	if err != nil {
		return nil, err
	}
	v, err := s.visitorByToken(ctx, token)
	if err != nil {
		return nil, err
	}
	rid := c.Query("rid")
	if rid != "" {
		_, conv, err := s.visitorRoom(ctx, token, rid)
		switch {
		case err == nil && conv.Active():
			return map[string]any{"room": s.renderRoom(&conv, &v, token), "newRoom": false}, nil
		case err == nil, !errors.Is(err, errInvalidRoom):
			return nil, errInvalidRoom
		}
		// Rocket.Chat 4.x answers invalid-room for any rid that is not the
		// token's open room (room.js, checked); Rocket.Chat 3.x and the
		// realtime seed let the client choose the id of the room it
		// starts (rid = roomId || Random.id()). chatgate starts a room
		// under an unused client id, and answers invalid-room when the
		// visitor already has an open room (one open room per visitor) or
		// the id cannot name a room.
		if _, open, err := s.d.OpenConversation(ctx, v.ID); err != nil {
			return nil, err
		} else if open || !validRoomID(rid) {
			return nil, errInvalidRoom
		}
	}
	conv, created, err := s.openOrStartRoom(ctx, v, rid, isWidget(c.Request.Header))
	if rid != "" && errors.Is(err, errCannotAccess) {
		// The id names another visitor's room: nothing tells it exists.
		return nil, errInvalidRoom
	}
	if err != nil {
		return nil, err
	}
	return map[string]any{"room": s.renderRoom(&conv, &v, token), "newRoom": created}, nil
}

// bodyStrings reads required string keys of a body, in order.
func bodyStrings(m map[string]any, keys ...string) ([]string, error) {
	out := make([]string, len(keys))
	for i, k := range keys {
		v, err := str(m, k, true)
		if err != nil {
			return nil, err
		}
		out[i] = v
	}
	return out, nil
}

// restRoomClose is POST livechat/room.close (§5.7).
func (s *Surface) restRoomClose(c *gin.Context, r *restReq) (map[string]any, error) {
	in, err := bodyStrings(r.body, "rid", "token")
	if err != nil {
		return nil, err
	}
	ctx := c.Request.Context()
	v, conv, err := s.visitorRoom(ctx, in[1], in[0])
	if err != nil {
		return nil, err
	}
	if !conv.Active() {
		return nil, errRoomClosed
	}
	const comment = "Closed by visitor"
	if _, err := s.d.Close(ctx, conv.ID, visitorAuthor(v), comment, ""); err != nil {
		return nil, deskErr(err)
	}
	return map[string]any{"rid": s.roomID(ctx, conv.ID), "comment": comment}, nil
}

// restRoomTransfer is POST livechat/room.transfer (§5.8): the visitor
// switches department; the visitor's preferred department follows.
func (s *Surface) restRoomTransfer(c *gin.Context, r *restReq) (map[string]any, error) {
	in, err := bodyStrings(r.body, "rid", "token", "department")
	if err != nil {
		return nil, err
	}
	ctx := c.Request.Context()
	v, conv, err := s.visitorRoom(ctx, in[1], in[0])
	if err != nil {
		return nil, err
	}
	if !conv.Active() {
		return nil, errRoomClosed
	}
	if err := s.visitorTransfer(ctx, v, conv, in[2]); err != nil {
		return nil, err
	}
	conv, err = s.d.Store().Conversation(ctx, conv.ID)
	if err != nil {
		return nil, err
	}
	full := s.renderRoom(&conv, &v, in[1])
	room := map[string]any{}
	for _, k := range []string{"_id", "t", "departmentId", "servedBy", "open", "v", "ts"} {
		if x, ok := full[k]; ok {
			room[k] = x
		}
	}
	return map[string]any{"room": room}, nil
}

// visitorTransfer moves the visitor's open room conv to a department (by
// id or name); the visitor's preferred department follows.
func (s *Surface) visitorTransfer(ctx context.Context, v model.Visitor, conv model.Conversation, dept string) error {
	dp, ok := s.findDepartment(dept)
	if !ok {
		return errInvalidDept
	}
	if dp.ID == conv.Department {
		return errSameDepartment
	}
	if err := s.d.Transfer(ctx, conv.ID, dp.ID, visitorAuthor(v), ""); err != nil {
		return deskErr(err)
	}
	if _, err := s.d.UpdateVisitor(ctx, v.ID, desk.VisitorUpdate{Department: &dp.ID}); err != nil {
		s.log.Warn().Err(err).Str("visitor", string(v.ID)).Msg("visitor department after transfer")
	}
	return nil
}

// restDepartmentTransfer is POST livechat/visitor/department.transfer
// {token, rid, department}, the route of Rocket.Chat 6+ that
// @rocket.chat/ddp-client's transferChat calls (room.ts, checked):
// {"success":true}, or API.v1.failure("<code>") for an unknown token
// (invalid-token), room (error-invalid-room), a closed room
// (This_conversation_is_already_closed) or a transfer that did not happen
// (error-transfering-chat). Rocket.Chat reads the room by rid alone; here
// the room must be the token's (a visitor's token opens only its own
// rooms), and another visitor's room is error-invalid-room like a room
// that does not exist.
func (s *Surface) restDepartmentTransfer(c *gin.Context, r *restReq) (map[string]any, error) {
	var in [3]string
	for i, k := range []string{"token", "rid", "department"} {
		v, ok := r.body[k].(string)
		if !ok {
			return nil, &failC{body: map[string]any{"errorType": "invalid-params", "error": "must have required property '" + k + "'"}}
		}
		in[i] = v
	}
	fail := func(code string) error { return &failC{body: map[string]any{"error": code}} }
	ctx := c.Request.Context()
	v, conv, err := s.visitorRoom(ctx, in[0], in[1])
	switch {
	case errors.Is(err, errInvalidToken):
		return nil, fail("invalid-token")
	case errors.Is(err, errInvalidRoom):
		return nil, fail("error-invalid-room")
	case err != nil:
		return nil, err
	case !conv.Active():
		return nil, fail("This_conversation_is_already_closed")
	}
	if err := s.visitorTransfer(ctx, v, conv, in[2]); err != nil {
		var rc *rcError
		if errors.As(err, &rc) {
			return nil, fail("error-transfering-chat")
		}
		return nil, err
	}
	return map[string]any{}, nil
}

// Survey items and values, as livechat/config announces them.
var (
	surveyItems  = []string{"satisfaction", "agentKnowledge", "agentResposiveness", "agentFriendliness", "additionalFeedback"}
	surveyValues = []string{"1", "2", "3", "4", "5"}
)

// surveyKey names the meta value holding a room's survey answers (the
// store has no room fields a surface may write, and surveys come after
// the room is closed, when no event may be added).
func (s *Surface) surveyKey(rid model.ConvID) string {
	return System + "/" + s.cfg.Tenant + "/survey/" + string(rid)
}

// restRoomSurvey is POST livechat/room.survey (§5.9).
func (s *Surface) restRoomSurvey(c *gin.Context, r *restReq) (map[string]any, error) {
	in, err := bodyStrings(r.body, "rid", "token")
	if err != nil {
		return nil, err
	}
	list, ok := r.body["data"].([]any)
	if !ok {
		return nil, missingKey("data")
	}
	ctx := c.Request.Context()
	_, conv, err := s.visitorRoom(ctx, in[1], in[0])
	if err != nil {
		return nil, err
	}
	data := map[string]any{}
	for _, x := range list {
		m, ok := x.(map[string]any)
		if !ok {
			return nil, errInvalidData
		}
		name, _ := m["name"].(string)
		value, _ := m["value"].(string)
		if !slices.Contains(surveyItems, name) || len(value) > 1024 ||
			(name != "additionalFeedback" && !slices.Contains(surveyValues, value)) {
			return nil, errInvalidData
		}
		data[name] = value
	}
	if len(data) == 0 {
		return nil, errInvalidData
	}
	b, err := json.Marshal(data)
	if err != nil {
		return nil, err
	}
	if err := s.d.Store().Commit(context.WithoutCancel(ctx), &store.Batch{Meta: map[string][]byte{s.surveyKey(conv.ID): b}}); err != nil {
		return nil, err
	}
	return map[string]any{"rid": s.roomID(ctx, conv.ID), "data": data}, nil
}

// restPageVisited is POST livechat/page.visited (§5.18). A URL change on an
// open room of the token is kept as an agents-only annotation (Rocket.Chat's
// hidden livechat_navigation_history message); without a room nothing is
// stored. As on Rocket.Chat (Livechat.savePageHistory, checked: it
// checks neither the token nor the room), an unknown token or a room that
// is not the token's open room is answered 200 like any other call, with
// the page echoed back (the request's own data: nothing about the room
// leaks), but nothing is stored: Rocket.Chat would write the navigation
// message into whatever room the rid names, another visitor's included.
func (s *Surface) restPageVisited(c *gin.Context, r *restReq) (map[string]any, error) {
	token, err := str(r.body, "token", true)
	if err != nil {
		return nil, err
	}
	rid, err := str(r.body, "rid", false)
	if err != nil {
		return nil, err
	}
	page, ok := r.body["pageInfo"].(map[string]any)
	if !ok {
		return nil, missingKey("pageInfo")
	}
	ctx := c.Request.Context()
	var (
		v    model.Visitor
		conv model.Conversation
	)
	if rid != "" {
		if v, conv, err = s.visitorRoom(ctx, token, rid); err != nil {
			if !ddpClientError(err) {
				return nil, err
			}
			conv = model.Conversation{}
		}
	}
	if change, _ := page["change"].(string); change != "url" {
		return map[string]any{}, nil
	}
	title, _ := page["title"].(string)
	href := ""
	if loc, ok := page["location"].(map[string]any); ok {
		href, _ = loc["href"].(string)
	}
	msg := title + " - " + href
	if max := s.d.Limits().MaxText; len(msg) > max {
		msg = truncateUTF8(msg, max)
	}
	if conv.ID != "" && conv.Active() {
		_, _, err := s.d.Post(ctx, desk.PostRequest{Conv: conv.ID, Author: visitorAuthor(v), Draft: desk.Draft{
			Kind: model.KindAnnotation, Subtype: "page_visited", Text: msg, Visibility: model.VisibleAgents,
			Vars: map[string]string{"title": truncateUTF8(title, 1024), "url": truncateUTF8(href, 2048)}}})
		if err != nil && !errors.Is(err, desk.ErrInactive) {
			return nil, deskErr(err)
		}
	}
	return map[string]any{"page": map[string]any{"msg": msg, "navigation": map[string]any{"page": page, "token": token}}}, nil
}

// truncateUTF8 cuts s to at most n bytes on a rune boundary.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && n < len(s) && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}
