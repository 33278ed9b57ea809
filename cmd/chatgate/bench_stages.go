package main

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"sort"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// benchStages says where the time of a relayed message went during the
// load phase, from the histograms the gateway keeps on /metrics (their
// difference between the start and the end of the load phase): the
// store's queue wait and group commit (and the part of it spent writing
// and fsyncing), the Go scheduler's latency (runnable goroutines waiting
// for a CPU) and the garbage collector's pauses and CPU. The end-to-end
// latencies are the bench's own; these are the stages that can hold
// their tail. Quantiles are estimated within histogram buckets (as
// Prometheus' histogram_quantile does), so they are approximate: the
// store's buckets double from 0.1 ms.
type benchStages struct {
	// Commits is the number of group-commit transactions,
	// RequestsPerCommit the commits each answered on average.
	Commits           int64   `json:"commits"`
	RequestsPerCommit float64 `json:"requests_per_commit,omitempty"`
	// StoreWait: per transaction, how long its oldest commit waited in
	// the queue before the transaction started (bbolt only).
	StoreWait *stageSummary `json:"store_queue_wait,omitempty"`
	// StoreCommit: per transaction, its duration (fsyncs included).
	StoreCommit *stageSummary `json:"store_commit,omitempty"`
	// StoreWrite: the part of StoreCommit spent writing and fsyncing.
	StoreWrite *stageSummary `json:"store_write_fsync,omitempty"`
	// Scheduler: how long goroutines waited runnable for a CPU.
	Scheduler *stageSummary `json:"scheduler_latency,omitempty"`
	// GCCycles and GCPauseMs: collections and their stop-the-world
	// pauses in all; GCCPUSec the CPU the collector took from the
	// program (mark workers, assists, pauses; not the idle-time marking
	// that uses a CPU nothing else wanted), GCAssistCPUSec the part taken from goroutines
	// that allocated (which delays them).
	// StaleRetries: commands the desk ran again because what they read
	// had changed by their commit (chatgate_stale_retries_total); on one
	// node, a cached read overtaken by a commit. Each costs its message a
	// second commit (queue wait and fsync).
	StaleRetries   int64   `json:"stale_retries"`
	GCCycles       int64   `json:"gc_cycles"`
	GCPauseMs      float64 `json:"gc_pause_ms"`
	GCCPUSec       float64 `json:"gc_cpu_s,omitempty"`
	GCAssistCPUSec float64 `json:"gc_assist_cpu_s,omitempty"`
}

// stageSummary is one stage's distribution, in milliseconds.
type stageSummary struct {
	Count  uint64  `json:"count"`
	MeanMs float64 `json:"mean_ms"`
	P50Ms  float64 `json:"p50_ms"`
	P99Ms  float64 `json:"p99_ms"`
}

// Series read from the gateway's /metrics (see metrics.go).
const (
	mCommitBatch = "chatgate_store_commit_batch_requests"
	mCommit      = "chatgate_store_commit_seconds"
	mCommitWait  = "chatgate_store_commit_wait_seconds"
	mCommitWrite = "chatgate_store_commit_write_seconds"
	mSched       = "go_sched_latencies_seconds"
	mGCPause     = "go_gc_duration_seconds"
	mGCCPU       = "go_cpu_classes_gc_total_cpu_seconds_total"
	mGCAssist    = "go_cpu_classes_gc_mark_assist_cpu_seconds_total"
	mGCIdle      = "go_cpu_classes_gc_mark_idle_cpu_seconds_total"
	mStale       = "chatgate_stale_retries_total"
)

// scrapeMetrics reads a gateway's /metrics; nil when it cannot (an older
// build, metrics on another address): the report then has no stages.
func scrapeMetrics(ctx context.Context, c *http.Client, base string) map[string]*dto.MetricFamily {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/metrics", nil)
	if err != nil {
		return nil
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil
	}
	return fams
}

