package rocketchat

// rest_visitor.go: livechat/config, the visitor profile routes, custom
// fields, agent lookups and offline messages.

import (
	"context"
	"encoding/json"
	"errors"
	"net/mail"
	"strings"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"chatgate/core/desk"
	"chatgate/core/model"
	"chatgate/core/ratelimit"
	"chatgate/core/routing"
	"chatgate/store"
)

// departments lists the departments visitors may pick: the configured
// departments, ordered by id. (Rocket.Chat lists only departments that have
// agents; here an agent without departments serves every department, so
// every configured one can be served.)
func (s *Surface) departments() []model.Department { return s.d.Departments() }

// findDepartment resolves a department by id or, failing that, by name.
func (s *Surface) findDepartment(idOrName string) (model.Department, bool) {
	if dp, ok := s.d.Department(model.DeptID(idOrName)); ok {
		return dp, true
	}
	for _, dp := range s.departments() {
		if strings.EqualFold(dp.Name, idOrName) {
			return dp, true
		}
	}
	return model.Department{}, false
}

// online reports whether an agent accepting chats serves dept ("" = any),
// as Livechat.online does; a relayed department counts as online (its
// upstream desk decides).
func (s *Surface) online(dept model.DeptID) bool {
	if s.d.Relayed(dept) {
		return true
	}
	for _, a := range s.d.Router().Agents() {
		if a.Serves(dept) && s.d.Router().Status(a.ID) == routing.Accepting {
			return true
		}
	}
	return false
}

// restConfig is GET livechat/config (§5.1).
func (s *Surface) restConfig(c *gin.Context, _ *restReq) (map[string]any, error) {
	ctx := c.Request.Context()
	token := c.Query("token")
	limit := any(false)
	if n := s.d.Limits().MaxText; n > 0 {
		limit = n
	}
	depts := []any{}
	for _, dp := range s.departments() {
		depts = append(depts, map[string]any{"_id": string(dp.ID), "name": dp.Name, "showOnRegistration": true,
			"showOnOfflineForm": true})
	}
	cfg := map[string]any{
		"enabled": true,
		"settings": map[string]any{
			"registrationForm": true, "allowSwitchingDepartments": true, "nameFieldRegistrationForm": true,
			"emailFieldRegistrationForm": true, "displayOfflineForm": true, "videoCall": false,
			"fileUpload": s.cfg.Files != nil, "language": "", "transcript": s.cfg.Mail != nil, "historyMonitorType": "url",
			"forceAcceptDataProcessingConsent": false, "showConnecting": false, "agentHiddenInfo": false,
			"clearLocalStorageWhenChatEnded": false, "limitTextLength": limit,
		},
		"theme": map[string]any{
			"title": "Rocket.Chat", "color": "#C1272D", "offlineTitle": "Leave a message", "offlineColor": "#666666",
			"actionLinks": map[string]any{
				"webrtc": []any{
					map[string]any{"actionLinksAlignment": "flex-start", "i18nLabel": "Join_call", "label": "Join Call", "method_id": "joinLivechatWebRTCCall"},
					map[string]any{"i18nLabel": "End_call", "label": "End call", "method_id": "endLivechatWebRTCCall", "danger": true},
				},
				"jitsi": []any{
					map[string]any{"icon": "icon-videocam", "i18nLabel": "Accept", "method_id": "createLivechatCall"},
					map[string]any{"icon": "icon-cancel", "i18nLabel": "Decline", "method_id": "denyLivechatCall"},
				},
			},
		},
		"messages": map[string]any{
			"offlineMessage": "", "offlineSuccessMessage": "", "offlineUnavailableMessage": "",
			"conversationFinishedMessage": "", "conversationFinishedText": "", "transcriptMessage": transcriptPromptIf(s.cfg.Mail != nil),
			"registrationFormMessage": "", "dataProcessingConsentText": "",
		},
		"survey": map[string]any{
			"items":  []any{"satisfaction", "agentKnowledge", "agentResposiveness", "agentFriendliness"},
			"values": []any{"1", "2", "3", "4", "5"},
		},
		"triggers":     []any{},
		"departments":  depts,
		"customFields": s.publicFields(),
		"resources":    map[string]any{"sound": s.widgetServerURL(c.Request) + s.soundURL(), "emojis": []any{}},
		"online":       s.online(model.DeptID(c.Query("department"))),
	}
	if token != "" {
		v, err := s.visitorByToken(ctx, token)
		switch {
		case err == nil:
			cfg["guest"] = s.renderGuest(&v, token)
			conv, open, err := s.d.OpenConversation(ctx, v.ID)
			if err != nil {
				return nil, err
			}
			if open {
				room := map[string]any{"_id": s.roomID(ctx, conv.ID), "open": true}
				if conv.Department != "" {
					room["departmentId"] = string(conv.Department)
				}
				if conv.Agent != "" {
					a, known := s.d.Router().Agent(conv.Agent)
					if !known {
						a.ID = conv.Agent
					}
					room["servedBy"] = map[string]any{"_id": string(a.ID), "username": agentUsername(a), "ts": conv.AssignedAt}
					if known {
						cfg["agent"] = s.renderAgent(a)
					}
				}
				cfg["room"] = room
				// A visitor with an open room is never sent to the offline
				// form: its conversation goes on (served, or waiting in
				// the queue) whoever accepts new chats now. Without this
				// the widget, reloaded after the serving agent stopped
				// accepting chats (or after a move to a department where
				// nobody does), showed an empty "Leave a message" form
				// instead of the conversation.
				cfg["online"] = true
				if conv.State == model.StateQueued {
					if spot := s.d.Router().Position(conv.ID); spot > 0 {
						cfg["queueInfo"] = s.queueInfo(spot)
					}
				}
			}
		case !errors.Is(err, errInvalidToken):
			return nil, err
		}
	}
	return map[string]any{"config": cfg}, nil
}

