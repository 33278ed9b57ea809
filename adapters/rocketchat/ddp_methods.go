package rocketchat

// ddp_methods.go: the DDP methods a visitor may call (spec §6.9): the two
// widget 1.13.3 uses (livechat:setUpConnection, stream-notify-room) and the
// legacy ones of Rocket.Chat ≤ 4.x that map onto the desk. Where a REST
// route does the same job, the method calls the REST handler (through an
// in-process request) or its helper, so that both faces behave alike.
//
// Errors are client-safe Meteor.Errors in the `result` frame; failed
// argument checks are {"error":400,"reason":"Match failed"}, unknown methods
// {"error":404,"reason":"Method 'x' not found"}, anything unexpected
// {"error":500,"reason":"Internal server error"} (logged).

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"chatgate/adapters/internal/ddp"
	"chatgate/core/desk"
	"chatgate/core/model"
	"chatgate/store"
)

// ddpMethod runs one method: a result (ddp.NoResult for JavaScript's
// undefined) or an error.
type ddpMethod func(ss *ddpSession, ctx context.Context, p ddpParams) (any, error)

// ddpMethods is the method table.
var ddpMethods = map[string]ddpMethod{
	"livechat:setUpConnection": (*ddpSession).mSetUpConnection,
	"stream-notify-room":       (*ddpSession).mStreamNotifyRoom,

	"livechat:getInitialData":          (*ddpSession).mGetInitialData,
	"livechat:registerGuest":           (*ddpSession).mRegisterGuest,
	"sendMessageLivechat":              (*ddpSession).mSendMessage,
	"livechat:getAgentData":            (*ddpSession).mGetAgentData,
	"livechat:loginByToken":            (*ddpSession).mLoginByToken,
	"livechat:pageVisited":             (*ddpSession).mPageVisited,
	"livechat:closeByVisitor":          (*ddpSession).mCloseByVisitor,
	"livechat:setCustomField":          (*ddpSession).mSetCustomField,
	"livechat:setDepartmentForVisitor": (*ddpSession).mSetDepartment,
	"livechat:getNextAgent":            (*ddpSession).mGetNextAgent,
	"livechat:loadHistory":             (*ddpSession).mLoadHistory,
	"livechat:sendOfflineMessage":      (*ddpSession).mSendOfflineMessage,
	"livechat:saveSurveyFeedback":      (*ddpSession).mSaveSurveyFeedback,
	"livechat:startFileUploadRoom":     (*ddpSession).mStartFileUploadRoom,
	"livechat:transfer":                (*ddpSession).mTransfer,
	"UserPresence:connect":             ddpPresence("online"),
	"UserPresence:online":              ddpPresence("online"),
	"UserPresence:away":                ddpPresence("away"),
}

// method handles a `method` frame (worker goroutine): `updated` once the
// method's writes are committed (every desk command commits before it
// returns), then `result`. Meteor sends them in this order too (the write
// fence fires before the result is sent); clients must accept either.
func (ss *ddpSession) method(ctx context.Context, m *ddp.Message) {
	id, okID := m.ID()
	name, okName := m.Str("method")
	params, okParams := m.Params()
	_, seedIsString := m.Str("randomSeed")
	if !okID || !okName || !okParams || (m.Has("randomSeed") && !seedIsString) {
		ss.send(ddp.ErrorFrame("Malformed method invocation", m.Fields()))
		return
	}
	h := ddpMethods[name]
	if h == nil {
		ss.send(ddp.Updated(id))
		ss.send(ddp.ResultError(id, ddp.MethodNotFound(name)))
		return
	}
	ss.echo = echoRef{}
	cctx, cancel := context.WithTimeout(ctx, ddpMethodTimeout)
	res, err := ss.call(cctx, h, params, name)
	cancel()
	echo := ss.echo
	ss.echo = echoRef{}
	var frame []byte
	if err == nil {
		frame, err = ddp.Result(id, res)
	}
	if err != nil {
		frame = ddp.ResultError(id, ss.s.meteorError(err, ss, "method "+name))
		echo = echoRef{}
	}
	ss.answer(ctx, echo, ddp.Updated(id), frame)
}

// echoRef names the event a method posted: its conversation and seq.
type echoRef struct {
	conv model.ConvID
	seq  uint64
}

// heldAnswer is a method's answer (its `updated` and `result` frames)
// held until the session's feed of conv streams the event seq.
type heldAnswer struct {
	conv   model.ConvID
	seq    uint64
	frames [][]byte
	sent   chan struct{} // closed once the feed has queued frames
}

// parkedEcho is the feed's frames of a notice the running method caused
// (its Origin is the session's), parked until the method's answer is
// ready to go out with them.
type parkedEcho struct {
	frames [][]byte
	taken  chan struct{} // closed once the method's answer has queued frames
}

// ddpEchoWait bounds how long a method's answer waits for the stream
// frame of the message it posted, and how long that frame waits for the
// answer. The desk publishes the notice before Post returns, so either
// wait is short: the feed's drain getting to the notice, or the method
// returning; should the other side not come (the feed cut off, the room
// moved), each goes alone.
const ddpEchoWait = time.Second

