package customer

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"chatgate/adapters/livechat/rtmconn"
	"chatgate/adapters/livechat/wire"
	"chatgate/core/model"
	"chatgate/core/ratelimit"
	"chatgate/store"
	"chatgate/store/files"
)

func webFail(g *gin.Context, e *wire.Error) {
	g.JSON(wire.HTTPStatus(e.Type), gin.H{"error": e})
}

// serveAction is POST /v3.x/customer/action/:action?organization_id=…
// with "Authorization: Bearer <customer token>": the body is the action's
// payload, the answer the bare response payload, errors
// {"error":{"type","message"}}.
func (s *Surface) serveAction(version string) gin.HandlerFunc {
	return func(g *gin.Context) {
		s.cors(g)
		q := g.Request.URL.Query()
		if q.Get("organization_id") == "" && q.Get("license_id") == "" {
			webFail(g, wire.Errorf(wire.Validation, "organization_id is required"))
			return
		}
		if !s.orgOK(g.Request) {
			webFail(g, wire.NewError(wire.LicenseNotFound))
			return
		}
		c := s.newClient(version, func([]byte) error { return nil }, func(string) {})
		c.Web = true
		scheme, tok, ok := strings.Cut(g.GetHeader("Authorization"), " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") {
			webFail(g, wire.Errorf(wire.Authentication, "Invalid access token"))
			return
		}
		id, exp, err := s.Authenticate(g.Request.Context(), strings.TrimSpace(tok))
		if err != nil {
			if !errors.Is(err, errBadToken) {
				s.log.Error().Err(err).Msg("customer web auth")
				webFail(g, wire.NewError(wire.Internal))
				return
			}
			webFail(g, wire.Errorf(wire.Authentication, "Invalid access token"))
			return
		}
		c.me, c.expires = id, exp
		c.loggedIn.Store(true)
		action := g.Param("action")
		if action == "upload_file" {
			s.uploadFile(g, id)
			return
		}
		body, err := io.ReadAll(io.LimitReader(g.Request.Body, int64(s.cfg.MaxFrame)+1))
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				webFail(g, wire.Errorf(wire.EntityTooLarge, "Request exceeds %d bytes", s.cfg.MaxFrame))
				return
			}
			webFail(g, wire.Errorf(wire.Validation, "Wrong format of request"))
			return
		}
		if len(body) > s.cfg.MaxFrame {
			webFail(g, wire.Errorf(wire.EntityTooLarge, "Request exceeds %d bytes", s.cfg.MaxFrame))
			return
		}
		req := &wire.Request{Action: action}
		if p := bytes.TrimSpace(body); len(p) > 0 && !bytes.Equal(p, []byte("null")) {
			if p[0] != '{' || !json.Valid(p) {
				webFail(g, wire.Errorf(wire.Validation, "Wrong format of request: payload must be a JSON object"))
				return
			}
			req.Payload = p
		}
		if v := g.GetHeader("X-API-Version"); v != "" {
			if werr := rtmconn.CheckVersion(c.Version, v, versions()); werr != nil {
				webFail(g, werr)
				return
			}
		}
		ctx, cancel := contextWithTimeout(g)
		defer cancel()
		c.cur = c.Begin()
		resp := s.actions.Dispatch(ctx, c, true, req, c.logError)
		c.cur.Answered()
		if !resp.Success {
			b, _ := json.Marshal(resp.Payload)
			var e struct {
				Error wire.Error `json:"error"`
			}
			_ = json.Unmarshal(b, &e)
			g.Data(wire.HTTPStatus(e.Error.Type), "application/json; charset=utf-8", b)
			return
		}
		b, err := wire.Encode(resp.Payload)
		if err != nil {
			webFail(g, wire.NewError(wire.Internal))
			return
		}
		g.Data(http.StatusOK, "application/json; charset=utf-8", b)
	}
}

// UploadResponse is upload_file's payload.
type UploadResponse = wire.UploadResponse

// uploadFile stores multipart field "file" (at most Files.MaxSize()
// bytes) and answers {"url"} under /file-upload/<id>/<name>, the URL shape
// the Rocket.Chat surface serves stored files at.
//
// Only a customer with an active chat may upload (issue 16, Medium 6), at
// most Uploads' rate, within the per-customer quota (limit_reached); the
// file stays pending until a file event of this customer references it,
// and is removed after store.unreferenced_grace otherwise.
func (s *Surface) uploadFile(g *gin.Context, me model.VisitorID) {
	if s.cfg.Files == nil {
		webFail(g, wire.Errorf(wire.ServiceUnavailable, "Uploads are disabled"))
		return
	}
	if _, active, err := s.d.OpenConversation(g.Request.Context(), me); err != nil || !active {
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			s.log.Error().Err(err).Msg("customer upload")
			webFail(g, wire.NewError(wire.Internal))
			return
		}
		webFail(g, wire.Errorf(wire.ChatInactive, "Uploads need an active chat"))
		return
	}
	if !ratelimit.Exempt(g.Request.Context()) && !s.cfg.Uploads.Allow(string(me)) {
		webFail(g, wire.Errorf(wire.TooManyRequests, "Too many uploads: try again later"))
		return
	}
	f, err := wire.ReadUpload(g.Request.Context(), g.Writer, g.Request, s.cfg.Files, string(me))
	var we *wire.Error
	switch {
	case errors.As(err, &we):
		webFail(g, we)
		return
	case err != nil:
		s.log.Error().Err(err).Msg("customer upload")
		webFail(g, wire.NewError(wire.Internal))
		return
	}
	g.JSON(http.StatusOK, UploadResponse{URL: s.baseURL(g) + files.Path(f)})
}

func (s *Surface) baseURL(g *gin.Context) string { return wire.BaseURL(s.cfg.PublicURL, g.Request) }

func contextWithTimeout(g *gin.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(g.Request.Context(), requestTimeout)
}
