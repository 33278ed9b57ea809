// Package visitorv2 serves LiveChat's visitor chat REST API v2
// (/visitors/<VISITOR_ID>/chat/{start,get_pending_messages,send_message,close},
// X-API-Version: 2): the polling protocol of legacy LiveChat widgets and
// bridges. The visitor id and the secured_session_id are foreign ids kept in
// the store's mapping tables; message_id is the conversation's sequence
// number, so the cursor survives restarts.
package visitorv2

import (
	"context"
	"errors"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
	"github.com/rs/zerolog"

	"chatgate/core/desk"
	"chatgate/core/model"
	"chatgate/store"
)

// System is the mapping-table namespace of this surface's foreign ids.
const System = "livechat.v2"

// Mapping kinds.
const (
	kindVisitor = "visitor"
	kindSession = "session"
)

// Limits of the v2 API (LiveChat's documented ones where they exist).
const (
	maxVisitorID  = 1024 // VISITOR_ID, documented
	maxWelcome    = 1024 // welcome_message characters, documented
	maxName       = 256
	maxEmail      = 254
	maxPollEvents = 500 // events per get_pending_messages answer; page with last_message_id
)

// Config configures the surface.
type Config struct {
	// LicenceID is the licence_id clients must send.
	LicenceID string
	// PollTimeout closes a chat whose visitor stopped polling (default 30s).
	PollTimeout time.Duration
	// SweepEvery is how often idle chats are looked for (default
	// PollTimeout/6, at least 100ms).
	SweepEvery time.Duration
	// MaxBody caps request bodies in bytes (default 64 KiB).
	MaxBody int64
	// Polls, if set, shares the last poll times with the other nodes of
	// a deployment (a poll may land on any node); nil on one node.
	Polls Polls
}

// Polls shares when each v2 chat was last polled between the nodes of a
// deployment, and lets one node at a time close the idle ones, so that
// the poll timeout closes a chat once whichever nodes its polls reached
// (and a second close would fail the conversation's optimistic check
// anyway, answered ErrInactive).
type Polls interface {
	// Record stores the newest poll time of each chat.
	Record(ctx context.Context, seen map[model.ConvID]time.Time) error
	// Idle lists chats whose newest recorded poll is before t.
	Idle(ctx context.Context, before time.Time) ([]model.ConvID, error)
	// Forget drops chats (closed).
	Forget(ctx context.Context, ids []model.ConvID) error
	// Exclusive runs fn while this node holds the lease name, until ctx
	// ends (fn's context ends when the lease is lost).
	Exclusive(ctx context.Context, name string, fn func(ctx context.Context))
}

// Surface is the v2 visitor API.
type Surface struct {
	d   *desk.Desk
	cfg Config
	log zerolog.Logger

	mu       sync.Mutex
	lastSeen map[model.ConvID]time.Time // open v2 chats and their last request
	// dirty are the chats polled since the last Record (Polls only).
	dirty map[model.ConvID]time.Time

	smu      sync.RWMutex
	sessions map[string]sessionRef // by secured_session_id; see session

	// bufs holds the buffers poll answers are encoded into (*[]byte).
	bufs sync.Pool
}

// New returns the surface.
func New(d *desk.Desk, cfg Config, log zerolog.Logger) *Surface {
	if cfg.PollTimeout <= 0 {
		cfg.PollTimeout = 30 * time.Second
	}
	if cfg.SweepEvery <= 0 {
		cfg.SweepEvery = max(cfg.PollTimeout/6, 100*time.Millisecond)
	}
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = 64 << 10
	}
	s := &Surface{d: d, cfg: cfg, log: log.With().Str("surface", "livechat.v2").Logger(),
		lastSeen: make(map[model.ConvID]time.Time), dirty: make(map[model.ConvID]time.Time),
		sessions: make(map[string]sessionRef)}
	s.bufs.New = func() any { b := make([]byte, 0, 1024); return &b }
	return s
}

