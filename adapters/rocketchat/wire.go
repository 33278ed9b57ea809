package rocketchat

// wire.go renders core objects in Rocket.Chat's shapes (spec §4) for both
// REST and DDP, and holds the Meteor.Error type both sides answer with.
//
// Dates are left as time.Time values inside the returned maps: REST encodes
// them as ISO strings (restJSON, isoDates), DDP as EJSON {"$date": ms}.
//
// Visitor usernames: Rocket.Chat names visitors "guest-<N>" from a global
// counter. chatgate keeps the counter in the store's meta values
// (guestCountKey) and binds each visitor's username as a mapping
// (System, Tenant, KindUsername, username) -> visitor id, so a username is
// unique, stable across restarts and found again with store.Reverse. A
// visitor gets its username the first time anything renders it.

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"chatgate/core/model"
	"chatgate/core/routing"
	"chatgate/store"
	"chatgate/store/files"
)

// More mapping kinds under System (see surface.go for KindToken, KindAuth).
const (
	// KindUsername binds a visitor's Rocket.Chat username to the visitor.
	KindUsername = "username"
	// KindAuthRevoked marks a logged-out agent auth token (by SHA-256);
	// the store cannot unbind a mapping, so logout binds this one.
	KindAuthRevoked = "auth_revoked"
)

// fileURLPrefix is the path of uploaded files: /file-upload/<id>/<name>,
// served by widget*.go (or by the server when this surface is off).
const fileURLPrefix = files.URLPrefix

// wireState caches what renders need per visitor. Usernames and tokens
// never change once bound, so the cache is never invalidated.
type wireState struct {
	mu       sync.Mutex // serialises guest-N assignment
	username sync.Map   // model.VisitorID -> string
	token    sync.Map   // model.VisitorID -> string
}

// --- Meteor errors -------------------------------------------------------------

// rcError is a client-safe Meteor.Error: Code is its `error`, Reason its
// optional `reason`.
type rcError struct {
	Code    string
	Reason  string
	Details map[string]any
}

func (e *rcError) Error() string {
	if e.Reason == "" {
		return "[" + e.Code + "]"
	}
	return e.Reason + " [" + e.Code + "]"
}

// meteor returns the serialised Meteor.Error, as DDP `error` objects and
// REST error shape (B) carry it.
func (e *rcError) meteor() map[string]any {
	m := map[string]any{"isClientSafe": true, "error": e.Code, "message": e.Error(), "errorType": "Meteor.Error"}
	if e.Reason != "" {
		m["reason"] = e.Reason
	}
	if e.Details != nil {
		m["details"] = e.Details
	}
	return m
}

func newErr(code, reason string) *rcError { return &rcError{Code: code, Reason: reason} }

// Errors of spec §3.8. Compare with errors.Is (pointer identity).
var (
	errInvalidToken    = newErr("invalid-token", "")
	errInvalidRoom     = newErr("invalid-room", "")
	errRoomClosed      = newErr("room-closed", "")
	errInvalidAgent    = newErr("invalid-agent", "")
	errAgentNotFound   = newErr("agent-not-found", "")
	errInvalidMessage  = newErr("invalid-message", "")
	errTooLong         = newErr("message-length-exceeds-character-limit", "")
	errNoAgentOnline   = newErr("no-agent-online", "Sorry, no online agents")
	errCannotAccess    = newErr("cannot-access-room", "")
	errInvalidDept     = &rcError{Code: "error-invalid-department", Reason: "The provided department is invalid", Details: map[string]any{"method": "registerGuest"}}
	errOpenRooms       = newErr("visitor-has-open-rooms", "Cannot remove visitors with opened rooms")
	errRemovingVisitor = newErr("error-removing-visitor", "An error ocurred while deleting visitor")
	errSavingVisitor   = newErr("error-saving-visitor", "An error ocurred while saving visitor")
	errInvalidField    = newErr("invalid-custom-field", "")
	errInvalidRoomLong = newErr("error-invalid-room", "Invalid room")
	errNoTokenParam    = newErr("error-token-param-not-provided", `The required "token" query param is missing.`)
	errEditNotAllowed  = newErr("error-action-not-allowed", "Message editing not allowed")
	errDelNotAllowed   = newErr("error-action-not-allowed", "Message deleting not allowed")
	errSameDepartment  = newErr("error-forwarding-chat-same-department", "The selected department and the current room department are the same")
	errInvalidVisitor  = newErr("invalid-visitor", "")
	errInvalidParams   = newErr("error-invalid-params", "")
	errUserOffline     = newErr("error-user-is-offline", "User is offline")
	errSameAgent       = newErr("error-selected-agent-room-agent-are-same", "The selected agent and the room agent are the same")
	errInvalidData     = newErr("invalid-data", "")
)