// visitorInput is the visitor object of POST livechat/visitor.
type visitorInput struct {
	token, name, email, phone, dept, username string
	hasName, hasEmail, hasPhone, hasDept      bool
	fields                                    []customField
}

type customField struct {
	key, value string
	overwrite  bool
}

// parseCustomFields reads [{key, value, overwrite}] (overwrite defaults to
// true, as the widget always sends it).
func parseCustomFields(v any, field string) ([]customField, error) {
	if v == nil {
		return nil, nil
	}
	list, ok := v.([]any)
	if !ok {
		return nil, &matchError{msg: "Expected array, got " + jsType(v) + " in field " + field, path: field}
	}
	var out []customField
	for _, x := range list {
		m, ok := x.(map[string]any)
		if !ok {
			return nil, &matchError{msg: "Expected object in field " + field, path: field}
		}
		k, err := str(m, "key", true)
		if err != nil {
			return nil, err
		}
		val, err := str(m, "value", true)
		if err != nil {
			return nil, err
		}
		ow := true
		if b, ok := m["overwrite"].(bool); ok {
			ow = b
		}
		out = append(out, customField{key: k, value: val, overwrite: ow})
	}
	return out, nil
}

func validEmail(e string) bool {
	a, err := mail.ParseAddress(e)
	return err == nil && a.Address == e && strings.Contains(e, "@") && !strings.ContainsAny(e, " <>")
}

// restVisitorRegister is POST livechat/visitor (§5.2). The visitor is found
// by token only: Rocket.Chat also matches an existing visitor by phone or
// e-mail, which would hand that visitor's history to whoever knows the
// address, so chatgate does not.
func (s *Surface) restVisitorRegister(c *gin.Context, r *restReq) (map[string]any, error) {
	raw, ok := r.body["visitor"].(map[string]any)
	if !ok {
		return nil, missingKey("visitor")
	}
	var in visitorInput
	var err error
	get := func(k string, dst *string, has *bool) {
		if err != nil {
			return
		}
		var v string
		v, err = str(raw, k, false)
		if err == nil && raw[k] != nil {
			*dst = v
			if has != nil {
				*has = true
			}
		}
	}
	if _, present := raw["token"]; !present {
		return nil, &matchError{msg: "Missing key 'token' in field visitor", path: "visitor.token"}
	}
	get("token", &in.token, nil)
	get("name", &in.name, &in.hasName)
	get("email", &in.email, &in.hasEmail)
	get("phone", &in.phone, &in.hasPhone)
	get("department", &in.dept, &in.hasDept)
	get("username", &in.username, nil)
	if err != nil {
		return nil, err
	}
	if in.fields, err = parseCustomFields(raw["customFields"], "visitor.customFields"); err != nil {
		return nil, err
	}
	if strings.TrimSpace(in.token) == "" || len(in.token) > maxTokenLen {
		return nil, &rcError{Code: "error-invalid-token", Reason: "Token cannot be empty"}
	}
	v, err := s.saveVisitor(c.Request.Context(), in)
	if err != nil {
		return nil, err
	}
	return map[string]any{"visitor": s.renderVisitor(&v, in.token)}, nil
}

