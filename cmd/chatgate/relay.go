package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	lcupstream "chatgate/adapters/livechat/upstream"
	"chatgate/adapters/rocketchat/upstream"
	"chatgate/configs"
	"chatgate/core/model"
	"chatgate/core/relay"
	"chatgate/store"
)

// newRelay builds the connectors and the relay service of the config, or
// nil when no connector is configured.
// exclusive, if set (several nodes), runs each connector under a lease.
func newRelay(cfg *configs.Config, m *metrics, exclusive func(context.Context, string, func(context.Context)), log zerolog.Logger) (*relay.Service, error) {
	rc := cfg.Relay
	if len(rc.Connectors) == 0 {
		return nil, nil
	}
	var conns []relay.Connector
	for _, c := range rc.Connectors {
		client := &http.Client{Timeout: c.Timeout}
		if c.CAFile != "" {
			pem, err := os.ReadFile(c.CAFile)
			if err != nil {
				return nil, fmt.Errorf("relay connector %s: %w", c.Name, err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("relay connector %s: no certificate in %s", c.Name, c.CAFile)
			}
			client.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
		}
		switch c.Kind {
		case "rocketchat":
			conn, err := upstream.New(upstream.Config{Name: c.Name, URL: c.URL, Department: c.Department,
				Client: client, Timeout: c.Timeout}, log)
			if err != nil {
				return nil, err
			}
			conns = append(conns, conn)
		case "livechat":
			conn, err := lcupstream.New(lcupstream.Config{Name: c.Name, URL: c.URL, OrganizationID: c.OrganizationID,
				APIVersion: c.APIVersion, TokenURL: c.TokenURL, AgentToken: c.AgentToken, ClientID: c.ClientID,
				Department: c.Department, Client: client, Timeout: c.Timeout}, log)
			if err != nil {
				return nil, err
			}
			conns = append(conns, conn)
		default:
			return nil, fmt.Errorf("relay connector %s: kind %q is not available", c.Name, c.Kind)
		}
	}
	routes := make([]relay.Route, 0, len(rc.Routes))
	for _, r := range rc.Routes {
		routes = append(routes, relay.Route{Department: model.DeptID(r.Department), Upstream: r.Upstream, Mirrors: r.Mirrors})
	}
	deliveries := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "chatgate_relay_deliveries_total",
		Help: "Relay delivery attempts by connector and outcome (delivered, retry, exhausted).",
	}, []string{"connector", "outcome"})
	inbound := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "chatgate_relay_inbound_total",
		Help: "Upstream agents' messages by connector and outcome (posted, duplicate, ignored: a mirror's).",
	}, []string{"connector", "outcome"})
	m.reg.MustRegister(deliveries, inbound)
	svc, err := relay.New(relay.Config{Routes: routes, MinBackoff: rc.MinBackoff, MaxBackoff: rc.MaxBackoff,
		Concurrency: rc.Concurrency,
		OnDelivery:  func(conn, outcome string) { deliveries.WithLabelValues(conn, outcome).Inc() },
		OnInbound:   func(conn, outcome string) { inbound.WithLabelValues(conn, outcome).Inc() },
		Exclusive:   exclusive,
	}, conns, log)
	if err != nil {
		return nil, err
	}
	m.reg.MustRegister(&relayCollector{svc: svc,
		connected:  prometheus.NewDesc("chatgate_relay_connected", "1 while the connector's realtime connection is up.", []string{"connector"}, nil),
		queued:     prometheus.NewDesc("chatgate_relay_queued", "Deliveries waiting for the upstream desk.", []string{"connector"}, nil),
		reconnects: prometheus.NewDesc("chatgate_relay_reconnects_total", "Realtime reconnections of the connector.", []string{"connector"}, nil),
	})
	return svc, nil
}

// relayCollector reads the connectors' state at scrape time.
type relayCollector struct {
	svc                           *relay.Service
	connected, queued, reconnects *prometheus.Desc
}

func (c *relayCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.connected
	ch <- c.queued
	ch <- c.reconnects
}

