package webhooks

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/rs/zerolog"

	"chatgate/core/desk"
	"chatgate/core/hub"
	"chatgate/core/model"
	"chatgate/core/routing"
	"chatgate/store"
	"chatgate/store/bolt"
)

// failAfter bounds every wait: a failure timeout, never an assertion about
// speed.
const failAfter = 20 * time.Second

const (
	orgID     = "org-1"
	annToken  = "tok-ann-0123456789"
	benToken  = "tok-ben-0123456789" // not an administrator
	ownerID   = "client-1"
	secretKey = "s3cr3t"
)

// ann administers (the Configuration API is administrators' only).
var ann = model.Agent{ID: "ann@example.com", Name: "Ann", Admin: true}

// ben is a second agent, never online: routing gives chats to ann only;
// ben is added to chats with add_user_to_chat.
var ben = model.Agent{ID: "ben@example.com", Name: "Ben"}

// clock is a settable clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

func (c *clock) Advance(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }

// gateway is a store, a desk and the webhooks service over one data file.
type gateway struct {
	t      *testing.T
	path   string
	st     *bolt.Store
	router *routing.Router
	bus    *hub.Bus
	d      *desk.Desk
	svc    *Service
	api    *httptest.Server
	// rows records every outbox row the hook produced, in order.
	mu   sync.Mutex
	rows []store.OutboxRow
}

type gwOptions struct {
	path  string // reuse a data file (a restart)
	cfg   Config // Now, Authenticate, Agent, OrganizationID are filled if empty
	clock *clock
	// strict keeps webhooks.allow_http and allow_private_networks off
	// (as cfg says); by default tests allow both, for receivers on
	// 127.0.0.1.
	strict bool
	// log, if set, receives the service's log (JSON lines).
	log io.Writer
}

func authenticate(tok string) (model.AgentID, bool) {
	switch tok {
	case annToken:
		return ann.ID, true
	case benToken:
		return ben.ID, true
	}
	return "", false
}

func newGateway(t *testing.T, o gwOptions) *gateway {
	t.Helper()
	path := o.path
	if path == "" {
		path = filepath.Join(t.TempDir(), "gw.db")
	}
	st, err := bolt.Open(path, bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	g := &gateway{t: t, path: path, st: st, router: routing.New([]model.Agent{ann, ben}, true), bus: hub.NewBus()}
	cfg := o.cfg
	if cfg.OrganizationID == "" {
		cfg.OrganizationID = orgID
	}
	if cfg.Authenticate == nil {
		cfg.Authenticate = authenticate
	}
	cfg.Agent = g.router.Agent
	cfg.Bus = g.bus
	cfg.QueuePosition = g.router.Position
	if o.clock != nil {
		cfg.Now = o.clock.Now
	}
	if !o.strict {
		cfg.AllowHTTP, cfg.AllowPrivateNetworks = true, true
	}
	lg := zerolog.Nop()
	if o.log != nil {
		lg = zerolog.New(o.log)
	}
	svc, err := New(st, cfg, lg)
	if err != nil {
		t.Fatal(err)
	}
	g.svc = svc
	if err := g.svc.Load(t.Context()); err != nil {
		t.Fatal(err)
	}
	dopts := desk.Options{Store: st, Router: g.router, Bus: g.bus, Actors: hub.NewActors(64), Logger: zerolog.Nop(),
		Outbox: func(c model.Conversation, vs []model.Visitor, evs, upd []model.Event) []store.OutboxRow {
			rows := g.svc.Outbox(c, vs, evs, upd)
			g.mu.Lock()
			g.rows = append(g.rows, rows...)
			g.mu.Unlock()
			return rows
		},
		NoticeOutbox: func(n hub.Notice) []store.OutboxRow {
			rows := g.svc.NoticeOutbox(n)
			g.mu.Lock()
			g.rows = append(g.rows, rows...)
			g.mu.Unlock()
			return rows
		},
		Properties: cfg.Properties}
	if o.clock != nil {
		dopts.Now = o.clock.Now
	}
	g.d = desk.New(dopts)
	if err := g.d.Load(t.Context()); err != nil {
		t.Fatal(err)
	}
	g.d.AgentConnected(ann.ID, true)
	gin.SetMode(gin.ReleaseMode)
	e := gin.New()
	g.svc.Mount(e)
	g.api = httptest.NewServer(e)
	t.Cleanup(g.close)
	return g
}

// close stops the API server and closes the store; safe to call twice.
func (g *gateway) close() {
	if g.api != nil {
		g.api.Close()
		g.api = nil
	}
	if g.st != nil {
		if err := g.st.Close(); err != nil {
			g.t.Errorf("close store: %v", err)
		}
		g.st = nil
	}
}

func (g *gateway) produced() []store.OutboxRow {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]store.OutboxRow(nil), g.rows...)
}

