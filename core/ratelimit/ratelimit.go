// Package ratelimit keeps token buckets per key (a client address, a
// visitor, an agent login) for the gateway's rate limits: chat starts,
// messages, uploads, anonymous customers and failed logins (issue 16, Low
// 8). The buckets are golang.org/x/time/rate limiters; this package only
// keys them, bounds how many keys it remembers, and counts refusals for
// /metrics. It knows no protocol: surfaces answer a refusal in their own
// error format.
package ratelimit

import (
	"context"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Rule is one limit: Burst events at once, refilled at PerMinute per
// minute. A zero Burst disables the limit.
type Rule struct {
	PerMinute float64 `yaml:"per_minute"`
	Burst     int     `yaml:"burst"`
}

// Enabled reports whether the rule limits anything.
func (r Rule) Enabled() bool { return r.Burst > 0 }

// maxKeys bounds the buckets one Keyed remembers; past it, buckets idle
// long enough to be full again are dropped first, then arbitrary ones (a
// dropped bucket comes back full: the limit errs towards the client, the
// memory stays bounded).
const maxKeys = 100_000

// Keyed is one Rule applied per key.
type Keyed struct {
	name     string
	rule     Rule
	onRefuse func(name string)
	now      func() time.Time
	shared   Shared

	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	lim  *rate.Limiter
	seen time.Time
}

// Shared is a deployment-wide view of one limit (several nodes on one
// database): Note records that key took a token on this node, Blocked
// reports whether key's deployment-wide bucket is empty. Both must be
// cheap (no round trip): an implementation records and refreshes in the
// background, so the shared view lags by its refresh period.
type Shared interface {
	Note(key string)
	Blocked(key string) bool
}

// Share makes k deployment-wide as well: every token taken is noted in s,
// and Blocked also reports keys s says are blocked. Call before use.
func (k *Keyed) Share(s Shared) {
	if k != nil {
		k.shared = s
	}
}

// Name is the limit's name (its metrics label).
func (k *Keyed) Name() string { return k.name }

// Rule is the limit's rule.
func (k *Keyed) Rule() Rule { return k.rule }

// New returns the limit name (a metrics label) with rule; onRefuse, if
// set, is told every refusal.
func New(name string, rule Rule, onRefuse func(name string)) *Keyed {
	return &Keyed{name: name, rule: rule, onRefuse: onRefuse, now: time.Now, buckets: map[string]*bucket{}}
}

// Allow takes one token from key's bucket, reporting whether there was
// one. A nil Keyed or a disabled rule allows everything.
func (k *Keyed) Allow(key string) bool {
	if k == nil || !k.rule.Enabled() {
		return true
	}
	now := k.now()
	k.mu.Lock()
	b := k.buckets[key]
	if b == nil {
		if len(k.buckets) >= maxKeys {
			k.evict(now)
		}
		b = &bucket{lim: rate.NewLimiter(rate.Limit(k.rule.PerMinute/60), k.rule.Burst)}
		k.buckets[key] = b
	}
	b.seen = now
	ok := b.lim.AllowN(now, 1)
	k.mu.Unlock()
	if k.shared != nil {
		k.shared.Note(key)
	}
	if !ok && k.onRefuse != nil {
		k.onRefuse(k.name)
	}
	return ok
}

// Blocked reports whether key's bucket is empty now, without taking a
// token (failed logins: Blocked before checking, Allow after a failure).
func (k *Keyed) Blocked(key string) bool {
	if k == nil || !k.rule.Enabled() {
		return false
	}
	now := k.now()
	k.mu.Lock()
	b := k.buckets[key]
	blocked := b != nil && b.lim.TokensAt(now) < 1
	k.mu.Unlock()
	if !blocked && k.shared != nil {
		blocked = k.shared.Blocked(key)
	}
	if blocked && k.onRefuse != nil {
		k.onRefuse(k.name)
	}
	return blocked
}

// evict drops buckets that have refilled; if none has, half of them.
// Called with mu held.
func (k *Keyed) evict(now time.Time) {
	full := time.Minute
	if k.rule.PerMinute > 0 {
		full = time.Duration(float64(k.rule.Burst) / k.rule.PerMinute * float64(time.Minute))
	}
	for key, b := range k.buckets {
		if now.Sub(b.seen) > full {
			delete(k.buckets, key)
		}
	}
	if len(k.buckets) < maxKeys {
		return
	}
	n := len(k.buckets) / 2
	for key := range k.buckets {
		if n == 0 {
			break
		}
		delete(k.buckets, key)
		n--
	}
}

// AddrKey is the key of a client address: the IP without port, IPv6
// addresses by their /64 (one host usually holds a whole /64).
func AddrKey(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ip
	}
	a = a.Unmap()
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}

type addrKey struct{}

// WithAddr returns ctx carrying the client address key (AddrKey) of the
// request it serves; the gateway's HTTP middleware sets it, and websocket
// sessions keep it for their life.
func WithAddr(ctx context.Context, addr string) context.Context {
	return context.WithValue(ctx, addrKey{}, addr)
}

// AddrFrom is the client address key of ctx, "" when none (a connector,
// a background job).
func AddrFrom(ctx context.Context) string {
	s, _ := ctx.Value(addrKey{}).(string)
	return s
}

type exemptKey struct{}

// WithExempt marks ctx as serving an exempt client (rate_limits.exempt):
// no limit applies, per-visitor ones included.
func WithExempt(ctx context.Context) context.Context {
	return context.WithValue(ctx, exemptKey{}, true)
}

// Exempt reports whether ctx serves an exempt client.
func Exempt(ctx context.Context) bool {
	b, _ := ctx.Value(exemptKey{}).(bool)
	return b
}

// Detach returns a context that never ends and carries ctx's client
// address and exemption only, for a websocket session that outlives its
// upgrade request. context.WithoutCancel would do too, but it keeps the
// whole request context reachable for as long as the socket is held
// (net/http's two cancel contexts with their channels and child maps, the
// local address, the router's values): about a kilobyte per idle socket.
func Detach(ctx context.Context) context.Context {
	out := context.Background()
	if a := AddrFrom(ctx); a != "" {
		out = WithAddr(out, a)
	}
	if Exempt(ctx) {
		out = WithExempt(out)
	}
	return out
}
