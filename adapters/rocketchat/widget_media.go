package rocketchat

import (
	"bytes"
	"errors"
	"hash/fnv"
	"html"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"chatgate/store/files"
)

// --- avatars -----------------------------------------------------------------

// widgetAvatarColors are backgrounds with enough contrast for white
// letters; a name always gets the same one.
var widgetAvatarColors = []string{
	"#C62828", "#AD1457", "#6A1B9A", "#4527A0", "#283593", "#1565C0", "#0277BD", "#00838F",
	"#00695C", "#2E7D32", "#558B2F", "#9E5400", "#D84315", "#4E342E", "#424242", "#37474F",
}

// widgetInitials are up to two letters naming someone: the first letter of
// the first two words of the name that start with a letter or digit
// ("agent.smith" → "AS", "jane" → "J"); words of digits only are skipped
// when a word with a letter exists ("guest-12" → "G"). "?" if none.
func widgetInitials(name string) string {
	words := strings.FieldsFunc(name, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
	var letters, digits []rune
	for _, w := range words {
		r, _ := utf8.DecodeRuneInString(w)
		if unicode.IsLetter(r) {
			letters = append(letters, unicode.ToUpper(r))
		} else if len(digits) == 0 {
			digits = append(digits, r)
		}
	}
	out := letters
	if len(out) == 0 {
		out = digits
	}
	if len(out) == 0 {
		return "?"
	}
	return string(out[:min(2, len(out))])
}

// widgetAvatarColor picks the name's background (FNV-1a of its lower case).
func widgetAvatarColor(name string) string {
	h := fnv.New32a()
	_, _ = h.Write([]byte(strings.ToLower(name)))
	return widgetAvatarColors[h.Sum32()%uint32(len(widgetAvatarColors))]
}

// widgetAvatarSVG renders the initials avatar of a name.
func widgetAvatarSVG(name string) []byte {
	ini := widgetInitials(name)
	size := "100"
	if utf8.RuneCountInString(ini) > 1 {
		size = "84"
	}
	return []byte(`<svg xmlns="http://www.w3.org/2000/svg" width="200" height="200" viewBox="0 0 200 200">` +
		`<rect width="200" height="200" fill="` + widgetAvatarColor(name) + `"/>` +
		`<text x="100" y="100" dy="0.35em" text-anchor="middle" fill="#FFFFFF" ` +
		`font-family="Helvetica Neue, Helvetica, Arial, sans-serif" font-size="` + size + `" font-weight="500">` +
		html.EscapeString(ini) + `</text></svg>`)
}

// widgetAvatar serves GET /avatar/:username: an SVG with the initials,
// cacheable (it only depends on the name).
func (s *Surface) widgetAvatar(c *gin.Context) {
	name := c.Param("username")
	if len(name) > 256 {
		name = name[:256]
	}
	svg := widgetAvatarSVG(name)
	h := fnv.New64a()
	_, _ = h.Write(svg)
	hd := c.Writer.Header()
	hd.Set("Content-Type", "image/svg+xml")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Cache-Control", "public, max-age=86400")
	hd.Set("ETag", `"`+strconv.FormatUint(h.Sum64(), 36)+`"`)
	// Opened directly, the SVG may not run anything.
	hd.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	hd.Set("Access-Control-Allow-Origin", "*")
	http.ServeContent(c.Writer, c.Request, "avatar.svg", time.Time{}, bytes.NewReader(svg))
}

// --- notification sound -------------------------------------------------------

// widgetSilentMP3 is half a second of silence: 20 MPEG-1 Layer III frames,
// mono, 32 kbit/s, 44.1 kHz, each a 4-byte header and 100 zero bytes (zero
// side information: no coded samples, so every sample is 0). Browsers
// decode it; an empty or invalid file would make the widget throw "The
// element has no supported sources." on every message.
var widgetSilentMP3 = func() []byte {
	const frames, frameLen = 20, 104 // 144 * 32000 / 44100, no padding
	b := make([]byte, 0, frames*frameLen)
	for range frames {
		frame := make([]byte, frameLen)
		// sync, MPEG-1, Layer III, no CRC | 32 kbit/s, 44.1 kHz, no padding
		// | mono, original.
		copy(frame, []byte{0xFF, 0xFB, 0x10, 0xC4})
		b = append(b, frame...)
	}
	return b
}()

// --- uploaded files -----------------------------------------------------------

// widgetUpload serves GET /file-upload/:id/:name, a file stored by
// livechat/upload. The id is an unguessable capability (128 random bits);
// the name segment is cosmetic (the stored name is what
// Content-Disposition carries). Files are served inline with nosniff and
// a sandboxing CSP, so that an uploaded page or SVG opened directly cannot
// run script on chatgate's origin; types that a browser would render as a
// document are sent as attachments.
func (s *Surface) widgetUpload(c *gin.Context) {
	if s.cfg.Files == nil {
		widgetNotFound(c)
		return
	}
	if err := s.cfg.Files.Serve(c.Writer, c.Request, c.Param("id")); err != nil {
		if !errors.Is(err, files.ErrNotFound) {
			s.log.Error().Err(err).Msg("read uploaded file")
			c.JSON(http.StatusInternalServerError, gin.H{"error": "internal server error"})
			return
		}
		widgetNotFound(c)
	}
}