// saveVisitor registers or updates the visitor of in.token.
func (s *Surface) saveVisitor(ctx context.Context, in visitorInput) (model.Visitor, error) {
	in.email = strings.ToLower(strings.TrimSpace(in.email))
	if in.hasEmail && in.email != "" && !validEmail(in.email) {
		return model.Visitor{}, &rcError{Code: "error-invalid-email", Reason: "Invalid email " + in.email,
			Details: map[string]any{"function": "Livechat.validateEmail", "email": in.email}}
	}
	var dept model.DeptID
	if in.hasDept && in.dept != "" {
		dp, ok := s.findDepartment(in.dept)
		if !ok {
			return model.Visitor{}, errInvalidDept
		}
		dept = dp.ID
	}
	// Rocket.Chat's registerGuest (visitor.ts, checked) keeps only keys
	// of defined visitor-scope fields and skips the others silently; a
	// defined field's value must match its regexp.
	kept := in.fields[:0:0]
	for _, f := range in.fields {
		def, err := s.checkField(f.key, f.value)
		if errors.Is(err, errInvalidField) || (err == nil && def.Scope == "room") {
			continue
		}
		if err != nil {
			return model.Visitor{}, err
		}
		kept = append(kept, f)
	}
	in.fields = kept
	for _, p := range []string{in.name, in.email, in.phone, in.username} {
		if len(p) > 1024 || !utf8.ValidString(p) {
			return model.Visitor{}, errSavingVisitor
		}
	}
	key, err := s.registrationKey(ctx, in.token)
	if err != nil {
		return model.Visitor{}, err
	}
	if addr := ratelimit.AddrFrom(ctx); addr != "" {
		// A new visitor is bounded per client address: each is kept.
		_, err := s.d.Store().Resolve(ctx, key)
		if errors.Is(err, store.ErrNotFound) && !s.cfg.NewVisitors.Allow(addr) {
			return model.Visitor{}, errTooManyRequests
		}
	}
	v, err := s.d.EnsureVisitor(ctx, key, model.Visitor{Name: in.name, Email: in.email})
	if err != nil {
		return model.Visitor{}, err
	}
	s.rest.wire.token.LoadOrStore(v.ID, in.token)
	if _, err := s.visitorUsername(ctx, v.ID, in.username); err != nil {
		return model.Visitor{}, err
	}
	upd := desk.VisitorUpdate{}
	changed := false
	if in.hasPhone && in.phone != v.Phone {
		upd.Phone, changed = &in.phone, true
	}
	if in.hasDept && in.dept != "" && dept != v.Department {
		upd.Department, changed = &dept, true
	}
	if len(in.fields) > 0 {
		upd.Fields = map[string]string{}
		for _, f := range in.fields {
			if !f.overwrite && v.Fields[f.key] != "" {
				continue
			}
			upd.Fields[f.key] = f.value
			changed = true
		}
	}
	if !changed {
		return v, nil
	}
	v, err = s.d.UpdateVisitor(ctx, v.ID, upd)
	if errors.Is(err, desk.ErrInvalid) {
		return model.Visitor{}, errSavingVisitor
	}
	return v, err
}

