package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/gorilla/websocket"
)

type latencySummary struct {
	Count int64   `json:"count"`
	P50ms float64 `json:"p50_ms"`
	P90ms float64 `json:"p90_ms"`
	P99ms float64 `json:"p99_ms"`
	MaxMs float64 `json:"max_ms"`
}

func summarize(d []time.Duration) latencySummary {
	if len(d) == 0 {
		return latencySummary{}
	}
	slices.Sort(d)
	pct := func(p float64) float64 {
		i := int(p*float64(len(d))+0.999999) - 1
		return ms(d[min(max(i, 0), len(d)-1)])
	}
	return latencySummary{Count: int64(len(d)), P50ms: pct(0.50), P90ms: pct(0.90), P99ms: pct(0.99), MaxMs: ms(d[len(d)-1])}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

type benchReport struct {
	Target         string  `json:"target"`
	InProcess      bool    `json:"in_process"`
	PID            int     `json:"pid,omitempty"`
	VisitorSurface string  `json:"visitor_surface,omitempty"`
	RocketChatSend string  `json:"rocketchat_send,omitempty"`
	AgentSurface   string  `json:"agent_surface,omitempty"`
	Agents         int     `json:"agents,omitempty"`
	Visitors       int     `json:"visitors,omitempty"`
	Window         int     `json:"window,omitempty"`
	Rate           float64 `json:"rate,omitempty"`
	GOMAXPROCS     int     `json:"gomaxprocs"`
	Interrupted    bool    `json:"interrupted"`

	DurationSec       float64        `json:"duration_s,omitempty"`
	Sent              int64          `json:"visitor_messages_sent,omitempty"`
	Relayed           int64          `json:"relayed"`
	RelayedPerSec     float64        `json:"relayed_per_s"`
	VisitorToAgent    latencySummary `json:"visitor_to_agent"`
	AgentToVisitor    latencySummary `json:"agent_to_visitor"`
	V2PollsDuringLoad int64          `json:"v2_polls_during_load,omitempty"`
	V2PollsPerSec     float64        `json:"v2_idle_polls_per_s,omitempty"`
	// CPUSec is the CPU time the gateway process used during the load
	// phase (the bench's own process in process: the load generator is
	// then part of it); CPUMicrosPerRelayed is that per relayed message.
	// Unlike msgs/s it hardly moves with what else runs on the machine.
	CPUSec              float64 `json:"cpu_s,omitempty"`
	CPUMicrosPerRelayed float64 `json:"cpu_us_per_relayed,omitempty"`
	// ReadsPerRelayed and WritesPerRelayed are the read and write system
	// calls of that process during the load phase per relayed message
	// (/proc/<pid>/io: websocket frames, HTTP, and the store's page writes).
	ReadsPerRelayed  float64  `json:"read_syscalls_per_relayed,omitempty"`
	WritesPerRelayed float64  `json:"write_syscalls_per_relayed,omitempty"`
	Errors           int64    `json:"errors"`
	ErrorSamples     []string `json:"error_samples,omitempty"`
	// Stages is where the load phase's latency went inside the gateway
	// (store queue and commit, scheduler, GC), from its /metrics.
	Stages *benchStages `json:"stages,omitempty"`
	// RSS of the gateway process (the bench's own when in process: it then
	// includes the load generator), 0 when unknown.
	RSSBeforeBytes int64              `json:"rss_before_bytes"`
	ServerRSSBytes int64              `json:"server_rss_bytes"`
	Baselines      *benchBaselines    `json:"baselines,omitempty"`
	Ratios         map[string]float64 `json:"ratios,omitempty"`
	Capacity       *capacityReport    `json:"capacity,omitempty"`
}

func writeBenchReport(w io.Writer, rep *benchReport, asJSON bool) error {
	rep.GOMAXPROCS = runtime.GOMAXPROCS(0)
	if rep.VisitorSurface != "" {
		rep.AgentSurface = "livechat-agent-rtm"
	}
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	where := rep.Target
	if rep.InProcess {
		where += " (in process)"
	}
	fmt.Fprintf(tw, "target\t%s\n", where)
	if rep.Interrupted {
		fmt.Fprintf(tw, "note\tinterrupted: figures cover the part that ran\n")
	}
	if c := rep.Capacity; c != nil {
		writeCapacity(tw, c)
		return tw.Flush()
	}
	loop := fmt.Sprintf("window %d", rep.Window)
	if rep.Rate > 0 {
		loop = fmt.Sprintf("open loop at %.0f msgs/s offered", rep.Rate)
	}
	surface := rep.VisitorSurface
	if rep.RocketChatSend != "" {
		surface += ", sending over " + rep.RocketChatSend
	}
	fmt.Fprintf(tw, "load\t%d visitors (%s) × %d agents (LiveChat agent RTM), %s, %.1fs, GOMAXPROCS %d\n",
		rep.Visitors, surface, rep.Agents, loop, rep.DurationSec, rep.GOMAXPROCS)
	fmt.Fprintf(tw, "relayed\t%d messages, %s/s (visitor→agent %d, agent→visitor %d)\n",
		rep.Relayed, human(rep.RelayedPerSec), rep.VisitorToAgent.Count, rep.AgentToVisitor.Count)
	if rep.CPUMicrosPerRelayed > 0 {
		who := "gateway process"
		if rep.InProcess {
			who = "this process: gateway and load generator"
		}
		fmt.Fprintf(tw, "CPU\t%.1f s, %.0f µs per relayed message (%s)\n", rep.CPUSec, rep.CPUMicrosPerRelayed, who)
	}
	if rep.WritesPerRelayed > 0 {
		fmt.Fprintf(tw, "system calls\t%.2f reads, %.2f writes per relayed message\n", rep.ReadsPerRelayed, rep.WritesPerRelayed)
	}
	if rep.Stages != nil {
		fmt.Fprintf(tw, "stages\t%s\n", rep.Stages)
	}
	fmt.Fprintf(tw, "errors\t%d\n", rep.Errors)
	for _, s := range rep.ErrorSamples {
		fmt.Fprintf(tw, "  error\t%s\n", s)
	}
	fmt.Fprintf(tw, "server RSS\t%s (before load %s)\n", mib(rep.ServerRSSBytes), mib(rep.RSSBeforeBytes))
	fmt.Fprintln(tw)
	fmt.Fprintf(tw, "latency\tp50\tp90\tp99\tmax\tcount\n")
	lat := func(name string, l latencySummary) {
		fmt.Fprintf(tw, "%s\t%.2f ms\t%.2f ms\t%.2f ms\t%.2f ms\t%d\n", name, l.P50ms, l.P90ms, l.P99ms, l.MaxMs, l.Count)
	}
	lat("visitor→agent", rep.VisitorToAgent)
	lat("agent→visitor", rep.AgentToVisitor)
	if b := rep.Baselines; b != nil {
		lat("echo round trip", b.EchoLatency)
		lat("raw durable echo round trip", b.RawDurableEchoLatency)
		lat("in-store echo round trip", b.BoltEchoLatency)
		fmt.Fprintln(tw)
		if b.OpenLoopRate > 0 {
			fmt.Fprintf(tw, "baselines\topen loop at %s msgs/s offered (%d clients, %.0fs each): the floor of this run's latencies\n",
				human(b.OpenLoopRate), b.Clients, b.DurationSec)
			return tw.Flush()
		}
		fmt.Fprintf(tw, "baseline (%d clients, %.0fs each)\trate\tCPU/msg\tchatgate ratio\n", b.Clients, b.DurationSec)
		fmt.Fprintf(tw, "raw durable echo (bbolt direct)\t%s msgs/s\t%.0f µs\t%.3f (relayed/s ÷ raw durable echo: the headline)\n",
			human(b.RawDurableEchoMsgsPerSec), b.RawDurableEchoCPUMicros, rep.Ratios["relayed_vs_raw_durable_echo"])
		fmt.Fprintf(tw, "in-store echo (chatgate store)\t%s msgs/s\t%.0f µs\t%.3f (relayed/s ÷ in-store echo); store alone %.3f × raw\n",
			human(b.BoltEchoMsgsPerSec), b.BoltEchoCPUMicros, rep.Ratios["relayed_vs_bolt_echo"], rep.Ratios["store_echo_vs_raw_durable_echo"])
		fmt.Fprintf(tw, "gorilla/websocket echo\t%s msgs/s\t%.0f µs\t%.3f (relayed/s ÷ echo)\n", human(b.EchoMsgsPerSec), b.EchoCPUMicros, rep.Ratios["relayed_vs_echo"])
		if rep.V2PollsPerSec > 0 {
			fmt.Fprintf(tw, "gin hello-world\t%s req/s\t\t%.3f (v2 idle polls %s/s ÷ gin)\n", human(b.GinReqPerSec), rep.Ratios["v2_polls_vs_gin"], human(rep.V2PollsPerSec))
		} else {
			fmt.Fprintf(tw, "gin hello-world\t%s req/s\t\n", human(b.GinReqPerSec))
		}
	} else if rep.V2PollsPerSec > 0 {
		fmt.Fprintf(tw, "v2 idle polls\t%s/s\n", human(rep.V2PollsPerSec))
	}
	return tw.Flush()
}

func human(f float64) string {
	switch {
	case f >= 10000:
		return fmt.Sprintf("%.1fk", f/1000)
	case f >= 100:
		return fmt.Sprintf("%.0f", f)
	default:
		return fmt.Sprintf("%.1f", f)
	}
}

func mib(b int64) string {
	if b <= 0 {
		return "unknown"
	}
	return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
}

// --- capacity mode -----------------------------------------------------------

type capacityReport struct {
	Sessions   int     `json:"sessions"`
	HoldSec    float64 `json:"hold_s"`
	RSSBase    int64   `json:"rss_base_bytes"`
	DDPOpen    int     `json:"ddp_open"`
	DDPRSS     int64   `json:"rss_with_ddp_bytes"`
	DDPPerConn float64 `json:"ddp_bytes_per_conn"`
	RTMOpen    int     `json:"rtm_open"`
	RTMRSS     int64   `json:"rss_with_ddp_and_rtm_bytes"`
	RTMPerConn float64 `json:"rtm_bytes_per_conn"`
	StillOpen  int     `json:"still_open_after_hold"`
	// HeldRSS is the RSS at the end of the hold, HeldPerConn what each
	// session still open then costs over the base: the steady state,
	// where the two figures above are read a second after the sessions
	// were opened, with what opening them left for the collector.
	HeldRSS     int64   `json:"rss_after_hold_bytes"`
	HeldPerConn float64 `json:"held_bytes_per_conn"`
	Errors      int64   `json:"errors"`
	ErrorSample string  `json:"error_sample,omitempty"`
	Note        string  `json:"note,omitempty"`
}

func writeCapacity(tw io.Writer, c *capacityReport) {
	fmt.Fprintf(tw, "capacity\t%d idle sessions per protocol, held %.0fs\n", c.Sessions, c.HoldSec)
	fmt.Fprintf(tw, "RSS base\t%s\n", mib(c.RSSBase))
	fmt.Fprintf(tw, "DDP (Rocket.Chat /websocket)\t%d open, RSS %s, %.1f KiB/connection\n", c.DDPOpen, mib(c.DDPRSS), c.DDPPerConn/1024)
	fmt.Fprintf(tw, "customer RTM (logged in)\t%d open, RSS %s, %.1f KiB/connection\n", c.RTMOpen, mib(c.RTMRSS), c.RTMPerConn/1024)
	fmt.Fprintf(tw, "still open after hold\t%d of %d\n", c.StillOpen, c.DDPOpen+c.RTMOpen)
	fmt.Fprintf(tw, "after the hold (both)\tRSS %s, %.1f KiB/connection\n", mib(c.HeldRSS), c.HeldPerConn/1024)
	fmt.Fprintf(tw, "errors\t%d %s\n", c.Errors, c.ErrorSample)
	if c.Note != "" {
		fmt.Fprintf(tw, "note\t%s\n", c.Note)
	}
}

// runCapacity opens o.Capacity idle DDP sessions, then as many logged-in
// customer RTM sessions, reads the target's RSS after each step, holds
// them all for --duration and counts those still open.
func runCapacity(ctx context.Context, o benchOptions) (*capacityReport, error) {
	c := &capacityReport{Sessions: o.Capacity}
	if o.PID == os.Getpid() {
		c.Note = "in-process gateway: RSS includes the client half of every connection; use --target and --pid for the server alone"
	} else if o.PID == 0 {
		c.Note = "no --pid: RSS unknown"
	}
	r := &benchRun{o: o, client: newBenchHTTPClient(32)}
	defer r.client.CloseIdleConnections()
	dialer := &websocket.Dialer{HandshakeTimeout: 15 * time.Second, ReadBufferSize: 512, WriteBufferSize: 512}
	var (
		mu    sync.Mutex
		conns []*websocket.Conn
		open  atomic.Int64
		wg    sync.WaitGroup
	)
	hctx, cancel := context.WithCancel(ctx)
	defer func() {
		cancel()
		mu.Lock()
		for _, conn := range conns {
			conn.Close()
		}
		mu.Unlock()
		wg.Wait()
	}()
	// hold keeps a session: its reader answers pings (gorilla answers
	// websocket pings; DDP pings get a pong).
	hold := func(conn *websocket.Conn, ddp bool) {
		mu.Lock()
		conns = append(conns, conn)
		mu.Unlock()
		open.Add(1)
		wg.Go(func() {
			defer open.Add(-1)
			for {
				_, b, err := conn.ReadMessage()
				if err != nil {
					r.fail(hctx, fmt.Errorf("session closed: %w", err))
					return
				}
				if ddp && strings.Contains(string(b), `"ping"`) {
					_ = conn.WriteMessage(websocket.TextMessage, []byte(`{"msg":"pong"}`))
				}
			}
		})
	}
	openMany := func(dial func() (*websocket.Conn, error), ddp bool) int {
		sem := make(chan struct{}, 32)
		var n atomic.Int64
		var sw sync.WaitGroup
		for range o.Capacity {
			if hctx.Err() != nil {
				break
			}
			sem <- struct{}{}
			sw.Go(func() {
				defer func() { <-sem }()
				conn, err := dial()
				if err != nil {
					r.fail(hctx, err)
					return
				}
				n.Add(1)
				hold(conn, ddp)
			})
		}
		sw.Wait()
		return int(n.Load())
	}
	settle := func() int64 {
		runtime.GC()
		sleepCtx(hctx, time.Second)
		return readRSS(o.PID)
	}
	c.RSSBase = settle()
	c.DDPOpen = openMany(func() (*websocket.Conn, error) {
		conn, _, err := dialer.DialContext(hctx, wsBase(o.Target)+"/websocket", nil)
		if err != nil {
			return nil, err
		}
		if err := ddpSetup(conn, "", ""); err != nil {
			conn.Close()
			return nil, err
		}
		return conn, nil
	}, true)
	c.DDPRSS = settle()
	c.RTMOpen = openMany(func() (*websocket.Conn, error) {
		tok, _, err := customerToken(hctx, r, o.Target)
		if err != nil {
			return nil, err
		}
		return dialCustomer(hctx, r, o.Target, tok)
	}, false)
	c.RTMRSS = settle()
	if c.RSSBase > 0 && c.DDPOpen > 0 {
		c.DDPPerConn = float64(c.DDPRSS-c.RSSBase) / float64(c.DDPOpen)
	}
	if c.DDPRSS > 0 && c.RTMOpen > 0 {
		c.RTMPerConn = float64(c.RTMRSS-c.DDPRSS) / float64(c.RTMOpen)
	}
	start := time.Now()
	sleepCtx(hctx, o.Duration)
	c.HoldSec = time.Since(start).Seconds()
	c.StillOpen = int(open.Load())
	c.HeldRSS = readRSS(o.PID)
	if c.RSSBase > 0 && c.HeldRSS > 0 && c.StillOpen > 0 {
		c.HeldPerConn = float64(c.HeldRSS-c.RSSBase) / float64(c.StillOpen)
	}
	c.Errors = r.errs.Load()
	r.mu.Lock()
	if len(r.samples) > 0 {
		c.ErrorSample = r.samples[0]
	}
	r.mu.Unlock()
	return c, nil
}