// Name implements the gateway's Surface.
func (s *Surface) Name() string { return System }

// Mount registers the routes.
func (s *Surface) Mount(r gin.IRouter) {
	g := r.Group("/visitors/:visitor_id/chat")
	g.POST("/start", s.start)
	g.GET("/get_pending_messages", s.pending)
	g.POST("/send_message", s.send)
	g.POST("/close", s.close)
}

// Run closes chats whose visitor stopped polling, until ctx ends. Chats that
// were open when the gateway stopped get a fresh grace period.
func (s *Surface) Run(ctx context.Context) error {
	now := time.Now()
	err := s.d.Store().Conversations(ctx, func(c model.Conversation) bool {
		if c.Active() && c.Origin == System {
			s.touch(c.ID, now)
		}
		return true
	})
	if err != nil && ctx.Err() == nil {
		s.log.Error().Err(err).Msg("load open v2 chats")
	}
	if s.cfg.Polls != nil {
		return s.runShared(ctx)
	}
	t := time.NewTicker(s.cfg.SweepEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case now := <-t.C:
			s.sweep(ctx, now)
		}
	}
}

func (s *Surface) touch(id model.ConvID, at time.Time) {
	s.mu.Lock()
	s.lastSeen[id] = at
	if s.cfg.Polls != nil {
		s.dirty[id] = at
	}
	s.mu.Unlock()
}

func (s *Surface) forget(id model.ConvID) {
	s.mu.Lock()
	delete(s.lastSeen, id)
	delete(s.dirty, id)
	s.mu.Unlock()
}

// recordEvery is how often a node writes its chats' poll times to Polls:
// a poll costs no write, and a poll time is at most this stale elsewhere.
func (s *Surface) recordEvery() time.Duration {
	return min(max(s.cfg.PollTimeout/10, 100*time.Millisecond), 2*time.Second)
}

// runShared is Run with several nodes: this node records its chats' poll
// times every recordEvery, and whichever node holds the sweeper lease
// closes the chats idle everywhere.
func (s *Surface) runShared(ctx context.Context) error {
	go s.cfg.Polls.Exclusive(ctx, System+".sweeper", func(ctx context.Context) {
		t := time.NewTicker(s.cfg.SweepEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-t.C:
				s.sweepShared(ctx, now)
			}
		}
	})
	t := time.NewTicker(s.recordEvery())
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			s.record(context.WithoutCancel(ctx))
			return nil
		case <-t.C:
			s.record(ctx)
		}
	}
}

// record writes the poll times seen here since the last call.
func (s *Surface) record(ctx context.Context) {
	s.mu.Lock()
	seen := s.dirty
	if len(seen) == 0 {
		s.mu.Unlock()
		return
	}
	s.dirty = make(map[model.ConvID]time.Time)
	s.mu.Unlock()
	if err := s.cfg.Polls.Record(ctx, seen); err != nil {
		s.mu.Lock()
		for id, at := range seen {
			if cur, ok := s.dirty[id]; !ok || cur.Before(at) {
				s.dirty[id] = at
			}
		}
		s.mu.Unlock()
		if ctx.Err() == nil {
			s.log.Warn().Err(err).Msg("record v2 poll times")
		}
	}
}

// sweepShared closes the chats whose newest poll, on any node, is older
// than the timeout.
func (s *Surface) sweepShared(ctx context.Context, now time.Time) {
	idle, err := s.cfg.Polls.Idle(ctx, now.Add(-s.cfg.PollTimeout))
	if err != nil {
		if ctx.Err() == nil {
			s.log.Error().Err(err).Msg("list idle v2 chats")
		}
		return
	}
	var gone []model.ConvID
	for _, id := range idle {
		s.mu.Lock()
		at, ok := s.lastSeen[id]
		s.mu.Unlock()
		if ok && now.Sub(at) <= s.cfg.PollTimeout {
			continue // polled here since; recorded soon
		}
		if s.closeIdle(ctx, id) {
			gone = append(gone, id)
		}
	}
	if len(gone) > 0 {
		if err := s.cfg.Polls.Forget(ctx, gone); err != nil && ctx.Err() == nil {
			s.log.Warn().Err(err).Msg("forget closed v2 chats")
		}
	}
}