// run starts the worker; the returned stop cancels it and waits for Run.
func (g *gateway) run() (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.svc.Run(ctx) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				g.t.Errorf("Run: %v", err)
			}
		case <-time.After(failAfter):
			g.t.Error("Run did not return after its context ended")
		}
	}
	g.t.Cleanup(stop)
	return stop
}

// call POSTs a Configuration API action with the given token ("" for none)
// and returns the status and body.
func (g *gateway) call(version, action, token string, body any) (int, []byte) {
	g.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = bytes.NewBufferString(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			g.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(http.MethodPost, g.api.URL+"/v"+version+"/configuration/action/"+action, rd)
	if err != nil {
		g.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return do(g.t, req)
}

func do(t *testing.T, req *http.Request) (int, []byte) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

// register registers a webhook and returns its id.
func (g *gateway) register(action, url string, extra map[string]any) string {
	g.t.Helper()
	body := map[string]any{"action": action, "secret_key": secretKey, "url": url, "owner_client_id": ownerID, "type": "license"}
	for k, v := range extra {
		body[k] = v
	}
	status, b := g.call("3.5", "register_webhook", annToken, body)
	if status != http.StatusOK {
		g.t.Fatalf("register_webhook(%s) = %d %s", action, status, b)
	}
	var resp struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(b, &resp); err != nil || resp.ID == "" {
		g.t.Fatalf("register_webhook response %s: %v", b, err)
	}
	return resp.ID
}

func (g *gateway) visitor(name string) model.Visitor {
	g.t.Helper()
	v, err := g.d.EnsureVisitor(context.Background(), store.MapKey{System: "test", Tenant: "t", Kind: "visitor", Foreign: name},
		model.Visitor{Name: name})
	if err != nil {
		g.t.Fatal(err)
	}
	return v
}

func vAuthor(v model.Visitor) model.Author {
	return model.Author{Kind: model.AuthorVisitor, ID: string(v.ID), Name: v.Name}
}

var annAuthor = model.Author{Kind: model.AuthorAgent, ID: string(ann.ID), Name: ann.Name}

func (g *gateway) start(v model.Visitor, text string) model.Conversation {
	g.t.Helper()
	c, _, err := g.d.Start(context.Background(), desk.StartRequest{Visitor: v.ID, Origin: "test", Author: vAuthor(v),
		Events: []desk.Draft{{Text: text}}})
	if err != nil {
		g.t.Fatal(err)
	}
	return c
}

func (g *gateway) post(conv model.ConvID, by model.Author, text string) model.Event {
	g.t.Helper()
	ev, _, err := g.d.Post(context.Background(), desk.PostRequest{Conv: conv, Author: by, Draft: desk.Draft{Text: text}})
	if err != nil {
		g.t.Fatal(err)
	}
	return ev
}

func (g *gateway) pending() []store.OutboxRow {
	g.t.Helper()
	rows, err := g.st.OutboxDue(context.Background(), "", time.Now().Add(1000*time.Hour), 0, 0)
	if err != nil {
		g.t.Fatal(err)
	}
	return rows
}

// delivery is one request a receiver got.
type delivery struct {
	ID, Attempt string
	Header      http.Header
	Raw         []byte
	Env         Envelope
	Status      int
}

// receiver is a webhook endpoint on 127.0.0.1 that records every request
// and answers what status says.
type receiver struct {
	srv    *httptest.Server
	mu     sync.Mutex
	got    []delivery
	status func(d *delivery) int
	notify chan struct{}
}

func newReceiver(t *testing.T, status func(d *delivery) int) *receiver {
	r := &receiver{status: status, notify: make(chan struct{}, 1)}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		d := delivery{ID: req.Header.Get(HeaderDeliveryID), Attempt: req.Header.Get(HeaderAttempt), Header: req.Header.Clone(), Raw: b}
		_ = json.Unmarshal(b, &d.Env)
		r.mu.Lock()
		d.Status = r.status(&d)
		r.got = append(r.got, d)
		r.mu.Unlock()
		select {
		case r.notify <- struct{}{}:
		default:
		}
		w.WriteHeader(d.Status)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) setStatus(f func(d *delivery) int) {
	r.mu.Lock()
	r.status = f
	r.mu.Unlock()
}

func (r *receiver) all() []delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]delivery(nil), r.got...)
}

// ok returns the deliveries answered 2xx, in arrival order.
func (r *receiver) ok() []delivery {
	var out []delivery
	for _, d := range r.all() {
		if d.Status/100 == 2 {
			out = append(out, d)
		}
	}
	return out
}

// waitFor waits until cond holds on the receiver's requests.
func (r *receiver) waitFor(t *testing.T, what string, cond func([]delivery) bool) {
	t.Helper()
	deadline := time.After(failAfter)
	for !cond(r.all()) {
		select {
		case <-r.notify:
		case <-time.After(10 * time.Millisecond):
		case <-deadline:
			t.Fatalf("timed out waiting for %s; got %d requests", what, len(r.all()))
		}
	}
}

func always(status int) func(*delivery) int { return func(*delivery) int { return status } }
