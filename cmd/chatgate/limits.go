package main

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

	"chatgate/configs"
	"chatgate/core/ratelimit"
)

// guard applies the per-address limits of rate_limits (issue 16, Low 8)
// that live at the HTTP layer: the connection cap (in-flight requests and
// open websockets per client address), and the failed-login throttle over
// every 401. It also puts the client address into each request's context
// (ratelimit.WithAddr), where the desk (starts) and the surfaces (RTM
// logins, uploads, new customers) find it. The other limiters are built
// here and handed to them.
type guard struct {
	exempt  []netip.Prefix
	connCap int
	refused *prometheus.CounterVec

	logins, starts, messages, uploads, newCustomers *ratelimit.Keyed

	mu    sync.Mutex
	conns map[string]int
}

func newGuard(rl configs.RateLimits, m *metrics) (*guard, error) {
	g := &guard{connCap: rl.ConnectionsPerAddress, conns: map[string]int{},
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chatgate_rate_limited_total",
			Help: "Requests, frames and connections refused by a rate limit or cap, by limit.",
		}, []string{"limit"})}
	m.reg.MustRegister(g.refused)
	for _, e := range rl.Exempt {
		p, err := parsePrefix(e)
		if err != nil {
			return nil, fmt.Errorf("rate_limits.exempt: %w", err)
		}
		g.exempt = append(g.exempt, p)
	}
	count := func(name string) { g.refused.WithLabelValues(name).Inc() }
	g.logins = ratelimit.New("failed_logins", rl.FailedLogins, count)
	g.starts = ratelimit.New("starts", rl.Starts, count)
	g.messages = ratelimit.New("messages", rl.Messages, count)
	g.uploads = ratelimit.New("uploads", rl.Uploads, count)
	g.newCustomers = ratelimit.New("new_customers", rl.NewCustomers, count)
	return g, nil
}

// parsePrefix reads an IP or a CIDR.
func parsePrefix(s string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is neither an IP nor a CIDR", s)
	}
	return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
}

func (g *guard) isExempt(ip string) bool {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return false
	}
	a = a.Unmap()
	for _, p := range g.exempt {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func (g *guard) acquire(key string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.conns[key] >= g.connCap {
		return false
	}
	g.conns[key]++
	return true
}

func (g *guard) release(key string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.conns[key]--; g.conns[key] <= 0 {
		delete(g.conns, key)
	}
}

// middleware runs first on every request.
func (g *guard) middleware(c *gin.Context) {
	ip := c.ClientIP()
	if g.isExempt(ip) {
		c.Request = c.Request.WithContext(ratelimit.WithExempt(c.Request.Context()))
		c.Next()
		return
	}
	key := ratelimit.AddrKey(ip)
	c.Request = c.Request.WithContext(ratelimit.WithAddr(c.Request.Context(), key))
	if carriesCredentials(c.Request) && g.logins.Blocked(key) {
		tooMany(c, "Too many failed logins from this address; try again later")
		return
	}
	if g.connCap > 0 {
		if !g.acquire(key) {
			g.refused.WithLabelValues("connections_per_address").Inc()
			tooMany(c, "Too many connections from this address")
			return
		}
		// A websocket keeps its slot until the hijacked connection
		// closes; any other request until it is answered.
		var once sync.Once
		rel := func() { once.Do(func() { g.release(key) }) }
		hw := &hijackWriter{ResponseWriter: c.Writer, onClose: rel}
		c.Writer = hw
		defer func() {
			if !hw.hijacked {
				rel()
			}
		}()
	}
	c.Next()
	if c.Writer.Status() == http.StatusUnauthorized {
		g.logins.Allow(key) // one failed login (or credential) more
	}
}

// carriesCredentials reports whether a request tries credentials (an
// agent or customer token, a Rocket.Chat login or auth token): those are
// what an address past its failed-login limit may no longer try. Other
// requests (a visitor's widget behind the same NAT) go on.
func carriesCredentials(r *http.Request) bool {
	return r.Header.Get("Authorization") != "" || r.Header.Get("X-Auth-Token") != "" ||
		strings.HasSuffix(r.URL.Path, "/login") || r.URL.Path == "/v2/customer/token"
}

// tooMany answers 429 in the error format of the protocol the path
// belongs to.
func tooMany(c *gin.Context, msg string) {
	p := c.Request.URL.Path
	var body any
	switch {
	case strings.HasPrefix(p, "/api/"), p == "/websocket", strings.HasPrefix(p, "/sockjs/"):
		body = gin.H{"success": false, "error": msg + " [error-too-many-requests]", "errorType": "error-too-many-requests"}
	case p == "/v2/customer/token":
		body = gin.H{"oauth_exception": "too_many_requests"}
	case strings.HasPrefix(p, "/v3."):
		body = gin.H{"error": gin.H{"type": "too_many_requests", "message": msg}}
	default:
		body = gin.H{"error": msg}
	}
	c.AbortWithStatusJSON(http.StatusTooManyRequests, body)
}

// hijackWriter tells when a hijacked (websocket) connection closes.
type hijackWriter struct {
	gin.ResponseWriter
	onClose  func()
	hijacked bool
}

func (w *hijackWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, rw, err := w.ResponseWriter.Hijack()
	if err != nil {
		return conn, rw, err
	}
	w.hijacked = true
	return &closeNotifyConn{Conn: conn, onClose: w.onClose}, rw, nil
}

type closeNotifyConn struct {
	net.Conn
	onClose func()
}

func (c *closeNotifyConn) Close() error {
	err := c.Conn.Close()
	c.onClose()
	return err
}