// ddpFromWidget is whether a room a DDP method starts counts as the
// widget's (kindWidgetRoom): never. Rocket.Chat decides it with
// isWidget(this.connection.httpHeaders), and a DDP connection's headers
// are those sockjs-node lets through (allowedHeaders: referer,
// x-client-ip, x-forwarded-for, x-cluster-client-ip, via, x-real-ip,
// x-forwarded-proto, x-ssl, host, user-agent, accept-language; checked in
// its public source), which have no cookie: the widget's rc_is_widget
// cookie is never seen there.
const ddpFromWidget = false

// answer sends a method's answer (its `updated` and `result` frames). For
// sendMessageLivechat on a socket that follows the room (e names the
// posted event) the answer leaves together with the stream frame of the
// message, in one write: whichever of the two is ready first waits for
// the other (held here, or parked by the feed: deliver), and the second
// queues both with one wsconn.SendAll.
//
// Without this each sendMessageLivechat cost the visitor's socket two
// writes: the answer as soon as the post returned, and the echo a moment
// later from the feed's drain (docs/performance.md, "Round 8:
// Rocket.Chat"). The order the client sees is the one it saw before:
// `updated`, `result`, then the `changed` of stream-room-messages.
// Rocket.Chat sends that `changed` from its streamer straight to the
// session's socket (app/lib/server/lib/msgStream.js: socket.send of a
// `changed` payload), outside Meteor's merge box and write fence, once
// the message's insert reaches its watcher: `updated` does not wait for
// it, and it normally arrives after the result, as here. No client waits
// on the order between the result and the stream frame (the widget and
// @rocket.chat/sdk render messages from the stream).
//
// ctx is the worker's: it ends when the session does.
func (ss *ddpSession) answer(ctx context.Context, e echoRef, frames ...[]byte) {
	ss.mu.Lock()
	ss.posting = false
	if p := ss.parked; p != nil {
		// The feed got to the message first: both go now.
		ss.parked = nil
		close(p.taken)
		ss.sendAll(append(frames, p.frames...)...)
		ss.mu.Unlock()
		return
	}
	var f *ddpFeed
	if e.conv != "" {
		f = ss.feeds[e.conv]
	}
	if f == nil || f.seen >= e.seq {
		// Nothing to stream (another method, a room not followed, one
		// the method started), or streamed already.
		ss.sendAll(frames...)
		ss.mu.Unlock()
		return
	}
	h := &heldAnswer{conv: e.conv, seq: e.seq, frames: frames, sent: make(chan struct{})}
	ss.held = h
	ss.mu.Unlock()
	if ss.awaitTaken(ctx, h.sent) {
		return
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.held == h {
		ss.held = nil
		ss.sendAll(frames...)
	}
}

// awaitTaken waits, at most echoWait and while ctx lasts, for the other
// side of the rendezvous to take the frames along (taken closed); false
// when it did not, and the waiter must send them alone if still its own.
func (ss *ddpSession) awaitTaken(ctx context.Context, taken <-chan struct{}) bool {
	t := time.NewTimer(ss.s.ddp.echoWait)
	defer t.Stop()
	select {
	case <-taken:
		return true
	case <-t.C:
	case <-ctx.Done():
	}
	return false
}

// takeHeld returns the held answer's frames when the feed f has now
// streamed its event (up to seq f.seen) or is gone (f left the session),
// and releases the waiting worker. Called with ss.mu held; the caller
// queues the frames before anything of the notice.
func (ss *ddpSession) takeHeld(f *ddpFeed, gone bool) [][]byte {
	h := ss.held
	if h == nil || h.conv != f.conv || (!gone && f.seen < h.seq) {
		return nil
	}
	ss.held = nil
	close(h.sent)
	return h.frames
}

// awaitAnswer waits, at most echoWait, for the running method's answer
// to take the frames the feed parked (queueNotice); the feed's drain waits
// meanwhile, so nothing later of the room overtakes them. Should the
// answer not come, the frames go alone.
func (ss *ddpSession) awaitAnswer(p *parkedEcho) {
	if ss.awaitTaken(ss.workCtx, p.taken) {
		return
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.parked == p {
		ss.parked = nil
		ss.sendAll(p.frames...)
	}
}

// call runs a handler; a panic is an internal error, never a crash.
func (ss *ddpSession) call(ctx context.Context, h ddpMethod, p []any, name string) (res any, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic in %s: %v", name, r)
		}
	}()
	return h(ss, ctx, ddpParams(p))
}

// meteorError turns an error into the Meteor.Error sent to the client.
func (s *Surface) meteorError(err error, ss *ddpSession, what string) *ddp.Error {
	var (
		de *ddp.Error
		rc *rcError
		me *matchError
	)
	switch {
	case errors.As(err, &de):
		return de
	case errors.As(err, &rc):
		e := &ddp.Error{Code: rc.Code, Reason: rc.Reason}
		if rc.Details != nil {
			e.Details = rc.Details
		}
		return e
	case errors.As(err, &me):
		return ddp.MatchFailed()
	}
	if mapped := deskErr(err); mapped != err {
		return s.meteorError(mapped, ss, what)
	}
	l := &s.log
	if ss != nil {
		l = ss.logger()
	}
	if !errors.Is(err, context.Canceled) {
		l.Error().Err(err).Str("call", what).Msg("ddp call failed")
	}
	return ddp.InternalError()
}