// closeIdle closes a chat whose visitor stopped polling; it reports
// whether the chat is now closed (or gone).
func (s *Surface) closeIdle(ctx context.Context, id model.ConvID) bool {
	c, err := s.d.Store().Conversation(ctx, id)
	if err != nil {
		s.forget(id)
		return errors.Is(err, store.ErrNotFound)
	}
	by := model.Author{Kind: model.AuthorVisitor, ID: string(c.Visitor)}
	_, err = s.d.Close(ctx, id, by, "visitor left: no poll for "+s.cfg.PollTimeout.String(), "")
	if err == nil || errors.Is(err, desk.ErrInactive) {
		s.forget(id)
		return true
	}
	if ctx.Err() == nil {
		s.log.Error().Err(err).Str("conv", string(id)).Msg("close idle chat")
	}
	return false
}

func (s *Surface) sweep(ctx context.Context, now time.Time) {
	var idle []model.ConvID
	s.mu.Lock()
	for id, at := range s.lastSeen {
		if now.Sub(at) > s.cfg.PollTimeout {
			idle = append(idle, id)
		}
	}
	s.mu.Unlock()
	for _, id := range idle {
		s.closeIdle(ctx, id)
	}
}

// --- errors ----------------------------------------------------------------

// fail answers with the REST v2 error body {"error": "..."} (the shape
// LiveChat's own PHP client parses).
func (s *Surface) fail(c *gin.Context, status int, msg string) {
	b := append(appendString(append(make([]byte, 0, len(msg)+16), `{"error":`...), msg), '}')
	s.reply(c, status, b)
}

// Answers that never change, encoded once.
var (
	noEvents = []byte(`{"events":[]}`) // most polls
	success  = []byte(`{"success":true}`)
	banned   = []byte(`{"banned":true,"secured_session_id":""}`)
)

// jsonTypeHdr is the Content-Type of JSON answers, shared by all of them
// (net/http only reads it).
var jsonTypeHdr = []string{"application/json; charset=utf-8"}

// reply writes an encoded JSON body, or JSONP for GET requests with a
// valid ?callback=.
func (s *Surface) reply(c *gin.Context, status int, body []byte) {
	var cb string
	// c.Query parses the query string once more (begin has parsed it
	// already); most requests have no callback, which the raw query shows
	// (a key can only spell "callback" with the word or with escapes).
	if raw := c.Request.URL.RawQuery; c.Request.Method == http.MethodGet &&
		(strings.Contains(raw, "callback") || strings.Contains(raw, "%")) {
		cb = c.Query("callback")
	}
	if cb != "" && callbackRe.MatchString(cb) {
		c.Data(status, "application/javascript; charset=utf-8", append(append([]byte(cb+"("), body...), ')', ';'))
		return
	}
	// As c.Data, without a new header value slice per answer.
	c.Writer.Header()["Content-Type"] = jsonTypeHdr
	c.Status(status)
	_, _ = c.Writer.Write(body) // a failed write is the client gone

}

var callbackRe = regexp.MustCompile(`^[A-Za-z_$][A-Za-z0-9_$.]{0,63}$`)

func (s *Surface) deskError(c *gin.Context, err error) {
	switch {
	case errors.Is(err, desk.ErrInactive):
		s.fail(c, http.StatusBadRequest, "Chat is closed")
	case errors.Is(err, desk.ErrTooLarge):
		s.fail(c, http.StatusBadRequest, "Message is too long")
	case errors.Is(err, desk.ErrInvalid):
		s.fail(c, http.StatusBadRequest, err.Error())
	case errors.Is(err, desk.ErrNotFound), errors.Is(err, desk.ErrForbidden):
		s.fail(c, http.StatusNotFound, "Chat not found")
	case errors.Is(err, desk.ErrBanned):
		s.fail(c, http.StatusForbidden, "Visitor is banned")
	case errors.Is(err, desk.ErrRateLimited):
		s.fail(c, http.StatusTooManyRequests, "Too many requests")
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		s.fail(c, http.StatusServiceUnavailable, "Request cancelled")
	default:
		s.log.Error().Err(err).Str("path", c.FullPath()).Msg("v2 request failed")
		s.fail(c, http.StatusInternalServerError, "Internal server error")
	}
}

