package customer

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"chatgate/core/desk"
	"chatgate/core/model"
	"chatgate/core/ratelimit"
	"chatgate/store"
)

// Token storage. A customer access token is "dal:" + 32 random bytes
// (base64url); only its SHA-256 (hex) is stored, as two store mappings
// committed in one batch (mappings never move, so a token's binding and
// expiry cannot be changed once issued):
//
//	(System "livechat.customer", Tenant <organization id>, Kind "token",        sha256 hex) → visitor id
//	(System "livechat.customer", Tenant <organization id>, Kind "token_expiry", sha256 hex) → expiry, Unix seconds (decimal)
//
// Both survive restarts; every use checks the expiry. Expired tokens stay
// in the store (no deletion API for mappings yet).
//
// The cookie grant binds a browser to a customer with two cookies: __lc_cid
// (a random public id) and __lc_cst (a random secret). The visitor is
// created with desk.EnsureVisitor under
//
//	(System "livechat.customer", Tenant <organization id>, Kind "cookie", sha256 hex of "<cid>.<cst>")
//
// so a forged or guessed __lc_cid without its secret only makes a new
// customer. Customers minted by the agent_token grant without entity_id are
// keyed by Kind "agent_issued" and a random id, and their minting agent is
// kept under Kind "agent_issuer", Foreign <visitor id> (see mayActFor).
const (
	mapSystem        = "livechat.customer"
	kindToken        = "token"
	kindTokenExpiry  = "token_expiry"
	kindCookie       = "cookie"
	kindAgentIssued  = "agent_issued"
	kindAgentIssuer  = "agent_issuer"
	cookieID         = "__lc_cid"
	cookieSecret     = "__lc_cst"
	cookieMaxAge     = 2 * 365 * 24 * 3600
	tokenPrefix      = "dal:"
	maxTokenBodySize = 16 << 10
)

func tokenHash(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:])
}

func (s *Surface) tokenKey(kind, foreign string) store.MapKey {
	return store.MapKey{System: mapSystem, Tenant: s.cfg.OrganizationID, Kind: kind, Foreign: foreign}
}

// IssueToken mints and stores an access token for customer v, valid for
// Config.TokenTTL. It returns the token and its expiry.
func (s *Surface) IssueToken(ctx context.Context, v model.VisitorID) (string, time.Time, error) {
	raw := make([]byte, 32)
	sec, err := model.Secret(32)
	if err != nil {
		return "", time.Time{}, err
	}
	if _, err := hex.Decode(raw, []byte(sec)); err != nil {
		return "", time.Time{}, err
	}
	token := tokenPrefix + base64.RawURLEncoding.EncodeToString(raw)
	exp := s.now().Add(s.cfg.TokenTTL).Truncate(time.Second)
	h := tokenHash(token)
	err = s.d.Store().Commit(ctx, &store.Batch{Maps: []store.Mapping{
		{MapKey: s.tokenKey(kindToken, h), Core: string(v)},
		{MapKey: s.tokenKey(kindTokenExpiry, h), Core: strconv.FormatInt(exp.Unix(), 10)},
	}})
	if err != nil {
		return "", time.Time{}, fmt.Errorf("store token: %w", err)
	}
	return token, exp, nil
}

// errBadToken: unknown, malformed or expired token.
var errBadToken = errors.New("invalid or expired access token")

// Authenticate maps an access token (without "Bearer ") to its customer
// and expiry; unknown and expired tokens fail with errBadToken.
func (s *Surface) Authenticate(ctx context.Context, token string) (model.VisitorID, time.Time, error) {
	if token == "" || len(token) > 512 {
		return "", time.Time{}, errBadToken
	}
	h := tokenHash(token)
	id, err := s.d.Store().Resolve(ctx, s.tokenKey(kindToken, h))
	if errors.Is(err, store.ErrNotFound) {
		return "", time.Time{}, errBadToken
	}
	if err != nil {
		return "", time.Time{}, err
	}
	expRaw, err := s.d.Store().Resolve(ctx, s.tokenKey(kindTokenExpiry, h))
	if errors.Is(err, store.ErrNotFound) {
		return "", time.Time{}, errBadToken
	}
	if err != nil {
		return "", time.Time{}, err
	}
	sec, err := strconv.ParseInt(expRaw, 10, 64)
	if err != nil {
		return "", time.Time{}, errBadToken
	}
	exp := time.Unix(sec, 0).UTC()
	if !s.now().Before(exp) {
		return "", time.Time{}, errBadToken
	}
	return model.VisitorID(id), exp, nil
}