func (c *relayCollector) Collect(ch chan<- prometheus.Metric) {
	for name, st := range c.svc.Statuses(context.Background()) {
		up := 0.0
		if st.Connected {
			up = 1
		}
		ch <- prometheus.MustNewConstMetric(c.connected, prometheus.GaugeValue, up, name)
		ch <- prometheus.MustNewConstMetric(c.queued, prometheus.GaugeValue, float64(st.Queued), name)
		ch <- prometheus.MustNewConstMetric(c.reconnects, prometheus.CounterValue, float64(st.Reconnects), name)
	}
}

// mountRelayView serves, for support staff with an agent's bearer token:
//
//	GET /relay/conversations       the newest 100 relayed conversations
//	GET /relay/conversations/:id   one conversation
//
// each with its owner, mirrors and every upstream id it is bound to.
// Upstream visitor tokens are credentials: only their first characters
// are shown.
func mountRelayView(e *gin.Engine, st store.Store, auth func(string) (model.AgentID, bool)) {
	authorized := func(c *gin.Context) bool {
		scheme, tok, _ := strings.Cut(c.GetHeader("Authorization"), " ")
		if _, ok := auth(strings.TrimSpace(tok)); !ok || !strings.EqualFold(scheme, "Bearer") {
			c.JSON(http.StatusUnauthorized, gin.H{"error": "agent bearer token required"})
			return false
		}
		return true
	}
	e.GET("/relay/conversations", func(c *gin.Context) {
		if !authorized(c) {
			return
		}
		ctx := c.Request.Context()
		const keep = 100
		var convs []model.Conversation
		err := st.Conversations(ctx, func(conv model.Conversation) bool {
			if conv.Owner != "" || len(conv.Mirrors) > 0 {
				convs = append(convs, conv)
				if len(convs) > 2*keep {
					convs = append(convs[:0], convs[len(convs)-keep:]...)
				}
			}
			return true
		})
		if err != nil {
			c.JSON(http.StatusInternalServerError, gin.H{"error": "store unavailable"})
			return
		}
		convs = convs[max(0, len(convs)-keep):]
		out := make([]gin.H, 0, len(convs))
		for i := len(convs) - 1; i >= 0; i-- {
			out = append(out, relayView(ctx, st, convs[i]))
		}
		c.JSON(http.StatusOK, gin.H{"conversations": out})
	})
	e.GET("/relay/conversations/:id", func(c *gin.Context) {
		if !authorized(c) {
			return
		}
		ctx := c.Request.Context()
		conv, err := st.Conversation(ctx, model.ConvID(c.Param("id")))
		if errors.Is(err, store.ErrNotFound) {
			c.JSON(http.StatusNotFound, gin.H{"error": "no such conversation"})
			return
		}
		if err != nil {
			c.JSON(http.StatusInternalServerError, gin.H{"error": "store unavailable"})
			return
		}
		c.JSON(http.StatusOK, relayView(ctx, st, conv))
	})
}

func relayView(ctx context.Context, st store.Store, conv model.Conversation) gin.H {
	links := gin.H{}
	for _, name := range append([]string{conv.Owner}, conv.Mirrors...) {
		if name == "" {
			continue
		}
		l := gin.H{}
		sys := relay.System(name)
		for _, kind := range []string{relay.KindRoom, relay.KindThread} {
			if f, err := st.Reverse(ctx, sys, "", kind, string(conv.ID)); err == nil {
				l[kind] = f
			}
		}
		if f, err := st.Reverse(ctx, sys, "", relay.KindVisitor, string(conv.Visitor)); err == nil {
			l["visitor"] = mask(f)
		}
		if conv.Agent != "" {
			if f, err := st.Reverse(ctx, sys, "", relay.KindAgent, string(conv.Agent)); err == nil {
				l["agent"] = f
			}
		}
		links[name] = l
	}
	return gin.H{"id": conv.ID, "state": conv.State, "owner": conv.Owner, "mirrors": conv.Mirrors,
		"agent": conv.Agent, "visitor": conv.Visitor, "last_seq": conv.LastSeq, "upstream": links}
}

// mask shows enough of a secret to tell two apart, not to use one.
func mask(s string) string {
	if len(s) <= 8 {
		return "…"
	}
	return s[:4] + "…"
}