// --- dates ---------------------------------------------------------------------

// isoTime formats t as JavaScript's Date.toJSON does.
func isoTime(t time.Time) string { return t.UTC().Format(isoLayout) }

// appendISOTime appends isoTime(t) without the string.
func appendISOTime(dst []byte, t time.Time) []byte { return t.UTC().AppendFormat(dst, isoLayout) }

// isoLayout is Date.toJSON's form.
const isoLayout = "2006-01-02T15:04:05.000Z"

// isoDates returns v with every time.Time inside maps and slices replaced
// by its ISO string (REST form). The input is not modified.
func isoDates(v any) any {
	switch x := v.(type) {
	case time.Time:
		return isoTime(x)
	case *time.Time:
		if x == nil {
			return nil
		}
		return isoTime(*x)
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = isoDates(e)
		}
		return out
	case gin.H:
		return isoDates(map[string]any(x))
	case []map[string]any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = isoDates(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = isoDates(e)
		}
		return out
	}
	return v
}

// restJSON writes v as compact JSON with dates as ISO strings (the bytes
// of json.Marshal(isoDates(v)); see appendREST).
func restJSON(c *gin.Context, status int, v any) {
	b, err := restBody(v)
	if err != nil {
		status, b = 500, []byte(`{"success":false,"error":"Internal server error"}`)
	}
	c.Data(status, "application/json", b)
}

// --- visitors ------------------------------------------------------------------

// guestCountKey is the meta value holding the last guest-N number.
func (s *Surface) guestCountKey() string { return System + "/" + s.cfg.Tenant + "/guest_count" }

// visitorUsername returns the visitor's Rocket.Chat username, assigning the
// next guest-N the first time. want, if not empty and free, is used instead
// (livechat/visitor's optional username, only on first assignment).
func (s *Surface) visitorUsername(ctx context.Context, id model.VisitorID, want string) (string, error) {
	if u, ok := s.rest.wire.username.Load(id); ok {
		return u.(string), nil
	}
	st := s.d.Store()
	u, err := st.Reverse(ctx, System, s.cfg.Tenant, KindUsername, string(id))
	if err == nil {
		s.rest.wire.username.Store(id, u)
		return u, nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return "", err
	}
	w := &s.rest.wire
	w.mu.Lock()
	defer w.mu.Unlock()
	if u, err := st.Reverse(ctx, System, s.cfg.Tenant, KindUsername, string(id)); err == nil {
		w.username.Store(id, u)
		return u, nil
	}
	if want != "" && len(want) <= 64 && !strings.HasPrefix(want, "guest-") {
		err := st.Commit(context.WithoutCancel(ctx), &store.Batch{Maps: []store.Mapping{{
			MapKey: store.MapKey{System: System, Tenant: s.cfg.Tenant, Kind: KindUsername, Foreign: want},
			Core:   string(id)}}})
		if err == nil {
			w.username.Store(id, want)
			return want, nil
		}
		if !errors.Is(err, store.ErrConflict) {
			return "", err
		}
	}
	var n uint64
	if b, err := st.Meta(ctx, s.guestCountKey()); err == nil && len(b) == 8 {
		n = binary.BigEndian.Uint64(b)
	} else if err != nil && !errors.Is(err, store.ErrNotFound) {
		return "", err
	}
	for attempt := 0; attempt < 100; attempt++ {
		n++
		name := "guest-" + strconv.FormatUint(n, 10)
		b := make([]byte, 8)
		binary.BigEndian.PutUint64(b, n)
		err := st.Commit(context.WithoutCancel(ctx), &store.Batch{
			Maps: []store.Mapping{{MapKey: store.MapKey{System: System, Tenant: s.cfg.Tenant, Kind: KindUsername, Foreign: name},
				Core: string(id)}},
			Meta: map[string][]byte{s.guestCountKey(): b},
		})
		if err == nil {
			w.username.Store(id, name)
			return name, nil
		}
		if !errors.Is(err, store.ErrConflict) {
			return "", err
		}
		// The name was taken (a client-chosen "guest-N"? no: those are
		// refused; a lost counter): try the next one.
	}
	return "", fmt.Errorf("no free guest username: %w", store.ErrConflict)
}