// tokenRequest is POST /v2/customer/token's JSON body (§2.12).
type tokenRequest struct {
	ResponseType   string `json:"response_type"`
	GrantType      string `json:"grant_type"`
	ClientID       string `json:"client_id"`
	OrganizationID string `json:"organization_id"`
	LicenseID      any    `json:"license_id"`
	RedirectURI    string `json:"redirect_uri"`
	EntityID       string `json:"entity_id"`
}

// TokenResponse is the token endpoint's answer.
type TokenResponse struct {
	AccessToken    string `json:"access_token"`
	EntityID       string `json:"entity_id"`
	ExpiresIn      int64  `json:"expires_in"`
	TokenType      string `json:"token_type"`
	OrganizationID string `json:"organization_id"`
}

func tokenFail(g *gin.Context, status int, kind, msg string) {
	g.JSON(status, gin.H{kind: msg})
}

// serveToken is POST /v2/customer/token. Grants:
//
//   - cookie: the browser's __lc_cid/__lc_cst cookies name its customer;
//     without (valid) cookies a new customer and new cookies are made;
//   - agent_token: Authorization "Bearer <agent token>" (a configured
//     agent's token); entity_id re-issues for an existing customer, else a
//     new customer is made.
//
// Errors: {"oauth_exception": "..."} for malformed requests (400),
// unsupported grants (400) and server errors (500); {"identity_exception":
// "..."} for a refused identity (401: bad agent token, unknown entity_id).
func (s *Surface) serveToken(g *gin.Context) {
	originOK := s.cors(g)
	ctx := g.Request.Context()
	var p tokenRequest
	body, err := io.ReadAll(io.LimitReader(g.Request.Body, maxTokenBodySize+1))
	if err != nil || len(body) > maxTokenBodySize {
		tokenFail(g, http.StatusBadRequest, "oauth_exception", "invalid_request")
		return
	}
	if len(strings.TrimSpace(string(body))) > 0 {
		if err := json.Unmarshal(body, &p); err != nil {
			tokenFail(g, http.StatusBadRequest, "oauth_exception", "invalid_request")
			return
		}
	}
	if p.OrganizationID != "" && s.cfg.OrganizationID != "" && p.OrganizationID != s.cfg.OrganizationID {
		tokenFail(g, http.StatusBadRequest, "identity_exception", "invalid organization_id")
		return
	}
	if !s.clientAllowed(p.ClientID) {
		tokenFail(g, http.StatusBadRequest, "identity_exception", "invalid client_id")
		return
	}
	var v model.VisitorID
	switch p.GrantType {
	case "cookie":
		if !originOK {
			// A page on another site must not turn the visitor's
			// cookies into a token (docs/security.md, CORS).
			tokenFail(g, http.StatusForbidden, "identity_exception", "origin not allowed")
			return
		}
		v, err = s.cookieCustomer(g)
	case "agent_token":
		v, err = s.agentIssued(g, p.EntityID)
	case "":
		tokenFail(g, http.StatusBadRequest, "oauth_exception", "invalid_request")
		return
	default:
		tokenFail(g, http.StatusBadRequest, "oauth_exception", "unsupported_grant_type")
		return
	}
	if errors.Is(err, desk.ErrRateLimited) {
		tokenFail(g, http.StatusTooManyRequests, "oauth_exception", "too_many_requests")
		return
	}
	var ie identityError
	if errors.As(err, &ie) {
		tokenFail(g, http.StatusUnauthorized, "identity_exception", string(ie))
		return
	}
	if err != nil {
		s.log.Error().Err(err).Msg("customer token")
		tokenFail(g, http.StatusInternalServerError, "oauth_exception", "server_error")
		return
	}
	token, _, err := s.IssueToken(ctx, v)
	if err != nil {
		s.log.Error().Err(err).Msg("customer token")
		tokenFail(g, http.StatusInternalServerError, "oauth_exception", "server_error")
		return
	}
	g.JSON(http.StatusOK, TokenResponse{AccessToken: token, EntityID: string(v),
		ExpiresIn: int64(s.cfg.TokenTTL / time.Second), TokenType: "Bearer", OrganizationID: s.cfg.OrganizationID})
}

type identityError string

