package rocketchat

// rest_agent.go: the agent-authenticated routes (§5.22). chatgate has no
// Rocket.Chat roles: every configured agent who logged in is a livechat
// agent; room-level checks (agentMayRead, agentMayAct) stand in for the
// permissions.

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"chatgate/core/desk"
	"chatgate/core/model"
	"chatgate/store"
)

// agentMayAct reports whether an agent may forward or change a room: the
// agent serving it, an agent of its department while it is queued, or an
// agent without departments (who serves every department, like a manager).
func agentMayAct(a model.Agent, c model.Conversation) bool {
	return c.Agent == a.ID || (c.State == model.StateQueued && a.Serves(c.Department)) || len(a.Departments) == 0
}

// paging reads offset and count (default 50, at most 100).
func paging(c *gin.Context) (int, int) {
	offset, _ := strconv.Atoi(c.Query("offset"))
	count, err := strconv.Atoi(c.Query("count"))
	if err != nil || count <= 0 {
		count = 50
	}
	return max(offset, 0), min(count, 100)
}

// restAgentMessages is POST livechat/messages (§5.22.3): messages sent as a
// visitor, in its open room or a new one.
func (s *Surface) restAgentMessages(c *gin.Context, r *restReq) (map[string]any, error) {
	bad := func(msg string) error { return &failC{body: map[string]any{"error": msg}} }
	raw, ok := r.body["visitor"].(map[string]any)
	if !ok {
		return nil, bad(`Body param "visitor" is required`)
	}
	token, _ := raw["token"].(string)
	if token == "" {
		return nil, bad(`Body param "visitor.token" is required`)
	}
	mv, present := r.body["messages"]
	if !present {
		return nil, bad(`Body param "messages" is required`)
	}
	list, ok := mv.([]any)
	if !ok {
		return nil, bad(`Body param "messages" is not an array`)
	}
	if len(list) == 0 {
		return nil, bad(`Body param "messages" is empty`)
	}
	texts := make([]string, len(list))
	for i, x := range list {
		m, _ := x.(map[string]any)
		t, _ := m["msg"].(string)
		if strings.TrimSpace(t) == "" {
			return nil, bad(`Body param "messages" must hold objects with a non-empty "msg"`)
		}
		texts[i] = t
	}
	in := visitorInput{token: token}
	in.name, in.hasName = raw["name"].(string)
	in.email, in.hasEmail = raw["email"].(string)
	in.phone, in.hasPhone = raw["phone"].(string)
	in.dept, in.hasDept = raw["department"].(string)
	in.username, _ = raw["username"].(string)
	ctx := c.Request.Context()
	v, err := s.saveVisitor(ctx, in)
	if err != nil {
		return nil, err
	}
	open, isOpen, err := s.d.OpenConversation(ctx, v.ID)
	if err != nil {
		return nil, err
	}
	if (isOpen && !agentMayRead(r.agent, open)) || (!isOpen && !r.agent.Serves(v.Department)) {
		return nil, errUnauthorized
	}
	conv, _, err := s.openOrStartRoom(ctx, v, "", false)
	if err != nil {
		return nil, err
	}
	username := s.username(ctx, v.ID)
	out := []any{}
	for _, t := range texts {
		ev, err := s.postVisitorMessage(ctx, v, conv, "", t, nil)
		if err != nil {
			return nil, err
		}
		out = append(out, map[string]any{"username": username, "msg": ev.Text, "ts": ev.At})
	}
	return map[string]any{"messages": out}, nil
}