// --- parameters ------------------------------------------------------------------------

// ddpParams are a method's EJSON-decoded arguments, checked as Meteor's
// check() does: a mismatch is Match failed.
type ddpParams []any

func (p ddpParams) at(i int) any { return ddpParam(p, i) }

func (p ddpParams) str(i int) (string, error) {
	s, ok := p.at(i).(string)
	if !ok {
		return "", ddp.MatchFailed()
	}
	return s, nil
}

// strs reads the first n parameters as strings (check(a, String) ...).
func (p ddpParams) strs(n int) ([]string, error) {
	out := make([]string, n)
	for i := range out {
		v, err := p.str(i)
		if err != nil {
			return nil, err
		}
		out[i] = v
	}
	return out, nil
}

// optStr is Match.Maybe(String): absent, null or a string.
func (p ddpParams) optStr(i int) (string, error) {
	switch v := p.at(i).(type) {
	case nil:
		return "", nil
	case string:
		return v, nil
	}
	return "", ddp.MatchFailed()
}

func (p ddpParams) obj(i int) (map[string]any, error) {
	m, ok := p.at(i).(map[string]any)
	if !ok {
		return nil, ddp.MatchFailed()
	}
	return m, nil
}

// ddpObjStr is a required string key.
func ddpObjStr(m map[string]any, k string) (string, error) {
	s, ok := m[k].(string)
	if !ok {
		return "", ddp.MatchFailed()
	}
	return s, nil
}

// ddpObjOptStr is an optional string key (absent or null allowed).
func ddpObjOptStr(m map[string]any, k string) (string, error) {
	switch v := m[k].(type) {
	case nil:
		return "", nil
	case string:
		return v, nil
	}
	return "", ddp.MatchFailed()
}

// ddpOnlyKeys is check()'s exact object pattern: no other keys.
func ddpOnlyKeys(m map[string]any, keys ...string) error {
	for k := range m {
		if !slices.Contains(keys, k) {
			return ddp.MatchFailed()
		}
	}
	return nil
}

// restContext is an in-process request for calling a REST handler from a
// method: its context, query and path parameters, and the host the socket
// was opened on (for URLs the handler builds).
func (ss *ddpSession) restContext(ctx context.Context, query url.Values, ps gin.Params) *gin.Context {
	u := &ss.upgrade
	req := &http.Request{Method: http.MethodGet, URL: &url.URL{Path: "/", RawQuery: query.Encode()},
		Host: u.host, TLS: u.tls, RemoteAddr: u.remoteAddr, Header: http.Header{}}
	if u.forwardedProto != "" {
		req.Header.Set("X-Forwarded-Proto", u.forwardedProto)
	}
	return &gin.Context{Request: req.WithContext(ctx), Params: ps}
}

// --- the widget's methods -----------------------------------------------------------

// mSetUpConnection is livechat:setUpConnection [{token}]: the first call
// binds the connection to the visitor token; the visitor is online while a
// bound connection is open and offline once the last one closes.
func (ss *ddpSession) mSetUpConnection(ctx context.Context, p ddpParams) (any, error) {
	data, err := p.obj(0)
	if err != nil {
		return nil, err
	}
	if err := ddpOnlyKeys(data, "token"); err != nil {
		return nil, err
	}
	token, err := ddpObjStr(data, "token")
	if err != nil {
		return nil, err
	}
	if ss.token == "" && token != "" && len(token) <= maxTokenLen {
		ss.token = token
		ss.s.bindToken(ctx, token)
	}
	return ddp.NoResult, nil
}

// mStreamNotifyRoom is the stream-notify-room write [eventName, ...args].
// "<rid>/typing" [username, isTyping, {token}] and "<rid>/user-activity"
// [username, activities, {token}] become desk typing indicators when the
// token is the room's visitor's (newer clients omit the token: the
// connection's setUpConnection token is used then). Like Rocket.Chat, a
// write that is not allowed is dropped silently, and nothing is returned.
func (ss *ddpSession) mStreamNotifyRoom(ctx context.Context, p ddpParams) (any, error) {
	event, err := p.str(0)
	if err != nil {
		return nil, err
	}
	rid, suffix, _ := strings.Cut(event, "/")
	var on bool
	switch suffix {
	case "typing":
		on, _ = p.at(2).(bool)
	case "user-activity":
		acts, _ := p.at(2).([]any)
		on = slices.Contains(acts, any("user-typing"))
	default:
		return ddp.NoResult, nil // webrtc signalling and the rest: dropped
	}
	token := ""
	if extra, ok := p.at(3).(map[string]any); ok {
		token, _ = extra["token"].(string)
	}
	if token == "" {
		token = ss.token
	}
	if token == "" {
		return ddp.NoResult, nil
	}
	convID, _ := ss.s.resolveRoom(ctx, rid)
	v, conv, err := ss.s.visitorRoom(ctx, token, string(convID))
	if err != nil || !conv.Active() {
		return ddp.NoResult, nil
	}
	if err := ss.s.d.Typing(ctx, conv.ID, visitorAuthor(v), on, "", ss.origin()); err != nil {
		ss.logger().Debug().Err(err).Msg("visitor typing")
	}
	return ddp.NoResult, nil
}