// restVisitorGet is GET livechat/visitor/:token (§5.3).
func (s *Surface) restVisitorGet(c *gin.Context, _ *restReq) (map[string]any, error) {
	token := c.Param("token")
	v, err := s.visitorByToken(c.Request.Context(), token)
	if err != nil {
		return nil, err
	}
	return map[string]any{"visitor": s.renderVisitor(&v, token)}, nil
}

// restVisitorDelete is DELETE livechat/visitor/:token (§5.4). The store
// cannot delete records, so chatgate erases the visitor's profile (name,
// e-mail, phone, department, custom fields) and marks it erased: the token
// stops working (invalid-token everywhere) and its conversations' messages
// stay stored, linked to no usable token; the token registered again is a
// new visitor (see visitorByToken).
func (s *Surface) restVisitorDelete(c *gin.Context, _ *restReq) (map[string]any, error) {
	ctx := c.Request.Context()
	v, err := s.visitorByToken(ctx, c.Param("token"))
	if err != nil {
		return nil, err
	}
	if _, open, err := s.d.OpenConversation(ctx, v.ID); err != nil {
		return nil, err
	} else if open {
		return nil, errOpenRooms
	}
	empty := ""
	noDept := model.DeptID("")
	upd := desk.VisitorUpdate{Name: &empty, Email: &empty, Phone: &empty, Department: &noDept,
		Fields: map[string]string{fieldErased: isoTime(s.d.Now())}}
	for k := range v.Fields {
		upd.Fields[k] = ""
	}
	upd.Fields[fieldErased] = isoTime(s.d.Now())
	if _, err := s.d.UpdateVisitor(ctx, v.ID, upd); err != nil {
		s.log.Error().Err(err).Str("visitor", string(v.ID)).Msg("erase visitor")
		return nil, errRemovingVisitor
	}
	s.rest.presence.Delete(v.ID)
	return map[string]any{"visitor": map[string]any{"_id": string(v.ID), "ts": s.d.Now()}}, nil
}

// restVisitorStatus is POST livechat/visitor.status (§5.5); presence is
// kept in memory.
func (s *Surface) restVisitorStatus(c *gin.Context, r *restReq) (map[string]any, error) {
	token, err := str(r.body, "token", true)
	if err != nil {
		return nil, err
	}
	status, err := str(r.body, "status", true)
	if err != nil {
		return nil, err
	}
	if len(status) > 32 {
		return nil, &matchError{msg: "status too long", path: "status"}
	}
	v, err := s.visitorByToken(c.Request.Context(), token)
	if err != nil {
		return nil, err
	}
	s.rest.presence.Store(v.ID, status)
	return map[string]any{"token": token, "status": status}, nil
}

// restVisitorCallStatus is POST livechat/visitor.callStatus (§5.21): calls
// are not supported, so it only checks its input and echoes it.
func (s *Surface) restVisitorCallStatus(c *gin.Context, r *restReq) (map[string]any, error) {
	var vals [4]string
	for i, k := range []string{"token", "callStatus", "rid", "callId"} {
		v, err := str(r.body, k, true)
		if err != nil {
			return nil, err
		}
		vals[i] = v
	}
	if _, _, err := s.visitorRoom(c.Request.Context(), vals[0], vals[2]); err != nil {
		return nil, err
	}
	return map[string]any{"token": vals[0], "callStatus": vals[1]}, nil
}

// restCustomField is POST livechat/custom.field (§5.15). chatgate has no
// custom-field definitions: any key is accepted (stored on the visitor)
// except its own reserved "_rc." keys.
func (s *Surface) restCustomField(c *gin.Context, r *restReq) (map[string]any, error) {
	token, err := str(r.body, "token", true)
	if err != nil {
		return nil, err
	}
	key, err := str(r.body, "key", true)
	if err != nil {
		return nil, err
	}
	value, err := str(r.body, "value", true)
	if err != nil {
		return nil, err
	}
	ow, ok := r.body["overwrite"].(bool)
	if _, present := r.body["overwrite"]; !present {
		return nil, missingKey("overwrite")
	} else if !ok {
		return nil, &matchError{msg: "Expected boolean in field overwrite", path: "overwrite"}
	}
	v, err := s.visitorByToken(c.Request.Context(), token)
	if err != nil {
		return nil, err
	}
	if _, err := s.setCustomFields(c.Request.Context(), v, []customField{{key: key, value: value, overwrite: ow}}); err != nil {
		return nil, err
	}
	return map[string]any{"field": map[string]any{"key": key, "value": value, "overwrite": ow}}, nil
}