// --- request plumbing --------------------------------------------------------

// request is a v2 request's common part: checked version header, licence
// and visitor id, and its parameters.
type request struct {
	visitorID   string
	query, body values
	pairs       [6]kv // query's first pairs, allocated with the request
}

// get returns parameter k: its first value in the body if the body has
// it, else its first value in the query string.
func (r *request) get(k string) string {
	if v, ok := r.body.lookup(k); ok {
		return v
	}
	return r.query.Get(k)
}

// begin parses and checks what every v2 call carries. It answers the error
// itself and returns false when the request cannot go on.
func (s *Surface) begin(c *gin.Context) (*request, bool) {
	// X-API-Version is documented as required. A JSONP script tag cannot
	// send headers, so a missing header is tolerated; a wrong one is not.
	// (Looked up by its canonical key: GetHeader would canonicalize
	// "X-API-Version" into a new string on every request.)
	if v := c.Request.Header["X-Api-Version"]; len(v) > 0 && v[0] != "" && v[0] != "2" {
		s.fail(c, http.StatusBadRequest, "Unsupported X-API-Version: this API is version 2")
		return nil, false
	}
	vid := c.Param("visitor_id")
	if vid == "" || len(vid) > maxVisitorID || !utf8.ValidString(vid) {
		s.fail(c, http.StatusBadRequest, "visitor_id must be 1 to 1024 characters")
		return nil, false
	}
	r := &request{visitorID: vid}
	q, b, err := params(c.Request, s.cfg.MaxBody, r.pairs[:0])
	if errors.Is(err, errTooLarge) {
		s.fail(c, http.StatusRequestEntityTooLarge, "Request body too large")
		return nil, false
	}
	if err != nil {
		s.fail(c, http.StatusBadRequest, err.Error())
		return nil, false
	}
	r.query, r.body = q, b
	lic := r.get("licence_id")
	if lic == "" {
		lic = r.get("license_id") // spelling some clients use
	}
	switch {
	case lic == "":
		s.fail(c, http.StatusBadRequest, "Missing licence_id")
		return nil, false
	case lic != s.cfg.LicenceID:
		s.fail(c, http.StatusBadRequest, "Wrong licence_id")
		return nil, false
	}
	return r, true
}

// session resolves secured_session_id to the caller's conversation. A
// session of another visitor id is reported as unknown, never revealed.
//
// A session id and a visitor id, once bound to a conversation and a
// visitor, stay bound while the conversation exists (a mapping is never
// rebound, and a visitor with a conversation is never forgotten), so what
// the two lookups found is remembered per session (sessions) and only the
// conversation is read on later requests: it must still exist and still
// belong to the same visitor (desk.ChangeVisitor moves conversations:
// TestRememberedSessionNeverWidens), else the lookups are made again.
func (s *Surface) session(c *gin.Context, r *request) (model.Conversation, bool) {
	sid := r.get("secured_session_id")
	if sid == "" {
		s.fail(c, http.StatusBadRequest, "Missing secured_session_id")
		return model.Conversation{}, false
	}
	ctx := c.Request.Context()
	st := s.d.Store()
	s.smu.RLock()
	ref, ok := s.sessions[sid]
	s.smu.RUnlock()
	if ok && ref.visitor == r.visitorID {
		conv, err := st.Conversation(ctx, ref.conv)
		if err == nil && conv.Visitor == ref.core {
			return conv, true
		}
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			s.deskError(c, err)
			return model.Conversation{}, false
		}
		s.smu.Lock()
		delete(s.sessions, sid)
		s.smu.Unlock()
	}
	convID, err := st.Resolve(ctx, store.MapKey{System: System, Tenant: s.cfg.LicenceID, Kind: kindSession, Foreign: sid})
	if err == nil {
		var vid string
		vid, err = st.Resolve(ctx, store.MapKey{System: System, Tenant: s.cfg.LicenceID, Kind: kindVisitor, Foreign: r.visitorID})
		if err == nil {
			var conv model.Conversation
			conv, err = st.Conversation(ctx, model.ConvID(convID))
			if err == nil && string(conv.Visitor) == vid {
				s.remember(sid, sessionRef{visitor: r.visitorID, conv: conv.ID, core: conv.Visitor})
				return conv, true
			}
		}
	}
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		s.deskError(c, err)
		return model.Conversation{}, false
	}
	s.fail(c, http.StatusNotFound, "Chat not found: unknown secured_session_id for this visitor")
	return model.Conversation{}, false
}