// --- legacy methods ---------------------------------------------------------------------

// mGetInitialData is livechat:getInitialData [visitorToken, departmentId?]:
// the settings of livechat/config (the REST handler's), the token's open
// room (in departmentId when given), its visitor and serving agent.
func (ss *ddpSession) mGetInitialData(ctx context.Context, p ddpParams) (any, error) {
	token, err := p.str(0)
	if err != nil {
		return nil, err
	}
	dept, err := p.optStr(1)
	if err != nil {
		return nil, err
	}
	out, err := ss.s.restConfig(ss.restContext(ctx, url.Values{"token": {token}}, nil), &restReq{body: map[string]any{}})
	if err != nil {
		return nil, err
	}
	cfg, _ := out["config"].(map[string]any)
	settings, _ := cfg["settings"].(map[string]any)
	theme, _ := cfg["theme"].(map[string]any)
	msgs, _ := cfg["messages"].(map[string]any)
	info := map[string]any{
		"enabled": cfg["enabled"], "title": theme["title"], "color": theme["color"],
		"registrationForm": settings["registrationForm"], "room": nil, "visitor": nil,
		"triggers": ddpOrEmpty(cfg["triggers"]), "departments": ddpOrEmpty(cfg["departments"]),
		"allowSwitchingDepartments": settings["allowSwitchingDepartments"], "online": cfg["online"],
		"offlineTitle": theme["offlineTitle"], "offlineColor": theme["offlineColor"],
		"offlineMessage": msgs["offlineMessage"], "offlineSuccessMessage": msgs["offlineSuccessMessage"],
		"offlineUnavailableMessage": msgs["offlineUnavailableMessage"], "displayOfflineForm": settings["displayOfflineForm"],
		"language": settings["language"], "videoCall": settings["videoCall"], "fileUpload": settings["fileUpload"],
		"transcript": settings["transcript"], "transcriptMessage": msgs["transcriptMessage"],
		"conversationFinishedMessage": msgs["conversationFinishedMessage"],
		"conversationFinishedText":    msgs["conversationFinishedText"],
		"nameFieldRegistrationForm":   settings["nameFieldRegistrationForm"],
		"emailFieldRegistrationForm":  settings["emailFieldRegistrationForm"],
		"registrationFormMessage":     msgs["registrationFormMessage"],
		"showConnecting":              settings["showConnecting"] == true,
		"customFields":                ss.s.publicFields(),
	}
	v, err := ss.s.visitorByToken(ctx, token)
	if err != nil {
		if ddpClientError(err) {
			return info, nil
		}
		return nil, err
	}
	guest := ss.s.renderGuest(&v, token)
	delete(guest, "token")
	info["visitor"] = guest
	conv, open, err := ss.s.d.OpenConversation(ctx, v.ID)
	if err != nil {
		return nil, err
	}
	if open && (dept == "" || string(conv.Department) == dept) {
		info["room"] = ss.s.renderRoom(&conv, &v, token)
		if conv.Agent != "" {
			if a, ok := ss.s.d.Router().Agent(conv.Agent); ok {
				info["agentData"] = ss.s.renderAgent(a)
			}
		}
	}
	return info, nil
}

func ddpOrEmpty(v any) any {
	if v == nil {
		return []any{}
	}
	return v
}

// mRegisterGuest is livechat:registerGuest [{token, name?, email?,
// department?, customFields?, phone?, username?}] -> {userId, visitor}:
// POST livechat/visitor's rules (the same helper). Custom fields with
// scope "room" are not visitor data and are skipped, as on Rocket.Chat.
func (ss *ddpSession) mRegisterGuest(ctx context.Context, p ddpParams) (any, error) {
	data, err := p.obj(0)
	if err != nil {
		return nil, err
	}
	in := visitorInput{}
	for _, f := range []struct {
		k   string
		dst *string
		has *bool
	}{{"token", &in.token, nil}, {"name", &in.name, &in.hasName}, {"email", &in.email, &in.hasEmail},
		{"phone", &in.phone, &in.hasPhone}, {"department", &in.dept, &in.hasDept}, {"username", &in.username, nil}} {
		v, err := ddpObjOptStr(data, f.k)
		if err != nil {
			return nil, err
		}
		*f.dst = v
		if f.has != nil {
			*f.has = data[f.k] != nil
		}
	}
	if in.token == "" || len(in.token) > maxTokenLen {
		return nil, &rcError{Code: "error-invalid-token", Reason: "Token cannot be empty"}
	}
	if list, ok := data["customFields"].([]any); ok {
		for _, x := range list {
			cf, ok := x.(map[string]any)
			if !ok || cf["scope"] == "room" {
				continue
			}
			k, ok1 := cf["key"].(string)
			val, ok2 := cf["value"].(string)
			if !ok1 || !ok2 || k == "" {
				continue
			}
			ow := true
			if b, ok := cf["overwrite"].(bool); ok {
				ow = b
			}
			in.fields = append(in.fields, customField{key: k, value: val, overwrite: ow})
		}
	}
	v, err := ss.s.saveVisitor(ctx, in)
	if err != nil {
		return nil, err
	}
	return map[string]any{"userId": string(v.ID), "visitor": ss.s.renderGuest(&v, in.token)}, nil
}

