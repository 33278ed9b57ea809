package agentrtm

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
	"chatgate/store/files"
)

// The agent Web API (§2.11): POST /v3.{4,5,6}/agent/action/<action> with
// "Authorization: Bearer <token>", the same handlers as the RTM (one
// wire.Table), bare payload responses and {"error":{type,message}} with
// the HTTP status of wire.HTTPStatus.

// rtmOnly lists the table's actions refused on the Web API.
var rtmOnly = map[string]bool{"login": true, "ping": true}

// webOrigin tags the desk commands of Web API requests: no RTM connection
// matches it, so the pushes they cause carry no request_id.
const webOrigin = "livechat.agent.web#"

func webFail(g *gin.Context, e *wire.Error) {
	g.Header("Cache-Control", "no-store")
	g.JSON(wire.HTTPStatus(e.Type), gin.H{"error": e})
}

// mountWeb registers the Web API routes of one version.
func (s *Surface) mountWeb(r gin.IRouter, version string) {
	r.POST("/v"+version+"/agent/action/:action", s.serveWeb(version))
}

// webAgent authenticates a Web API request like an RTM login.
func (s *Surface) webAgent(g *gin.Context) (agentView, *wire.Error) {
	scheme, token, ok := strings.Cut(g.GetHeader("Authorization"), " ")
	token = strings.TrimSpace(token)
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" || s.cfg.Authenticate == nil {
		return agentView{}, wire.Errorf(wire.Authentication, "Invalid access token")
	}
	id, ok := s.cfg.Authenticate(token)
	if !ok {
		return agentView{}, wire.Errorf(wire.Authentication, "Invalid access token")
	}
	a, ok := s.d.Router().Agent(id)
	if !ok {
		return agentView{}, wire.Errorf(wire.Authentication, "Invalid access token")
	}
	return agentView{s: s, agent: a}, nil
}

func (s *Surface) serveWeb(version string) gin.HandlerFunc {
	return func(g *gin.Context) {
		action := g.Param("action")
		if _, ok := s.actions[action]; !ok && action != "upload_file" {
			webFail(g, wire.Errorf(wire.Validation, "Unsupported action"))
			return
		}
		if rtmOnly[action] {
			webFail(g, errRTMOnly())
			return
		}
		view, werr := s.webAgent(g)
		if werr != nil {
			webFail(g, werr)
			return
		}
		if v := g.GetHeader("X-API-Version"); v != "" {
			if want, ok := rtmconn.Minor(v); !ok || want < 4 || want > 6 {
				webFail(g, wire.NewError(wire.UnsupportedVersion))
				return
			}
		}
		if action == "upload_file" {
			s.uploadFile(g, view.agent.ID)
			return
		}
		body, err := io.ReadAll(io.LimitReader(g.Request.Body, int64(s.cfg.MaxFrame)+1))
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) || len(body) > s.cfg.MaxFrame {
			webFail(g, wire.Errorf(wire.EntityTooLarge, "Request body exceeds %d bytes", s.cfg.MaxFrame))
			return
		}
		if err != nil {
			webFail(g, wire.Errorf(wire.Validation, "Wrong format of request: unreadable body"))
			return
		}
		body = bytes.TrimSpace(body)
		if len(body) > 0 && body[0] != '{' {
			webFail(g, wire.Errorf(wire.Validation, "Wrong format of request: body is not a JSON object"))
			return
		}
		if len(body) > 0 && !json.Valid(body) {
			webFail(g, wire.Errorf(wire.Validation, "Wrong format of request: malformed JSON"))
			return
		}
		req := &wire.Request{Action: action, Payload: json.RawMessage(body)}
		var later []func()
		k := &caller{agentView: view, origin: webOrigin, after: func(f func()) { later = append(later, f) }}
		ctx, cancel := context.WithTimeout(g.Request.Context(), requestTimeout)
		resp := s.actions.Dispatch(ctx, k, true, req, func(err error) {
			s.log.Error().Err(err).Str("agent", string(view.agent.ID)).Msg("agent web request failed")
		})
		cancel()
		if !resp.Success {
			webFail(g, wire.ErrorOf(resp))
		} else {
			g.Header("Cache-Control", "no-store")
			g.JSON(http.StatusOK, resp.Payload)
		}
		for _, f := range later {
			f()
		}
	}
}

// UploadResponse is upload_file's payload.
type UploadResponse = wire.UploadResponse

// uploadFile stores the multipart field "file" in the files store and
// answers its URL, /file-upload/<id>/<escaped name> (the Rocket.Chat
// surface serves that path) under PublicURL or the request's host.
//
// The file is the agent's ("agent:<id>") and pending until a file event
// references it (store.unreferenced_grace).
func (s *Surface) uploadFile(g *gin.Context, agent model.AgentID) {
	if s.cfg.Files == nil {
		webFail(g, wire.Errorf(wire.Validation, "File uploads are disabled"))
		return
	}
	f, err := wire.ReadUpload(g.Request.Context(), g.Writer, g.Request, s.cfg.Files, "agent:"+string(agent))
	var we *wire.Error
	switch {
	case errors.As(err, &we):
		webFail(g, we)
		return
	case err != nil:
		s.log.Error().Err(err).Msg("agent upload failed")
		webFail(g, wire.NewError(wire.Internal))
		return
	}
	g.Header("Cache-Control", "no-store")
	g.JSON(http.StatusOK, UploadResponse{URL: wire.BaseURL(s.cfg.PublicURL, g.Request) + files.Path(f)})
}
