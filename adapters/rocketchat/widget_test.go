package rocketchat

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"mime"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"
	"github.com/rs/zerolog"

	"chatgate/core/desk"
	"chatgate/core/hub"
	"chatgate/core/model"
	"chatgate/core/routing"
	"chatgate/store/bolt"
	"chatgate/store/files"
)

// fakeIndex is shaped like the 1.13.3 build's index.html.
const fakeIndex = `<!doctype html><html><head><meta charset="utf-8"><title>Rocket.Chat.Livechat</title></head>` +
	`<body><script src="livechat/bundle.31a95.js"></script></body></html>`

// widgetServer is a Surface over a real (idle) desk, with every route of
// the surface mounted, served by httptest on 127.0.0.1.
type widgetServer struct {
	surf  *Surface
	srv   *httptest.Server
	dir   string // widget build dir
	files *files.Store
}

func newWidgetServer(t *testing.T, withIndex bool, mod func(*Config)) *widgetServer {
	t.Helper()
	tmp := t.TempDir()
	st, err := bolt.Open(filepath.Join(tmp, "chatgate.db"), bolt.Options{})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { _ = st.Close() })
	d := desk.New(desk.Options{Store: st, Router: routing.New(nil, true), Bus: hub.NewBus(),
		Actors: hub.NewActors(16), Limits: desk.Limits{MaxText: 1 << 10}, Logger: zerolog.Nop()})
	fs, err := files.Open(filepath.Join(tmp, "files"), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(tmp, "web", "livechat")
	mustWrite(t, filepath.Join(dir, "bundle.31a95.js"), "console.log('bundle')")
	mustWrite(t, filepath.Join(dir, "rocketchat-livechat.min.js"), "window.RocketChat=1")
	mustWrite(t, filepath.Join(dir, "bundle.css"), "body{}")
	mustWrite(t, filepath.Join(dir, "logo.png"), "\x89PNG\r\n\x1a\n")
	mustWrite(t, filepath.Join(dir, "icon.svg"), "<svg/>")
	mustWrite(t, filepath.Join(dir, "chime.mp3"), "ID3")
	mustWrite(t, filepath.Join(dir, "font.woff"), "wOFF")
	mustWrite(t, filepath.Join(dir, "font.woff2"), "wOF2")
	mustWrite(t, filepath.Join(dir, "i18n", "de.chunk.json"), `{"a":1}`)
	mustWrite(t, filepath.Join(dir, "bundle.31a95.js.map"), `{"version":3}`)
	mustWrite(t, filepath.Join(dir, "README"), "no extension")
	mustWrite(t, filepath.Join(dir, ".env"), "SECRET=1")
	mustWrite(t, filepath.Join(tmp, "web", "secret.txt"), "outside the build")
	if err := os.Symlink(filepath.Join(tmp, "web", "secret.txt"), filepath.Join(dir, "escape.js")); err != nil {
		t.Fatal(err)
	}
	if withIndex {
		mustWrite(t, filepath.Join(dir, "index.html"), fakeIndex)
	}
	cfg := Config{WidgetDir: dir, Files: fs, Login: func(string, string) (model.AgentID, bool) { return "", false }}
	if mod != nil {
		mod(&cfg)
	}
	surf := New(d, cfg, zerolog.Nop())
	gin.SetMode(gin.TestMode)
	r := gin.New()
	surf.Mount(r)
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return &widgetServer{surf: surf, srv: srv, dir: dir, files: fs}
}