// restCustomFields is POST livechat/custom.fields (§5.16); the response's
// capital "Key" is Rocket.Chat's.
func (s *Surface) restCustomFields(c *gin.Context, r *restReq) (map[string]any, error) {
	token, err := str(r.body, "token", true)
	if err != nil {
		return nil, err
	}
	if _, ok := r.body["customFields"]; !ok {
		return nil, missingKey("customFields")
	}
	fields, err := parseCustomFields(r.body["customFields"], "customFields")
	if err != nil {
		return nil, err
	}
	v, err := s.visitorByToken(c.Request.Context(), token)
	if err != nil {
		return nil, err
	}
	if _, err := s.setCustomFields(c.Request.Context(), v, fields); err != nil {
		return nil, err
	}
	out := []any{}
	for _, f := range fields {
		out = append(out, map[string]any{"Key": f.key, "value": f.value, "overwrite": f.overwrite})
	}
	return map[string]any{"fields": out}, nil
}

// restAgentInfo is GET livechat/agent.info/:rid/:token (§5.13).
func (s *Surface) restAgentInfo(c *gin.Context, _ *restReq) (map[string]any, error) {
	_, conv, err := s.visitorRoom(c.Request.Context(), c.Param("token"), c.Param("rid"))
	if err != nil {
		return nil, err
	}
	if conv.Agent == "" {
		return nil, errInvalidAgent
	}
	a, ok := s.d.Router().Agent(conv.Agent)
	if !ok {
		return nil, errInvalidAgent
	}
	return map[string]any{"agent": s.renderAgent(a)}, nil
}

// restAgentNext is GET livechat/agent.next/:token (§5.14): the first
// accepting agent (configuration order) serving the department. Like
// Rocket.Chat it does not require a known token; a token whose visitor has
// an open room gets {"success":true}.
func (s *Surface) restAgentNext(c *gin.Context, _ *restReq) (map[string]any, error) {
	ctx := c.Request.Context()
	if v, err := s.visitorByToken(ctx, c.Param("token")); err == nil {
		if _, open, err := s.d.OpenConversation(ctx, v.ID); err != nil {
			return nil, err
		} else if open {
			return map[string]any{}, nil
		}
	} else if !errors.Is(err, errInvalidToken) {
		return nil, err
	}
	dept := model.DeptID(c.Query("department"))
	if dept != "" {
		if dp, ok := s.findDepartment(string(dept)); ok {
			dept = dp.ID
		}
	}
	for _, a := range s.d.Router().Agents() {
		if a.Serves(dept) && s.d.Router().Status(a.ID) == routing.Accepting {
			return map[string]any{"agent": s.renderAgent(a)}, nil
		}
	}
	return nil, errAgentNotFound
}

// Offline messages are kept as conversations: a visitor per e-mail address
// (mapping kind "offline"), a conversation holding the message as a
// "ticket" form and the text, closed at once, so agents find them in the
// history. With SMTP configured the message is also e-mailed to the
// department's address, else the default one (email.go).
const kindOffline = "offline"

