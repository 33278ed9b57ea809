package rocketchat

// auth.go: who is asking. Visitors are identified by their token (mapping
// System/Tenant/KindToken -> visitor id); agents by X-User-Id and
// X-Auth-Token, tokens issued by POST /api/v1/login and kept as mappings
// KindAuth hex(sha256(token)) -> agent id, so that sessions survive
// restarts. Logout binds the same hash under KindAuthRevoked (the store
// cannot unbind a mapping).

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"chatgate/core/model"
	"chatgate/store"
)

// tokenKey is the mapping key of a visitor token.
func (s *Surface) tokenKey(token string) store.MapKey {
	return store.MapKey{System: System, Tenant: s.cfg.Tenant, Kind: KindToken, Foreign: token}
}

// maxTokenLen bounds visitor tokens (the widget's are 64 hex characters).
const maxTokenLen = 256

// visitorByToken returns the visitor a token names, or errInvalidToken.
func (s *Surface) visitorByToken(ctx context.Context, token string) (model.Visitor, error) {
	v, err := s.tokenVisitor(ctx, token)
	if err != nil {
		return model.Visitor{}, err
	}
	if erased(v) {
		return model.Visitor{}, errInvalidToken
	}
	// Known already on every send after the first: a Load boxes nothing.
	if t, ok := s.rest.wire.token.Load(v.ID); !ok || t.(string) != token {
		s.rest.wire.token.LoadOrStore(v.ID, token)
	}
	return v, nil
}

// Visitor erasure (DELETE livechat/visitor/:token). Rocket.Chat removes the
// visitor document: its token stops working and its messages stay, linked
// to no usable token; the same token registered again is a new visitor.
// The store deletes nothing, so chatgate marks the erased visitor (its
// profile emptied, fieldErased set) and binds the token's next visitor,
// when it registers again, to the erased one (kindTokenNext: erased
// visitor id → the new visitor), so that the token names the newest link
// of its chain and the old conversations stay with the erased visitor.
const (
	fieldErased   = "_rc.erased"
	kindTokenNext = "token_next"
	// maxTokenChain bounds the links followed (erasures of one token).
	maxTokenChain = 64
)

func erased(v model.Visitor) bool { return v.Fields[fieldErased] != "" }

func (s *Surface) nextKey(erased model.VisitorID) store.MapKey {
	return store.MapKey{System: System, Tenant: s.cfg.Tenant, Kind: kindTokenNext, Foreign: string(erased)}
}

// tokenVisitor returns the newest visitor of a token's chain (erased or
// not), or errInvalidToken when the token was never registered.
func (s *Surface) tokenVisitor(ctx context.Context, token string) (model.Visitor, error) {
	if token == "" || len(token) > maxTokenLen {
		return model.Visitor{}, errInvalidToken
	}
	st := s.d.Store()
	id, err := st.Resolve(ctx, s.tokenKey(token))
	for i := 0; ; i++ {
		if errors.Is(err, store.ErrNotFound) {
			return model.Visitor{}, errInvalidToken
		}
		if err != nil {
			return model.Visitor{}, err
		}
		v, err := st.Visitor(ctx, model.VisitorID(id))
		if errors.Is(err, store.ErrNotFound) {
			return model.Visitor{}, errInvalidToken
		}
		if err != nil {
			return model.Visitor{}, err
		}
		if !erased(v) || i == maxTokenChain {
			return v, nil
		}
		next, err2 := st.Resolve(ctx, s.nextKey(v.ID))
		if errors.Is(err2, store.ErrNotFound) {
			return v, nil
		}
		id, err = next, err2
	}
}

// registrationKey is the mapping key under which a token's visitor is
// found or created: the token itself, or the successor link of the
// token's erased visitor.
func (s *Surface) registrationKey(ctx context.Context, token string) (store.MapKey, error) {
	v, err := s.tokenVisitor(ctx, token)
	switch {
	case errors.Is(err, errInvalidToken):
		return s.tokenKey(token), nil
	case err != nil:
		return store.MapKey{}, err
	case erased(v):
		return s.nextKey(v.ID), nil
	}
	return s.tokenKey(token), nil
}

// visitorRoom returns the token's visitor and its room rid (open or
// closed). A room of another visitor is errInvalidRoom, exactly like a room
// that does not exist: nothing reveals that it exists.
func (s *Surface) visitorRoom(ctx context.Context, token, rid string) (model.Visitor, model.Conversation, error) {
	v, err := s.visitorByToken(ctx, token)
	if err != nil {
		return model.Visitor{}, model.Conversation{}, err
	}
	if rid == "" || len(rid) > maxTokenLen {
		return v, model.Conversation{}, errInvalidRoom
	}
	convID, _ := s.resolveRoom(ctx, rid)
	c, err := s.d.Store().Conversation(ctx, convID)
	if errors.Is(err, store.ErrNotFound) {
		return v, model.Conversation{}, errInvalidRoom
	}
	if err != nil {
		return v, model.Conversation{}, err
	}
	if c.Visitor != v.ID {
		return v, model.Conversation{}, errInvalidRoom
	}
	return v, c, nil
}

// authHash is the stored form of an agent auth token.
func authHash(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:])
}

func (s *Surface) authKey(kind, token string) store.MapKey {
	return store.MapKey{System: System, Tenant: s.cfg.Tenant, Kind: kind, Foreign: authHash(token)}
}

