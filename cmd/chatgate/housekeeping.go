package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"time"

	"github.com/rs/zerolog"

	"chatgate/store"
	"chatgate/store/files"
)

// forgetBatch is how many visitors one ForgetIdleVisitors call deletes: on
// bbolt the deletion holds other commits back while it scans the mappings,
// so a large backlog goes in several short transactions.
const forgetBatch = 1000

// sweepVisitors deletes anonymous visitors idle for longer than ttl
// (store.anonymous_visitor_ttl; see store.Store.ForgetIdleVisitors) at
// once and then every tenth of ttl (between a second and an hour), until
// ctx ends, counting them in forgotten. On several nodes it runs under a
// lease (one node sweeps).
func sweepVisitors(ctx context.Context, st store.Store, ttl time.Duration, forgotten func(int), log zerolog.Logger) {
	if ttl <= 0 {
		return
	}
	t := time.NewTicker(min(max(ttl/10, time.Second), time.Hour))
	defer t.Stop()
	for {
		n, err := forgetIdle(ctx, st, time.Now().Add(-ttl))
		if err != nil && ctx.Err() == nil {
			log.Warn().Err(err).Msg("store: expire anonymous visitors")
		}
		if n > 0 {
			forgotten(n)
			log.Info().Int("removed", n).Msg("store: removed idle anonymous visitors")
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// forgetIdle deletes every anonymous visitor idle since before cutoff, in
// batches, and returns how many it deleted.
func forgetIdle(ctx context.Context, st store.Store, cutoff time.Time) (int, error) {
	total := 0
	for {
		gone, err := st.ForgetIdleVisitors(ctx, cutoff, forgetBatch)
		total += len(gone)
		if err != nil || len(gone) < forgetBatch {
			return total, err
		}
	}
}

// sweepFiles removes uploads no event references once their grace period
// (store.unreferenced_grace) is over, checking every tenth of it (between
// a second and an hour), until ctx ends.
func sweepFiles(ctx context.Context, fs *files.Store, log zerolog.Logger) {
	grace := fs.Limits().Grace
	if grace <= 0 {
		return
	}
	every := min(max(grace/10, time.Second), time.Hour)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		n, err := fs.Sweep(ctx, time.Now())
		if err != nil && ctx.Err() == nil {
			log.Warn().Err(err).Msg("files: sweep")
		}
		if n > 0 {
			log.Info().Int("removed", n).Msg("files: removed unreferenced uploads")
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// trustedNets are server.trusted_proxies, for the surfaces that read
// forwarded headers themselves (X-Forwarded-Proto for URLs).
type trustedNets []netip.Prefix

func parseTrusted(list []string) (trustedNets, error) {
	var out trustedNets
	for _, s := range list {
		p, err := parsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("server.trusted_proxies: %w", err)
		}
		out = append(out, p)
	}
	return out, nil
}

// contains reports whether r came straight from a trusted proxy.
func (t trustedNets) contains(r *http.Request) bool {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	a = a.Unmap()
	for _, p := range t {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
