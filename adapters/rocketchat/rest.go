package rocketchat

// rest.go: the /api/v1 router, envelopes (spec §3.2/§3.3), CORS (§3.6) and
// request bodies. One gin catch-all (/api/v1/*path, every method) hands
// the request to a small table router, so that unknown routes (404) and
// wrong methods (405, with Allow) under /api/v1 answer Rocket.Chat's JSON
// rather than the gateway's generic bodies.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"

	"github.com/gin-gonic/gin"
	lru "github.com/hashicorp/golang-lru/v2"

	"chatgate/core/desk"
	"chatgate/core/model"
)

// restState is the REST side's state.
type restState struct {
	wire     wireState
	presence sync.Map // model.VisitorID -> visitor.status ("online", "away" ...)
	// roomIDs: model.ConvID -> the room _id clients see; widgetRooms:
	// model.ConvID -> whether the widget started it (room_ids.go). Both
	// bounded LRUs: entries of conversations nobody reads any more fall
	// out, and are read back from the store if asked again.
	roomIDs     *lru.Cache[model.ConvID, string]
	widgetRooms *lru.Cache[model.ConvID, bool]
	// plainRooms: room ids that are a conversation's own id and no
	// client's alias (room_ids.go, resolveRoom); bounded as well.
	plainRooms *lru.Cache[string, struct{}]
	routes     []*restRoute
}

// Error shapes of spec §3.3.
type shape int

const (
	shapeA shape = iota // thrown: {"success":false,"error":"<message>","errorType":"<code>"}
	shapeB              // caught: the serialised Meteor.Error + success:false
)

// restHandler answers a request: a body to send with success:true, or an
// error to send in the route's shape. A handler that wrote the response
// itself returns (nil, nil).
type restHandler func(c *gin.Context, r *restReq) (map[string]any, error)

type restRoute struct {
	method string
	segs   []string // ":name" segments are parameters
	agent  bool     // needs X-User-Id/X-Auth-Token
	shape  shape
	h      restHandler
}

// restReq is a parsed request.
type restReq struct {
	body  map[string]any
	agent model.Agent
}

func (s *Surface) initREST() {
	s.rest.roomIDs, s.rest.widgetRooms = newRoomCaches(roomCacheSize)
	s.rest.plainRooms, _ = lru.New[string, struct{}](roomCacheSize) // size > 0: no error
	A, B := shapeA, shapeB
	add := func(method, path string, agent bool, sh shape, h restHandler) {
		s.rest.routes = append(s.rest.routes, &restRoute{method: method, segs: strings.Split(path, "/"), agent: agent, shape: sh, h: h})
	}
	// Authentication.
	add("POST", "login", false, A, s.restLogin)
	add("POST", "logout", true, A, s.restLogout)
	// Visitor routes.
	add("GET", "livechat/config", false, B, s.restConfig)
	add("POST", "livechat/visitor", false, A, s.restVisitorRegister)
	add("GET", "livechat/visitor/:token", false, A, s.restVisitorGet)
	add("DELETE", "livechat/visitor/:token", false, A, s.restVisitorDelete)
	add("POST", "livechat/visitor.status", false, A, s.restVisitorStatus)
	add("POST", "livechat/visitor.callStatus", false, A, s.restVisitorCallStatus)
	add("GET", "livechat/room", false, A, s.restRoom)
	add("POST", "livechat/room.close", false, B, s.restRoomClose)
	add("POST", "livechat/room.transfer", false, B, s.restRoomTransfer)
	add("POST", "livechat/visitor/department.transfer", false, A, s.restDepartmentTransfer)
	add("POST", "livechat/room.survey", false, B, s.restRoomSurvey)
	add("POST", "livechat/message", false, B, s.restMessageSend)
	add("GET", "livechat/message/:_id", false, B, s.restMessageGet)
	add("PUT", "livechat/message/:_id", false, B, s.restMessageEdit)
	add("DELETE", "livechat/message/:_id", false, B, s.restMessageDelete)
	add("GET", "livechat/messages.history/:rid", false, B, s.restHistory)
	add("GET", "livechat/agent.info/:rid/:token", false, B, s.restAgentInfo)
	add("GET", "livechat/agent.next/:token", false, B, s.restAgentNext)
	add("POST", "livechat/custom.field", false, B, s.restCustomField)
	add("POST", "livechat/custom.fields", false, A, s.restCustomFields)
	add("POST", "livechat/offline.message", false, B, s.restOfflineMessage)
	add("POST", "livechat/page.visited", false, B, s.restPageVisited)
	add("POST", "livechat/transcript", false, B, s.restTranscript)
	add("POST", "livechat/upload/:rid", false, A, s.restUpload)
	// Agent routes.
	add("GET", "livechat/custom-fields", true, A, s.restCustomFieldList)
	add("GET", "livechat/custom-fields/:_id", true, A, s.restCustomFieldGet)
	add("POST", "livechat/messages", true, A, s.restAgentMessages)
	add("POST", "livechat/room.forward", true, A, s.restRoomForward)
	add("PUT", "livechat/room.visitor", true, B, s.restRoomVisitor)
	add("GET", "livechat/transfer.history/:rid", true, A, s.restTransferHistory)
	add("GET", "livechat/visitor/:token/room", true, A, s.restVisitorRooms)
	add("GET", "livechat/rooms", true, A, s.restRooms)
	add("GET", "chat.syncMessages", true, A, s.restSyncMessages)
	add("POST", "omnichannel/contact", true, B, s.restContactSave)
	add("GET", "omnichannel/contact", true, B, s.restContactGet)
	add("GET", "omnichannel/contact.search", true, B, s.restContactSearch)
}