// mSendMessage is sendMessageLivechat [{_id, rid, msg, token, file?,
// attachments?}, agent?]: the legacy flow where the client picks the room
// id. A rid that is the token's open room gets the message; an unknown
// rid starts the visitor's room (or reuses its open one: chatgate keeps
// one open room per visitor) and is bound to it as an alias; a closed
// room starts a new one, as Rocket.Chat does. The client's _id is the
// message id and its idempotency key, as for REST livechat/message, so a
// retry returns the first message. file/attachments are not supported
// (use livechat/upload); agent (a preferred agent) is checked and ignored.
func (ss *ddpSession) mSendMessage(ctx context.Context, p ddpParams) (any, error) {
	data, err := p.obj(0)
	if err != nil {
		return nil, err
	}
	var in [4]string
	for i, k := range []string{"token", "_id", "rid", "msg"} {
		if in[i], err = ddpObjStr(data, k); err != nil {
			return nil, err
		}
	}
	token, id, rid, text := in[0], in[1], in[2], in[3]
	if agent := p.at(1); agent != nil {
		a, ok := agent.(map[string]any)
		if !ok || ddpOnlyKeys(a, "agentId", "username") != nil {
			return nil, ddp.MatchFailed()
		}
		if _, err := ddpObjStr(a, "agentId"); err != nil {
			return nil, err
		}
		if _, err := ddpObjStr(a, "username"); err != nil {
			return nil, err
		}
	}
	v, err := ss.s.visitorByToken(ctx, token)
	if err != nil {
		return nil, err
	}
	if len(text) > ss.s.d.Limits().MaxText {
		return nil, errTooLong
	}
	conv, created, alias, err := ss.roomFor(ctx, v, rid)
	if err != nil {
		return nil, err
	}
	// The notice of the post carries the session's origin: while posting
	// is set, the feed parks its stream frames for the answer (answer).
	ss.mu.Lock()
	ss.posting = true
	ss.mu.Unlock()
	ev, err := ss.s.postVisitorMessageFrom(ctx, v, conv, id, text, nil, ss.originTag)
	if err != nil {
		return nil, err
	}
	m := ss.s.renderMessage(&ev)
	if m == nil {
		return nil, fmt.Errorf("message %s has no visitor rendering", ev.ID)
	}
	ss.echo = echoRef{conv: ev.Conv, seq: ev.Seq}
	if alias != "" {
		m = m.withRid(alias)
	}
	m.method, m.newRoom = true, created
	return m, nil
}

// roomFor finds or starts the room a legacy call names (see mSendMessage):
// a new room takes the client's rid as its _id (room_ids.go). alias is the
// client's rid when it is an extra name of the visitor's open room.
func (ss *ddpSession) roomFor(ctx context.Context, v model.Visitor, rid string) (model.Conversation, bool, string, error) {
	s := ss.s
	convID, aliased := s.resolveRoom(ctx, rid)
	conv, err := s.d.Store().Conversation(ctx, convID)
	switch {
	case err == nil:
		if conv.Visitor != v.ID {
			return model.Conversation{}, false, "", errCannotAccess
		}
		if conv.Active() {
			if aliased && s.roomID(ctx, conv.ID) != rid {
				return conv, false, rid, nil
			}
			return conv, false, "", nil
		}
		// Closed: Rocket.Chat gives the message a new random rid.
		conv, created, err := s.openOrStartRoom(ctx, v, "", ddpFromWidget)
		return conv, created, "", err
	case !errors.Is(err, store.ErrNotFound):
		return model.Conversation{}, false, "", err
	}
	conv, created, err := s.openOrStartRoom(ctx, v, rid, ddpFromWidget)
	if err != nil {
		return model.Conversation{}, false, "", err
	}
	if created || !validRoomID(rid) {
		return conv, created, "", nil
	}
	err = s.d.Store().Commit(context.WithoutCancel(ctx), &store.Batch{Maps: []store.Mapping{{MapKey: s.roomKey(KindRoomAlias, rid), Core: string(conv.ID)}}})
	if errors.Is(err, store.ErrConflict) {
		// Bound concurrently: fine if to this room.
		if got, _ := s.resolveRoom(ctx, rid); got == conv.ID {
			return conv, created, rid, nil
		}
		return model.Conversation{}, false, "", errCannotAccess
	}
	if err != nil {
		return model.Conversation{}, false, "", err
	}
	return conv, created, rid, nil
}