// restOfflineMessage is POST livechat/offline.message (§5.17).
func (s *Surface) restOfflineMessage(c *gin.Context, r *restReq) (map[string]any, error) {
	var name, email, msg, dept string
	for _, f := range []struct {
		k   string
		dst *string
		req bool
	}{{"name", &name, true}, {"email", &email, true}, {"message", &msg, true}, {"department", &dept, false}} {
		v, err := str(r.body, f.k, f.req)
		if err != nil {
			return nil, err
		}
		*f.dst = v
	}
	if _, err := str(r.body, "host", false); err != nil {
		return nil, err
	}
	email = strings.ToLower(strings.TrimSpace(email))
	if !validEmail(email) {
		return nil, &rcError{Code: "error-invalid-email-address", Reason: "Invalid email address",
			Details: map[string]any{"method": "livechat:sendOfflineMessage"}}
	}
	failed := &failC{body: map[string]any{"message": "Error sending Omnichannel offline message"}}
	if strings.TrimSpace(msg) == "" || len(name) > 1024 {
		return nil, failed
	}
	var deptID model.DeptID
	if dept != "" {
		dp, ok := s.findDepartment(dept)
		if !ok {
			return nil, failed
		}
		deptID = dp.ID
	}
	ctx := c.Request.Context()
	v, err := s.d.EnsureVisitor(ctx, store.MapKey{System: System, Tenant: s.cfg.Tenant, Kind: kindOffline, Foreign: email},
		model.Visitor{Name: name, Email: email})
	if err != nil {
		return nil, err
	}
	form := &model.Form{Type: "ticket", Fields: []model.FormField{
		{ID: "name", Type: "name", Label: "Name", Answer: jsonString(name)},
		{ID: "email", Type: "email", Label: "E-mail", Answer: jsonString(email)},
		{ID: "message", Type: "textarea", Label: "Message", Answer: jsonString(msg)},
	}}
	author := model.Author{Kind: model.AuthorVisitor, ID: string(v.ID), Name: name}
	conv, _, err := s.d.Start(ctx, desk.StartRequest{Visitor: v.ID, Department: deptID, Origin: System, Author: author,
		Events: []desk.Draft{{Kind: model.KindForm, Form: form, Visibility: model.VisibleAgents}, {Kind: model.KindMessage, Text: msg}}})
	if errors.Is(err, desk.ErrVisitorBusy) {
		// An earlier offline message of this address is still open: add
		// this one to it.
		_, _, err = s.d.Post(ctx, desk.PostRequest{Conv: conv.ID, Author: author, Draft: desk.Draft{Kind: model.KindMessage, Text: msg}})
	} else if err == nil {
		_, err = s.d.Close(ctx, conv.ID, model.System, "offline message", "")
	}
	if err != nil {
		if errors.Is(err, desk.ErrTooLarge) || errors.Is(err, desk.ErrInvalid) {
			return nil, failed
		}
		return nil, err
	}
	if to := s.offlineRecipient(deptID); s.cfg.Mail != nil && to != "" {
		deptName := ""
		if dp, ok := s.d.Department(deptID); ok {
			deptName = dp.Name
		}
		if err := s.queueMail(ctx, "offline", conv.ID, offlineMail(to, name, email, deptName, msg)); err != nil {
			return nil, err
		}
	}
	return map[string]any{"message": "Livechat offline message sent"}, nil
}

func jsonString(s string) []byte {
	b, _ := json.Marshal(s)
	return b
}

// restTranscript is POST livechat/transcript (§5.19): the transcript of
// the token's room is e-mailed to the given address (email.go). Without
// SMTP configured a valid request gets Rocket.Chat's failure body (config
// reports transcript:false, so the widget does not ask).
func (s *Surface) restTranscript(c *gin.Context, r *restReq) (map[string]any, error) {
	var token, rid, email string
	for _, f := range []struct {
		k   string
		dst *string
	}{{"token", &token}, {"rid", &rid}, {"email", &email}} {
		v, err := str(r.body, f.k, true)
		if err != nil {
			return nil, err
		}
		*f.dst = v
	}
	ctx := c.Request.Context()
	v, conv, err := s.visitorRoom(ctx, token, rid)
	if err != nil {
		if errors.Is(err, errInvalidToken) || errors.Is(err, errInvalidRoom) {
			return nil, errInvalidRoomLong
		}
		return nil, err
	}
	failed := &failC{body: map[string]any{"message": "Error sending Omnichannel transcript"}}
	email = strings.TrimSpace(email)
	if s.cfg.Mail == nil || !validEmail(strings.ToLower(email)) {
		return nil, failed
	}
	if err := s.sendTranscript(ctx, conv, v, email); err != nil {
		return nil, deskErr(err)
	}
	return map[string]any{"message": "Omnichannel transcript sent"}, nil
}
