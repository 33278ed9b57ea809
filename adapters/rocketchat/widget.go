package rocketchat

import (
	"bytes"
	"errors"
	"io/fs"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
)

// The widget is hosted as Rocket.Chat hosts it (spec §2.1, §8.3):
//
//	GET /livechat              index.html with SERVER_URL injected after <body>
//	GET /livechat/             301 to /livechat, keeping the query (the
//	                           build's script paths are relative: under
//	                           /livechat/ they would resolve to
//	                           /livechat/livechat/… and break)
//	GET /livechat/<file>       any file of the build (js, css, png, i18n chunks,
//	                           rocketchat-livechat.min.js for host pages)
//	GET /avatar/:username      an SVG with the name's initials (widget_media.go)
//	GET /sounds/chime.mp3      the notification sound config points at
//	GET /file-upload/:id/:name an uploaded file (widget_media.go)
//
// The widget page must be frameable from any origin (customer sites iframe
// it through the loader), so /livechat sends neither X-Frame-Options nor a
// Content-Security-Policy, like Rocket.Chat without an allowed-domains list.

// widgetIndex is the build's entry page.
const widgetIndex = "index.html"

// widgetSoundPath is where the notification sound is served.
const widgetSoundPath = "/sounds/chime.mp3"

// widgetState is the widget hosting state.
type widgetState struct {
	// dir is the widget build directory (Config.WidgetDir); files are read
	// per request, so `make widget` run after start-up takes effect at
	// once.
	dir string
	// started is the Last-Modified of generated content (sound).
	started time.Time
}

func (s *Surface) initWidget() {
	s.widget = widgetState{dir: s.cfg.WidgetDir, started: time.Now().UTC().Truncate(time.Second)}
}

func (s *Surface) mountWidget(r gin.IRouter) {
	for _, m := range []string{http.MethodGet, http.MethodHead} {
		r.Handle(m, "/livechat", s.widgetPage)
		r.Handle(m, "/livechat/*file", s.widgetAsset)
		r.Handle(m, "/avatar/:username", s.widgetAvatar)
		r.Handle(m, widgetSoundPath, s.widgetSound)
		r.Handle(m, "/file-upload/:id/:name", s.widgetUpload)
	}
}

// soundURL is the path of the notification sound; livechat/config's
// resources.sound points at it (made absolute with widgetServerURL).
func (s *Surface) soundURL() string { return widgetSoundPath }

// widgetServerURL is the base URL widgets use to reach chatgate, without a
// trailing slash: Config.PublicURL, else the scheme and Host of the
// request (https when the request came over TLS or a trusted proxy, see
// Config.TrustForwarded, says so in X-Forwarded-Proto). It is what
// /livechat injects as SERVER_URL, and the base of upload URLs.
func (s *Surface) widgetServerURL(r *http.Request) string {
	if u := strings.TrimRight(s.cfg.PublicURL, "/"); u != "" {
		return u
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if p, _, _ := strings.Cut(r.Header.Get("X-Forwarded-Proto"), ","); p != "" && s.cfg.TrustForwarded != nil && s.cfg.TrustForwarded(r) {
		switch p = strings.ToLower(strings.TrimSpace(p)); p {
		case "http", "https":
			scheme = p
		}
	}
	return scheme + "://" + r.Host
}

// widgetMissing answers when the build is not installed.
func (s *Surface) widgetMissing(c *gin.Context) {
	c.JSON(http.StatusNotFound, gin.H{
		"success": false,
		"error":   "livechat widget not installed: no " + widgetIndex + " in widget_dir",
		"hint":    "run `make widget` (fetches @rocket.chat/livechat into web/livechat) or set rocketchat.widget_dir / CHATGATE_WIDGET_DIR",
	})
}

// widgetPage serves GET /livechat.
func (s *Surface) widgetPage(c *gin.Context) {
	b, err := os.ReadFile(filepath.Join(s.widget.dir, widgetIndex))
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			s.log.Warn().Err(err).Msg("read widget index")
		}
		s.widgetMissing(c)
		return
	}
	page := widgetInjectServerURL(b, s.widgetServerURL(c.Request))
	h := c.Writer.Header()
	// Frameable from any origin; the inline SERVER_URL script must run.
	h.Del("X-Frame-Options")
	h.Del("Content-Security-Policy")
	// SERVER_URL depends on the request's Host: never reuse it for another.
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(page)))
	c.Status(http.StatusOK)
	if c.Request.Method == http.MethodHead {
		c.Writer.WriteHeaderNow()
		return
	}
	_, _ = c.Writer.Write(page)
}

// widgetInjectServerURL puts `<script>SERVER_URL = '<url>';</script>` right
// after the page's <body> tag (at the start if it has none), as
// Rocket.Chat's addServerUrlToIndex does.
func widgetInjectServerURL(page []byte, url string) []byte {
	script := "<script>SERVER_URL = '" + widgetJSString(url) + "';</script>"
	at := 0
	lower := bytes.ToLower(page)
	for from := 0; ; {
		i := bytes.Index(lower[from:], []byte("<body"))
		if i < 0 {
			break
		}
		i += from
		// "<body>" or "<body attr…>", not "<bodyx>".
		if next := i + len("<body"); next < len(lower) && (lower[next] == '>' || widgetHTMLSpace(lower[next])) {
			if end := bytes.IndexByte(lower[next:], '>'); end >= 0 {
				at = next + end + 1
			}
			break
		}
		from = i + len("<body")
	}
	out := make([]byte, 0, len(page)+len(script))
	out = append(out, page[:at]...)
	out = append(out, script...)
	return append(out, page[at:]...)
}

