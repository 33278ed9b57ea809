package main

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/rs/zerolog"

	"chatgate/adapters/livechat/webhooks"
	"chatgate/adapters/livechat/wire"
	"chatgate/configs"
	"chatgate/core/desk"
	"chatgate/core/mail"
	"chatgate/core/model"
	"chatgate/core/relay"
	"chatgate/core/routing"
	"chatgate/store"
	"chatgate/web/console"
)

// opsSource gathers the operator view from what the gateway already
// keeps: the relay connectors' states (as /readyz), the webhook outbox,
// the router (as the chatgate_conversations metric), the desk's active
// conversations by source (counted by this node: at start from the store,
// then by its own commits; on a shared store also the whole deployment's,
// read from it), and the store's last commit (as the
// chatgate_store_commit_seconds metric; bolt only).
type opsSource struct {
	cfg    *configs.Config
	router *routing.Router
	desk   *desk.Desk
	relay  *relay.Service
	hooks  *webhooks.Service
	m      *metrics
	// kind is the store backend (bolt, postgres); node names this node.
	kind, node string
}

// opsView is GET /console/api/ops.
type opsView struct {
	GeneratedAt   time.Time                       `json:"generated_at"`
	Node          string                          `json:"node"`
	Relay         map[string]relay.ConnectorState `json:"relay"`
	Webhooks      opsWebhooks                     `json:"webhooks"`
	Email         opsEmail                        `json:"email"`
	Queues        []opsQueue                      `json:"queues"`
	Agents        []opsAgent                      `json:"agents"`
	Conversations opsConversations                `json:"conversations"`
	Store         opsStore                        `json:"store"`
}

// opsEmail is the e-mail outbox (transcripts, offline messages).
type opsEmail struct {
	Enabled   bool          `json:"enabled"`
	Pending   []mail.Status `json:"pending"`
	Exhausted []mail.Status `json:"exhausted"`
}

type opsWebhooks struct {
	Enabled    bool               `json:"enabled"`
	Registered []opsWebhook       `json:"registered"`
	Pending    []webhooks.Pending `json:"pending"`
	Exhausted  []webhooks.Failure `json:"exhausted"`
}

// opsWebhook is a registration without its secret key.
type opsWebhook struct {
	ID            string `json:"id"`
	URL           string `json:"url"`
	Action        string `json:"action"`
	Description   string `json:"description,omitempty"`
	OwnerClientID string `json:"owner_client_id"`
}

type opsQueue struct {
	Department string `json:"department"`
	Name       string `json:"name"`
	Queued     int    `json:"queued"`
}

type opsAgent struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	Status   string `json:"status"`
	Open     int    `json:"open"`
	MaxChats int    `json:"max_chats"`
	Admin    bool   `json:"admin,omitempty"`
}

type opsConversations struct {
	Queued int `json:"queued"`
	Open   int `json:"open"`
	// BySource is this node's count (its own commits since start).
	BySource map[string]int `json:"by_source"`
	// BySourceAll is the whole deployment's, read from a store that
	// several nodes share (PostgreSQL); absent on bbolt, where this node
	// is the deployment.
	BySourceAll map[string]int `json:"by_source_all,omitempty"`
}

type opsStore struct {
	Backend   string `json:"backend"`
	Path      string `json:"path,omitempty"`       // bolt only
	SizeBytes int64  `json:"size_bytes,omitempty"` // bolt only

	FilesDir     string  `json:"files_dir"`
	LastCommitMS float64 `json:"last_commit_ms"`
	Commits      int64   `json:"commits"`
}

// opsListLimit bounds each list of the operator view.
const opsListLimit = 50