// diffStages computes the stages of the load phase from the scrapes
// before and after it; nil if either is missing.
func diffStages(before, after map[string]*dto.MetricFamily) *benchStages {
	if before == nil || after == nil {
		return nil
	}
	st := &benchStages{}
	if b := histDiff(before, after, mCommitBatch); b != nil {
		st.Commits = int64(b.count)
		if b.count > 0 {
			st.RequestsPerCommit = b.sum / float64(b.count)
		}
	}
	st.StoreWait = histDiff(before, after, mCommitWait).summary()
	st.StoreCommit = histDiff(before, after, mCommit).summary()
	st.StoreWrite = histDiff(before, after, mCommitWrite).summary()
	st.Scheduler = histDiff(before, after, mSched).summary()
	if b, a := summaryOf(before, mGCPause), summaryOf(after, mGCPause); a != nil && b != nil {
		st.GCCycles = int64(a.GetSampleCount() - b.GetSampleCount())
		st.GCPauseMs = (a.GetSampleSum() - b.GetSampleSum()) * 1e3
	}
	st.StaleRetries = int64(counterOf(after, mStale) - counterOf(before, mStale))
	// Idle marking runs only on a CPU nothing else wanted: not a cost.
	st.GCCPUSec = counterOf(after, mGCCPU) - counterOf(before, mGCCPU) - (counterOf(after, mGCIdle) - counterOf(before, mGCIdle))
	st.GCAssistCPUSec = counterOf(after, mGCAssist) - counterOf(before, mGCAssist)
	return st
}

// hist is a histogram's difference between two scrapes: cumulative
// counts per upper bound, ascending.
type hist struct {
	bounds []float64
	cum    []uint64
	count  uint64
	sum    float64
}

func histOf(fams map[string]*dto.MetricFamily, name string) *dto.Histogram {
	f := fams[name]
	if f == nil || len(f.GetMetric()) == 0 {
		return nil
	}
	return f.GetMetric()[0].GetHistogram()
}

func histDiff(before, after map[string]*dto.MetricFamily, name string) *hist {
	a, b := histOf(after, name), histOf(before, name)
	if a == nil {
		return nil
	}
	prev := map[float64]uint64{}
	var prevCount uint64
	var prevSum float64
	if b != nil {
		for _, bk := range b.GetBucket() {
			prev[bk.GetUpperBound()] = bk.GetCumulativeCount()
		}
		prevCount, prevSum = b.GetSampleCount(), b.GetSampleSum()
	}
	h := &hist{count: a.GetSampleCount() - prevCount, sum: a.GetSampleSum() - prevSum}
	bks := a.GetBucket()
	sort.Slice(bks, func(i, j int) bool { return bks[i].GetUpperBound() < bks[j].GetUpperBound() })
	for _, bk := range bks {
		h.bounds = append(h.bounds, bk.GetUpperBound())
		h.cum = append(h.cum, bk.GetCumulativeCount()-prev[bk.GetUpperBound()])
	}
	return h
}

// quantile estimates the q-quantile by linear interpolation inside the
// bucket that holds it (as histogram_quantile does); observations above
// the last bound are reported as that bound.
func (h *hist) quantile(q float64) float64 {
	if h == nil || h.count == 0 {
		return 0
	}
	rank := q * float64(h.count)
	lower, below := 0.0, uint64(0)
	for i, ub := range h.bounds {
		if float64(h.cum[i]) >= rank {
			if math.IsInf(ub, 1) {
				return lower
			}
			in := h.cum[i] - below
			if in == 0 {
				return ub
			}
			return lower + (ub-lower)*(rank-float64(below))/float64(in)
		}
		lower, below = ub, h.cum[i]
	}
	return lower
}

func (h *hist) summary() *stageSummary {
	if h == nil || h.count == 0 {
		return nil
	}
	return &stageSummary{Count: h.count, MeanMs: h.sum / float64(h.count) * 1e3,
		P50Ms: h.quantile(0.5) * 1e3, P99Ms: h.quantile(0.99) * 1e3}
}

func summaryOf(fams map[string]*dto.MetricFamily, name string) *dto.Summary {
	f := fams[name]
	if f == nil || len(f.GetMetric()) == 0 {
		return nil
	}
	return f.GetMetric()[0].GetSummary()
}

func counterOf(fams map[string]*dto.MetricFamily, name string) float64 {
	f := fams[name]
	if f == nil || len(f.GetMetric()) == 0 {
		return 0
	}
	return f.GetMetric()[0].GetCounter().GetValue()
}

// String is the stages as one line of the text report.
func (s *benchStages) String() string {
	ms := func(x *stageSummary) string {
		if x == nil {
			return "–"
		}
		return fmt.Sprintf("%.2f / %.2f", x.P50Ms, x.P99Ms)
	}
	return fmt.Sprintf("%d commits (%.1f requests each); ms p50 / p99: queue wait %s, commit %s (write+fsync %s), scheduler %s; GC %d cycles, pauses %.1f ms, CPU %.2f s (assists %.2f s)",
		s.Commits, s.RequestsPerCommit, ms(s.StoreWait), ms(s.StoreCommit), ms(s.StoreWrite), ms(s.Scheduler),
		s.GCCycles, s.GCPauseMs, s.GCCPUSec, s.GCAssistCPUSec)
}