// mGetAgentData is livechat:getAgentData [{roomId, token}]: the room's
// serving agent, or no result. A room that is not the token's (or an
// unknown token: Rocket.Chat fails with a 500 there) is error-invalid-room.
func (ss *ddpSession) mGetAgentData(ctx context.Context, p ddpParams) (any, error) {
	data, err := p.obj(0)
	if err != nil {
		return nil, err
	}
	roomID, err := ddpObjStr(data, "roomId")
	if err != nil {
		return nil, err
	}
	token, err := ddpObjStr(data, "token")
	if err != nil {
		return nil, err
	}
	convID, _ := ss.s.resolveRoom(ctx, roomID)
	_, conv, err := ss.s.visitorRoom(ctx, token, string(convID))
	if err != nil {
		if ddpClientError(err) {
			return nil, errInvalidRoomLong
		}
		return nil, err
	}
	if conv.Agent == "" {
		return ddp.NoResult, nil
	}
	a, ok := ss.s.d.Router().Agent(conv.Agent)
	if !ok {
		return ddp.NoResult, nil
	}
	return ss.s.renderAgent(a), nil
}

// mLoginByToken is livechat:loginByToken [token] -> {_id} of its visitor,
// or no result.
func (ss *ddpSession) mLoginByToken(ctx context.Context, p ddpParams) (any, error) {
	token, err := p.str(0)
	if err != nil {
		return nil, err
	}
	v, err := ss.s.visitorByToken(ctx, token)
	if err != nil {
		if ddpClientError(err) {
			return ddp.NoResult, nil
		}
		return nil, err
	}
	return map[string]any{"_id": string(v.ID)}, nil
}

// mPageVisited is livechat:pageVisited [token, rid?, pageInfo]: POST
// livechat/page.visited's handler (an agents-only note on the open room).
func (ss *ddpSession) mPageVisited(ctx context.Context, p ddpParams) (any, error) {
	token, err := p.str(0)
	if err != nil {
		return nil, err
	}
	rid, err := p.optStr(1)
	if err != nil {
		return nil, err
	}
	page, err := p.obj(2)
	if err != nil {
		return nil, err
	}
	body := map[string]any{"token": token, "pageInfo": page}
	if rid != "" {
		convID, _ := ss.s.resolveRoom(ctx, rid)
		body["rid"] = string(convID)
	}
	if _, err := ss.s.restPageVisited(ss.restContext(ctx, nil, nil), &restReq{body: body}); err != nil {
		return nil, err
	}
	return ddp.NoResult, nil
}

// mCloseByVisitor is livechat:closeByVisitor [{roomId, token}] -> true, or
// false when the room is not an open room of the token.
func (ss *ddpSession) mCloseByVisitor(ctx context.Context, p ddpParams) (any, error) {
	data, err := p.obj(0)
	if err != nil {
		return nil, err
	}
	roomID, err := ddpObjStr(data, "roomId")
	if err != nil {
		return nil, err
	}
	token, err := ddpObjStr(data, "token")
	if err != nil {
		return nil, err
	}
	if _, err := ss.s.visitorByToken(ctx, token); err != nil {
		return nil, err
	}
	convID, _ := ss.s.resolveRoom(ctx, roomID)
	v, conv, err := ss.s.visitorRoom(ctx, token, string(convID))
	if err != nil {
		if ddpClientError(err) {
			return false, nil
		}
		return nil, err
	}
	if !conv.Active() {
		return false, nil
	}
	if _, err := ss.s.d.Close(ctx, conv.ID, visitorAuthor(v), "Closed by visitor", ss.origin()); err != nil {
		if errors.Is(err, desk.ErrInactive) {
			return false, nil
		}
		return nil, err
	}
	return true, nil
}

// mSetCustomField is livechat:setCustomField [token, key, value,
// overwrite=true] -> true: a visitor custom field (chatgate has no field
// definitions, so any key but its reserved ones is kept).
func (ss *ddpSession) mSetCustomField(ctx context.Context, p ddpParams) (any, error) {
	args, err := p.strs(3)
	if err != nil {
		return nil, err
	}
	token, key, value := args[0], args[1], args[2]
	overwrite := true
	switch v := p.at(3).(type) {
	case nil:
	case bool:
		overwrite = v
	default:
		return nil, ddp.MatchFailed()
	}
	v, err := ss.s.visitorByToken(ctx, token)
	if err != nil {
		return nil, err
	}
	if _, err := ss.s.setCustomFields(ctx, v, []customField{{key: key, value: value, overwrite: overwrite}}); err != nil {
		return nil, err
	}
	return true, nil
}

