// Package upstream is chatgate's Rocket.Chat relay connector: chatgate is
// the livechat visitor of a Rocket.Chat server on the widget's behalf. It
// registers the visitor and opens the room over the livechat REST API,
// sends messages with client-chosen _ids (the core event id, so a retry
// never duplicates), and follows stream-room-messages and
// stream-livechat-room over DDP for the agent's messages, assignment and
// close, resyncing from messages.history after every (re)connect.
//
// The calls are the ones the Rocket.Chat widget makes (see
// ../../../../shared/specs/rocketchat-livechat.md §5 and §7), so any
// Rocket.Chat 4.x server, or another chatgate's Rocket.Chat surface, serves.
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
)

// apiError is a Rocket.Chat REST failure: the HTTP status and the error
// text of its {"success":false,"error":...} envelope.
type apiError struct {
	Status int
	Text   string
}

func (e *apiError) Error() string { return fmt.Sprintf("rocket.chat: HTTP %d: %s", e.Status, e.Text) }

// is reports whether the error names code (Rocket.Chat writes it either
// bare, "invalid-room", or in brackets, "[invalid-room]").
func (e *apiError) is(code string) bool { return strings.Contains(e.Text, code) }

// transient reports whether a retry may succeed: the server is unwell or
// busy, or (no-agent-online) has nobody to open a room with yet.
func transient(err error) bool {
	var ae *apiError
	if !errors.As(err, &ae) {
		return true // network errors, timeouts
	}
	return ae.Status >= 500 || ae.Status == http.StatusTooManyRequests || ae.is("no-agent-online")
}

// maxResponse bounds what is read of an answer.
const maxResponse = 8 << 20

// call makes one REST call under /api/v1/ and decodes a successful answer
// into out.
func (c *Connector) call(ctx context.Context, method, path string, query url.Values, body, out any) error {
	u := c.base.JoinPath("api/v1", path)
	if query != nil {
		u.RawQuery = query.Encode()
	}
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(raw)
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.cfg.Client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			// Without the URL: its query carries the visitor's token.
			err = fmt.Errorf("%s %s: %w", method, path, ue.Err)
		}
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return fmt.Errorf("%s %s: read answer: %w", method, path, err)
	}
	var env struct {
		Success *bool  `json:"success"`
		Error   string `json:"error"`
		Message string `json:"message"`
	}
	_ = json.Unmarshal(raw, &env)
	if resp.StatusCode/100 != 2 || (env.Success != nil && !*env.Success) {
		text := env.Error
		if text == "" {
			text = env.Message
		}
		if text == "" {
			text = strings.TrimSpace(string(raw[:min(len(raw), 200)]))
		}
		return &apiError{Status: resp.StatusCode, Text: text}
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
		}
	}
	return nil
}

// rcUser is a message author or a room's agent.
type rcUser struct {
	ID       string `json:"_id"`
	Username string `json:"username"`
	Name     string `json:"name"`
}

// rcMessage is a message as the livechat API and DDP streams show it.
type rcMessage struct {
	ID    string `json:"_id"`
	RID   string `json:"rid"`
	Msg   string `json:"msg"`
	T     string `json:"t"`
	Token string `json:"token"`
	U     rcUser `json:"u"`
}

type rcRoom struct {
	ID       string  `json:"_id"`
	Open     *bool   `json:"open"`
	ServedBy *rcUser `json:"servedBy"`
}