// sessionRef is what a secured_session_id was found to open.
type sessionRef struct {
	visitor string // the VISITOR_ID of the request path
	conv    model.ConvID
	core    model.VisitorID // conv's visitor when looked up
}

// maxSessions bounds the remembered sessions; past it they are all
// forgotten and looked up again as they come back (closed chats' sessions
// would otherwise accumulate).
const maxSessions = 1 << 16

func (s *Surface) remember(sid string, ref sessionRef) {
	s.smu.Lock()
	if len(s.sessions) >= maxSessions {
		clear(s.sessions)
	}
	s.sessions[sid] = ref
	s.smu.Unlock()
}

// pollCopyAge is how old a node's copy of a conversation may be for a poll
// to answer "nothing new" from it (store.RecentCopy): on several nodes the
// copy follows every commit through the other nodes' notices, so this only
// bounds how long a lost notice could hold an event back.
const pollCopyAge = 2 * time.Second

// quietPoll answers a poll that finds nothing new from the node's copies
// (mappings, and the conversation at most pollCopyAge old) without a
// round trip to a shared store, and reports whether it answered. It
// answers only "no events" and only when the copy is the caller's
// conversation with nothing after last_message_id: that shows nothing,
// and a copy behind another node's commit answers as the same poll made
// a moment earlier would. Otherwise, when what it read was read fresh (a
// store without copies: bbolt), it returns that conversation, the
// caller's, for the poll to go on with (fresh); else the poll reads again
// (session), so that what it shows and who may see it are decided fresh.
func (s *Surface) quietPoll(c *gin.Context, r *request) (conv model.Conversation, quiet, fresh bool) {
	sid, cursor := r.get("secured_session_id"), r.get("last_message_id")
	if sid == "" || cursor == "" {
		return conv, false, false
	}
	from, err := strconv.ParseUint(cursor, 10, 64)
	if err != nil {
		return conv, false, false
	}
	ctx := c.Request.Context()
	st := s.d.Store()
	// The ids the session was found to open (remembered by session, or
	// looked up: mappings are never rebound).
	s.smu.RLock()
	ref, ok := s.sessions[sid]
	s.smu.RUnlock()
	looked := !ok || ref.visitor != r.visitorID
	if looked {
		convID, err := st.Resolve(ctx, store.MapKey{System: System, Tenant: s.cfg.LicenceID, Kind: kindSession, Foreign: sid})
		if err != nil {
			return conv, false, false
		}
		vid, err := st.Resolve(ctx, store.MapKey{System: System, Tenant: s.cfg.LicenceID, Kind: kindVisitor, Foreign: r.visitorID})
		if err != nil {
			return conv, false, false
		}
		ref = sessionRef{visitor: r.visitorID, conv: model.ConvID(convID), core: model.VisitorID(vid)}
	}
	rctx, copied := store.RecentCopy(ctx, pollCopyAge)
	conv, err = st.Conversation(rctx, ref.conv)
	if err != nil || conv.Visitor != ref.core {
		return model.Conversation{}, false, false
	}
	if looked {
		s.remember(sid, ref)
	}
	if conv.LastSeq >= max(from, 1) {
		return conv, false, !copied()
	}
	if conv.Active() {
		s.touch(conv.ID, time.Now())
	}
	s.reply(c, http.StatusOK, noEvents)
	return conv, true, false
}

