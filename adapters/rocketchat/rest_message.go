package rocketchat

// rest_message.go: livechat/message, message/:_id, messages.history and
// livechat/upload/:rid.

import (
	"chatgate/store"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"image"
	_ "image/gif" // image dimensions of uploads
	_ "image/jpeg"
	_ "image/png"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"chatgate/core/desk"
	"chatgate/core/model"
	"chatgate/core/ratelimit"
	"chatgate/store/files"
)

// meteorChars is the alphabet of Meteor's Random.id().
const meteorChars = "23456789ABCDEFGHJKLMNPQRSTWXYZabcdefghijkmnopqrstuvwxyz"

// randomID returns a 17-character Meteor-style id.
func randomID() string {
	var b [17]byte
	fillRandomID(&b)
	return string(b[:])
}

// fillRandomID fills b with random Meteor-style characters.
func fillRandomID(b *[17]byte) {
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	for i := range b {
		b[i] = meteorChars[int(b[i])%len(meteorChars)]
	}
}

// newMessageID returns a 17-character Meteor-style id for a message whose
// client chose none: 8 characters of the time in milliseconds, then 9
// random ones (55^9, about 4.6e15, per millisecond). meteorChars is in
// byte order, so these ids sort by time: the idempotency row each message
// writes under its id lands at the end of the store's index, in a page
// the same commit writes anyway, instead of on a random page of its own
// (one more B-tree page written and fsync'd per message). Message ids are
// shown to everyone in the room; they are not secrets.
func newMessageID() string {
	var b [17]byte // one allocation: the string
	fillRandomID(&b)
	ms := uint64(time.Now().UnixMilli())
	for i := 7; i >= 0; i-- {
		b[i] = meteorChars[ms%uint64(len(meteorChars))]
		ms /= uint64(len(meteorChars))
	}
	return string(b[:])
}

// maxMessageID bounds client-chosen message ids.
const maxMessageID = 128

// postVisitorMessage posts a visitor's message to its room under the
// Rocket.Chat _id id (generated when empty). The id is the event's
// ClientKey and its idempotency key (IdemSystem System), so a retry with the
// same id returns the first message and message/:_id finds it. Errors are
// Rocket.Chat errors (room-closed, message-length-exceeds-character-limit
// ...). DDP's sendMessageLivechat can use it too.
func (s *Surface) postVisitorMessage(ctx context.Context, v model.Visitor, conv model.Conversation, id, text string, dr *desk.Draft) (model.Event, error) {
	return s.postVisitorMessageFrom(ctx, v, conv, id, text, dr, "")
}

// postVisitorMessageFrom is postVisitorMessage whose notice carries
// session as its Origin (a DDP session's sendMessageLivechat: its feed
// knows the stream frame of the message is its own method's).
func (s *Surface) postVisitorMessageFrom(ctx context.Context, v model.Visitor, conv model.Conversation, id, text string, dr *desk.Draft, session string) (model.Event, error) {
	if id == "" {
		id = newMessageID()
	}
	if len(id) > maxMessageID {
		return model.Event{}, &rcError{Code: "error-invalid-params", Reason: "Message _id is too long"}
	}
	if !conv.Active() {
		return model.Event{}, errRoomClosed
	}
	draft := desk.Draft{Kind: model.KindMessage, Text: text}
	if dr != nil {
		draft = *dr
	}
	draft.ClientKey = id
	// desk.Post reads the room again rather than taking conv
	// (desk.PostRead): on bbolt that read is a cache hit, 0.06 % of the
	// DDP relay's CPU at 1,000 × 32, and handing conv over showed no gain
	// (docs/performance.md, "Round 7: Rocket.Chat" and "Round 8:
	// Rocket.Chat").
	ev, _, err := s.d.Post(ctx, desk.PostRequest{Conv: conv.ID, Author: visitorAuthor(v), Draft: draft,
		IdemSystem: System, IdemKey: id, Session: session})
	if err != nil {
		return model.Event{}, deskErr(err)
	}
	return ev, nil
}