// mSetDepartment is livechat:setDepartmentForVisitor [{roomId,
// visitorToken, departmentId}] -> true: POST livechat/room.transfer's
// handler; false when the room is closed.
func (ss *ddpSession) mSetDepartment(ctx context.Context, p ddpParams) (any, error) {
	data, err := p.obj(0)
	if err != nil {
		return nil, err
	}
	var in [3]string
	for i, k := range []string{"roomId", "visitorToken", "departmentId"} {
		if in[i], err = ddpObjStr(data, k); err != nil {
			return nil, err
		}
	}
	convID, _ := ss.s.resolveRoom(ctx, in[0])
	if _, _, err := ss.s.visitorRoom(ctx, in[1], string(convID)); err != nil {
		if ddpClientError(err) {
			return nil, errInvalidRoomLong
		}
		return nil, err
	}
	_, err = ss.s.restRoomTransfer(ss.restContext(ctx, nil, nil), &restReq{body: map[string]any{
		"rid": string(convID), "token": in[1], "department": in[2]}})
	if errors.Is(err, errRoomClosed) {
		return false, nil
	}
	if err != nil {
		return nil, err
	}
	return true, nil
}

// mGetNextAgent is livechat:getNextAgent [{token, department?}]: the agent
// a new room would get (GET livechat/agent.next's handler), or no result
// (no agent, or the token already has an open room).
func (ss *ddpSession) mGetNextAgent(ctx context.Context, p ddpParams) (any, error) {
	data, err := p.obj(0)
	if err != nil {
		return nil, err
	}
	token, err := ddpObjStr(data, "token")
	if err != nil {
		return nil, err
	}
	dept, err := ddpObjOptStr(data, "department")
	if err != nil {
		return nil, err
	}
	q := url.Values{}
	if dept != "" {
		q.Set("department", dept)
	}
	out, err := ss.s.restAgentNext(ss.restContext(ctx, q, gin.Params{{Key: "token", Value: token}}), &restReq{body: map[string]any{}})
	if errors.Is(err, errAgentNotFound) {
		return ddp.NoResult, nil
	}
	if err != nil {
		return nil, err
	}
	if a, ok := out["agent"]; ok {
		return a, nil
	}
	return ddp.NoResult, nil
}

// mLoadHistory is livechat:loadHistory [{token, rid, end?, limit=20, ls?}]
// -> {messages (newest first, before end), firstUnread, unreadNotLoaded}:
// messages.history's handler; ls (last seen) counts the unread messages
// between ls and the oldest one loaded.
func (ss *ddpSession) mLoadHistory(ctx context.Context, p ddpParams) (any, error) {
	data, err := p.obj(0)
	if err != nil {
		return nil, err
	}
	token, _ := data["token"].(string)
	if token == "" {
		return ddp.NoResult, nil // Rocket.Chat returns undefined
	}
	rid, err := ddpObjStr(data, "rid")
	if err != nil {
		return nil, err
	}
	limit := 20
	if l, ok := data["limit"].(float64); ok && l >= 1 {
		limit = int(min(l, 1000))
	}
	end, _ := data["end"].(time.Time)
	ls, hasLS := data["ls"].(time.Time)
	convID, _ := ss.s.resolveRoom(ctx, rid)
	if _, err := ss.s.visitorByToken(ctx, token); err != nil {
		if ddpClientError(err) {
			return nil, &rcError{Code: "invalid-visitor", Reason: "Invalid Visitor", Details: map[string]any{"method": "livechat:loadHistory"}}
		}
		return nil, err
	}
	if _, _, err := ss.s.visitorRoom(ctx, token, string(convID)); err != nil {
		if ddpClientError(err) {
			return nil, &rcError{Code: "invalid-room", Reason: "Invalid Room", Details: map[string]any{"method": "livechat:loadHistory"}}
		}
		return nil, err
	}
	page := func(end time.Time, limit int) ([]any, error) {
		q := url.Values{"token": {token}, "limit": {strconv.Itoa(limit)}}
		if !end.IsZero() {
			q.Set("end", end.UTC().Format(time.RFC3339Nano))
		}
		out, err := ss.s.restHistory(ss.restContext(ctx, q, gin.Params{{Key: "rid", Value: string(convID)}}), &restReq{body: map[string]any{}})
		if err != nil {
			return nil, err
		}
		msgs, _ := out["messages"].([]any)
		return msgs, nil
	}
	msgs, err := page(end, limit)
	if err != nil {
		return nil, err
	}
	res := map[string]any{"messages": msgs, "firstUnread": nil, "unreadNotLoaded": 0}
	if hasLS && len(msgs) > 0 {
		oldest, _ := ddpMsgTime(msgs[len(msgs)-1])
		if oldest.After(ls) {
			older, err := page(oldest, 1000)
			if err != nil {
				return nil, err
			}
			var unread []any
			for _, m := range older {
				if t, ok := ddpMsgTime(m); ok && t.After(ls) {
					unread = append(unread, m)
				}
			}
			if len(unread) > 0 {
				res["firstUnread"] = unread[len(unread)-1]
				res["unreadNotLoaded"] = len(unread)
			}
		}
	}
	return res, nil
}

func ddpMsgTime(m any) (time.Time, bool) {
	mm, ok := m.(*message)
	if !ok || mm == nil {
		return time.Time{}, false
	}
	return mm.ts, true
}