// agentFromRequest authenticates X-User-Id + X-Auth-Token. X-User-Id must be
// the agent the token was issued to, the token must not be logged out, and
// the agent must still be configured.
func (s *Surface) agentFromRequest(c *gin.Context) (model.Agent, bool) {
	uid, tok := c.GetHeader("X-User-Id"), c.GetHeader("X-Auth-Token")
	if uid == "" || tok == "" || len(tok) > maxTokenLen || len(uid) > maxTokenLen {
		return model.Agent{}, false
	}
	ctx := c.Request.Context()
	st := s.d.Store()
	id, err := st.Resolve(ctx, s.authKey(KindAuth, tok))
	if err != nil {
		return model.Agent{}, false
	}
	if subtle.ConstantTimeCompare([]byte(id), []byte(uid)) != 1 {
		return model.Agent{}, false
	}
	if _, err := st.Resolve(ctx, s.authKey(KindAuthRevoked, tok)); !errors.Is(err, store.ErrNotFound) {
		return model.Agent{}, false
	}
	a, ok := s.d.Router().Agent(model.AgentID(id))
	return a, ok
}

// requireAgent answers 401 unless the request carries valid agent
// credentials. The body is the one Rocket.Chat's API wrapper returns
// (checked in apps/meteor/app/api/server/api.js: statusCode 401,
// {status:'error', message:'You must be logged in to do this.'}; spec §3.3
// marked the RC fork [U]).
func (s *Surface) requireAgent(c *gin.Context) (model.Agent, bool) {
	a, ok := s.agentFromRequest(c)
	if !ok {
		restJSON(c, http.StatusUnauthorized, map[string]any{"status": "error", "message": "You must be logged in to do this."})
		return model.Agent{}, false
	}
	return a, true
}

// agentMayRead reports whether an agent may see a room through the agent
// routes: chatgate has no Rocket.Chat roles, so an agent sees the rooms it
// serves and the rooms of departments it serves (an agent without
// departments serves all, like a livechat manager).
func agentMayRead(a model.Agent, c model.Conversation) bool {
	return c.Agent == a.ID || a.Serves(c.Department)
}

// --- login / logout ------------------------------------------------------------

// loginWith is POST /api/v1/login: {"user"|"username"|"email", "password"}
// (JSON or form-encoded). Checked against Rocket.Chat's source
// (apps/meteor/app/api/server/api.js, _initAuth): success is
// {"status":"success","data":{"userId","authToken","me"}}, an unknown user
// 401 {"status":"error","error":"Unauthorized","message":"Unauthorized"}.
// chatgate answers every failed login with that body, so that it does not
// tell a wrong password from an unknown user.
func (s *Surface) loginWith(c *gin.Context, body map[string]any) {
	user := firstString(body, "user", "username", "email")
	if u, isMap := body["user"].(map[string]any); isMap {
		user = firstString(u, "username", "email")
	}
	pass, _ := body["password"].(string)
	// A {"digest", "algorithm": "sha-256"} password is not supported: the
	// configured passwords are checked in clear, so pass stays "" then.
	fail := func() {
		restJSON(c, http.StatusUnauthorized, map[string]any{"status": "error", "error": "Unauthorized", "message": "Unauthorized"})
	}
	if s.cfg.Login == nil || user == "" || pass == "" || len(user) > 256 || len(pass) > 1024 {
		fail()
		return
	}
	id, ok := s.cfg.Login(strings.TrimSpace(user), pass)
	if !ok {
		fail()
		return
	}
	a, ok := s.d.Router().Agent(id)
	if !ok {
		fail()
		return
	}
	tok, err := model.Secret(32)
	if err != nil {
		s.internal(c, err)
		return
	}
	err = s.d.Store().Commit(context.WithoutCancel(c.Request.Context()), &store.Batch{Maps: []store.Mapping{{
		MapKey: s.authKey(KindAuth, tok), Core: string(a.ID)}}})
	if err != nil {
		s.internal(c, err)
		return
	}
	me := s.renderAgent(a)
	me["active"] = true
	me["roles"] = []any{"user", "livechat-agent"}
	me["statusLivechat"] = "available"
	if s.agentStatus(a.ID) == "offline" || s.agentStatus(a.ID) == "away" {
		me["statusLivechat"] = "not-available"
	}
	restJSON(c, http.StatusOK, map[string]any{"status": "success", "data": map[string]any{
		"authToken": tok, "userId": string(a.ID), "me": me}})
}

// logoutAgent is POST /api/v1/logout for an authenticated agent.
func (s *Surface) logoutAgent(c *gin.Context, a model.Agent) {
	tok := c.GetHeader("X-Auth-Token")
	err := s.d.Store().Commit(context.WithoutCancel(c.Request.Context()), &store.Batch{Maps: []store.Mapping{{
		MapKey: s.authKey(KindAuthRevoked, tok), Core: string(a.ID)}}})
	if err != nil && !errors.Is(err, store.ErrConflict) {
		s.internal(c, err)
		return
	}
	restJSON(c, http.StatusOK, map[string]any{"status": "success", "data": map[string]any{"message": "You've been logged out!"}})
}

func firstString(m map[string]any, keys ...string) string {
	for _, k := range keys {
		if v, ok := m[k].(string); ok && v != "" {
			return v
		}
	}
	return ""
}