// restMessageSend is POST livechat/message (§5.10).
func (s *Surface) restMessageSend(c *gin.Context, r *restReq) (map[string]any, error) {
	in, err := bodyStrings(r.body, "token", "rid", "msg")
	if err != nil {
		return nil, err
	}
	id, err := str(r.body, "_id", false)
	if err != nil {
		return nil, err
	}
	ctx := c.Request.Context()
	// The room may come from this node's cache (store.MayBeStale): the
	// desk's Post checks visitor and room again when it commits, and a
	// refusal is only made on a fresh read.
	v, conv, err := s.visitorRoom(store.MayBeStale(ctx), in[0], in[1])
	if err != nil || !conv.Active() {
		v, conv, err = s.visitorRoom(ctx, in[0], in[1])
	}
	if err != nil {
		return nil, err
	}
	ev, err := s.postVisitorMessage(ctx, v, conv, id, in[2], nil)
	if err != nil {
		return nil, err
	}
	return map[string]any{"message": s.restMessage(c, &ev)}, nil
}

// restMessage renders a message for REST: file messages get fileUpload.
func (s *Surface) restMessage(c *gin.Context, e *model.Event) *message {
	m := s.renderMessage(e)
	if m == nil {
		return nil
	}
	if e.Kind == model.KindFile && e.File != nil && !e.Deleted {
		if _, path, ok := parseUploadURL(e.File.URL); ok {
			m.fileUpload = map[string]any{"publicFilePath": s.widgetServerURL(c.Request) + path, "type": e.File.ContentType, "size": e.File.Size}
		}
	}
	return m
}

// findMessage returns the visible, not deleted event of conv whose
// Rocket.Chat _id is id; errInvalidMessage otherwise (a message of another
// room is as unknown as a message that does not exist).
func (s *Surface) findMessage(ctx context.Context, conv model.Conversation, id string) (model.Event, error) {
	if id == "" || len(id) > maxMessageID {
		return model.Event{}, errInvalidMessage
	}
	st := s.d.Store()
	var found *model.Event
	if idem, err := st.Idempotent(ctx, System, id); err == nil && idem.Conv == conv.ID {
		evs, err := st.Events(ctx, conv.ID, idem.Seq, 1)
		if err != nil {
			return model.Event{}, err
		}
		if len(evs) == 1 && messageID(&evs[0]) == id {
			found = &evs[0]
		}
	}
	if found == nil {
		// Events of other surfaces have no idempotency key: scan.
		evs, err := st.Events(ctx, conv.ID, 1, 0)
		if err != nil {
			return model.Event{}, err
		}
		for i := range evs {
			if messageID(&evs[i]) == id {
				found = &evs[i]
				break
			}
		}
	}
	if found == nil || found.Deleted || s.renderMessage(found) == nil {
		return model.Event{}, errInvalidMessage
	}
	return *found, nil
}

// restMessageGet is GET livechat/message/:_id (§5.11); the message must
// belong to the room (Rocket.Chat does not check this).
func (s *Surface) restMessageGet(c *gin.Context, _ *restReq) (map[string]any, error) {
	token, err := query(c, "token", true)
	if err != nil {
		return nil, err
	}
	rid, err := query(c, "rid", true)
	if err != nil {
		return nil, err
	}
	ctx := c.Request.Context()
	_, conv, err := s.visitorRoom(ctx, token, rid)
	if err != nil {
		return nil, err
	}
	ev, err := s.findMessage(ctx, conv, c.Param("_id"))
	if err != nil {
		return nil, err
	}
	return map[string]any{"message": s.restMessage(c, &ev)}, nil
}

// ownMessage finds a message the visitor wrote in its room.
func (s *Surface) ownMessage(ctx context.Context, token, rid, id string, notAllowed error) (model.Visitor, model.Conversation, model.Event, error) {
	v, conv, err := s.visitorRoom(ctx, token, rid)
	if err != nil {
		return v, conv, model.Event{}, err
	}
	ev, err := s.findMessage(ctx, conv, id)
	if err != nil {
		return v, conv, ev, err
	}
	if ev.Author.Kind != model.AuthorVisitor || ev.Author.ID != string(v.ID) || ev.Kind != model.KindMessage {
		return v, conv, ev, notAllowed
	}
	return v, conv, ev, nil
}