func widgetHTMLSpace(b byte) bool {
	return b == ' ' || b == '\t' || b == '\n' || b == '\r' || b == '\f' || b == '/'
}

// widgetJSString escapes s for a single-quoted JavaScript string inside an HTML
// <script> element: everything but plain URL characters becomes a \uXXXX
// escape, so no quote, backslash, "</script>", "<!--", line terminator or
// control character can end the string or the element.
func widgetJSString(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9',
			strings.ContainsRune(":/.-_~%?#[]@!$()*+,;=", r):
			b.WriteRune(r)
		case r > 0xFFFF:
			r -= 0x10000
			widgetWriteU(&b, 0xD800+(r>>10))
			widgetWriteU(&b, 0xDC00+(r&0x3FF))
		default:
			widgetWriteU(&b, r)
		}
	}
	return b.String()
}

func widgetWriteU(b *strings.Builder, r rune) {
	const hex = "0123456789abcdef"
	b.WriteString(`\u`)
	for shift := 12; shift >= 0; shift -= 4 {
		b.WriteByte(hex[(r>>shift)&0xF])
	}
}

// widgetAssetTypes are the content types of the build's files; anything else
// falls back to application/octet-stream (never sniffed).
var widgetAssetTypes = map[string]string{
	".js":    "text/javascript; charset=utf-8",
	".mjs":   "text/javascript; charset=utf-8",
	".css":   "text/css; charset=utf-8",
	".html":  "text/html; charset=utf-8",
	".json":  "application/json",
	".map":   "application/json",
	".txt":   "text/plain; charset=utf-8",
	".png":   "image/png",
	".jpg":   "image/jpeg",
	".jpeg":  "image/jpeg",
	".gif":   "image/gif",
	".webp":  "image/webp",
	".ico":   "image/x-icon",
	".svg":   "image/svg+xml",
	".mp3":   "audio/mpeg",
	".ogg":   "audio/ogg",
	".wav":   "audio/wav",
	".woff":  "font/woff",
	".woff2": "font/woff2",
	".ttf":   "font/ttf",
	".otf":   "font/otf",
	".eot":   "application/vnd.ms-fontobject",
}

func widgetAssetType(name string) string {
	if t, ok := widgetAssetTypes[strings.ToLower(path.Ext(name))]; ok {
		return t
	}
	return "application/octet-stream"
}

// widgetCleanAsset turns the *file route parameter into a path relative to the
// build directory. It refuses "..", empty and hidden segments and
// backslashes; the file is then opened through os.OpenInRoot, which also
// refuses symlinks leading out of the directory.
func widgetCleanAsset(p string) (string, bool) {
	p = strings.TrimPrefix(p, "/")
	if p == "" || strings.ContainsAny(p, "\\\x00") {
		return "", false
	}
	for seg := range strings.SplitSeq(p, "/") {
		if seg == "" || seg[0] == '.' {
			return "", false
		}
	}
	return p, true
}

// widgetAsset serves GET /livechat/*file.
func (s *Surface) widgetAsset(c *gin.Context) {
	file := c.Param("file")
	if file == "/" || file == "/"+widgetIndex {
		target := "/livechat"
		if q := c.Request.URL.RawQuery; q != "" {
			target += "?" + q
		}
		c.Redirect(http.StatusMovedPermanently, target)
		return
	}
	name, ok := widgetCleanAsset(file)
	if !ok {
		widgetNotFound(c)
		return
	}
	f, err := os.OpenInRoot(s.widget.dir, filepath.FromSlash(name))
	if err != nil {
		widgetNotFound(c)
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() { // no directory listings
		widgetNotFound(c)
		return
	}
	h := c.Writer.Header()
	h.Set("Content-Type", widgetAssetType(name))
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "public, max-age=3600")
	// Host pages on other origins load rocketchat-livechat.min.js; let
	// them (and a widget served with ?serverUrl=) read the files too.
	h.Set("Access-Control-Allow-Origin", "*")
	http.ServeContent(c.Writer, c.Request, name, st.ModTime(), f)
}

// widgetSound serves the notification sound: a short silent MP3. (A
// missing or invalid file makes the widget throw "The element has no
// supported sources." on every message.)
func (s *Surface) widgetSound(c *gin.Context) {
	h := c.Writer.Header()
	h.Set("Content-Type", "audio/mpeg")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "public, max-age=86400")
	h.Set("Access-Control-Allow-Origin", "*")
	http.ServeContent(c.Writer, c.Request, "chime.mp3", s.widget.started, bytes.NewReader(widgetSilentMP3))
}

func widgetNotFound(c *gin.Context) {
	c.JSON(http.StatusNotFound, gin.H{"error": "not found"})
}
