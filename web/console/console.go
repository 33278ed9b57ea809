// Package console serves chatgate's pages for people: the first page (/),
// the demo host page (/demo) with the Rocket.Chat widget and a small
// LiveChat v2 visitor widget, the agent console (/console) and the
// operator view (/console/ops). The pages are plain ES modules embedded
// in the binary: no build step, no network, no third-party code.
//
// The console is a client of chatgate's public agent API (LiveChat Agent
// Chat API RTM and its Web API upload_file). Besides the pages this
// package serves only two things of its own: the password login, which
// exchanges an agent's configured password for its bearer token (so the
// console can log in to the RTM), and the admin-only operator JSON.
//
// Every page is sent with a Content-Security-Policy that allows no inline
// script; the scripts write everything a visitor controls with
// textContent, never as HTML.
package console

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"html/template"
	"io/fs"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/rs/zerolog"
	"golang.org/x/time/rate"

	"chatgate/core/model"
)

//go:embed static
var static embed.FS

// Department is shown in the console's transfer dialog.
type Department struct {
	ID    string `json:"id"`
	Name  string `json:"name"`
	Group int    `json:"group"` // the LiveChat group id transfer_chat takes
}

// Config wires the console to the gateway.
type Config struct {
	// Authenticate maps a bearer token to its agent.
	Authenticate func(token string) (model.AgentID, bool)
	// Login checks a username (or id) and password.
	Login func(user, password string) (model.AgentID, bool)
	// TokenOf is the agent's bearer token, handed out after Login.
	TokenOf func(model.AgentID) (string, bool)
	// Agent looks an agent up (Admin opens the operator view).
	Agent func(model.AgentID) (model.Agent, bool)
	// Ops returns the operator view's data.
	Ops func(ctx context.Context) (any, error)
	// RetryWebhooks makes waiting webhook deliveries due now; nil when
	// webhooks are off.
	RetryWebhooks func(ctx context.Context) (int, error)
	// ReviveWebhooks brings exhausted webhook deliveries back into their
	// queues, due now; nil when webhooks are off.
	ReviveWebhooks func(ctx context.Context) (int, error)
	// Departments for the transfer dialog.
	Departments []Department
	// LicenceID is the LiveChat v2 licence the demo widget uses.
	LicenceID string
	// Widget reports whether the Rocket.Chat widget build is there.
	Widget func() bool
	// RocketChat and V2 say which visitor surfaces are on.
	RocketChat, V2 bool
	// LoginRate and LoginBurst throttle password logins per client
	// address (default 1 per second, burst 5); Throttle, if set, runs
	// before the login handler instead (a gateway-wide limiter).
	LoginRate  rate.Limit
	LoginBurst int
	Throttle   gin.HandlerFunc
}

// Console is the pages and their two routes.
type Console struct {
	cfg    Config
	log    zerolog.Logger
	demo   *template.Template
	limits *limiter
}

// New returns the console; Mount its routes.
func New(cfg Config, log zerolog.Logger) *Console {
	if cfg.LoginRate == 0 {
		cfg.LoginRate = 1
	}
	if cfg.LoginBurst == 0 {
		cfg.LoginBurst = 5
	}
	t := template.Must(template.ParseFS(static, "static/demo.html", "static/console.html"))
	return &Console{cfg: cfg, log: log.With().Str("surface", "console").Logger(), demo: t,
		limits: newLimiter(cfg.LoginRate, cfg.LoginBurst)}
}

// Name identifies the console among the surfaces.
func (c *Console) Name() string { return "console" }

// Run has nothing to run; it returns when ctx ends.
func (c *Console) Run(ctx context.Context) error {
	<-ctx.Done()
	return nil
}

// CSP is the pages' Content-Security-Policy: scripts and styles from
// this origin only (no inline script), no plugins, not framed by others.
// The demo page also allows inline styles (the Rocket.Chat widget's loader
// sets style attributes) and frames from this origin (the widget).
const (
	CSP     = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; media-src 'self' data: blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'; frame-src 'none'"
	DemoCSP = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; media-src 'self' data: blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'; frame-src 'self'"
)

