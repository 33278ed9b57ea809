package console

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"
	"github.com/rs/zerolog"

	"chatgate/core/model"
)

func newTestConsole(t *testing.T, cfg Config) *gin.Engine {
	t.Helper()
	gin.SetMode(gin.TestMode)
	agents := map[model.AgentID]model.Agent{"ann": {ID: "ann", Admin: true}, "bob": {ID: "bob"}}
	tokens := map[string]model.AgentID{"ann-token-0123456789": "ann", "bob-token-0123456789": "bob"}
	cfg.Authenticate = func(tok string) (model.AgentID, bool) { id, ok := tokens[tok]; return id, ok }
	cfg.Login = func(u, p string) (model.AgentID, bool) { return "bob", u == "bob" && p == "bob-password" }
	cfg.TokenOf = func(id model.AgentID) (string, bool) { return "bob-token-0123456789", id == "bob" }
	cfg.Agent = func(id model.AgentID) (model.Agent, bool) { a, ok := agents[id]; return a, ok }
	cfg.Ops = func(context.Context) (any, error) { return map[string]int{"agents": 2}, nil }
	cfg.RetryWebhooks = func(context.Context) (int, error) { return 3, nil }
	cfg.ReviveWebhooks = func(context.Context) (int, error) { return 2, nil }
	cfg.Departments = []Department{{ID: "0", Name: `Gen"eral<b>`, Group: 0}}
	cfg.LicenceID = "100000"
	e := gin.New()
	New(cfg, zerolog.Nop()).Mount(e)
	return e
}

func do(e *gin.Engine, method, path, auth, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.RemoteAddr = "192.0.2.1:1234"
	if auth != "" {
		req.Header.Set("Authorization", "Bearer "+auth)
	}
	w := httptest.NewRecorder()
	e.ServeHTTP(w, req)
	return w
}

// TestPages: every page is served with a CSP that allows no inline script
// and with nosniff; static files are only the embedded ones.
func TestPages(t *testing.T) {
	e := newTestConsole(t, Config{})
	cases := []struct {
		path, ctype, contains string
		status                int
	}{
		{"/", "text/html", "Agent console", 200},
		{"/console", "text/html", `data-departments="[{&#34;id&#34;:&#34;0&#34;,&#34;name&#34;:&#34;Gen\&#34;eral\u003cb\u003e`, 200},
		{"/console/ops", "text/html", "operator view", 200},
		{"/demo", "text/html", `data-licence="100000"`, 200},
		{"/console/static/console.js", "text/javascript", "textContent", 200},
		{"/console/static/console.css", "text/css", "", 200},
		{"/console/static/console.html", "", "", 404},
		{"/console/static/..%2fconsole.go", "", "", 404},
		{"/console/static/nope.js", "", "", 404},
	}
	for _, tc := range cases {
		t.Run(tc.path, func(t *testing.T) {
			w := do(e, "GET", tc.path, "", "")
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d", w.Code, tc.status)
			}
			if tc.status != 200 {
				return
			}
			csp := w.Header().Get("Content-Security-Policy")
			if !strings.Contains(csp, "script-src 'self';") || !strings.Contains(csp, "object-src 'none'") {
				t.Errorf("CSP %q", csp)
			}
			if strings.Contains(csp, "'unsafe-eval'") || strings.Contains(csp, "script-src 'self' 'unsafe-inline'") {
				t.Errorf("CSP allows inline script: %q", csp)
			}
			if w.Header().Get("X-Content-Type-Options") != "nosniff" || !strings.HasPrefix(w.Header().Get("Content-Type"), tc.ctype) {
				t.Errorf("headers %v", w.Header())
			}
			if !strings.Contains(w.Body.String(), tc.contains) {
				t.Errorf("body lacks %q:\n%.600s", tc.contains, w.Body.String())
			}
			if tc.ctype == "text/html" && strings.Contains(w.Body.String(), "<script>") {
				t.Error("inline script in a page")
			}
		})
	}
}

// TestDemoWidgetHint: without the widget build the demo page says how to
// get it.
func TestDemoWidgetHint(t *testing.T) {
	for _, built := range []bool{false, true} {
		e := newTestConsole(t, Config{RocketChat: true, V2: true, Widget: func() bool { return built }})
		body := do(e, "GET", "/demo", "", "").Body.String()
		if got := strings.Contains(body, "make widget"); got == built {
			t.Errorf("widget built %v: hint shown %v", built, got)
		}
		if !strings.Contains(body, `id="v2-start"`) {
			t.Error("no v2 widget")
		}
	}
}

func TestLogin(t *testing.T) {
	e := newTestConsole(t, Config{LoginRate: 0.001, LoginBurst: 3})
	cases := []struct {
		name, body string
		status     int
		token      string
	}{
		{"right password", `{"user":"bob","password":"bob-password"}`, 200, "bob-token-0123456789"},
		{"wrong password", `{"user":"bob","password":"nope"}`, 401, ""},
		{"malformed", `{"user":`, 400, ""},
		{"throttled after the burst", `{"user":"bob","password":"bob-password"}`, 429, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := do(e, "POST", "/console/api/login", "", tc.body)
			var got struct{ Token, Error string }
			_ = json.Unmarshal(w.Body.Bytes(), &got)
			if w.Code != tc.status || got.Token != tc.token || (tc.status != 200 && got.Error == "") {
				t.Fatalf("%d %s", w.Code, w.Body)
			}
		})
	}
}

func TestAdminRoutes(t *testing.T) {
	e := newTestConsole(t, Config{})
	cases := []struct {
		method, path, token string
		status              int
		body                string
	}{
		{"GET", "/console/api/ops", "", http.StatusUnauthorized, "error"},
		{"GET", "/console/api/ops", "forged-token-0123456789", http.StatusUnauthorized, "error"},
		{"GET", "/console/api/ops", "bob-token-0123456789", http.StatusForbidden, "error"},
		{"GET", "/console/api/ops", "ann-token-0123456789", http.StatusOK, `"agents":2`},
		{"POST", "/console/api/ops/retry_webhooks", "bob-token-0123456789", http.StatusForbidden, "error"},
		{"POST", "/console/api/ops/retry_webhooks", "ann-token-0123456789", http.StatusOK, `"retried":3`},
		{"POST", "/console/api/ops/revive_webhooks", "", http.StatusUnauthorized, "error"},
		{"POST", "/console/api/ops/revive_webhooks", "bob-token-0123456789", http.StatusForbidden, "error"},
		{"POST", "/console/api/ops/revive_webhooks", "ann-token-0123456789", http.StatusOK, `"revived":2`},
	}
	for _, tc := range cases {
		t.Run(tc.method+" "+tc.path+" "+tc.token, func(t *testing.T) {
			w := do(e, tc.method, tc.path, tc.token, "")
			if w.Code != tc.status || !strings.Contains(w.Body.String(), tc.body) {
				t.Fatalf("%d %s", w.Code, w.Body)
			}
		})
	}
}