// visitorToken returns the visitor's Rocket.Chat token ("" if it has none).
func (s *Surface) visitorToken(ctx context.Context, id model.VisitorID) string {
	if t, ok := s.rest.wire.token.Load(id); ok {
		return t.(string)
	}
	st := s.d.Store()
	for range maxTokenChain {
		t, err := st.Reverse(ctx, System, s.cfg.Tenant, KindToken, string(id))
		if err == nil {
			s.rest.wire.token.Store(id, t)
			return t
		}
		// A visitor registered after an erasure: the token is its
		// predecessor's.
		prev, err := st.Reverse(ctx, System, s.cfg.Tenant, kindTokenNext, string(id))
		if err != nil {
			return ""
		}
		id = model.VisitorID(prev)
	}
	return ""
}

// username renders a visitor's username, falling back to a name derived
// from its id when the store cannot assign one.
func (s *Surface) username(ctx context.Context, id model.VisitorID) string {
	u, err := s.visitorUsername(ctx, id, "")
	if err != nil {
		s.log.Warn().Err(err).Str("visitor", string(id)).Msg("visitor username")
		return "guest-" + strings.ToLower(string(id))
	}
	return u
}

// visitorStatus is the visitor's presence (visitor.status), "online" by
// default.
func (s *Surface) visitorStatus(id model.VisitorID) string {
	if st, ok := s.rest.presence.Load(id); ok {
		return st.(string)
	}
	return "online"
}

// reservedField reports custom-field keys chatgate keeps for itself.
func reservedField(k string) bool { return strings.HasPrefix(k, "_rc.") }

// renderVisitor is the visitor of spec §4.1.
func (s *Surface) renderVisitor(v *model.Visitor, token string) map[string]any {
	ctx := context.Background()
	if token == "" {
		token = s.visitorToken(ctx, v.ID)
	}
	m := map[string]any{
		"_id": string(v.ID), "username": s.username(ctx, v.ID), "status": s.visitorStatus(v.ID),
		"ts": v.CreatedAt, "_updatedAt": updatedAt(v.CreatedAt, v.UpdatedAt), "token": token,
	}
	if v.Name != "" {
		m["name"] = v.Name
	}
	if v.Email != "" {
		m["visitorEmails"] = []any{map[string]any{"address": v.Email}}
	}
	if v.Phone != "" {
		m["phone"] = []any{map[string]any{"phoneNumber": v.Phone}}
	}
	if v.Department != "" {
		m["department"] = string(v.Department)
	}
	data := map[string]any{}
	for k, val := range v.Fields {
		if !reservedField(k) {
			data[k] = val
		}
	}
	if len(data) > 0 {
		m["livechatData"] = data
	}
	if cm := v.Fields["_rc.contactManager"]; cm != "" {
		m["contactManager"] = map[string]any{"username": cm}
	}
	return m
}