// Mount registers the pages, the static files, POST /console/api/login and
// the admin-only GET /console/api/ops, POST /console/api/ops/retry_webhooks
// and POST /console/api/ops/revive_webhooks.
func (c *Console) Mount(r gin.IRouter) {
	r.GET("/", c.page("static/index.html", CSP))
	r.GET("/console", c.serveConsole)
	r.GET("/console/ops", c.page("static/ops.html", CSP))
	r.GET("/demo", c.serveDemo)
	r.GET("/console/static/*file", c.serveStatic)
	login := []gin.HandlerFunc{}
	if c.cfg.Throttle != nil {
		login = append(login, c.cfg.Throttle)
	} else {
		login = append(login, c.throttle)
	}
	r.POST("/console/api/login", append(login, c.serveLogin)...)
	r.GET("/console/api/ops", c.admin, c.serveOps)
	r.POST("/console/api/ops/retry_webhooks", c.admin, c.serveRetry)
	r.POST("/console/api/ops/revive_webhooks", c.admin, c.serveRevive)
}

func headers(g *gin.Context, csp string) {
	h := g.Writer.Header()
	h.Set("Content-Security-Policy", csp)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-cache")
}

func (c *Console) page(name, csp string) gin.HandlerFunc {
	body, err := static.ReadFile(name)
	if err != nil {
		panic(err) // embedded at build time
	}
	return func(g *gin.Context) {
		headers(g, csp)
		g.Data(http.StatusOK, "text/html; charset=utf-8", body)
	}
}

// demoData fills demo.html's data attributes (html/template escapes them).
type demoData struct {
	Licence        string
	Widget, V2, RC bool
}

// serveConsole sends console.html with the departments (for the transfer
// dialog) in a data attribute: the agent API has no list of groups.
func (c *Console) serveConsole(g *gin.Context) {
	depts := c.cfg.Departments
	if depts == nil {
		depts = []Department{}
	}
	js, _ := json.Marshal(depts)
	c.render(g, "console.html", CSP, map[string]any{"Departments": string(js)})
}

func (c *Console) render(g *gin.Context, name, csp string, data any) {
	var b bytes.Buffer
	if err := c.demo.ExecuteTemplate(&b, name, data); err != nil {
		c.log.Error().Err(err).Str("page", name).Msg("render page")
		g.JSON(http.StatusInternalServerError, gin.H{"error": "internal server error"})
		return
	}
	headers(g, csp)
	g.Data(http.StatusOK, "text/html; charset=utf-8", b.Bytes())
}

func (c *Console) serveDemo(g *gin.Context) {
	d := demoData{Licence: c.cfg.LicenceID, V2: c.cfg.V2, RC: c.cfg.RocketChat}
	d.Widget = c.cfg.RocketChat && c.cfg.Widget != nil && c.cfg.Widget()
	c.render(g, "demo.html", DemoCSP, d)
}

var types = map[string]string{".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
	".svg": "image/svg+xml"}

func (c *Console) serveStatic(g *gin.Context) {
	name := strings.TrimPrefix(g.Param("file"), "/")
	i := strings.LastIndexByte(name, '.')
	if strings.Contains(name, "..") || strings.Contains(name, "/") || i < 0 || types[name[i:]] == "" {
		g.JSON(http.StatusNotFound, gin.H{"error": "not found"})
		return
	}
	b, err := fs.ReadFile(static, "static/"+name)
	if err != nil {
		g.JSON(http.StatusNotFound, gin.H{"error": "not found"})
		return
	}
	headers(g, CSP)
	g.Data(http.StatusOK, types[name[i:]], b)
}

// --- login -------------------------------------------------------------

type loginRequest struct {
	User     string `json:"user"`
	Password string `json:"password"`
}

// serveLogin exchanges {user, password} for {agent_id, token}: the agent's
// configured bearer token, which the console keeps in sessionStorage and
// logs in to the RTM with. Failures say nothing about which part was wrong.
func (c *Console) serveLogin(g *gin.Context) {
	var req loginRequest
	dec := json.NewDecoder(g.Request.Body)
	if err := dec.Decode(&req); err != nil || req.User == "" || req.Password == "" {
		g.JSON(http.StatusBadRequest, gin.H{"error": "user and password are required"})
		return
	}
	id, ok := model.AgentID(""), false
	if c.cfg.Login != nil {
		id, ok = c.cfg.Login(req.User, req.Password)
	}
	tok := ""
	if ok && c.cfg.TokenOf != nil {
		tok, ok = c.cfg.TokenOf(id)
	}
	if !ok {
		c.log.Info().Str("client", g.ClientIP()).Msg("console login refused")
		g.JSON(http.StatusUnauthorized, gin.H{"error": "wrong user or password"})
		return
	}
	c.log.Info().Str("agent", string(id)).Msg("console password login")
	g.JSON(http.StatusOK, gin.H{"agent_id": id, "token": tok})
}

