// Package upstream is chatgate's LiveChat relay connector: chatgate is the
// customer of a LiveChat licence (Customer Chat API v3.5) on the widget's
// behalf. Each visitor gets a customer identity through the token
// endpoint's agent_token grant (its customer id is stored at once, so a
// restart keeps the same customer); each relayed conversation is one
// thread of the customer's chat, followed over its own customer RTM
// socket: start_chat or resume_chat opens it, send_event posts with the
// core event id as custom_id, deactivate_chat closes it, and the agent's
// events, joining and closing come back as pushes. LiveChat never retries
// a push, so every (re)connect resyncs the thread with get_chat.
//
// The calls are the ones a customer app makes (see
// ../../../../shared/specs/livechat-platform.md §2.5, §2.6 and §2.12), so
// LiveChat itself, or another chatgate's customer surface, serves.
package upstream

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"chatgate/core/model"
	"chatgate/core/relay"
	"chatgate/store"
)

// tokenError is a refusal of the token endpoint: its HTTP status and the
// text of its {"identity_exception"|"oauth_exception": "..."} body.
type tokenError struct {
	Status int
	Kind   string
	Text   string
}

func (e *tokenError) Error() string {
	return fmt.Sprintf("livechat token: HTTP %d: %s %s", e.Status, e.Kind, e.Text)
}

// customerToken is a cached customer access token. Its text is a
// credential: it never goes into an error or a log line.
type customerToken struct {
	access  string
	entity  string
	expires time.Time
}

// tokenMargin is how long before its expiry a token is renewed, so that a
// socket logging in never presents a token about to lapse.
const tokenMargin = 2 * time.Minute

// token returns the visitor's customer token: cached until shortly before
// it expires, else fresh from the token endpoint (with the entity_id bound
// earlier, so the visitor stays the same customer upstream). The first
// token's customer id is bound to the visitor before the token is used.
func (c *Connector) token(ctx context.Context, sink *relay.Sink, v model.VisitorID) (customerToken, error) {
	mu := &c.tokenLocks[shard(string(v), len(c.tokenLocks))]
	mu.Lock()
	defer mu.Unlock()
	c.mu.Lock()
	t, ok := c.tokens[v]
	c.mu.Unlock()
	if ok && time.Until(t.expires) > tokenMargin {
		return t, nil
	}
	entity, err := sink.Link(ctx, relay.KindVisitor, string(v))
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return customerToken{}, err
	}
	t, err = c.requestToken(ctx, entity)
	var te *tokenError
	if entity != "" && errors.As(err, &te) && te.Status == http.StatusUnauthorized && strings.Contains(te.Text, "entity") {
		// The upstream desk no longer knows the customer: become a new
		// one (the binding below points the visitor at it).
		c.log.Warn().Str("visitor", string(v)).Msg("livechat customer unknown upstream; getting a new one")
		entity = ""
		t, err = c.requestToken(ctx, "")
	}
	if err != nil {
		return customerToken{}, err
	}
	if t.entity == "" {
		return customerToken{}, errors.New("livechat token: answer without entity_id")
	}
	if t.entity != entity {
		if err := sink.Bind(ctx, relay.KindVisitor, string(v), t.entity); err != nil {
			return customerToken{}, err
		}
	}
	c.mu.Lock()
	c.tokens[v] = t
	c.mu.Unlock()
	return t, nil
}

// dropToken forgets a cached token the upstream desk refused.
func (c *Connector) dropToken(v model.VisitorID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.tokens, v)
}

// requestToken asks the token endpoint for a customer token with the
// agent_token grant (§2.12): "Authorization: Bearer <agent token>", and
// entity_id to re-issue for an existing customer.
func (c *Connector) requestToken(ctx context.Context, entity string) (customerToken, error) {
	body := map[string]any{"grant_type": "agent_token", "response_type": "token",
		"organization_id": c.cfg.OrganizationID}
	if c.cfg.ClientID != "" {
		body["client_id"] = c.cfg.ClientID
	}
	if entity != "" {
		body["entity_id"] = entity
	}
	raw, err := json.Marshal(body)
	if err != nil {
		return customerToken{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.cfg.TokenURL, bytes.NewReader(raw))
	if err != nil {
		return customerToken{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+c.cfg.AgentToken)
	resp, err := c.cfg.Client.Do(req)
	if err != nil {
		return customerToken{}, fmt.Errorf("livechat token: %w", unwrapURL(err))
	}
	defer resp.Body.Close()
	ans, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return customerToken{}, fmt.Errorf("livechat token: read answer: %w", err)
	}
	if resp.StatusCode/100 != 2 {
		var e map[string]any
		_ = json.Unmarshal(ans, &e)
		te := &tokenError{Status: resp.StatusCode}
		for _, k := range []string{"identity_exception", "oauth_exception"} {
			if s, ok := e[k].(string); ok {
				te.Kind, te.Text = k, s
			}
		}
		return customerToken{}, te
	}
	var tr struct {
		AccessToken string `json:"access_token"`
		EntityID    string `json:"entity_id"`
		ExpiresIn   int64  `json:"expires_in"`
	}
	if err := json.Unmarshal(ans, &tr); err != nil || tr.AccessToken == "" {
		return customerToken{}, errors.New("livechat token: answer without access_token")
	}
	if tr.ExpiresIn <= 0 {
		tr.ExpiresIn = 3600
	}
	return customerToken{access: tr.AccessToken, entity: tr.EntityID,
		expires: time.Now().Add(time.Duration(tr.ExpiresIn) * time.Second)}, nil
}

// probe reports whether the token endpoint answers at all (any HTTP
// answer: an empty request is refused, and no customer is made). It is the
// connector's health while it follows no chat.
func (c *Connector) probe(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.cfg.TokenURL, strings.NewReader("{}"))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.cfg.Client.Do(req)
	if err != nil {
		return fmt.Errorf("livechat token endpoint: %w", unwrapURL(err))
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxAnswer))
	resp.Body.Close()
	return nil
}

// unwrapURL drops the *url.Error wrapper (its text repeats the URL).
func unwrapURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
