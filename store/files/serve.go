package files

import (
	"mime"
	"net/http"
	"net/url"
	"strings"
)

// URLPrefix is the path under which stored files are served:
// URLPrefix + <id> + "/" + <url-escaped name>. Every surface that hands out
// file URLs uses it, so one route serves them all.
const URLPrefix = "/file-upload/"

// activeTypes are content types a browser would run as a document of our
// origin; they are served as attachments, never inline.
var activeTypes = []string{"text/html", "application/xhtml", "text/xml", "application/xml",
	"image/svg", "text/javascript", "application/javascript", "application/x-javascript", "application/ecmascript", "text/ecmascript"}

func isActive(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return true
	}
	for _, a := range activeTypes {
		if strings.HasPrefix(mt, a) {
			return true
		}
	}
	return strings.HasSuffix(mt, "+xml")
}

// Serve writes the stored file id to w (ranges and conditional requests
// included): inline under its stored name, or as an attachment for types a
// browser would run as our own page; nosniff and a sandboxing CSP always.
// It returns ErrNotFound (writing nothing) for an unknown id.
func (s *Store) Serve(w http.ResponseWriter, r *http.Request, id string) error {
	meta, f, err := s.Get(r.Context(), id)
	if err != nil {
		return err
	}
	defer f.Close()
	ct := meta.ContentType
	if ct == "" {
		ct = "application/octet-stream"
	}
	disp := "inline"
	if isActive(ct) {
		disp = "attachment"
	}
	if v := mime.FormatMediaType(disp, map[string]string{"filename": meta.Name}); v != "" {
		disp = v
	}
	h := w.Header()
	h.Set("Content-Type", ct)
	h.Set("Content-Disposition", disp)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'none'; img-src 'self' data:; media-src 'self'; style-src 'unsafe-inline'; sandbox")
	// Immutable under its id; private: the id is a secret.
	h.Set("Cache-Control", "private, max-age=31536000, immutable")
	http.ServeContent(w, r, "", meta.CreatedAt, f)
	return nil
}

// IDFromURL returns the file id of a URL (absolute or a path) under
// URLPrefix: "<anything>/file-upload/<id>/<name>".
func IDFromURL(raw string) (string, bool) {
	u, err := url.Parse(raw)
	if err != nil || raw == "" {
		return "", false
	}
	rest, ok := strings.CutPrefix(u.Path, URLPrefix)
	id, _, ok2 := strings.Cut(rest, "/")
	if !ok || !ok2 || !idRe.MatchString(id) {
		return "", false
	}
	return id, true
}

// Path is the URL path of a stored file, to prefix with the public base
// URL.
func Path(f File) string { return URLPrefix + f.ID + "/" + url.PathEscape(f.Name) }