func (o *opsSource) view(ctx context.Context) (any, error) {
	v := opsView{GeneratedAt: time.Now().UTC(), Node: o.node, Relay: map[string]relay.ConnectorState{}}
	if o.relay != nil {
		v.Relay = o.relay.Statuses(ctx)
	}
	v.Webhooks = opsWebhooks{Enabled: o.hooks != nil, Registered: []opsWebhook{}, Pending: []webhooks.Pending{}, Exhausted: []webhooks.Failure{}}
	if o.hooks != nil {
		for _, w := range o.hooks.Webhooks() {
			v.Webhooks.Registered = append(v.Webhooks.Registered, opsWebhook{ID: w.ID, URL: w.URL, Action: w.Action,
				Description: w.Description, OwnerClientID: w.OwnerClientID})
		}
		p, err := o.hooks.PendingDeliveries(ctx, opsListLimit)
		if err != nil {
			return nil, err
		}
		v.Webhooks.Pending = p
		f, err := o.hooks.Failures(ctx, "", opsListLimit)
		if err != nil {
			return nil, err
		}
		for i := range f {
			f[i].Payload, f[i].AdditionalData = nil, nil // the view needs no visitor content
		}
		v.Webhooks.Exhausted = f
	}
	v.Email = opsEmail{Enabled: o.cfg.SMTP.Enabled(), Pending: []mail.Status{}, Exhausted: []mail.Status{}}
	var err error
	if v.Email.Pending, err = mail.Pending(ctx, o.desk.Store(), opsListLimit); err != nil {
		return nil, err
	}
	if v.Email.Exhausted, err = mail.Exhausted(ctx, o.desk.Store(), opsListLimit); err != nil {
		return nil, err
	}
	byDept := o.router.QueuedByDept()
	names := map[model.DeptID]string{}
	for _, d := range o.cfg.Departments {
		names[model.DeptID(d.ID)] = d.Name
		v.Queues = append(v.Queues, opsQueue{Department: d.ID, Name: d.Name, Queued: byDept[model.DeptID(d.ID)]})
	}
	for d, n := range byDept {
		if _, ok := names[d]; !ok {
			v.Queues = append(v.Queues, opsQueue{Department: string(d), Queued: n})
		}
	}
	for _, a := range o.router.Agents() {
		open := o.router.Open(a.ID)
		v.Conversations.Open += open
		v.Agents = append(v.Agents, opsAgent{ID: string(a.ID), Name: a.Name, Status: string(o.router.Status(a.ID)),
			Open: open, MaxChats: a.MaxChats, Admin: a.Admin})
	}
	sort.Slice(v.Agents, func(i, j int) bool { return v.Agents[i].ID < v.Agents[j].ID })
	v.Conversations.Queued = len(o.router.Queued())
	v.Conversations.BySource = o.desk.ActiveBySource()
	if ac, ok := o.desk.Store().(store.ActiveCounter); ok {
		counts, err := ac.ActiveBySource(ctx)
		if err != nil {
			return nil, err
		}
		v.Conversations.BySourceAll = make(map[string]int, len(counts))
		for _, c := range counts {
			v.Conversations.BySourceAll[desk.SourceKey(c.Origin, c.Owner)] += c.Active
		}
	}
	v.Store = opsStore{Backend: o.kind, FilesDir: o.cfg.Store.FilesDir}
	if o.kind == "bolt" {
		v.Store.Path = o.cfg.Store.Path
		if fi, err := os.Stat(o.cfg.Store.Path); err == nil {
			v.Store.SizeBytes = fi.Size()
		}
	}
	if d, n := o.m.lastCommit(); n > 0 {
		v.Store.LastCommitMS = float64(d.Microseconds()) / 1000
		v.Store.Commits = n
	}
	return v, nil
}

// newConsole builds the pages' surface.
func newConsole(cfg *configs.Config, creds credentials, router *routing.Router, ops *opsSource, log zerolog.Logger) *console.Console {
	var depts []console.Department
	for _, d := range cfg.Departments {
		depts = append(depts, console.Department{ID: d.ID, Name: d.Name, Group: wire.GroupID(model.DeptID(d.ID))})
	}
	widgetDir := cfg.RocketChat.WidgetDir
	cc := console.Config{
		Authenticate: creds.byToken, Login: creds.byPassword, TokenOf: creds.tokenOf, Agent: router.Agent,
		Ops: ops.view, Departments: depts, LicenceID: cfg.License.ID,
		RocketChat: cfg.RocketChat.Enabled, V2: cfg.LiveChat.V2.Enabled,
		Widget: func() bool {
			_, err := os.Stat(filepath.Join(widgetDir, "index.html"))
			return err == nil
		},
	}
	if ops.hooks != nil {
		cc.RetryWebhooks = ops.hooks.RetryNow
		cc.ReviveWebhooks = ops.hooks.Revive
	}
	return console.New(cc, log)
}