// renderGuest is the "guest" projection of livechat/config (§4.1).
func (s *Surface) renderGuest(v *model.Visitor, token string) map[string]any {
	full := s.renderVisitor(v, token)
	m := map[string]any{}
	for _, k := range []string{"_id", "name", "username", "token", "visitorEmails", "department"} {
		if x, ok := full[k]; ok {
			m[k] = x
		}
	}
	return m
}

func updatedAt(ts ...time.Time) time.Time {
	var out time.Time
	for _, t := range ts {
		if t.After(out) {
			out = t
		}
	}
	return out
}

// --- agents ----------------------------------------------------------------------

// agentUsername is the agent's handle (its id when none is configured).
func agentUsername(a model.Agent) string {
	if a.Username != "" {
		return a.Username
	}
	return string(a.ID)
}

// agentStatus maps routing status to Rocket.Chat presence.
func (s *Surface) agentStatus(id model.AgentID) string {
	switch s.d.Router().Status(id) {
	case routing.Accepting:
		return "online"
	case routing.NotAccepting:
		return "away"
	}
	return "offline"
}

// renderAgent is the agent of spec §4.4 (normalizeAgent). chatgate agents
// have no e-mail or phone, so those keys are absent.
func (s *Surface) renderAgent(a model.Agent) map[string]any {
	m := map[string]any{
		"_id": string(a.ID), "name": a.Name, "username": agentUsername(a), "status": s.agentStatus(a.ID),
		"livechat": map[string]any{"maxNumberSimultaneousChat": a.MaxChats},
	}
	if a.JobTitle != "" {
		m["customFields"] = map[string]any{"jobTitle": a.JobTitle}
	}
	return m
}

// agentUser is an agent as a message author {_id, username, name}.
func (s *Surface) agentUser(id model.AgentID, fallbackName string) map[string]any {
	return s.agentRef(id, fallbackName).asMap()
}

// authorUser renders who did something, from an author kind and id.
func (s *Surface) authorUser(ctx context.Context, kind, id, name string) map[string]any {
	return s.authorRef(ctx, kind, id, name).asMap()
}