// throttle limits login attempts per client address.
func (c *Console) throttle(g *gin.Context) {
	host, _, err := net.SplitHostPort(g.Request.RemoteAddr)
	if err != nil {
		host = g.Request.RemoteAddr
	}
	if !c.limits.allow(host) {
		g.Header("Retry-After", "1")
		g.AbortWithStatusJSON(http.StatusTooManyRequests, gin.H{"error": "too many login attempts; wait a moment"})
		return
	}
	g.Next()
}

// limiter is a token bucket per client address, forgotten after a quiet
// minute so that the map stays small.
type limiter struct {
	mu    sync.Mutex
	r     rate.Limit
	burst int
	m     map[string]*bucket
	swept time.Time
}

type bucket struct {
	l    *rate.Limiter
	seen time.Time
}

func newLimiter(r rate.Limit, burst int) *limiter {
	return &limiter{r: r, burst: burst, m: make(map[string]*bucket)}
}

func (l *limiter) allow(key string) bool {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.swept) > time.Minute {
		for k, b := range l.m {
			if now.Sub(b.seen) > time.Minute {
				delete(l.m, k)
			}
		}
		l.swept = now
	}
	b := l.m[key]
	if b == nil {
		b = &bucket{l: rate.NewLimiter(l.r, l.burst)}
		l.m[key] = b
	}
	b.seen = now
	return b.l.AllowN(now, 1)
}

// --- operator view ---------------------------------------------------------

// admin lets through requests with an admin agent's bearer token: 401
// without a valid agent token, 403 for an agent who is not an admin.
func (c *Console) admin(g *gin.Context) {
	scheme, tok, _ := strings.Cut(g.GetHeader("Authorization"), " ")
	var id model.AgentID
	ok := false
	if strings.EqualFold(scheme, "Bearer") && tok != "" && c.cfg.Authenticate != nil {
		id, ok = c.cfg.Authenticate(strings.TrimSpace(tok))
	}
	if !ok {
		g.AbortWithStatusJSON(http.StatusUnauthorized, gin.H{"error": "an admin agent's bearer token is required"})
		return
	}
	a, found := model.Agent{}, false
	if c.cfg.Agent != nil {
		a, found = c.cfg.Agent(id)
	}
	if !found || !a.Admin {
		g.AbortWithStatusJSON(http.StatusForbidden, gin.H{"error": "only admin agents see the operator view"})
		return
	}
	g.Next()
}

func (c *Console) serveOps(g *gin.Context) {
	if c.cfg.Ops == nil {
		g.JSON(http.StatusOK, gin.H{})
		return
	}
	v, err := c.cfg.Ops(g.Request.Context())
	if err != nil {
		c.log.Error().Err(err).Msg("operator view")
		g.JSON(http.StatusInternalServerError, gin.H{"error": "internal server error"})
		return
	}
	g.Header("Cache-Control", "no-store")
	g.JSON(http.StatusOK, v)
}

// serveRetry makes waiting webhook deliveries due now: {"retried": n}.
func (c *Console) serveRetry(g *gin.Context) {
	c.webhookAction(g, c.cfg.RetryWebhooks, "retried", "webhook deliveries retried by an operator")
}

// serveRevive brings exhausted webhook deliveries back: {"revived": n}.
func (c *Console) serveRevive(g *gin.Context) {
	c.webhookAction(g, c.cfg.ReviveWebhooks, "revived", "exhausted webhook deliveries revived by an operator")
}

func (c *Console) webhookAction(g *gin.Context, do func(context.Context) (int, error), key, msg string) {
	if do == nil {
		g.JSON(http.StatusNotFound, gin.H{"error": "webhooks are disabled"})
		return
	}
	n, err := do(g.Request.Context())
	if err != nil {
		c.log.Error().Err(err).Str("action", key).Msg("webhook deliveries")
		g.JSON(http.StatusInternalServerError, gin.H{"error": "internal server error"})
		return
	}
	c.log.Info().Int("deliveries", n).Msg(msg)
	g.JSON(http.StatusOK, gin.H{key: n})
}
