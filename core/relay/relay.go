// Package relay carries conversations between chatgate and external agent
// desks (Rocket.Chat, LiveChat), where chatgate is the visitor on the
// widget's behalf.
//
// The write path is the desk's: a visitor's message to a relayed
// conversation is committed together with an outbox row per connector that
// owes it (Service.Hook), so no committed message lacks its delivery and no
// delivery announces an uncommitted message. A delivery loop per connector
// hands the rows to the connector in order, per conversation, retrying with
// backoff until the upstream desk takes them (Deliver is idempotent: it may
// see a row again after a crash). What the upstream desk says back (its
// agent joined, wrote, closed) comes in through a Sink, which posts it to
// the desk with the upstream id as idempotency key and binds the upstream
// ids in the same commit, so a resync after a reconnect never doubles a
// message.
//
// Every foreign id lives in the store's mapping tables under
// (System "relay/<connector>", Tenant "", Kind, foreign id):
//
//	KindRoom     the upstream room (Rocket.Chat rid; LiveChat "<chat id>/<thread id>", since a
//	             LiveChat customer keeps one chat across conversations) → conversation
//	KindThread   the upstream thread (LiveChat thread id) → conversation
//	KindVisitor  the upstream visitor (Rocket.Chat token, LiveChat customer id) → visitor
//	KindEvent    the upstream message or event id → event id (both directions: sent and received)
//	KindAgent    the upstream agent id → agent id
package relay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"chatgate/core/model"
)

// Mapping kinds (see the package comment).
const (
	KindRoom    = "room"
	KindThread  = "thread"
	KindVisitor = "visitor"
	KindEvent   = "event"
	KindAgent   = "agent"
)

// Op is what a delivery asks of a connector.
type Op string

const (
	// OpOpen: make sure the upstream room/chat exists (and is followed).
	OpOpen Op = "open"
	// OpEvent: post an event of the conversation.
	OpEvent Op = "event"
	// OpClose: close the upstream room/chat.
	OpClose Op = "close"
)

// Delivery is one outbox row, resolved from the store for a connector.
type Delivery struct {
	// ID is the outbox row's id: the same across retries and restarts.
	ID string
	Op Op
	// Conv is the conversation as stored now (its latest state).
	Conv    model.Conversation
	Visitor model.Visitor
	// Event is the event to post (OpEvent).
	Event model.Event
	// Mirror: the connector holds a read-only copy (shadow mode). Mirrors
	// get the agents' answers too, written as the visitor's messages with
	// the agent's name in front, so the copy reads as the conversation.
	Mirror bool
	// AgentName names the author of an agent's event copied to a mirror.
	AgentName string
}

// Text renders an event as the text a visitor-side client can send: the
// message itself, a file's name and URL, a form's summary; for a mirror,
// an agent's answer with the agent's name in front.
func (d Delivery) Text() string {
	e := d.Event
	var text string
	switch e.Kind {
	case model.KindFile:
		if e.File != nil {
			text = strings.TrimSpace(e.File.Name + " " + e.File.URL)
		}
	case model.KindForm:
		if e.Form != nil {
			text = e.Form.Summary()
		}
	case model.KindRich:
		text = model.RichText(e.Custom)
	case model.KindCustom:
		text = strings.TrimSpace(e.Text)
		if text == "" && len(e.Custom) > 0 {
			text = string(e.Custom)
		}
	default:
		text = e.Text
	}
	if d.Mirror && e.Author.Kind == model.AuthorAgent {
		name := d.AgentName
		if name == "" {
			name = "Agent"
		}
		text = "[" + name + "] " + text
	}
	return text
}

// Connector is a client of an external agent desk.
type Connector interface {
	// Name is the connector's configured name (routes refer to it).
	Name() string
	// Run keeps the connection to the upstream desk up, follows the
	// conversations sink.Active lists (and those Deliver opens), reports
	// what the upstream desk says through sink, and resyncs after every
	// reconnect. It returns after ctx ends.
	Run(ctx context.Context, sink *Sink) error
	// Deliver performs d upstream. It must be idempotent: after a crash
	// or a lost answer the same d comes again. An error wrapping
	// ErrPermanent means retrying cannot help (the row is kept, exhausted).
	Deliver(ctx context.Context, sink *Sink, d Delivery) error
	// Status reports the connection's health.
	Status() Status
}

// Typer is an optional Connector ability: showing the visitor's typing
// indicator to the upstream desk's agent. Typing is ephemeral: it is
// neither stored nor retried, and a connector that is busy or away misses
// it.
type Typer interface {
	Typing(ctx context.Context, sink *Sink, conv model.Conversation, on bool) error
}

// ErrPermanent marks a delivery error that retrying cannot fix.
var ErrPermanent = errors.New("relay: permanent failure")

// Status is a connector's health, shown in /readyz and metrics.
type Status struct {
	Connected   bool      `json:"connected"`
	Reconnects  int       `json:"reconnects"`
	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
}

// Route says who serves the conversations of a department.
type Route struct {
	// Department is the department ("" is the default route).
	Department model.DeptID
	// Upstream is the connector serving them ("" = the embedded desk).
	Upstream string
	// Mirrors get a read-only copy.
	Mirrors []string
}

// rowBody is an outbox row's payload: what to do; the rest is read from the
// store at delivery time.
type rowBody struct {
	Op     Op     `json:"op"`
	Seq    uint64 `json:"seq,omitempty"`
	Mirror bool   `json:"mirror,omitempty"`
}

func (b rowBody) encode() []byte {
	p, _ := json.Marshal(b) // a struct of plain fields cannot fail
	return p
}

// System is the mapping system (and idempotency system) of a connector.
func System(connector string) string { return "relay/" + connector }

// target is the outbox target of a connector's rows. The trailing slash
// keeps one connector's prefix from matching another's ("rc" vs "rc2").
func target(connector string) string { return "relay/" + connector + "/" }

// AgentID is the core id of an upstream desk's agent.
func AgentID(connector, foreign string) model.AgentID {
	return model.AgentID(connector + ":" + foreign)
}

func validName(name string) error {
	if name == "" || len(name) > 64 || strings.ContainsAny(name, "/:\x00 ") {
		return fmt.Errorf("relay: connector name %q must be 1-64 characters without '/', ':' or spaces", name)
	}
	return nil
}