func copyMap(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// --- rooms -------------------------------------------------------------------------

// renderRoom is the room of spec §4.2. v is the room's visitor (its ID at
// least; a zero v is read from the store), token its Rocket.Chat token ("" =
// looked up).
func (s *Surface) renderRoom(c *model.Conversation, v *model.Visitor, token string) map[string]any {
	ctx := context.Background()
	var vis model.Visitor
	if v != nil {
		vis = *v
	}
	if vis.ID == "" || vis.ID != c.Visitor {
		if got, err := s.d.Store().Visitor(ctx, c.Visitor); err == nil {
			vis = got
		} else {
			vis = model.Visitor{ID: c.Visitor}
		}
	}
	if token == "" {
		token = s.visitorToken(ctx, vis.ID)
	}
	username := s.username(ctx, vis.ID)
	fname := vis.Name
	if fname == "" {
		fname = username
	}
	status := s.visitorStatus(vis.ID)
	if !c.Active() {
		status = "offline"
	}
	last := updatedAt(c.CreatedAt, c.AssignedAt, c.ClosedAt)
	m := map[string]any{
		"_id": s.roomID(ctx, c.ID), "t": "l", "fname": fname, "ts": c.CreatedAt, "lm": last, "_updatedAt": last,
		"msgs": c.LastSeq, "cl": false,
		"v":      map[string]any{"_id": string(vis.ID), "username": username, "token": token, "status": status},
		"source": s.roomSource(ctx, c),
	}
	usersCount := 1
	if c.Active() {
		m["open"] = true
		if c.State == model.StateQueued {
			m["waitingResponse"] = true
			m["queuedAt"] = c.CreatedAt
		}
	}
	if c.Department != "" {
		m["departmentId"] = string(c.Department)
	}
	if c.Agent != "" {
		a, _ := s.d.Router().Agent(c.Agent)
		if a.ID == "" {
			a.ID = c.Agent
		}
		m["servedBy"] = map[string]any{"_id": string(a.ID), "username": agentUsername(a), "ts": c.AssignedAt}
		usersCount++
	}
	m["usersCount"] = usersCount
	if data := s.roomFields(c); len(data) > 0 {
		m["livechatData"] = data
	}
	if !c.Active() {
		m["closedAt"] = c.ClosedAt
		if c.ClosedBy != nil {
			if c.ClosedBy.Kind == model.AuthorVisitor {
				m["closer"] = "visitor"
			} else {
				m["closer"] = "user"
			}
			u := s.authorUser(ctx, string(c.ClosedBy.Kind), c.ClosedBy.ID, c.ClosedBy.Name)
			m["closedBy"] = map[string]any{"_id": u["_id"], "username": u["username"]}
		}
		if !c.ClosedAt.IsZero() {
			m["metrics"] = map[string]any{"chatDuration": c.ClosedAt.Sub(c.CreatedAt).Seconds()}
		}
	}
	return m
}

// roomSource is the room's source, as Rocket.Chat's livechat/room sets
// it (room.js, checked: this.isWidget() ? WIDGET : API): {type:"widget"}
// for rooms started here by a client that sent the widget's rc_is_widget=t
// cookie, {type:"api"} for other rooms started here, {type:"other",
// alias} for rooms of other surfaces.
func (s *Surface) roomSource(ctx context.Context, c *model.Conversation) map[string]any {
	if c.Origin != "" && c.Origin != System {
		return map[string]any{"type": "other", "alias": c.Origin}
	}
	if s.widgetRoom(ctx, c.ID) {
		return map[string]any{"type": "widget"}
	}
	return map[string]any{"type": "api"}
}

// --- messages ---------------------------------------------------------------------

// messageID is an event's Rocket.Chat _id: the client's own id when it
// chose one.
func messageID(e *model.Event) string {
	if e.ClientKey != "" {
		return e.ClientKey
	}
	return e.ID
}

// parseUploadURL splits a file URL served by this surface into its id and
// path ("/file-upload/<id>/<name>"); ok is false for other URLs.
func parseUploadURL(raw string) (id, path string, ok bool) {
	u, err := url.Parse(raw)
	if err != nil || !strings.HasPrefix(u.Path, fileURLPrefix) {
		return "", "", false
	}
	rest := strings.TrimPrefix(u.EscapedPath(), fileURLPrefix)
	id, _, found := strings.Cut(rest, "/")
	if !found || id == "" {
		return "", "", false
	}
	return id, fileURLPrefix + rest, true
}

// uploadURLPath is the URL path of an uploaded file.
func uploadURLPath(id, name string) string {
	return fileURLPrefix + id + "/" + url.PathEscape(name)
}

// transferData is §4.7 for a transfer event.
func (s *Surface) transferData(ctx context.Context, e *model.Event) map[string]any {
	by := s.authorUser(ctx, e.Vars["by_kind"], e.Vars["by_id"], "")
	typ := "user"
	switch model.AuthorKind(e.Vars["by_kind"]) {
	case model.AuthorVisitor:
		typ = "visitor"
	case model.AuthorAgent:
		typ = "agent"
	}
	by["type"] = typ
	td := map[string]any{"transferredBy": by, "ts": e.At, "comment": e.Vars["comment"]}
	if to, ok := e.Vars["to_department"]; ok {
		td["scope"] = "department"
		td["previousDepartment"] = e.Vars["from_department"]
		next := map[string]any{"_id": to}
		if dp, ok := s.d.Department(model.DeptID(to)); ok {
			next["name"] = dp.Name
		}
		td["nextDepartment"] = next
	} else {
		td["scope"] = "agent"
	}
	if to := e.Vars["to_agent"]; to != "" {
		td["transferredTo"] = s.agentUser(model.AgentID(to), "")
	}
	return td
}