// mSendOfflineMessage is livechat:sendOfflineMessage [{name, email,
// message}] -> true/false: POST livechat/offline.message's handler, rate
// limited to one call per 5 s per connection as on Rocket.Chat.
func (ss *ddpSession) mSendOfflineMessage(ctx context.Context, p ddpParams) (any, error) {
	data, err := p.obj(0)
	if err != nil {
		return nil, err
	}
	if err := ddpOnlyKeys(data, "name", "email", "message"); err != nil {
		return nil, err
	}
	for _, k := range []string{"name", "email", "message"} {
		if _, err := ddpObjStr(data, k); err != nil {
			return nil, err
		}
	}
	now := time.Now()
	if wait := ss.s.ddp.offlineMinInterval - now.Sub(ss.lastOffline); !ss.lastOffline.IsZero() && wait > 0 {
		secs := int((wait + time.Second - 1) / time.Second)
		return nil, &ddp.Error{Code: "too-many-requests",
			Reason:  fmt.Sprintf("Error, too many requests. Please slow down. You must wait %d seconds before trying again.", secs),
			Details: map[string]any{"timeToReset": wait.Milliseconds()}}
	}
	ss.lastOffline = now
	_, err = ss.s.restOfflineMessage(ss.restContext(ctx, nil, nil), &restReq{body: data})
	var fc *failC
	if errors.As(err, &fc) {
		return false, nil
	}
	if err != nil {
		return nil, err
	}
	return true, nil
}

// mSaveSurveyFeedback is livechat:saveSurveyFeedback [visitorToken,
// visitorRoom, [{name, value}]]: the valid items are saved (room.survey's
// handler) and true returned; like Rocket.Chat, a foreign room or no valid
// item returns nothing.
func (ss *ddpSession) mSaveSurveyFeedback(ctx context.Context, p ddpParams) (any, error) {
	args, err := p.strs(2)
	if err != nil {
		return nil, err
	}
	token, rid := args[0], args[1]
	list, ok := p.at(2).([]any)
	if !ok {
		return nil, ddp.MatchFailed()
	}
	var items []any
	for _, x := range list {
		m, ok := x.(map[string]any)
		if !ok {
			return nil, ddp.MatchFailed()
		}
		name, ok1 := m["name"].(string)
		value, ok2 := m["value"].(string)
		if !ok1 || !ok2 {
			return nil, ddp.MatchFailed()
		}
		if !slices.Contains(surveyItems, name) || (name != "additionalFeedback" && !slices.Contains(surveyValues, value)) {
			continue
		}
		items = append(items, map[string]any{"name": name, "value": value})
	}
	convID, _ := ss.s.resolveRoom(ctx, rid)
	if _, _, err := ss.s.visitorRoom(ctx, token, string(convID)); err != nil {
		if ddpClientError(err) {
			return ddp.NoResult, nil
		}
		return nil, err
	}
	if len(items) == 0 {
		return ddp.NoResult, nil
	}
	_, err = ss.s.restRoomSurvey(ss.restContext(ctx, nil, nil), &restReq{body: map[string]any{
		"rid": string(convID), "token": token, "data": items}})
	if err != nil {
		return nil, err
	}
	return true, nil
}

// mStartFileUploadRoom is livechat:startFileUploadRoom [roomId?, token] ->
// {room, newRoom}: the room of the token (started when needed), for an
// upload to follow.
func (ss *ddpSession) mStartFileUploadRoom(ctx context.Context, p ddpParams) (any, error) {
	rid, err := p.optStr(0)
	if err != nil {
		return nil, err
	}
	token, err := p.str(1)
	if err != nil {
		return nil, err
	}
	v, err := ss.s.visitorByToken(ctx, token)
	if err != nil {
		return nil, err
	}
	conv, created, alias, err := ss.roomFor(ctx, v, rid)
	if err != nil {
		return nil, err
	}
	room := ss.s.renderRoom(&conv, &v, token)
	if alias != "" {
		room = copyMap(room)
		room["_id"] = alias
	}
	return map[string]any{"room": room, "newRoom": created}, nil
}

// mTransfer is livechat:transfer: an agent's method (view-l-room); a
// visitor connection is never allowed.
func (ss *ddpSession) mTransfer(context.Context, ddpParams) (any, error) {
	return nil, &ddp.Error{Code: "error-not-allowed", Reason: "Not allowed", Details: map[string]any{"method": "livechat:transfer"}}
}

// ddpPresence is UserPresence:connect/online/away, as the pre-1.0 widget
// called them with metadata {visitor: token}: the visitor's presence
// (without metadata, the connection's setUpConnection token).
func ddpPresence(status string) ddpMethod {
	return func(ss *ddpSession, ctx context.Context, p ddpParams) (any, error) {
		token := ss.token
		for _, x := range p {
			if m, ok := x.(map[string]any); ok {
				if t, ok := m["visitor"].(string); ok && t != "" {
					token = t
				}
			}
		}
		if token == "" {
			return ddp.NoResult, nil
		}
		if v, err := ss.s.visitorByToken(ctx, token); err == nil {
			ss.s.rest.presence.Store(v.ID, status)
		}
		return ddp.NoResult, nil
	}
}
