package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"time"

	"github.com/rs/zerolog"

	"chatgate/store/files"
)

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
