package relay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"chatgate/core/desk"
	"chatgate/core/model"
	"chatgate/store"
)

// Sink is a connector's way into chatgate: its mappings, the conversations
// it follows, and what its upstream desk says. Each connector has its own.
type Sink struct {
	s    *Service
	name string
}

// Name is the connector's name.
func (k *Sink) Name() string { return k.name }

// Link returns the foreign id of kind bound to a core id (a conversation's
// room, a visitor's upstream identity); store.ErrNotFound when none is.
func (k *Sink) Link(ctx context.Context, kind, core string) (string, error) {
	return k.s.st.Reverse(ctx, System(k.name), "", kind, core)
}

// Resolve returns the core id a foreign id of kind is bound to.
func (k *Sink) Resolve(ctx context.Context, kind, foreign string) (string, error) {
	return k.s.st.Resolve(ctx, store.MapKey{System: System(k.name), Kind: kind, Foreign: foreign})
}

// Bind commits foreign ids of kind bound to core, durably, before the
// connector acts on them (a token or room it will use again after a
// restart). Binding an id again to the same core id is a no-op.
func (k *Sink) Bind(ctx context.Context, kind, core string, foreign ...string) error {
	b := &store.Batch{}
	for _, f := range foreign {
		b.Maps = append(b.Maps, store.Mapping{MapKey: store.MapKey{System: System(k.name), Kind: kind, Foreign: f}, Core: core})
	}
	if err := k.s.st.Commit(context.WithoutCancel(ctx), b); err != nil {
		return fmt.Errorf("relay %s: bind %s: %w", k.name, kind, err)
	}
	return nil
}

// Followed is a conversation the connector follows upstream.
type Followed struct {
	Conv   model.Conversation
	Mirror bool
}

// Active lists the active conversations the connector owns or mirrors (to
// follow and resync after a (re)connect).
func (k *Sink) Active(ctx context.Context) ([]Followed, error) {
	var out []Followed
	err := k.s.st.Conversations(ctx, func(c model.Conversation) bool {
		if !c.Active() {
			return true
		}
		if c.Owner == k.name {
			out = append(out, Followed{Conv: c})
		} else if slices.Contains(c.Mirrors, k.name) {
			out = append(out, Followed{Conv: c, Mirror: true})
		}
		return true
	})
	if err != nil {
		return nil, fmt.Errorf("relay %s: active conversations: %w", k.name, err)
	}
	return out, nil
}

// Conversation reads a conversation (a connector checks its state).
func (k *Sink) Conversation(ctx context.Context, id model.ConvID) (model.Conversation, error) {
	return k.s.st.Conversation(ctx, id)
}

// Agent is an upstream desk's agent as its desk shows it.
type Agent struct {
	ID       string
	Name     string
	Username string
	Avatar   string
}

// serves reports whether the connector's upstream desk answers conv (it
// owns it); a mirror's agents never reach the visitor.
func (k *Sink) serves(ctx context.Context, conv model.ConvID) (model.Conversation, bool, error) {
	c, err := k.s.st.Conversation(ctx, conv)
	if err != nil {
		return c, false, fmt.Errorf("relay %s: conversation %s: %w", k.name, conv, err)
	}
	return c, c.Owner == k.name, nil
}

// ensureAgent makes the upstream agent known to the router (and stored,
// so its name survives a restart) and returns its core id.
func (k *Sink) ensureAgent(ctx context.Context, a Agent) (model.AgentID, error) {
	id := AgentID(k.name, a.ID)
	m := model.Agent{ID: id, Name: a.Name, Username: a.Username, Avatar: a.Avatar}
	if m.Name == "" {
		m.Name = a.Username
	}
	if m.Name == "" {
		m.Name = "Agent"
	}
	router := k.s.desk.Router()
	k.s.agentsMu.Lock()
	defer k.s.agentsMu.Unlock()
	if old, ok := router.Agent(id); ok && old.Name == m.Name && old.Username == m.Username && old.Avatar == m.Avatar {
		return id, nil
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return "", err
	}
	b := &store.Batch{Meta: map[string][]byte{agentMetaKey(id): raw},
		Maps: []store.Mapping{{MapKey: store.MapKey{System: System(k.name), Kind: KindAgent, Foreign: a.ID}, Core: string(id)}}}
	if err := k.s.st.Commit(context.WithoutCancel(ctx), b); err != nil {
		return "", fmt.Errorf("relay %s: store agent: %w", k.name, err)
	}
	router.AddRemote(m)
	return id, nil
}

