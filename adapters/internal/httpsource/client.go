// Package httpsource is the HTTP plumbing the vendor importers share: a JSON
// client that keeps to a request rate, backs off on 429 (honouring
// Retry-After) and on 5xx, and bounds what it reads.
package httpsource

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// MaxBody bounds a JSON answer read from a source.
const MaxBody = 64 << 20

// Client calls one vendor's API.
type Client struct {
	Base    string
	Header  http.Header
	HTTP    *http.Client
	limiter *rate.Limiter
	// Retries is how many times a 429 or 5xx answer is retried.
	Retries int
	// MaxBackoff caps one wait.
	MaxBackoff time.Duration
	requests   atomic.Int64
}

// New returns a client of base keeping to rps requests per second (<= 0:
// no limit).
func New(base string, rps float64) *Client {
	lim := rate.NewLimiter(rate.Inf, 1)
	if rps > 0 {
		lim = rate.NewLimiter(rate.Limit(rps), 1)
	}
	return &Client{Base: strings.TrimRight(base, "/"), Header: http.Header{}, HTTP: &http.Client{Timeout: 60 * time.Second},
		limiter: lim, Retries: 8, MaxBackoff: time.Minute}
}

// Requests is the number of requests sent so far (retries included).
func (c *Client) Requests() int64 { return c.requests.Load() }

// StatusError is a non-2xx answer.
type StatusError struct {
	Status int
	Body   string
}

func (e *StatusError) Error() string { return fmt.Sprintf("HTTP %d: %.300s", e.Status, e.Body) }

// JSON sends method path (relative to Base, or absolute) with body as JSON
// (nil: none) and decodes the answer into out (nil: discarded).
func (c *Client) JSON(ctx context.Context, method, path string, body, out any) error {
	var raw []byte
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		raw = b
	}
	resp, err := c.Do(ctx, method, path, raw, "application/json")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, MaxBody+1))
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if len(b) > MaxBody {
		return fmt.Errorf("%s %s: answer larger than %d bytes", method, path, MaxBody)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	return nil
}

// Do sends a request, waiting for the rate limiter, retrying 429 and 5xx
// answers and transport errors with backoff. A 2xx answer is returned
// with its body open; any other is an error (*StatusError).
func (c *Client) Do(ctx context.Context, method, path string, body []byte, ctype string) (*http.Response, error) {
	u := path
	if !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
		u = c.Base + "/" + strings.TrimLeft(path, "/")
	}
	wait := 500 * time.Millisecond
	for attempt := 0; ; attempt++ {
		if err := c.limiter.Wait(ctx); err != nil {
			return nil, err
		}
		req, err := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(body))
		if err != nil {
			return nil, err
		}
		// Credentials go to the source's own host only (a file URL may
		// point at a CDN).
		if sameHost(req.URL, c.Base) {
			for k, v := range c.Header {
				req.Header[k] = v
			}
		}
		if body != nil {
			req.Header.Set("Content-Type", ctype)
		}
		c.requests.Add(1)
		resp, err := c.HTTP.Do(req)
		var retryAfter time.Duration
		switch {
		case err != nil:
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
		case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
			retryAfter = parseRetryAfter(resp.Header.Get("Retry-After"))
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			resp.Body.Close()
			err = &StatusError{Status: resp.StatusCode, Body: string(b)}
		case resp.StatusCode >= 300:
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			resp.Body.Close()
			return nil, fmt.Errorf("%s %s: %w", method, path, &StatusError{Status: resp.StatusCode, Body: string(b)})
		default:
			return resp, nil
		}
		if attempt >= c.Retries {
			return nil, fmt.Errorf("%s %s: giving up after %d attempts: %w", method, path, attempt+1, err)
		}
		d := wait
		if retryAfter > 0 {
			d = retryAfter
		}
		d = min(d, c.MaxBackoff)
		wait = min(wait*2, c.MaxBackoff)
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func sameHost(u *url.URL, base string) bool {
	b, err := url.Parse(base)
	return err == nil && strings.EqualFold(u.Scheme, b.Scheme) && strings.EqualFold(u.Host, b.Host)
}

// parseRetryAfter reads Retry-After as seconds or an HTTP date.
func parseRetryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return time.Until(t)
	}
	return 0
}

// IsStatus reports whether err is a StatusError with status code.
func IsStatus(err error, code int) bool {
	var se *StatusError
	return errors.As(err, &se) && se.Status == code
}

// RocketChatLogin sets c's Rocket.Chat REST credentials (X-User-Id,
// X-Auth-Token): a personal access token as given, or those of a
// POST /api/v1/login with user and password. who names the credentials in
// the error when neither is given. The importer and the backfill both
// call Rocket.Chat as an agent.
func (c *Client) RocketChatLogin(ctx context.Context, who, user, password, userID, authToken string) error {
	if authToken != "" {
		c.Header.Set("X-User-Id", userID)
		c.Header.Set("X-Auth-Token", authToken)
		return nil
	}
	if user == "" || password == "" {
		return fmt.Errorf("%s: give --user and --password, or --user-id and --auth-token", who)
	}
	var out struct {
		Data struct {
			UserID    string `json:"userId"`
			AuthToken string `json:"authToken"`
		} `json:"data"`
	}
	if err := c.JSON(ctx, "POST", "/api/v1/login", map[string]string{"user": user, "password": password}, &out); err != nil {
		return fmt.Errorf("login: %w", err)
	}
	if out.Data.AuthToken == "" {
		return errors.New("login: no auth token in the answer")
	}
	c.Header.Set("X-User-Id", out.Data.UserID)
	c.Header.Set("X-Auth-Token", out.Data.AuthToken)
	return nil
}