// restRoomForward is POST livechat/room.forward (§5.22.4): to an agent
// (userId) or a department (departmentId). Like Rocket.Chat 4.x a
// successful forward answers {"success":true}.
func (s *Surface) restRoomForward(c *gin.Context, r *restReq) (map[string]any, error) {
	rid, err := str(r.body, "roomId", true)
	if err != nil {
		return nil, err
	}
	userID, err := str(r.body, "userId", false)
	if err != nil {
		return nil, err
	}
	deptID, err := str(r.body, "departmentId", false)
	if err != nil {
		return nil, err
	}
	if _, err := str(r.body, "comment", false); err != nil {
		return nil, err
	}
	ctx := c.Request.Context()
	conv, err := s.conversation(ctx, rid)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errInvalidRoomLong
	}
	if err != nil {
		return nil, err
	}
	if !conv.Active() {
		return nil, newErr("room-closed", "Room closed")
	}
	if !agentMayAct(r.agent, conv) {
		return nil, newErr("error-not-authorized", "Not authorized")
	}
	by := model.Author{Kind: model.AuthorAgent, ID: string(r.agent.ID), Name: r.agent.Name}
	switch {
	case userID != "":
		target, ok := s.d.Router().Agent(model.AgentID(userID))
		if !ok || s.agentStatus(target.ID) == "offline" {
			return nil, errUserOffline
		}
		if target.ID == conv.Agent {
			return nil, errSameAgent
		}
		if !target.Serves(conv.Department) {
			return nil, newErr("error-user-not-belong-to-department", "The selected user does not belong to this department")
		}
		if err := s.d.Assign(ctx, conv.ID, target.ID, by, ""); err != nil {
			return nil, forwardErr(err)
		}
	case deptID != "":
		dp, ok := s.findDepartment(deptID)
		if !ok {
			return nil, &rcError{Code: "error-invalid-department", Reason: "The provided department is invalid"}
		}
		if dp.ID == conv.Department {
			return nil, errSameDepartment
		}
		if err := s.d.Transfer(ctx, conv.ID, dp.ID, by, ""); err != nil {
			return nil, forwardErr(err)
		}
	default:
		return nil, &rcError{Code: "error-invalid-params", Reason: "userId or departmentId is required"}
	}
	return map[string]any{}, nil
}

func forwardErr(err error) error {
	switch {
	case errors.Is(err, desk.ErrForbidden):
		return newErr("error-not-authorized", "Not authorized")
	case errors.Is(err, desk.ErrInactive):
		return newErr("room-closed", "Room closed")
	case errors.Is(err, desk.ErrNotFound):
		return errInvalidRoomLong
	}
	return deskErr(err)
}

// restRoomVisitor is PUT livechat/room.visitor (§5.22.5): gives a room to
// another visitor. As Rocket.Chat (apps/meteor/app/livechat/imports/
// server/rest/rooms.ts and Livechat.changeRoomVisitor): body {rid,
// oldVisitorId, newVisitorId}; an agent who may access the room (here:
// serving it, or of its department; Rocket.Chat's view-l-room
// permission and canAccessRoom); invalid-visitor for an unknown new
// visitor, invalid-room for an unknown room, invalid-room-visitor when
// oldVisitorId is not the room's visitor; the answer is {room} after the
// change. Afterwards the new visitor's token opens the room and the old
// one's does not; the old visitor's open DDP subscriptions of the room
// end (ddp_subs.go dropMoved).
//
// chatgate keeps one open room per visitor, so it refuses, with
// error-not-allowed and a reason, a change Rocket.Chat would make: an
// open room to a visitor who has an open room (or a newer one), a closed
// room that would hide the new visitor's open one (desk.ChangeVisitor).
func (s *Surface) restRoomVisitor(c *gin.Context, r *restReq) (map[string]any, error) {
	in, err := bodyStrings(r.body, "rid", "oldVisitorId", "newVisitorId")
	if err != nil {
		return nil, err
	}
	ctx := c.Request.Context()
	nv, err := s.d.Store().Visitor(ctx, model.VisitorID(in[2]))
	if errors.Is(err, store.ErrNotFound) {
		return nil, errInvalidVisitor
	}
	if err != nil {
		return nil, err
	}
	conv, err := s.conversation(ctx, in[0])
	if errors.Is(err, store.ErrNotFound) {
		return nil, errInvalidRoom
	}
	if err != nil {
		return nil, err
	}
	if !agentMayRead(r.agent, conv) {
		return nil, errUnauthorized
	}
	if string(conv.Visitor) != in[1] {
		return nil, errInvalidRoomVisitor
	}
	conv, err = s.d.ChangeVisitor(ctx, conv.ID, conv.Visitor, nv.ID, model.Author{Kind: model.AuthorAgent, ID: string(r.agent.ID), Name: r.agent.Name})
	switch {
	case errors.Is(err, desk.ErrWrongVisitor):
		return nil, errInvalidRoomVisitor
	case errors.Is(err, desk.ErrVisitorBusy):
		return nil, newErr("error-not-allowed", "The visitor already has an open room")
	case errors.Is(err, desk.ErrInvalid):
		return nil, newErr("error-not-allowed", "The visitor has a newer room")
	case errors.Is(err, desk.ErrForbidden):
		return nil, errUnauthorized
	case errors.Is(err, desk.ErrNotFound):
		return nil, errInvalidRoom
	case err != nil:
		return nil, err
	}
	return map[string]any{"room": s.renderRoom(&conv, &nv, "")}, nil
}