// --- handlers ----------------------------------------------------------------

func (s *Surface) start(c *gin.Context) {
	r, ok := s.begin(c)
	if !ok {
		return
	}
	welcome := r.get("welcome_message")
	name, email, group := r.get("name"), r.get("email"), r.get("group")
	if name == "" {
		name = r.get("nick")
	}
	if name == "" {
		name = "Client"
	}
	switch {
	case welcome == "":
		s.fail(c, http.StatusBadRequest, "Missing welcome_message")
		return
	case utf8.RuneCountInString(welcome) > maxWelcome:
		s.fail(c, http.StatusBadRequest, "welcome_message is longer than 1024 characters")
		return
	case utf8.RuneCountInString(name) > maxName || len(email) > maxEmail:
		s.fail(c, http.StatusBadRequest, "name or email too long")
		return
	}
	var dept model.DeptID
	if group != "" {
		if _, err := strconv.ParseUint(group, 10, 32); err != nil {
			s.fail(c, http.StatusBadRequest, "group must be a group number")
			return
		}
		if _, ok := s.d.Department(model.DeptID(group)); !ok {
			s.fail(c, http.StatusBadRequest, "Unknown group "+group)
			return
		}
		dept = model.DeptID(group)
	}
	ctx := c.Request.Context()
	v, err := s.d.EnsureVisitor(ctx, store.MapKey{System: System, Tenant: s.cfg.LicenceID, Kind: kindVisitor, Foreign: r.visitorID},
		model.Visitor{Name: name, Email: email})
	if err != nil {
		s.deskError(c, err)
		return
	}
	if v.Banned(s.d.Now()) {
		// v2's own answer for a banned visitor: no session, no chat.
		s.reply(c, http.StatusOK, banned)
		return
	}
	sid, err := model.Secret(16)
	if err != nil {
		s.deskError(c, err)
		return
	}
	req := desk.StartRequest{
		Visitor: v.ID, Department: dept, Origin: System,
		Author: model.Author{Kind: model.AuthorVisitor, ID: string(v.ID), Name: v.Name},
		Events: []desk.Draft{{Kind: model.KindSystem, Subtype: model.SysWelcome, Text: welcome}},
		Maps:   []store.Mapping{{MapKey: store.MapKey{System: System, Tenant: s.cfg.LicenceID, Kind: kindSession, Foreign: sid}}},
	}
	conv, _, err := s.d.Start(ctx, req)
	if errors.Is(err, desk.ErrVisitorBusy) {
		// v2 has one chat per visitor: starting again ends the previous one,
		// as the visitor leaving it; but only for the visitor holding that
		// chat's secured_session_id, or anyone knowing (or guessing) a
		// visitor id could end its chat (issue 16, Low 9).
		held := r.get("secured_session_id")
		cur, rerr := s.d.Store().Resolve(ctx, store.MapKey{System: System, Tenant: s.cfg.LicenceID, Kind: kindSession, Foreign: held})
		if held == "" || rerr != nil || cur != string(conv.ID) {
			if rerr != nil && !errors.Is(rerr, store.ErrNotFound) {
				s.deskError(c, rerr)
				return
			}
			s.fail(c, http.StatusBadRequest, "Chat already active: send its secured_session_id to end it and start a new one")
			return
		}
		by := model.Author{Kind: model.AuthorVisitor, ID: string(v.ID), Name: v.Name}
		if _, cerr := s.d.Close(ctx, conv.ID, by, "visitor started a new chat", ""); cerr != nil && !errors.Is(cerr, desk.ErrInactive) {
			s.deskError(c, cerr)
			return
		}
		s.forget(conv.ID)
		conv, _, err = s.d.Start(ctx, req)
	}
	if err != nil {
		s.deskError(c, err)
		return
	}
	s.touch(conv.ID, time.Now())
	if s.cfg.Polls != nil {
		// Recorded at once: a chat this node started and never recorded
		// (the node dies within recordEvery) would never be swept.
		s.record(ctx)
	}
	s.reply(c, http.StatusOK, append(appendString(append(make([]byte, 0, 80), `{"banned":false,"secured_session_id":`...), sid), '}'))
}

