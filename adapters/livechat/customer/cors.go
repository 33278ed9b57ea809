package customer

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/gin-gonic/gin"
)

// CORS of the token endpoint and the customer Web API (issue 16, High 3).
//
// LiveChat's accounts service echoes any Origin with credentials, for
// widgets embedded anywhere. chatgate does not: with the __lc_* cookies
// SameSite=None on TLS, that would let any web site exchange a visitor's
// cookie for a token and read their chats. Credentials (and the Origin
// echo) are granted only to the origins the operator lists in
// livechat.customer.allowed_origins, to public_url's origin, and to the
// gateway's own origin (a page it serves itself). A cookie grant asked from
// any other browser origin is refused; other origins' calls get no CORS
// headers, so browsers keep the answers from them.
//
// The GET actions (public configuration, no credentials) answer every
// origin with "*" and no credentials.

// originAllowed reports whether a request's Origin may call with
// credentials.
func (s *Surface) originAllowed(r *http.Request, origin string) bool {
	o, ok := normOrigin(origin)
	if !ok {
		return false
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if own, ok := normOrigin(scheme + "://" + r.Host); ok && own == o {
		return true
	}
	if pub, ok := normOrigin(s.cfg.PublicURL); ok && pub == o {
		return true
	}
	for _, a := range s.cfg.AllowedOrigins {
		if a == "*" {
			return true // the operator's explicit choice (documented as unsafe)
		}
		if matchOrigin(a, o) {
			return true
		}
	}
	return false
}

// matchOrigin matches an origin against one allowed_origins entry: an
// exact origin ("https://shop.example.com") or a subdomain pattern
// ("https://*.example.com", which does not match example.com itself).
func matchOrigin(pattern, origin string) bool {
	scheme, host, ok := strings.Cut(pattern, "://*.")
	if !ok {
		p, ok := normOrigin(pattern)
		return ok && p == origin
	}
	os, oh, ok := strings.Cut(origin, "://")
	return ok && strings.EqualFold(os, scheme) && strings.HasSuffix(oh, "."+strings.ToLower(host))
}

// normOrigin lowercases scheme and host and drops default ports and any
// path; ok is false for anything that is not an http(s) origin.
func normOrigin(raw string) (string, bool) {
	if raw == "" || raw == "null" {
		return "", false
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") || u.User != nil {
		return "", false
	}
	host := strings.ToLower(u.Hostname())
	port := u.Port()
	if (u.Scheme == "http" && port == "80") || (u.Scheme == "https" && port == "443") {
		port = ""
	}
	if port != "" {
		host += ":" + port
	}
	if strings.Contains(host, ":") && port == "" {
		host = "[" + host + "]"
	}
	return u.Scheme + "://" + host, true
}

// cors sets the credentialed CORS headers for an allowed Origin and
// reports whether the request may go on: false only for a browser origin
// that is not allowed (the caller decides whether that refuses it).
func (s *Surface) cors(g *gin.Context) bool {
	o := g.GetHeader("Origin")
	if o == "" {
		return true
	}
	h := g.Writer.Header()
	h.Add("Vary", "Origin")
	if !s.originAllowed(g.Request, o) {
		return false
	}
	h.Set("Access-Control-Allow-Origin", o)
	h.Set("Access-Control-Allow-Credentials", "true")
	return true
}

// publicCORS is for the credential-free GET actions.
func publicCORS(g *gin.Context) {
	g.Writer.Header().Set("Access-Control-Allow-Origin", "*")
}

func (s *Surface) preflight(g *gin.Context) {
	if !s.cors(g) {
		g.Status(http.StatusNoContent) // no CORS headers: the browser refuses
		return
	}
	h := g.Writer.Header()
	h.Set("Access-Control-Allow-Methods", "POST, GET, OPTIONS")
	h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, X-API-Version, X-Region")
	h.Set("Access-Control-Max-Age", "600")
	g.Status(http.StatusNoContent)
}

// clientAllowed checks a token request's client_id against
// livechat.customer.client_ids (empty list: any client id).
func (s *Surface) clientAllowed(id string) bool {
	if len(s.cfg.ClientIDs) == 0 {
		return true
	}
	for _, c := range s.cfg.ClientIDs {
		if c == id {
			return true
		}
	}
	return false
}