var errInvalidRoomVisitor = newErr("invalid-room-visitor", "")

// restTransferHistory is GET livechat/transfer.history/:rid (§5.22.6).
func (s *Surface) restTransferHistory(c *gin.Context, r *restReq) (map[string]any, error) {
	ctx := c.Request.Context()
	conv, err := s.conversation(ctx, c.Param("rid"))
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
	var all []any
	for i := range evs {
		if evs[i].Kind == model.KindSystem && evs[i].Subtype == model.SysTransferred {
			all = append(all, s.transferData(ctx, &evs[i]))
		}
	}
	offset, count := paging(c)
	page := []any{}
	if offset < len(all) {
		page = all[offset:min(len(all), offset+count)]
	}
	return map[string]any{"history": page, "count": len(page), "offset": offset, "total": len(all)}, nil
}

// restVisitorRooms is GET livechat/visitor/:token/room (§5.22.7): the
// token's open room, if the agent may see it.
func (s *Surface) restVisitorRooms(c *gin.Context, r *restReq) (map[string]any, error) {
	ctx := c.Request.Context()
	rooms := []any{}
	v, err := s.visitorByToken(ctx, c.Param("token"))
	if errors.Is(err, errInvalidToken) {
		return map[string]any{"rooms": rooms}, nil
	}
	if err != nil {
		return nil, err
	}
	conv, open, err := s.d.OpenConversation(ctx, v.ID)
	if err != nil {
		return nil, err
	}
	if open && agentMayRead(r.agent, conv) {
		room := map[string]any{"_id": s.roomID(ctx, conv.ID), "t": "l", "cl": false}
		if full := s.renderRoom(&conv, &v, ""); full["servedBy"] != nil {
			room["servedBy"] = full["servedBy"]
		}
		rooms = append(rooms, room)
	}
	return map[string]any{"rooms": rooms}, nil
}

// restContactSave is POST omnichannel/contact (§5.22.8); the answer is the
// visitor id.
func (s *Surface) restContactSave(c *gin.Context, r *restReq) (map[string]any, error) {
	in, err := bodyStrings(r.body, "token", "name")
	if err != nil {
		return nil, err
	}
	vi := visitorInput{token: in[0], name: in[1], hasName: true}
	for _, f := range []struct {
		k   string
		dst *string
		has *bool
	}{{"email", &vi.email, &vi.hasEmail}, {"phone", &vi.phone, &vi.hasPhone}, {"username", &vi.username, nil}} {
		v, err := str(r.body, f.k, false)
		if err != nil {
			return nil, err
		}
		*f.dst = v
		if f.has != nil {
			*f.has = r.body[f.k] != nil
		}
	}
	if strings.TrimSpace(vi.token) == "" || len(vi.token) > maxTokenLen {
		return nil, &matchError{msg: "token must not be empty", path: "token"}
	}
	if cf, ok := r.body["customFields"].(map[string]any); ok {
		for k, x := range cf {
			if xs, ok := x.(string); ok && xs != "" {
				vi.fields = append(vi.fields, customField{key: k, value: xs, overwrite: true})
			}
		}
	}
	manager := ""
	if cm, ok := r.body["contactManager"].(map[string]any); ok {
		manager, _ = cm["username"].(string)
		if manager != "" && !s.agentUsernameExists(manager) {
			return nil, newErr("error-contact-manager-not-found", "Contact Manager not found")
		}
	}
	ctx := c.Request.Context()
	if old, err := s.visitorByToken(ctx, vi.token); err == nil {
		if ok, err := s.agentMayReach(ctx, r.agent, old.ID); err != nil {
			return nil, err
		} else if !ok {
			return nil, errUnauthorized
		}
	}
	v, err := s.saveVisitor(ctx, vi)
	if err != nil {
		return nil, err
	}
	if manager != v.Fields["_rc.contactManager"] {
		if _, err := s.d.UpdateVisitor(ctx, v.ID, desk.VisitorUpdate{Fields: map[string]string{"_rc.contactManager": manager}}); err != nil {
			return nil, deskErr(err)
		}
	}
	return map[string]any{"contact": string(v.ID)}, nil
}