func (s *Surface) mountREST(r gin.IRouter) {
	r.Any("/api/v1/*path", s.restDispatch)
	r.Any("/api/apps/*path", s.restApps)
}

// restApps answers /api/apps/… (the Apps-Engine: UiKit interactions that
// @rocket.chat/ddp-client's sendUiInteraction posts, app assets). chatgate
// runs no apps, so every such route is an unknown resource, answered as
// Rocket.Chat answers one: 404 {"success":false,"error":"Resource not
// found"} with the API's CORS headers (preflights get 200).
func (s *Surface) restApps(c *gin.Context) {
	c.Header("Access-Control-Allow-Origin", "*")
	if c.Request.Method == http.MethodOptions {
		c.Header("Access-Control-Allow-Methods", corsMethods)
		c.Header("Access-Control-Allow-Headers", corsHeaders)
		restJSON(c, http.StatusOK, map[string]any{})
		return
	}
	restJSON(c, http.StatusNotFound, map[string]any{"success": false, "error": "Resource not found"})
}

// CORS headers (§3.6).
const (
	corsMethods = "GET, POST, PUT, DELETE, HEAD, PATCH"
	corsHeaders = "Origin, X-Requested-With, Content-Type, Accept, X-User-Id, X-Auth-Token, x-visitor-token, Authorization"
)

// match returns the parameters when path segments fit the route.
func (rt *restRoute) match(segs []string) (gin.Params, bool) {
	if len(segs) != len(rt.segs) {
		return nil, false
	}
	var ps gin.Params
	for i, p := range rt.segs {
		if strings.HasPrefix(p, ":") {
			if segs[i] == "" {
				return nil, false
			}
			ps = append(ps, gin.Param{Key: p[1:], Value: segs[i]})
		} else if p != segs[i] {
			return nil, false
		}
	}
	return ps, true
}

func (s *Surface) restDispatch(c *gin.Context) {
	c.Header("Access-Control-Allow-Origin", "*")
	if c.Request.Method == http.MethodOptions {
		// Preflight: Rocket.Chat's defaultOptionsEndpoint (api.js, checked)
		// answers 200 with these headers and no body; chatgate adds an
		// empty JSON object so that every /api/v1 answer is JSON.
		c.Header("Access-Control-Allow-Methods", corsMethods)
		c.Header("Access-Control-Allow-Headers", corsHeaders)
		restJSON(c, http.StatusOK, map[string]any{})
		return
	}
	path := strings.TrimPrefix(c.Param("path"), "/")
	path = strings.TrimSuffix(path, "/")
	segs := strings.Split(path, "/")
	var allowed []string
	for _, rt := range s.rest.routes {
		ps, ok := rt.match(segs)
		if !ok {
			continue
		}
		if rt.method != c.Request.Method {
			allowed = append(allowed, rt.method)
			continue
		}
		c.Params = append(c.Params, ps...)
		s.restServe(c, rt)
		return
	}
	if len(allowed) > 0 {
		sort.Strings(allowed)
		allowed = append(allowed, "OPTIONS")
		c.Header("Allow", strings.Join(allowed, ", "))
		restJSON(c, http.StatusMethodNotAllowed, map[string]any{"status": "error", "message": "API endpoint does not exist"})
		return
	}
	restJSON(c, http.StatusNotFound, map[string]any{"success": false, "error": "Resource not found"})
}

