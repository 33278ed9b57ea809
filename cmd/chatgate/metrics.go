package main

import (
	"regexp"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"chatgate/core/routing"
	"chatgate/store/bolt"
)

// metrics are the gateway's Prometheus series, on a registry of its own (no
// process-global registry, so tests can run several gateways).
type metrics struct {
	reg         *prometheus.Registry
	connections *prometheus.GaugeVec
	events      prometheus.Counter
	stale       prometheus.Counter
	batchSize   prometheus.Histogram
	batchKeys   prometheus.Histogram
	commitTime  prometheus.Histogram
	commitWait  prometheus.Histogram
	commitWrite prometheus.Histogram
	commitErrs  prometheus.Counter
	httpReqs    *prometheus.CounterVec
	forgotten   prometheus.Counter
	// lastCommitNS and commits feed the operator view.
	lastCommitNS atomic.Int64
	commits      atomic.Int64
}

// lastCommit is the duration of the latest group commit and how many
// there were since start.
func (m *metrics) lastCommit() (time.Duration, int64) {
	return time.Duration(m.lastCommitNS.Load()), m.commits.Load()
}

func newMetrics(router *routing.Router, node string) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		connections: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "chatgate_connections", Help: "Open client connections (websocket sessions) by surface.",
		}, []string{"surface"}),
		forgotten: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "chatgate_anonymous_visitors_expired_total",
			Help: "Anonymous visitors (never in a conversation) deleted after store.anonymous_visitor_ttl of inactivity.",
		}),
		events: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "chatgate_events_committed_total", Help: "Conversation events committed to the store.",
		}),
		// A command that read a conversation or visitor at a revision
		// someone has written since runs again (desk.Options.OnStale):
		// on several nodes this counts the two nodes' collisions on one
		// record; on one node, cached reads that had gone stale.
		stale: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "chatgate_stale_retries_total",
			Help: "Commands run again because the conversation or visitor record they read had been written since (another node, or a cached read).",
		}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "chatgate_store_commit_batch_requests", Help: "Commits answered by one group-commit transaction.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 12),
		}),
		batchKeys: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "chatgate_store_commit_batch_keys", Help: "Keys written by one group-commit transaction.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 14),
		}),
		commitTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "chatgate_store_commit_seconds", Help: "Duration of one group-commit transaction, fsync included.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 14),
		}),
		commitWait: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "chatgate_store_commit_wait_seconds",
			Help:    "How long the oldest commit of a group-commit transaction waited in the queue before the transaction started (bbolt; a commit's latency is this plus chatgate_store_commit_seconds at worst).",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 14),
		}),
		commitWrite: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "chatgate_store_commit_write_seconds",
			Help:    "Part of one group-commit transaction spent writing pages and the meta page to the file, both fsyncs included (bbolt).",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 14),
		}),
		commitErrs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "chatgate_store_commit_errors_total", Help: "Group-commit transactions that failed.",
		}),
		httpReqs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chatgate_http_requests_total", Help: "HTTP requests by route template and status code.",
		}, []string{"route", "code"}),
	}
	nodeInfo := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "chatgate_node_info", Help: "Always 1; its node label is this process's --node-id (several nodes share one store).",
	}, []string{"node"})
	nodeInfo.WithLabelValues(node).Set(1)
	m.reg.MustRegister(nodeInfo)
	m.reg.MustRegister(m.connections, m.events, m.stale, m.batchSize, m.batchKeys, m.commitTime, m.commitWait, m.commitWrite, m.commitErrs, m.httpReqs, m.forgotten,
		// Besides the default series: the scheduler's latency histogram
		// (go_sched_latencies_seconds: how long runnable goroutines
		// waited for a CPU) and the collector's CPU by class
		// (go_cpu_classes_gc_*: mark workers, assists taken from
		// allocating goroutines, pauses). On a small machine both are
		// stages of every message's latency (`chatgate bench` reports them).
		collectors.NewGoCollector(collectors.WithGoCollectorRuntimeMetrics(collectors.GoRuntimeMetricsRule{
			Matcher: regexp.MustCompile(`^/sched/latencies:seconds$|^/cpu/classes/gc/`)})), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		&conversationCollector{router: router, desc: prometheus.NewDesc("chatgate_conversations",
			"Conversations by state (queued, open).", []string{"state"}, nil)})
	return m
}

// conversationCollector reads the counts from the router at scrape time,
// so there is no second copy of them to keep in step.
type conversationCollector struct {
	router *routing.Router
	desc   *prometheus.Desc
}

func (c *conversationCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *conversationCollector) Collect(ch chan<- prometheus.Metric) {
	open := 0
	for _, a := range c.router.Agents() {
		open += c.router.Open(a.ID)
	}
	ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(len(c.router.Queued())), "queued")
	ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(open), "open")
}

// onCommit feeds the store's group-commit statistics.
func (m *metrics) onCommit(s bolt.Stats) {
	m.batchSize.Observe(float64(s.Requests))
	m.batchKeys.Observe(float64(s.Keys))
	m.commitTime.Observe(s.Duration.Seconds())
	if s.Wait > 0 || s.Write > 0 { // bbolt; PostgreSQL reports neither
		m.commitWait.Observe(s.Wait.Seconds())
		m.commitWrite.Observe(s.Write.Seconds())
	}
	m.lastCommitNS.Store(int64(s.Duration))
	m.commits.Add(1)
	if s.Err != nil {
		m.commitErrs.Inc()
	}
}

// connGauge returns a callback that moves one surface's connection gauge.
func (m *metrics) connGauge(surface string) func(int) {
	g := m.connections.WithLabelValues(surface)
	return func(delta int) { g.Add(float64(delta)) }
}

// httpMiddleware counts requests by route template (never the raw path or
// query, which carry visitor ids and session secrets).
func (m *metrics) httpMiddleware(c *gin.Context) {
	c.Next()
	route := c.FullPath()
	if route == "" {
		route = "unmatched"
	}
	m.httpReqs.WithLabelValues(route, strconv.Itoa(c.Writer.Status())).Inc()
}
