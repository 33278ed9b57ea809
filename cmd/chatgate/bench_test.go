package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// TestBenchInProcess runs the bench briefly against an in-process gateway
// on every visitor surface: messages are relayed both ways without errors
// and both report formats come out. No timing is asserted.
func TestBenchInProcess(t *testing.T) {
	for _, name := range []string{"v2", "rocketchat", "rocketchat-ddp", "customer"} {
		t.Run(name, func(t *testing.T) {
			surface, send, _ := strings.Cut(name, "-")
			args := []string{"--visitor-surface", surface, "--visitors", "4", "--agents", "2", "--duration", "2s",
				"--baseline-duration", "1s"} // 300 ms saw no echo at all once on a loaded machine
			if send != "" {
				args = append(args, "--rocketchat-send", send)
			}
			if surface != "v2" {
				args = append(args, "--no-baselines")
			}
			o, err := parseBenchFlags(args, io.Discard, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			rep, err := runBench(context.Background(), o)
			if err != nil {
				t.Fatal(err)
			}
			if rep.Errors != 0 || rep.VisitorToAgent.Count == 0 || rep.AgentToVisitor.Count == 0 || rep.RelayedPerSec <= 0 ||
				rep.WritesPerRelayed <= 0 || rep.ReadsPerRelayed <= 0 {
				t.Fatalf("report: relayed %d (v→a %d, a→v %d), errors %d %v", rep.Relayed,
					rep.VisitorToAgent.Count, rep.AgentToVisitor.Count, rep.Errors, rep.ErrorSamples)
			}
			var js bytes.Buffer
			if err := writeBenchReport(&js, rep, true); err != nil {
				t.Fatal(err)
			}
			var back benchReport
			if err := json.Unmarshal(js.Bytes(), &back); err != nil {
				t.Fatalf("JSON report does not parse: %v\n%s", err, js.Bytes())
			}
			wantSend := map[string]string{"rocketchat": "rest", "rocketchat-ddp": "ddp"}[name]
			if back.Relayed != rep.Relayed || back.VisitorSurface != surface || !back.InProcess || back.RocketChatSend != wantSend {
				t.Fatalf("JSON report lost fields: %s", js.Bytes())
			}
			// The stages come from the gateway's /metrics: every relayed
			// message was committed, so there were commits, each with a
			// write and a queue wait observed.
			if st := back.Stages; st == nil || st.Commits <= 0 || st.RequestsPerCommit < 1 || st.StoreCommit == nil ||
				st.StoreWait == nil || st.StoreWrite == nil || st.Scheduler == nil || st.StoreWrite.MeanMs > st.StoreCommit.MeanMs {
				t.Fatalf("stages missing: %s", js.Bytes())
			}
			if surface == "v2" {
				b := back.Baselines
				if b == nil || b.EchoMsgsPerSec <= 0 || b.BoltEchoMsgsPerSec <= 0 || b.RawDurableEchoMsgsPerSec <= 0 ||
					back.Ratios["relayed_vs_raw_durable_echo"] <= 0 || back.Ratios["store_echo_vs_raw_durable_echo"] <= 0 || b.GinReqPerSec <= 0 || back.V2PollsPerSec <= 0 ||
					back.Ratios["v2_polls_vs_gin"] <= 0 {
					t.Fatalf("baselines missing: %s", js.Bytes())
				}
			}
			var table bytes.Buffer
			if err := writeBenchReport(&table, rep, false); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(table.String(), "visitor→agent") {
				t.Fatalf("table:\n%s", table.String())
			}
		})
	}
}

// TestBenchCapacity holds a few idle DDP and customer RTM sessions.
func TestBenchCapacity(t *testing.T) {
	o, err := parseBenchFlags([]string{"--capacity", "10", "--duration", "1s"}, io.Discard, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := runBench(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	c := rep.Capacity
	if c == nil || c.DDPOpen != 10 || c.RTMOpen != 10 || c.StillOpen != 20 || c.Errors != 0 {
		t.Fatalf("capacity: %+v", c)
	}
	if c.HeldRSS <= 0 || c.HeldPerConn == 0 {
		t.Fatalf("capacity: no RSS after the hold: %+v", c)
	}
	var js bytes.Buffer
	if err := writeBenchReport(&js, rep, true); err != nil || !json.Valid(js.Bytes()) {
		t.Fatalf("JSON: %v %s", err, js.Bytes())
	}
}

// TestBenchCancelStillReports: cancelling mid-run ends the load phase
// early and still yields a report.
func TestBenchCancelStillReports(t *testing.T) {
	o, err := parseBenchFlags([]string{"--visitors", "2", "--agents", "1", "--duration", "1m"}, io.Discard, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(3*time.Second, cancel)
	rep, err := runBench(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Interrupted || rep.DurationSec >= 60 || rep.Baselines != nil {
		t.Fatalf("report after cancel: interrupted %v, %.1fs, baselines %v", rep.Interrupted, rep.DurationSec, rep.Baselines != nil)
	}
}

func TestBenchFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--visitor-surface", "irc"},
		{"--target", "http://127.0.0.1:1"},
		{"--visitors", "0"},
		{"extra"},
		{"--rocketchat-send", "websocket", "--visitor-surface", "rocketchat"},
		{"--rocketchat-send", "ddp"}, // v2 visitors have no DDP
		{"--rocketchat-send", "ddp", "--visitor-surface", "customer"},
	} {
		if _, err := parseBenchFlags(args, io.Discard, io.Discard); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
	if err := run(context.Background(), []string{"bench", "--visitor-surface", "irc"}, io.Discard, func(string) string { return "" }); err == nil {
		t.Error("run bench with a bad flag: no error")
	}
}

// TestRTMWorth: the bench clients skip, undecoded, only frames that cannot
// matter to them; failures, chat ends and the answers they wait for are
// decoded, and an incoming_event comes back with its payload in one pass.
func TestRTMWorth(t *testing.T) {
	push := func(text, author string) string {
		return `{"action":"incoming_event","type":"push","payload":{"chat_id":"C1","thread_id":"T1","event":{"id":"e","type":"message","text":"` +
			text + `","author_id":"` + author + `"}}}`
	}
	for _, tc := range []struct {
		name, frame, prefix string
		actions             []string
		worth               bool
		push                bool // decodes as an incoming_event
		fails               bool // decodes as a failed response
	}{
		{name: "answer", frame: push("ack|1|2|3", "agent"), prefix: "ack", worth: true, push: true},
		{name: "own echo", frame: push("bench|1|2|3", "visitor"), prefix: "ack"},
		{name: "own send's response", frame: `{"request_id":"c1","action":"send_event","type":"response","success":true,"payload":{"event":{"id":"e","type":"message","text":"bench|1|2|3"}}}`, prefix: "ack"},
		{name: "failed response", frame: `{"request_id":"c1","action":"send_event","type":"response","success":false,"payload":{"error":{"type":"validation","message":"no"}}}`, prefix: "ack", worth: true, fails: true},
		{name: "chat end", frame: `{"action":"chat_deactivated","type":"push","payload":{"chat_id":"C1"}}`, prefix: "ack", actions: []string{"chat_deactivated"}, worth: true},
		{name: "visitor message to agent", frame: push("bench|1|2|3", "visitor"), prefix: "bench", worth: true, push: true},
		{name: "agent's own answer", frame: push("ack|1|2|3", "agent"), prefix: "bench"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := []byte(tc.frame)
			if got := rtmWorth(b, tc.prefix, tc.actions...); got != tc.worth {
				t.Fatalf("rtmWorth = %v, want %v", got, tc.worth)
			}
			if !tc.worth {
				return
			}
			p, f, err := decodeRTMPush(b)
			if err != nil {
				t.Fatal(err)
			}
			if (p != nil) != tc.push || (tc.push && (p.ChatID != "C1" || p.Event.Text == "" || p.Event.AuthorID == "")) {
				t.Fatalf("push = %+v, want a push: %v", p, tc.push)
			}
			if failed := f.Success != nil && !*f.Success; failed != tc.fails {
				t.Fatalf("failed = %v, want %v (%+v)", failed, tc.fails, f)
			}
		})
	}
}

// TestBenchOpenLoopFloor: an open-loop run with baselines runs the echoes
// open loop at the relayed rate offered (twice the visitor rate), which
// the report says, and computes no throughput ratios.
func TestBenchOpenLoopFloor(t *testing.T) {
	o, err := parseBenchFlags([]string{"--visitor-surface", "customer", "--visitors", "4", "--agents", "1", "--rate", "100",
		"--duration", "2s", "--baseline-duration", "1s"}, io.Discard, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := runBench(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	b := rep.Baselines
	if rep.Errors != 0 || rep.VisitorToAgent.Count == 0 || b == nil || b.OpenLoopRate != 200 || rep.Ratios != nil || b.GinReqPerSec != 0 {
		t.Fatalf("report: errors %d %v, v→a %d, baselines %+v, ratios %v", rep.Errors, rep.ErrorSamples, rep.VisitorToAgent.Count, b, rep.Ratios)
	}
	// Open loop: at most what the schedule offers (200 in 1 s, a few
	// more when a client catches up; a closed loop of 4 clients on
	// loopback echoes thousands a second), and something echoed.
	for name, l := range map[string]latencySummary{"echo": b.EchoLatency, "raw durable echo": b.RawDurableEchoLatency, "in-store echo": b.BoltEchoLatency} {
		if l.Count < 1 || l.Count > 300 {
			t.Errorf("%s: %d round trips in 1 s at 200/s offered", name, l.Count)
		}
	}
	var table bytes.Buffer
	if err := writeBenchReport(&table, rep, false); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(table.String(), "open loop at 200 msgs/s offered") {
		t.Fatalf("table:\n%s", table.String())
	}
}

func TestHistQuantile(t *testing.T) {
	inf := math.Inf(1)
	for _, tc := range []struct {
		name   string
		bounds []float64
		cum    []uint64
		q      float64
		want   float64
	}{
		{"empty", []float64{1, 2, inf}, []uint64{0, 0, 0}, 0.99, 0},
		{"middle of the first bucket", []float64{1, 2, inf}, []uint64{10, 10, 10}, 0.5, 0.5},
		{"inside the second bucket", []float64{1, 2, inf}, []uint64{50, 100, 100}, 0.99, 1.98},
		{"above the last bound", []float64{1, 2, inf}, []uint64{0, 0, 10}, 0.5, 2},
	} {
		h := &hist{bounds: tc.bounds, cum: tc.cum, count: tc.cum[len(tc.cum)-1]}
		if got := h.quantile(tc.q); math.Abs(got-tc.want) > 1e-9 {
			t.Errorf("%s: quantile(%v) = %v, want %v", tc.name, tc.q, got, tc.want)
		}
	}
}

// TestDiffStages takes the load phase's stages from two scrapes: only what
// was observed between them counts.
func TestDiffStages(t *testing.T) {
	parse := func(text string) map[string]*dto.MetricFamily {
		p := expfmt.NewTextParser(model.UTF8Validation)
		f, err := p.TextToMetricFamilies(strings.NewReader(text))
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	scrape := func(commits, fast, sum, batch float64, gcs int, pause float64) map[string]*dto.MetricFamily {
		return parse(fmt.Sprintf(`# TYPE chatgate_store_commit_seconds histogram
chatgate_store_commit_seconds_bucket{le="0.001"} %[2]v
chatgate_store_commit_seconds_bucket{le="0.002"} %[1]v
chatgate_store_commit_seconds_bucket{le="+Inf"} %[1]v
chatgate_store_commit_seconds_sum %[3]v
chatgate_store_commit_seconds_count %[1]v
# TYPE chatgate_store_commit_batch_requests histogram
chatgate_store_commit_batch_requests_bucket{le="+Inf"} %[1]v
chatgate_store_commit_batch_requests_sum %[4]v
chatgate_store_commit_batch_requests_count %[1]v
# TYPE go_gc_duration_seconds summary
go_gc_duration_seconds_sum %[6]v
go_gc_duration_seconds_count %[5]v
`, commits, fast, sum, batch, gcs, pause))
	}
	// Before: 100 fast commits; during the load: 100 more, all between
	// 1 and 2 ms, 10 requests each; 3 collections, 1.5 ms of pauses.
	st := diffStages(scrape(100, 100, 0.05, 100, 2, 0.001), scrape(200, 100, 0.2, 1100, 5, 0.0025))
	if st == nil || st.Commits != 100 || st.RequestsPerCommit != 10 || st.StoreCommit == nil || st.GCCycles != 3 ||
		math.Abs(st.GCPauseMs-1.5) > 1e-9 || st.StoreWait != nil {
		t.Fatalf("stages = %+v", st)
	}
	if c := st.StoreCommit; c.Count != 100 || math.Abs(c.MeanMs-1.5) > 1e-9 || math.Abs(c.P50Ms-1.5) > 1e-9 || math.Abs(c.P99Ms-1.99) > 1e-9 {
		t.Fatalf("commit stage = %+v", c)
	}
	if diffStages(nil, scrape(1, 1, 0, 1, 0, 0)) != nil {
		t.Fatal("stages without a scrape before the load")
	}
}