func (s *Surface) restServe(c *gin.Context, rt *restRoute) {
	r := &restReq{}
	if rt.agent {
		a, ok := s.requireAgent(c)
		if !ok {
			return
		}
		r.agent = a
	}
	if c.Request.Method != http.MethodGet && !strings.HasPrefix(c.ContentType(), "multipart/") {
		body, ok := s.bindBody(c)
		if !ok {
			return
		}
		r.body = body
	}
	if r.body == nil {
		r.body = map[string]any{}
	}
	out, err := rt.h(c, r)
	if c.Writer.Written() {
		return
	}
	if err != nil {
		s.restFail(c, rt.shape, err)
		return
	}
	if out == nil {
		out = map[string]any{}
	}
	out["success"] = true
	restJSON(c, http.StatusOK, out)
}

// bindBody reads a JSON (or form-encoded) object body of at most
// cfg.MaxBody bytes. An empty body is an empty object. On failure it has
// answered.
func (s *Surface) bindBody(c *gin.Context) (map[string]any, bool) {
	if c.Request.Body == nil {
		return map[string]any{}, true
	}
	b, err := readLimited(c.Request.Body, c.Request.ContentLength, s.cfg.MaxBody)
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) || int64(len(b)) > s.cfg.MaxBody {
		restJSON(c, http.StatusRequestEntityTooLarge, map[string]any{"success": false,
			"error": fmt.Sprintf("Request body is over %d bytes", s.cfg.MaxBody)})
		return nil, false
	}
	if err != nil {
		restJSON(c, http.StatusBadRequest, map[string]any{"success": false, "error": "Could not read the request body"})
		return nil, false
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return map[string]any{}, true
	}
	if c.ContentType() == "application/x-www-form-urlencoded" {
		vals, err := url.ParseQuery(string(b))
		if err != nil {
			restJSON(c, http.StatusBadRequest, map[string]any{"success": false, "error": "Invalid form body"})
			return nil, false
		}
		m := make(map[string]any, len(vals))
		for k, v := range vals {
			m[k] = v[0]
		}
		return m, true
	}
	// encoding/json, not internal/jsondec (tried in round 6b, docs/performance.md):
	// goccy's strings alias its copy of the whole body, and a body's
	// strings are kept (a visitor's token in wire.token, message text in
	// events), so one kept string would hold up to MaxBody; copying them
	// out costs more than encoding/json. goccy also trips -race's checkptr
	// on a lone high surrogate escape (\ud800) at the end of a string.
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil || m == nil {
		restJSON(c, http.StatusBadRequest, map[string]any{"success": false, "error": "Invalid JSON body: expected an object"})
		return nil, false
	}
	return m, true
}

// readLimited is io.ReadAll(io.LimitReader(r, max+1)) (one byte more
// than allowed, so that an oversized body is seen), with the same result
// and errors. A declared length (a request's Content-Length, -1 when
// unknown) within max is read into a buffer of that size: ReadAll starts
// at 512 bytes and the LimitReader is one more allocation, on every
// message a visitor sends. A body longer than it declared is read on.
func readLimited(r io.Reader, declared, max int64) ([]byte, error) {
	if declared < 0 || declared > max {
		return io.ReadAll(io.LimitReader(r, max+1))
	}
	b := make([]byte, declared)
	for n := 0; n < len(b); {
		m, err := r.Read(b[n:])
		n += m
		if err == io.EOF {
			return b[:n], nil
		}
		if err != nil {
			return b[:n], err
		}
	}
	var one [1]byte
	for {
		m, err := r.Read(one[:])
		if m > 0 {
			rest, err := io.ReadAll(io.LimitReader(r, max-declared))
			return append(append(b, one[0]), rest...), err
		}
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
	}
}

// --- errors ------------------------------------------------------------------------

// matchError is a failed Meteor check(): shape A shows its message, shape B
// the serialised Match.Error.
type matchError struct {
	msg  string
	path string
}

func (e *matchError) Error() string { return "Match error: " + e.msg }

func missingKey(k string) *matchError {
	return &matchError{msg: "Missing key '" + k + "'", path: k}
}

// failC is an explicit API.v1.failure(...) body; status 400.
type failC struct{ body map[string]any }

func (e *failC) Error() string { return fmt.Sprint(e.body) }

// failStatus answers a fixed status and body (403 unauthorized ...).
type failStatus struct {
	status int
	body   map[string]any
}

func (e *failStatus) Error() string { return fmt.Sprint(e.body) }

var errUnauthorized = &failStatus{status: http.StatusForbidden, body: map[string]any{"success": false, "error": "unauthorized"}}