// changeErr maps a desk edit/delete error.
func changeErr(err, notAllowed error) error {
	if errors.Is(err, desk.ErrForbidden) {
		return notAllowed
	}
	if errors.Is(err, desk.ErrNotFound) {
		return errInvalidMessage
	}
	return deskErr(err)
}

// restMessageEdit is PUT livechat/message/:_id (§5.11).
func (s *Surface) restMessageEdit(c *gin.Context, r *restReq) (map[string]any, error) {
	in, err := bodyStrings(r.body, "token", "rid", "msg")
	if err != nil {
		return nil, err
	}
	ctx := c.Request.Context()
	v, conv, ev, err := s.ownMessage(ctx, in[0], in[1], c.Param("_id"), errEditNotAllowed)
	if err != nil {
		return nil, err
	}
	ev, err = s.d.EditEvent(ctx, conv.ID, ev.Seq, visitorAuthor(v), in[2], "")
	if err != nil {
		return nil, changeErr(err, errEditNotAllowed)
	}
	return map[string]any{"message": s.restMessage(c, &ev)}, nil
}

// restMessageDelete is DELETE livechat/message/:_id (§5.11).
func (s *Surface) restMessageDelete(c *gin.Context, r *restReq) (map[string]any, error) {
	in, err := bodyStrings(r.body, "token", "rid")
	if err != nil {
		return nil, err
	}
	ctx := c.Request.Context()
	v, conv, ev, err := s.ownMessage(ctx, in[0], in[1], c.Param("_id"), errDelNotAllowed)
	if err != nil {
		return nil, err
	}
	ev, err = s.d.DeleteEvent(ctx, conv.ID, ev.Seq, visitorAuthor(v), "")
	if err != nil {
		return nil, changeErr(err, errDelNotAllowed)
	}
	return map[string]any{"message": map[string]any{"_id": messageID(&ev), "ts": ev.EditedAt}}, nil
}

// History limits.
const (
	historyDefault = 20
	historyMax     = 1000
	historyChunk   = 200
)

// restHistory is GET livechat/messages.history/:rid (§5.12): the room's
// messages visible to the visitor, newest first; deleted messages are left
// out (Rocket.Chat's default, Message_KeepHistory off).
func (s *Surface) restHistory(c *gin.Context, _ *restReq) (map[string]any, error) {
	token := c.Query("token")
	if token == "" {
		return nil, errNoTokenParam
	}
	ctx := c.Request.Context()
	_, conv, err := s.visitorRoom(ctx, token, c.Param("rid"))
	if err != nil {
		return nil, err
	}
	limit := historyDefault
	if l, err := strconv.Atoi(c.Query("limit")); err == nil && l > 0 {
		limit = min(l, historyMax)
	}
	var end time.Time
	if e := c.Query("end"); e != "" {
		if t, err := time.Parse(time.RFC3339Nano, e); err == nil {
			end = t
		}
	}
	out := []any{}
	st := s.d.Store()
	for hi := conv.LastSeq; hi > 0 && len(out) < limit; {
		lo := uint64(1)
		if hi > historyChunk {
			lo = hi - historyChunk + 1
		}
		evs, err := st.Events(ctx, conv.ID, lo, int(hi-lo+1))
		if err != nil {
			return nil, err
		}
		for i := len(evs) - 1; i >= 0 && len(out) < limit; i-- {
			e := &evs[i]
			if e.Deleted || (!end.IsZero() && !e.At.Before(end)) {
				continue
			}
			if m := s.restMessage(c, e); m != nil {
				out = append(out, m)
			}
		}
		hi = lo - 1
	}
	return map[string]any{"messages": out}, nil
}

// --- uploads ------------------------------------------------------------------------

// uploadFailure is an upload error body ({"reason": ..., "success": false}).
func uploadFailure(reason string, extra map[string]any) error {
	body := map[string]any{"reason": reason}
	for k, v := range extra {
		body[k] = v
	}
	return &failC{body: body}
}

func humanSize(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GB", n>>30)
	case n >= 1<<20:
		return fmt.Sprintf("%d MB", n>>20)
	case n >= 1<<10:
		return fmt.Sprintf("%d KB", n>>10)
	}
	return fmt.Sprintf("%d B", n)
}

// maxUploadField bounds the text fields of an upload form.
const maxUploadField = 16 << 10