// AgentJoined records that the upstream agent a serves conv (assignment
// or a transfer upstream). Ignored for mirrored conversations.
func (k *Sink) AgentJoined(ctx context.Context, conv model.ConvID, a Agent) error {
	c, owns, err := k.serves(ctx, conv)
	if err != nil || !owns || !c.Active() {
		return err
	}
	id, err := k.ensureAgent(ctx, a)
	if err != nil {
		return err
	}
	if c.Agent == id {
		return nil
	}
	err = k.s.desk.Assign(ctx, conv, id, model.Author{Kind: model.AuthorSystem, ID: System(k.name)}, "")
	if errors.Is(err, desk.ErrInactive) {
		return nil
	}
	return err
}

// Message posts an upstream agent's message to conv, once: foreignID (the
// upstream message or event id) is the idempotency key and is bound to the
// new event in the same commit. A message whose id is bound already (our
// own, echoed back, or one seen before a reconnect) is skipped. It reports
// whether the message was new. Ignored for mirrored conversations.
func (k *Sink) Message(ctx context.Context, conv model.ConvID, a Agent, foreignID, text string) (bool, error) {
	if foreignID == "" {
		return false, fmt.Errorf("relay %s: message without id", k.name)
	}
	if _, err := k.Resolve(ctx, KindEvent, foreignID); err == nil {
		k.s.inbound(k.name, "duplicate")
		return false, nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return false, err
	}
	c, owns, err := k.serves(ctx, conv)
	if err != nil || !c.Active() {
		return false, err
	}
	if !owns {
		k.s.inbound(k.name, "ignored")
		return false, nil
	}
	id, err := k.ensureAgent(ctx, a)
	if err != nil {
		return false, err
	}
	if c.Agent != id {
		// A message from an agent not (yet) shown as serving: the
		// upstream desk's assignment notice raced the message or was
		// missed while disconnected.
		if err := k.AgentJoined(ctx, conv, a); err != nil {
			return false, err
		}
	}
	name, _ := k.s.desk.Router().Agent(id)
	_, dup, err := k.s.desk.Post(ctx, desk.PostRequest{
		Conv:       conv,
		Author:     model.Author{Kind: model.AuthorAgent, ID: string(id), Name: name.Name},
		Draft:      desk.Draft{Kind: model.KindMessage, Text: text, ClientKey: foreignID},
		IdemSystem: System(k.name), IdemKey: foreignID,
		Maps: []store.Mapping{{MapKey: store.MapKey{System: System(k.name), Kind: KindEvent, Foreign: foreignID}}},
	})
	if errors.Is(err, desk.ErrInactive) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if dup {
		k.s.inbound(k.name, "duplicate")
	} else {
		k.s.inbound(k.name, "posted")
	}
	return !dup, nil
}

// Closed records that the upstream desk closed conv. Ignored for mirrored
// conversations (the owner decides) and for closed ones.
func (k *Sink) Closed(ctx context.Context, conv model.ConvID, by *Agent) error {
	c, owns, err := k.serves(ctx, conv)
	if err != nil || !owns || !c.Active() {
		return err
	}
	author := model.Author{Kind: model.AuthorSystem, ID: System(k.name), Name: ""}
	if by != nil {
		id, err := k.ensureAgent(ctx, *by)
		if err != nil {
			return err
		}
		if c.Agent == id {
			author = model.Author{Kind: model.AuthorAgent, ID: string(id), Name: by.Name}
		}
	}
	_, err = k.s.desk.Close(ctx, conv, author, "closed upstream", "")
	if errors.Is(err, desk.ErrInactive) {
		return nil
	}
	return err
}

// AgentTyping shows the upstream agent's typing indicator to the visitor:
// username names the agent as the upstream desk does; it counts only when
// that is the agent serving conv (a mirror's agents never show).
func (k *Sink) AgentTyping(ctx context.Context, conv model.ConvID, username string, on bool) error {
	c, owns, err := k.serves(ctx, conv)
	if err != nil || !owns || !c.Active() || c.Agent == "" {
		return err
	}
	a, ok := k.s.desk.Router().Agent(c.Agent)
	if !ok || (a.Username != username && a.Name != username) {
		return nil
	}
	err = k.s.desk.Typing(ctx, conv, model.Author{Kind: model.AuthorAgent, ID: string(a.ID), Name: a.Name}, on, "", "")
	if errors.Is(err, desk.ErrInactive) {
		return nil
	}
	return err
}