func mustWrite(t *testing.T, p, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

type reply struct {
	code int
	h    http.Header
	body string
}

// get sends a request with an exact request-target (the client does not
// clean "..": the server sees what is written here).
func (w *widgetServer) get(t *testing.T, method, target string, hdr map[string]string) reply {
	t.Helper()
	req, err := http.NewRequest(method, w.srv.URL+target, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return reply{resp.StatusCode, resp.Header, string(b)}
}

// rawGet writes the request line itself, for targets Go's URL parser
// would refuse or normalise.
func (w *widgetServer) rawGet(t *testing.T, target string) int {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(w.srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "GET "+target+" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("GET %s: %v", target, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusOK && strings.Contains(string(b), "outside the build") {
		t.Fatalf("GET %s leaked a file outside the widget dir", target)
	}
	return resp.StatusCode
}

func TestWidgetPage(t *testing.T) {
	// Only requests from 127.0.0.1 carrying X-Trusted are "from a trusted
	// proxy" here; the others' X-Forwarded-Proto is ignored (issue 16,
	// Medium 5: server.trusted_proxies).
	w := newWidgetServer(t, true, func(c *Config) {
		c.TrustForwarded = func(r *http.Request) bool { return r.Header.Get("X-Trusted") == "1" }
	})
	host := strings.TrimPrefix(w.srv.URL, "http://")
	cases := []struct {
		name, target string
		hdr          map[string]string
		wantURL      string
	}{
		{"derived from the request", "/livechat", nil, "http://" + host},
		{"query string allowed", "/livechat?mode=popout", nil, "http://" + host},
		{"trusted proxy says https", "/livechat", map[string]string{"X-Forwarded-Proto": "https", "X-Trusted": "1"}, "https://" + host},
		{"untrusted peer says https: ignored", "/livechat", map[string]string{"X-Forwarded-Proto": "https"}, "http://" + host},
		{"bogus forwarded proto ignored", "/livechat", map[string]string{"X-Forwarded-Proto": "javascript", "X-Trusted": "1"}, "http://" + host},
		{"other host name", "/livechat", map[string]string{"Host": "chat.example.com:8443"}, "http://chat.example.com:8443"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := w.get(t, http.MethodGet, tc.target, tc.hdr)
			if r.code != http.StatusOK {
				t.Fatalf("status %d: %s", r.code, r.body)
			}
			if ct := r.h.Get("Content-Type"); ct != "text/html; charset=utf-8" {
				t.Fatalf("Content-Type %q", ct)
			}
			for _, h := range []string{"X-Frame-Options", "Content-Security-Policy"} {
				if v := r.h.Get(h); v != "" {
					t.Fatalf("%s: %q (the page must be frameable and run its inline script)", h, v)
				}
			}
			want := `<body><script>SERVER_URL = '` + tc.wantURL + `';</script><script src="livechat/bundle.31a95.js">`
			if !strings.Contains(r.body, want) {
				t.Fatalf("body %q\nwant it to contain %q", r.body, want)
			}
			if !strings.HasPrefix(r.body, `<!doctype html><html><head>`) {
				t.Fatalf("page head changed: %q", r.body)
			}
			if cc := r.h.Get("Cache-Control"); cc != "no-store" {
				t.Fatalf("Cache-Control %q", cc)
			}
		})
	}

	if r := w.get(t, http.MethodHead, "/livechat", nil); r.code != http.StatusOK || r.body != "" ||
		r.h.Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("HEAD /livechat: %d %q %v", r.code, r.body, r.h)
	}
}

func TestWidgetPagePublicURL(t *testing.T) {
	cases := []struct {
		public, want string
	}{
		{"https://chat.example.com", "https://chat.example.com"},
		{"https://chat.example.com/", "https://chat.example.com"},
		{"https://example.com/chat/", "https://example.com/chat"},
		{"http://x/'</script><script>alert(1)//x", `http://x/\u0027\u003c/script\u003e\u003cscript\u003ealert(1)//x`},
		{"http://x/\"\\\n\u2028", `http://x/\u0022\u005c\u000a\u2028`},
	}
	for _, tc := range cases {
		t.Run(tc.public, func(t *testing.T) {
			w := newWidgetServer(t, true, func(c *Config) { c.PublicURL = tc.public })
			r := w.get(t, http.MethodGet, "/livechat", nil)
			want := `<body><script>SERVER_URL = '` + tc.want + `';</script>`
			if r.code != http.StatusOK || !strings.Contains(r.body, want) {
				t.Fatalf("%d %q\nwant %q", r.code, r.body, want)
			}
			if strings.Count(r.body, "</script>") != 2 || strings.Count(r.body, "<script") != 2 {
				t.Fatalf("the injected URL broke out of its script element: %q", r.body)
			}
		})
	}
}