func (s *Surface) agentUsernameExists(u string) bool {
	for _, a := range s.d.Router().Agents() {
		if agentUsername(a) == u {
			return true
		}
	}
	return false
}

// agentMayReach reports whether agent a may see visitor id's profile: a
// visitor without conversations, or one whose newest conversation the
// agent may read (as the LiveChat agent API's get_customer and
// ban_customer decide), so that no surface shows an agent more of a
// visitor than another does.
func (s *Surface) agentMayReach(ctx context.Context, a model.Agent, id model.VisitorID) (bool, error) {
	ids, err := s.d.Store().VisitorConversations(ctx, id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && len(ids) == 0) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("conversations of %s: %w", id, err)
	}
	conv, err := s.d.Store().Conversation(ctx, ids[len(ids)-1])
	if errors.Is(err, store.ErrNotFound) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("conversation %s: %w", ids[len(ids)-1], err)
	}
	return agentMayRead(a, conv), nil
}

// restContactGet is GET omnichannel/contact?contactId= (§5.22.9). A
// contact out of the agent's reach answers as an unknown one.
func (s *Surface) restContactGet(c *gin.Context, r *restReq) (map[string]any, error) {
	id := c.Query("contactId")
	if id == "" {
		return nil, missingKey("contactId")
	}
	v, err := s.d.Store().Visitor(c.Request.Context(), model.VisitorID(id))
	if errors.Is(err, store.ErrNotFound) {
		return map[string]any{}, nil
	}
	if err != nil {
		return nil, err
	}
	if ok, err := s.agentMayReach(c.Request.Context(), r.agent, v.ID); err != nil {
		return nil, err
	} else if !ok {
		return map[string]any{}, nil
	}
	return map[string]any{"contact": s.renderVisitor(&v, "")}, nil
}

// restContactSearch is GET omnichannel/contact.search?email=|phone=
// (§5.22.10). The store has no index on e-mail or phone: it scans the
// visitors (findVisitor), and skips those out of the agent's reach.
func (s *Surface) restContactSearch(c *gin.Context, r *restReq) (map[string]any, error) {
	email := strings.ToLower(strings.TrimSpace(c.Query("email")))
	phone := strings.TrimSpace(c.Query("phone"))
	if email == "" && phone == "" {
		return nil, errInvalidParams
	}
	ctx := c.Request.Context()
	var reachErr error
	found, err := s.findVisitor(ctx, func(v model.Visitor) bool {
		if !((email != "" && strings.ToLower(v.Email) == email) || (phone != "" && v.Phone == phone)) {
			return false
		}
		ok, err := s.agentMayReach(ctx, r.agent, v.ID)
		if err != nil && reachErr == nil {
			reachErr = err
		}
		return ok
	})
	if err == nil {
		err = reachErr
	}
	if err != nil {
		return nil, err
	}
	if found == nil {
		return map[string]any{}, nil
	}
	return map[string]any{"contact": s.renderVisitor(found, "")}, nil
}

// findVisitor returns the first visitor fn accepts: of every visitor when
// the store can list them (store.VisitorLister), as Rocket.Chat's contact
// search finds visitors without rooms; else of the visitors of all
// conversations.
func (s *Surface) findVisitor(ctx context.Context, fn func(model.Visitor) bool) (*model.Visitor, error) {
	var found *model.Visitor
	if vl, ok := s.d.Store().(store.VisitorLister); ok {
		err := vl.Visitors(ctx, func(v model.Visitor) bool {
			if fn(v) {
				found = &v
				return false
			}
			return true
		})
		return found, err
	}
	seen := map[model.VisitorID]bool{}
	var ferr error
	err := s.d.Store().Conversations(ctx, func(conv model.Conversation) bool {
		if seen[conv.Visitor] {
			return true
		}
		seen[conv.Visitor] = true
		v, err := s.d.Store().Visitor(ctx, conv.Visitor)
		if err != nil {
			if !errors.Is(err, store.ErrNotFound) {
				ferr = err
				return false
			}
			return true
		}
		if fn(v) {
			found = &v
			return false
		}
		return true
	})
	if err == nil {
		err = ferr
	}
	return found, err
}