func (e identityError) Error() string { return string(e) }

func (s *Surface) cookieCustomer(g *gin.Context) (model.VisitorID, error) {
	cid, _ := g.Cookie(cookieID)
	cst, _ := g.Cookie(cookieSecret)
	if !validCookie(cid) || !validCookie(cst) {
		// A new customer: bounded per client address, since each one is
		// kept (issue 16, Low 8).
		if addr := ratelimit.AddrFrom(g.Request.Context()); addr != "" && !s.cfg.NewCustomers.Allow(addr) {
			return "", desk.ErrRateLimited
		}
		var err error
		if cid, err = model.Secret(16); err != nil {
			return "", err
		}
		if cst, err = model.Secret(16); err != nil {
			return "", err
		}
	}
	v, err := s.d.EnsureVisitor(g.Request.Context(), s.tokenKey(kindCookie, tokenHash(cid+"."+cst)), model.Visitor{})
	if err != nil {
		return "", err
	}
	secure := g.Request.TLS != nil
	same := http.SameSiteLaxMode
	if secure {
		same = http.SameSiteNoneMode // widgets are embedded on other sites
	}
	for _, c := range []*http.Cookie{{Name: cookieID, Value: cid}, {Name: cookieSecret, Value: cst}} {
		c.Path, c.MaxAge, c.HttpOnly, c.Secure, c.SameSite = "/", cookieMaxAge, true, secure, same
		http.SetCookie(g.Writer, c)
	}
	return v.ID, nil
}

func validCookie(s string) bool {
	if len(s) != 32 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

func (s *Surface) agentIssued(g *gin.Context, entity string) (model.VisitorID, error) {
	scheme, tok, ok := strings.Cut(g.GetHeader("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || s.cfg.AgentToken == nil {
		return "", identityError("invalid agent token")
	}
	agentID, ok := s.cfg.AgentToken(strings.TrimSpace(tok))
	if !ok {
		return "", identityError("invalid agent token")
	}
	ctx := g.Request.Context()
	if entity != "" {
		v, err := s.d.Store().Visitor(ctx, model.VisitorID(entity))
		if errors.Is(err, store.ErrNotFound) {
			return "", identityError("entity not found")
		}
		if err != nil {
			return "", err
		}
		may, err := s.mayActFor(ctx, agentID, v.ID)
		if err != nil {
			return "", err
		}
		if !may {
			// The same answer as for an unknown customer: which ids exist
			// is no business of an agent who may not act for them.
			return "", identityError("entity not found")
		}
		return v.ID, nil
	}
	key, err := model.Secret(16)
	if err != nil {
		return "", err
	}
	v, err := s.d.EnsureVisitor(ctx, s.tokenKey(kindAgentIssued, key), model.Visitor{})
	if err != nil {
		return "", err
	}
	// Who minted the customer may re-issue its tokens later (the relay
	// connectors do when a token expires), whatever conversations it has.
	err = s.d.Store().Commit(ctx, &store.Batch{Maps: []store.Mapping{
		{MapKey: s.tokenKey(kindAgentIssuer, string(v.ID)), Core: string(agentID)},
	}})
	if err != nil {
		return "", fmt.Errorf("store token issuer: %w", err)
	}
	return v.ID, nil
}

// mayActFor reports whether an agent may obtain a token for customer v
// (issue 16: any agent could otherwise read and write as any visitor): an
// administrator may; an agent may for a customer it minted itself, or one
// with a conversation the agent may reach under the rule of the agent
// actions (model.Agent.MaySee: it serves it, was added, may take it from
// its department's queue, or follows it).
func (s *Surface) mayActFor(ctx context.Context, id model.AgentID, v model.VisitorID) (bool, error) {
	agent, ok := s.d.Router().Agent(id)
	if !ok {
		return false, nil
	}
	if agent.Admin {
		return true, nil
	}
	issuer, err := s.d.Store().Resolve(ctx, s.tokenKey(kindAgentIssuer, string(v)))
	switch {
	case err == nil && issuer == string(id):
		return true, nil
	case err != nil && !errors.Is(err, store.ErrNotFound):
		return false, err
	}
	convs, err := s.d.Store().VisitorConversations(ctx, v)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	for _, cid := range convs {
		c, err := s.d.Store().Conversation(ctx, cid)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return false, err
		}
		if agent.MaySee(c) {
			return true, nil
		}
	}
	return false, nil
}