func TestWidgetInjectServerURL(t *testing.T) {
	script := `<script>SERVER_URL = 'http://h';</script>`
	cases := []struct{ page, want string }{
		{`<html><body><p>x</p></body></html>`, `<html><body>` + script + `<p>x</p></body></html>`},
		{`<HTML><BODY class="a"><p>x</p></BODY>`, `<HTML><BODY class="a">` + script + `<p>x</p></BODY>`},
		{`<bodyguard><body>x`, `<bodyguard><body>` + script + `x`},
		{`<p>no body</p>`, script + `<p>no body</p>`},
		{``, script},
	}
	for _, tc := range cases {
		if got := string(widgetInjectServerURL([]byte(tc.page), "http://h")); got != tc.want {
			t.Errorf("inject(%q) = %q, want %q", tc.page, got, tc.want)
		}
	}
}

func TestWidgetJSString(t *testing.T) {
	cases := []struct{ in, want string }{
		{"https://chat.example.com:8443/a_b-c~d?x=1&y=2#f", `https://chat.example.com:8443/a_b-c~d?x=1\u0026y=2#f`},
		{"'", `\u0027`},
		{"</script>", `\u003c/script\u003e`},
		{"<!--", `\u003c!--`},
		{"\r\n\t\x00", `\u000d\u000a\u0009\u0000`},
		{"\u2028\u2029", `\u2028\u2029`},
		{"é😀", `\u00e9\ud83d\ude00`},
	}
	for _, tc := range cases {
		if got := widgetJSString(tc.in); got != tc.want {
			t.Errorf("widgetJSString(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestWidgetMissing(t *testing.T) {
	w := newWidgetServer(t, false, nil)
	r := w.get(t, http.MethodGet, "/livechat", nil)
	if r.code != http.StatusNotFound || !strings.HasPrefix(r.h.Get("Content-Type"), "application/json") {
		t.Fatalf("%d %v %s", r.code, r.h, r.body)
	}
	var body map[string]any
	if err := json.Unmarshal([]byte(r.body), &body); err != nil {
		t.Fatalf("not JSON: %q", r.body)
	}
	if hint, _ := body["hint"].(string); !strings.Contains(hint, "make widget") {
		t.Fatalf("no `make widget` hint: %s", r.body)
	}
	// Assets still come from the directory.
	if r := w.get(t, http.MethodGet, "/livechat/bundle.31a95.js", nil); r.code != http.StatusOK {
		t.Fatalf("asset without index: %d", r.code)
	}
	// A widget dir that does not exist at all.
	w2 := newWidgetServer(t, false, func(c *Config) { c.WidgetDir = filepath.Join(t.TempDir(), "none") })
	if r := w2.get(t, http.MethodGet, "/livechat", nil); r.code != http.StatusNotFound || !strings.Contains(r.body, "make widget") {
		t.Fatalf("missing dir: %d %s", r.code, r.body)
	}
	if r := w2.get(t, http.MethodGet, "/livechat/bundle.31a95.js", nil); r.code != http.StatusNotFound {
		t.Fatalf("asset of missing dir: %d", r.code)
	}
}

func TestWidgetRedirects(t *testing.T) {
	w := newWidgetServer(t, true, nil)
	cases := []struct{ target, location string }{
		{"/livechat/", "/livechat"},
		{"/livechat/?mode=popout&serverUrl=http%3A%2F%2Fa", "/livechat?mode=popout&serverUrl=http%3A%2F%2Fa"},
		{"/livechat/index.html", "/livechat"},
		{"/livechat/index.html?x=1", "/livechat?x=1"},
	}
	for _, tc := range cases {
		r := w.get(t, http.MethodGet, tc.target, nil)
		if r.code != http.StatusMovedPermanently || r.h.Get("Location") != tc.location {
			t.Errorf("GET %s: %d Location %q, want 301 %q", tc.target, r.code, r.h.Get("Location"), tc.location)
		}
	}
}

func TestWidgetAssets(t *testing.T) {
	w := newWidgetServer(t, true, nil)
	cases := []struct {
		target, ctype, body string
	}{
		{"/livechat/bundle.31a95.js", "text/javascript; charset=utf-8", "console.log('bundle')"},
		{"/livechat/rocketchat-livechat.min.js?_=201903270000", "text/javascript; charset=utf-8", "window.RocketChat=1"},
		{"/livechat/bundle.css", "text/css; charset=utf-8", "body{}"},
		{"/livechat/logo.png", "image/png", "\x89PNG\r\n\x1a\n"},
		{"/livechat/icon.svg", "image/svg+xml", "<svg/>"},
		{"/livechat/chime.mp3", "audio/mpeg", "ID3"},
		{"/livechat/font.woff", "font/woff", "wOFF"},
		{"/livechat/font.woff2", "font/woff2", "wOF2"},
		{"/livechat/i18n/de.chunk.json", "application/json", `{"a":1}`},
		{"/livechat/bundle.31a95.js.map", "application/json", `{"version":3}`},
		{"/livechat/README", "application/octet-stream", "no extension"},
	}
	for _, tc := range cases {
		r := w.get(t, http.MethodGet, tc.target, nil)
		if r.code != http.StatusOK || r.h.Get("Content-Type") != tc.ctype || r.body != tc.body {
			t.Errorf("GET %s: %d %q %q, want 200 %q %q", tc.target, r.code, r.h.Get("Content-Type"), r.body, tc.ctype, tc.body)
		}
		if r.h.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s: no nosniff", tc.target)
		}
	}
	// Conditional requests work (ServeContent).
	r := w.get(t, http.MethodGet, "/livechat/bundle.css", nil)
	if r2 := w.get(t, http.MethodGet, "/livechat/bundle.css", map[string]string{"If-Modified-Since": r.h.Get("Last-Modified")}); r2.code != http.StatusNotModified {
		t.Fatalf("If-Modified-Since: %d", r2.code)
	}
}

func TestWidgetAssetRefusals(t *testing.T) {
	w := newWidgetServer(t, true, nil)
	// Through the client (the target is sent as written).
	for _, target := range []string{
		"/livechat/i18n",         // a directory: no listing
		"/livechat/i18n/",        // same
		"/livechat/nope.js",      // missing
		"/livechat/.env",         // hidden file
		"/livechat/escape.js",    // symlink out of the build
		"/livechat/i18n/../.env", // hidden after ..
		"/livechat/%2e%2e/secret.txt",
		"/livechat/..%2fsecret.txt",
		"/livechat/i18n%2f..%2f..%2fsecret.txt",
		"/livechat/..%5csecret.txt",
		"/livechat/bundle.css%00.js",
	} {
		r := w.get(t, http.MethodGet, target, nil)
		if r.code != http.StatusNotFound {
			t.Errorf("GET %s: %d %q, want 404", target, r.code, r.body)
		}
		if strings.Contains(r.body, "outside the build") || strings.Contains(r.body, "SECRET") {
			t.Errorf("GET %s leaked %q", target, r.body)
		}
	}
	// Raw request lines, not normalised by any client.
	for _, target := range []string{"/livechat/../secret.txt", "/livechat/../../etc/passwd", "/livechat//etc/passwd",
		"/livechat/./index.html", "/livechat/i18n/../../secret.txt"} {
		if code := w.rawGet(t, target); code == http.StatusOK {
			t.Errorf("raw GET %s: 200", target)
		}
	}
}

func TestWidgetInitials(t *testing.T) {
	cases := []struct{ name, want string }{
		{"agent.smith", "AS"},
		{"jane", "J"},
		{"Jane Doe", "JD"},
		{"guest-12", "G"},
		{"mary-jane.watson", "MJ"},
		{"42", "4"},
		{"élodie_durand", "ÉD"},
		{"", "?"},
		{"...", "?"},
		{"<script>", "S"},
	}
	for _, tc := range cases {
		if got := widgetInitials(tc.name); got != tc.want {
			t.Errorf("widgetInitials(%q) = %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestWidgetAvatar(t *testing.T) {
	w := newWidgetServer(t, true, nil)
	cases := []struct{ username, initials string }{
		{"agent.smith", ">AS<"},
		{"guest-1", ">G<"},
		{"jane", ">J<"},
		{"%3Cb%3E", ">B<"}, // "<b>": escaped, no markup injected
	}
	for _, tc := range cases {
		r := w.get(t, http.MethodGet, "/avatar/"+tc.username, nil)
		if r.code != http.StatusOK || r.h.Get("Content-Type") != "image/svg+xml" ||
			!strings.HasPrefix(r.body, "<svg") || !strings.Contains(r.body, tc.initials) {
			t.Fatalf("GET /avatar/%s: %d %v %q", tc.username, r.code, r.h, r.body)
		}
		if cc := r.h.Get("Cache-Control"); !strings.Contains(cc, "public") || !strings.Contains(cc, "max-age=") {
			t.Fatalf("Cache-Control %q", cc)
		}
		if strings.Contains(r.body, "<b>") {
			t.Fatalf("markup injected: %q", r.body)
		}
		etag := r.h.Get("ETag")
		if etag == "" {
			t.Fatal("no ETag")
		}
		if r2 := w.get(t, http.MethodGet, "/avatar/"+tc.username, map[string]string{"If-None-Match": etag}); r2.code != http.StatusNotModified {
			t.Fatalf("If-None-Match: %d", r2.code)
		}
	}
	// The colour is the name's: stable, and not the same for everyone.
	if widgetAvatarColor("agent.smith") != widgetAvatarColor("Agent.Smith") {
		t.Fatal("colour depends on case")
	}
	colours := map[string]bool{}
	for _, n := range []string{"a", "b", "c", "d", "e", "f", "g", "h"} {
		colours[widgetAvatarColor(n)] = true
	}
	if len(colours) < 3 {
		t.Fatalf("colours hardly vary: %v", colours)
	}
	r := w.get(t, http.MethodGet, "/avatar/agent.smith", nil)
	if !strings.Contains(r.body, `fill="`+widgetAvatarColor("agent.smith")+`"`) {
		t.Fatalf("avatar not in the name's colour: %s", r.body)
	}
}

func TestWidgetSound(t *testing.T) {
	w := newWidgetServer(t, true, nil)
	if w.surf.soundURL() != "/sounds/chime.mp3" {
		t.Fatalf("soundURL %q", w.surf.soundURL())
	}
	r := w.get(t, http.MethodGet, w.surf.soundURL(), nil)
	if r.code != http.StatusOK || r.h.Get("Content-Type") != "audio/mpeg" || r.body != string(widgetSilentMP3) {
		t.Fatalf("%d %v (%d bytes)", r.code, r.h, len(r.body))
	}
	// Every frame: MPEG-1 Layer III sync word, 32 kbit/s, 44.1 kHz, 104 bytes.
	b := []byte(r.body)
	if len(b) == 0 || len(b)%104 != 0 {
		t.Fatalf("length %d", len(b))
	}
	for i := 0; i < len(b); i += 104 {
		if !bytes.Equal(b[i:i+4], []byte{0xFF, 0xFB, 0x10, 0xC4}) {
			t.Fatalf("frame at %d: header % x", i, b[i:i+4])
		}
	}
	// Range requests (media elements use them).
	if r := w.get(t, http.MethodGet, w.surf.soundURL(), map[string]string{"Range": "bytes=0-3"}); r.code != http.StatusPartialContent || len(r.body) != 4 {
		t.Fatalf("range: %d %d", r.code, len(r.body))
	}
}

func TestWidgetFileUpload(t *testing.T) {
	w := newWidgetServer(t, true, nil)
	ctx := context.Background()
	put := func(name, ctype, content string) files.File {
		f, err := w.files.Put(ctx, name, ctype, strings.NewReader(content))
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	png := put("screen shot.png", "image/png", "\x89PNG\r\n\x1a\nrest")
	txt := put("notes.txt", "", "just text")
	page := put("evil.html", "text/html", "<script>alert(1)</script>")
	svg := put("pic.svg", "image/svg+xml", "<svg onload=alert(1)/>")
	uni := put("résumé.pdf", "application/pdf", "%PDF-1.4")

	cases := []struct {
		name, target, ctype, disp, filename, body string
	}{
		{"image inline", "/file-upload/" + png.ID + "/screen%20shot.png", "image/png", "inline", "screen shot.png", "\x89PNG\r\n\x1a\nrest"},
		{"sniffed at upload", "/file-upload/" + txt.ID + "/notes.txt", "text/plain; charset=utf-8", "inline", "notes.txt", "just text"},
		{"name segment is cosmetic", "/file-upload/" + txt.ID + "/other.bin", "text/plain; charset=utf-8", "inline", "notes.txt", "just text"},
		{"html as attachment", "/file-upload/" + page.ID + "/evil.html", "text/html", "attachment", "evil.html", "<script>alert(1)</script>"},
		{"svg as attachment", "/file-upload/" + svg.ID + "/pic.svg", "image/svg+xml", "attachment", "pic.svg", "<svg onload=alert(1)/>"},
		{"non-ASCII name", "/file-upload/" + uni.ID + "/x.pdf", "application/pdf", "inline", "résumé.pdf", "%PDF-1.4"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := w.get(t, http.MethodGet, tc.target, nil)
			if r.code != http.StatusOK || r.h.Get("Content-Type") != tc.ctype || r.body != tc.body {
				t.Fatalf("%d %q %q", r.code, r.h.Get("Content-Type"), r.body)
			}
			disp, params, err := mime.ParseMediaType(r.h.Get("Content-Disposition"))
			if err != nil || disp != tc.disp || params["filename"] != tc.filename {
				t.Fatalf("Content-Disposition %q: %v %q %v", r.h.Get("Content-Disposition"), err, disp, params)
			}
			if r.h.Get("X-Content-Type-Options") != "nosniff" || !strings.Contains(r.h.Get("Content-Security-Policy"), "sandbox") {
				t.Fatalf("headers %v", r.h)
			}
		})
	}
	for _, target := range []string{
		"/file-upload/00000000000000000000000000000000/x.png", // well-formed, unknown
		"/file-upload/" + png.ID[:31] + "/x.png",              // malformed
		"/file-upload/" + strings.ToUpper(png.ID) + "/x.png",
		"/file-upload/..%2f..%2fchatgate.db/x",
		"/file-upload/" + png.ID + ".json/x", // the metadata is not a file
	} {
		if r := w.get(t, http.MethodGet, target, nil); r.code != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", target, r.code)
		}
	}
	// Without a file store every id is unknown.
	w2 := newWidgetServer(t, true, func(c *Config) { c.Files = nil })
	if r := w2.get(t, http.MethodGet, "/file-upload/"+png.ID+"/x.png", nil); r.code != http.StatusNotFound {
		t.Fatalf("no file store: %d", r.code)
	}
}