func (s *Surface) pending(c *gin.Context) {
	r, ok := s.begin(c)
	if !ok {
		return
	}
	conv, quiet, fresh := s.quietPoll(c, r)
	if quiet {
		return
	}
	if !fresh {
		var ok bool
		if conv, ok = s.session(c, r); !ok {
			return
		}
	}
	from := uint64(1)
	if v := r.get("last_message_id"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			s.fail(c, http.StatusBadRequest, "last_message_id must be a message id (a non-negative integer)")
			return
		}
		// Inclusive: "start from a particular message ID". A client that
		// passes the last id it saw gets it once more, never loses one.
		from = max(n, 1)
	}
	if conv.Active() {
		s.touch(conv.ID, time.Now())
	}
	var evs []model.Event
	// Most polls find nothing new: the conversation's last sequence number
	// says so without reading (and decoding) the events.
	if conv.LastSeq >= from {
		var err error
		evs, err = s.d.Store().Events(c.Request.Context(), conv.ID, from, maxPollEvents)
		if err != nil {
			s.deskError(c, err)
			return
		}
	}
	if len(evs) == 0 {
		s.reply(c, http.StatusOK, noEvents)
		return
	}
	bp := s.bufs.Get().(*[]byte)
	b := append((*bp)[:0], `{"events":[`...)
	n := 0
	for i := range evs {
		if m, ok := s.render(&evs[i]); ok {
			if n > 0 {
				b = append(b, ',')
			}
			b = appendEvent(b, &m)
			n++
		}
	}
	b = append(b, "]}"...)
	s.reply(c, http.StatusOK, b) // written out before reply returns
	if cap(b) <= 64<<10 {
		*bp = b
		s.bufs.Put(bp)
	}
}

func (s *Surface) send(c *gin.Context) {
	r, ok := s.begin(c)
	if !ok {
		return
	}
	msg := r.get("message")
	if msg == "" {
		s.fail(c, http.StatusBadRequest, "Missing message")
		return
	}
	conv, ok := s.session(c, r)
	if !ok {
		return
	}
	v, _ := s.d.Store().Visitor(c.Request.Context(), conv.Visitor)
	_, _, err := s.d.Post(c.Request.Context(), desk.PostRequest{
		Conv:   conv.ID,
		Author: model.Author{Kind: model.AuthorVisitor, ID: string(conv.Visitor), Name: v.Name},
		Draft:  desk.Draft{Kind: model.KindMessage, Text: msg},
	})
	if err != nil {
		s.deskError(c, err)
		return
	}
	s.touch(conv.ID, time.Now())
	s.reply(c, http.StatusOK, success)
}

func (s *Surface) close(c *gin.Context) {
	r, ok := s.begin(c)
	if !ok {
		return
	}
	conv, ok := s.session(c, r)
	if !ok {
		return
	}
	v, _ := s.d.Store().Visitor(c.Request.Context(), conv.Visitor)
	by := model.Author{Kind: model.AuthorVisitor, ID: string(conv.Visitor), Name: v.Name}
	_, err := s.d.Close(c.Request.Context(), conv.ID, by, "visitor closed the chat", "")
	// Closing a closed chat succeeds: a retried close must not fail.
	if err != nil && !errors.Is(err, desk.ErrInactive) {
		s.deskError(c, err)
		return
	}
	s.forget(conv.ID)
	s.reply(c, http.StatusOK, success)
}