// restUpload is POST livechat/upload/:rid (§5.20): header x-visitor-token,
// multipart field "file" (+ "description", "msg"). The file is stored with
// cfg.Files and posted as a file event whose URL is
// <base>/file-upload/<file id>/<escaped name> (served by widget*.go).
func (s *Surface) restUpload(c *gin.Context, _ *restReq) (map[string]any, error) {
	ctx := c.Request.Context()
	v, conv, err := s.visitorRoom(ctx, c.GetHeader("x-visitor-token"), c.Param("rid"))
	if err != nil || !conv.Active() {
		if err != nil && !errors.Is(err, errInvalidToken) && !errors.Is(err, errInvalidRoom) {
			return nil, err
		}
		return nil, errUnauthorized
	}
	if s.cfg.Files == nil {
		return nil, uploadFailure("error-file-upload-disabled", nil)
	}
	if !ratelimit.Exempt(ctx) && !s.cfg.Uploads.Allow(string(v.ID)) {
		return nil, errTooManyRequests
	}
	maxSize := s.cfg.Files.MaxSize()
	tooBig := uploadFailure("error-size-not-allowed", map[string]any{"sizeAllowed": humanSize(maxSize)})
	c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, maxSize+1<<20)
	mr, err := c.Request.MultipartReader()
	if err != nil {
		return nil, uploadFailure("error-invalid-upload", nil)
	}
	var (
		stored      *files.File
		description string
	)
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, tooBig
		}
		if err != nil {
			return nil, uploadFailure("error-invalid-upload", nil)
		}
		switch part.FormName() {
		case "file":
			if stored != nil {
				part.Close()
				continue
			}
			name := part.FileName()
			if name == "" {
				name = "file"
			}
			ctype := part.Header.Get("Content-Type")
			if mt, _, err := mime.ParseMediaType(ctype); err == nil {
				ctype = mt
			} else {
				ctype = ""
			}
			f, err := s.cfg.Files.PutPending(ctx, string(v.ID), name, ctype, part)
			part.Close()
			switch {
			case errors.Is(err, files.ErrTooLarge), errors.As(err, &mbe):
				return nil, tooBig
			case errors.Is(err, files.ErrQuota):
				return nil, uploadFailure("error-file-upload-quota", nil)
			case err != nil:
				return nil, err
			}
			stored = &f
		case "description", "msg":
			b, err := io.ReadAll(io.LimitReader(part, maxUploadField+1))
			part.Close()
			if errors.As(err, &mbe) {
				return nil, tooBig
			}
			if err != nil || len(b) > maxUploadField {
				return nil, uploadFailure("error-invalid-upload", nil)
			}
			if part.FormName() == "description" || description == "" {
				description = string(b)
			}
		default:
			part.Close()
		}
	}
	if stored == nil {
		return nil, uploadFailure("error-invalid-upload", map[string]any{"error": "[invalid-file]"})
	}
	mf := &model.File{Name: stored.Name, URL: s.widgetServerURL(c.Request) + uploadURLPath(stored.ID, stored.Name),
		ContentType: stored.ContentType, Size: stored.Size}
	if strings.HasPrefix(mf.ContentType, "image/") {
		if _, fh, err := s.cfg.Files.Get(ctx, stored.ID); err == nil {
			if cfg, _, err := image.DecodeConfig(fh); err == nil {
				mf.Width, mf.Height = cfg.Width, cfg.Height
			}
			fh.Close()
		}
	}
	// Referenced by the message posted below: claimed first, so that the
	// sweep of unreferenced uploads never takes a sent file.
	if _, err := s.cfg.Files.Claim(ctx, stored.ID); err != nil {
		return nil, err
	}
	description = truncateUTF8(description, s.d.Limits().MaxText)
	ev, err := s.postVisitorMessage(ctx, v, conv, "", "", &desk.Draft{Kind: model.KindFile, File: mf, Text: description})
	if err != nil {
		return nil, err
	}
	out := s.restMessage(c, &ev)
	if out == nil {
		return nil, fmt.Errorf("file message %s has no visitor rendering", ev.ID)
	}
	// The answer is the message itself, with newRoom and showConnecting
	// false and success true.
	out.method, out.answer = true, true
	restJSON(c, http.StatusOK, out)
	return nil, nil
}