// restFail writes err in the route's error shape.
func (s *Surface) restFail(c *gin.Context, sh shape, err error) {
	var (
		rc *rcError
		me *matchError
		fc *failC
		fs *failStatus
	)
	switch {
	case errors.As(err, &fs):
		restJSON(c, fs.status, copyMap(fs.body))
	case errors.As(err, &fc):
		body := copyMap(fc.body)
		body["success"] = false
		restJSON(c, http.StatusBadRequest, body)
	case errors.As(err, &me):
		if sh == shapeA {
			restJSON(c, http.StatusBadRequest, map[string]any{"success": false, "error": me.Error()})
			return
		}
		restJSON(c, http.StatusBadRequest, map[string]any{"message": me.Error(), "path": me.path,
			"sanitizedError": map[string]any{"isClientSafe": true, "error": 400, "reason": "Match failed",
				"message": "Match failed [400]", "errorType": "Meteor.Error"},
			"errorType": "Match.Error", "success": false})
	case errors.As(err, &rc):
		status := http.StatusBadRequest
		if rc.Code == errTooManyRequests.Code {
			status = http.StatusTooManyRequests
		}
		if sh == shapeA {
			body := map[string]any{"success": false, "error": rc.Error(), "errorType": rc.Code}
			if rc.Details != nil {
				body["details"] = rc.Details
			}
			restJSON(c, status, body)
			return
		}
		body := rc.meteor()
		body["success"] = false
		restJSON(c, status, body)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		restJSON(c, http.StatusServiceUnavailable, map[string]any{"success": false, "error": "Request cancelled"})
	default:
		s.internal(c, err)
	}
}

// internal answers 500 and logs the cause.
func (s *Surface) internal(c *gin.Context, err error) {
	s.log.Error().Err(err).Str("path", c.Request.URL.Path).Msg("rocketchat request failed")
	restJSON(c, http.StatusInternalServerError, map[string]any{"success": false, "error": "Internal error occured"})
}

// errTooManyRequests is Rocket.Chat's rate limiter refusal (its DDP and
// REST rate limiters answer error-too-many-requests).
var errTooManyRequests = &rcError{Code: "error-too-many-requests", Reason: "Error, too many requests. Please slow down."}

// deskErr translates a desk error into the Rocket.Chat error a visitor
// route answers; other errors pass through (internal).
func deskErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, desk.ErrInactive):
		return errRoomClosed
	case errors.Is(err, desk.ErrTooLarge):
		return errTooLong
	case errors.Is(err, desk.ErrNotFound), errors.Is(err, desk.ErrForbidden):
		return errInvalidRoom
	case errors.Is(err, desk.ErrInvalid):
		return &rcError{Code: "error-invalid-params", Reason: strings.TrimPrefix(err.Error(), desk.ErrInvalid.Error()+": ")}
	case errors.Is(err, desk.ErrBanned):
		// Banned through the LiveChat agent API: refused like any action
		// Rocket.Chat does not allow the visitor.
		return &rcError{Code: "error-not-allowed", Reason: "Visitor is banned"}
	case errors.Is(err, desk.ErrRateLimited):
		return errTooManyRequests
	}
	return err
}

// --- parameters -----------------------------------------------------------------------

// str returns body[k] as a string: a missing key is a Match error when
// required, a non-string value always.
func str(m map[string]any, k string, required bool) (string, error) {
	v, ok := m[k]
	if !ok || v == nil {
		if required {
			return "", missingKey(k)
		}
		return "", nil
	}
	x, ok := v.(string)
	if !ok {
		return "", &matchError{msg: fmt.Sprintf("Expected string, got %s in field %s", jsType(v), k), path: k}
	}
	return x, nil
}

func jsType(v any) string {
	switch v.(type) {
	case float64:
		return "number"
	case bool:
		return "boolean"
	case map[string]any:
		return "object"
	case []any:
		return "array"
	case nil:
		return "null"
	}
	return "string"
}

// query returns a query parameter, "" when absent; required ones missing
// are Match errors.
func query(c *gin.Context, k string, required bool) (string, error) {
	v, ok := c.GetQuery(k)
	if !ok && required {
		return "", missingKey(k)
	}
	return v, nil
}

// restLogin and restLogout adapt auth.go's handlers to the table.
func (s *Surface) restLogin(c *gin.Context, r *restReq) (map[string]any, error) {
	s.loginWith(c, r.body)
	return nil, nil
}

func (s *Surface) restLogout(c *gin.Context, r *restReq) (map[string]any, error) {
	s.logoutAgent(c, r.agent)
	return nil, nil
}
