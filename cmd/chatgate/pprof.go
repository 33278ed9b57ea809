package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"
)

// Internal listeners: server.pprof_addr (Go's profiler) and
// server.metrics_addr (/metrics), apart from the public routes, so that
// neither needs to be reachable by visitors (docs/security.md). When both
// name the same address, one listener serves both.

// servePprof serves Go's profiler (and /metrics when withMetrics) on its
// own listener and returns the function that stops it.
func servePprof(addr string, log zerolog.Logger) (func(), error) {
	return serveInternal(addr, nil, true, log, nil)
}

// serveMetrics serves /metrics on its own listener; listening, if set, is
// told the bound address.
func serveMetrics(addr string, m *metrics, log zerolog.Logger, listening func(string)) (func(), error) {
	return serveInternal(addr, m, false, log, listening)
}

func serveInternal(addr string, m *metrics, withPprof bool, log zerolog.Logger, listening func(string)) (func(), error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("internal listener %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	if withPprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	if m != nil {
		mux.Handle("/metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}))
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ErrorLog: httpErrorLog(log)}
	go func() { _ = srv.Serve(ln) }()
	log.Info().Str("addr", ln.Addr().String()).Bool("pprof", withPprof).Bool("metrics", m != nil).Msg("internal listener serving")
	if listening != nil {
		listening(ln.Addr().String())
	}
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}, nil
}
