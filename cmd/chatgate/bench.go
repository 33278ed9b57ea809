package main

// `chatgate bench`: a load generator for a running (or in-process)
// gateway. N visitors on one visitor surface talk to M agents on the
// LiveChat agent RTM; every visitor message is answered by its agent, and
// the visitor waits for that answer before sending again (up to --window
// messages in flight per conversation). Latencies come from the send time
// and sequence embedded in the message text. The same run measures
// baselines on 127.0.0.1 (see bench_baselines.go).

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

type benchOptions struct {
	Target string
	// Targets are the nodes visitors spread over (round-robin by
	// visitor), from a comma-separated --target; Target is the first.
	Targets []string
	// AgentTarget is where agents connect (--agent-target; default
	// Target): with several nodes, agents on one node and visitors on
	// others make every message cross nodes.
	AgentTarget    string
	VisitorSurface string
	// RocketChatSend is how Rocket.Chat visitors send (--rocketchat-send):
	// "rest" (POST livechat/message, the modern widget) or "ddp" (the
	// sendMessageLivechat method on their websocket, older clients).
	RocketChatSend string
	Agents         int
	Visitors       int
	Window         int
	// Rate, if > 0, makes the visitors open-loop: together they send Rate
	// messages/s on schedule, whatever the answers (rocketchat and
	// customer surfaces), so latency is measured at a fixed offered load.
	Rate             float64
	Duration         time.Duration
	BaselineDuration time.Duration
	PollInterval     time.Duration
	AgentTokens      []string
	Licence          string
	OrganizationID   string
	PID              int
	JSON             bool
	NoBaselines      bool
	Capacity         int
	// CPUProfile, if set, is where the CPU profile of the load phase goes.
	// In-process it covers the gateway and the load generator together,
	// which is what tells whether the generator is the bottleneck.
	CPUProfile string
	// MemProfile, if set, is where the allocation profile (allocs) goes
	// after the load phase: what the load allocated is what the collector
	// then has to reclaim.
	MemProfile     string
	Stdout, Stderr io.Writer
	// progress forces the progress line on (tests leave it off).
	progress bool
}

const (
	benchLicence = "100000"
	benchOrgID   = "3d5a7f0e-0c1b-4f2a-9b8e-chatgate0001"
)

func parseBenchFlags(args []string, stdout, stderr io.Writer) (benchOptions, error) {
	o := benchOptions{Stdout: stdout, Stderr: stderr}
	var tokens string
	fs := flag.NewFlagSet("chatgate bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.Target, "target", "", "base URL of a running chatgate, or comma-separated URLs of several nodes of one deployment that visitors spread over (empty: start one in this process on 127.0.0.1:0)")
	fs.StringVar(&o.AgentTarget, "agent-target", "", "base URL the agents connect to (default: the first --target)")
	fs.StringVar(&o.VisitorSurface, "visitor-surface", "v2", "visitor protocol: v2 (LiveChat REST v2), rocketchat (REST + DDP) or customer (LiveChat customer RTM)")
	fs.StringVar(&o.RocketChatSend, "rocketchat-send", "rest", "rocketchat visitors send with: rest (POST livechat/message, as the @rocket.chat/livechat widget) or ddp (the sendMessageLivechat method on their DDP websocket, as the older livechat clients)")
	fs.IntVar(&o.Agents, "agents", 4, "agent RTM sessions")
	fs.IntVar(&o.Visitors, "visitors", 100, "visitors, one conversation each")
	fs.IntVar(&o.Window, "window", 1, "messages in flight per conversation")
	fs.Float64Var(&o.Rate, "rate", 0, "open loop: visitor messages/s offered in total, on schedule whatever the answers (rocketchat and customer surfaces; 0 = closed loop with --window)")
	fs.DurationVar(&o.Duration, "duration", 20*time.Second, "length of the load phase")
	fs.DurationVar(&o.BaselineDuration, "baseline-duration", 5*time.Second, "length of each baseline (and of the v2 poll phase)")
	fs.DurationVar(&o.PollInterval, "poll-interval", 2*time.Millisecond, "v2: pause after a poll that brought no reply")
	fs.StringVar(&tokens, "agent-token", "", "agent RTM token(s), comma-separated (required with --target); sessions share them round-robin")
	fs.StringVar(&o.Licence, "licence", benchLicence, "LiveChat v2 licence_id of the target")
	fs.StringVar(&o.OrganizationID, "organization-id", benchOrgID, "LiveChat organization_id of the target (customer surface)")
	fs.IntVar(&o.PID, "pid", 0, "process id of an external target, for its RSS (Linux /proc)")
	fs.BoolVar(&o.JSON, "json", false, "print the report as JSON")
	fs.BoolVar(&o.NoBaselines, "no-baselines", false, "skip the echo, raw durable echo, in-store echo and gin baselines")
	fs.StringVar(&o.CPUProfile, "cpuprofile", "", "write a CPU profile of the load phase to this file (go tool pprof)")
	fs.StringVar(&o.MemProfile, "memprofile", "", "write an allocation profile (allocs) after the load phase to this file (go tool pprof -sample_index=alloc_space)")
	fs.IntVar(&o.Capacity, "capacity", 0, "capacity mode: hold this many idle DDP and customer RTM sessions and report memory per connection (no load phase)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	for _, t := range strings.Split(tokens, ",") {
		if t = strings.TrimSpace(t); t != "" {
			o.AgentTokens = append(o.AgentTokens, t)
		}
	}
	switch o.VisitorSurface {
	case "v2", "rocketchat", "customer":
	default:
		return o, fmt.Errorf("--visitor-surface %q: want v2, rocketchat or customer", o.VisitorSurface)
	}
	switch {
	case o.RocketChatSend != "rest" && o.RocketChatSend != "ddp":
		return o, fmt.Errorf("--rocketchat-send %q: want rest or ddp", o.RocketChatSend)
	case o.RocketChatSend == "ddp" && o.VisitorSurface != "rocketchat":
		return o, errors.New("--rocketchat-send ddp needs --visitor-surface rocketchat")
	}
	if o.Capacity == 0 && (o.Agents < 1 || o.Visitors < 1 || o.Window < 1) {
		return o, errors.New("--agents, --visitors and --window must be at least 1")
	}
	if o.Rate < 0 || (o.Rate > 0 && o.VisitorSurface == "v2") {
		return o, errors.New("--rate must be >= 0, and works with the rocketchat and customer surfaces (v2 visitors poll)")
	}
	if o.Capacity < 0 || o.Duration <= 0 || o.BaselineDuration <= 0 {
		return o, errors.New("--capacity must be >= 0, durations > 0")
	}
	if o.Target != "" && len(o.AgentTokens) == 0 && o.Capacity == 0 {
		return o, errors.New("--target needs --agent-token")
	}
	for _, u := range strings.Split(o.Target, ",") {
		if u = strings.TrimRight(strings.TrimSpace(u), "/"); u != "" {
			o.Targets = append(o.Targets, u)
		}
	}
	o.Target = ""
	if len(o.Targets) > 0 {
		o.Target = o.Targets[0]
	}
	o.AgentTarget = strings.TrimRight(o.AgentTarget, "/")
	return o, nil
}

// runBenchCommand is the `bench` action.
func runBenchCommand(ctx context.Context, args []string, stderr io.Writer) error {
	o, err := parseBenchFlags(args, os.Stdout, stderr)
	if err != nil {
		return err
	}
	if f, ok := stderr.(*os.File); ok && !o.JSON {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			o.progress = true
		}
	}
	rep, err := runBench(ctx, o)
	if err != nil {
		return err
	}
	return writeBenchReport(o.Stdout, rep, o.JSON)
}

// runBench runs one benchmark and returns its report. Cancelling ctx ends
// the current phase early; the report of what ran is still returned.
func runBench(ctx context.Context, o benchOptions) (*benchReport, error) {
	rep := &benchReport{VisitorSurface: o.VisitorSurface, Agents: o.Agents, Visitors: o.Visitors, Window: o.Window, Rate: o.Rate,
		Target: o.Target, PID: o.PID}
	if o.VisitorSurface == "rocketchat" {
		rep.RocketChatSend = o.RocketChatSend
	}
	if o.Target == "" {
		gw, err := startBenchGateway(ctx, o.Agents)
		if err != nil {
			return nil, err
		}
		defer gw.stop()
		o.Target, o.AgentTokens, o.PID = "http://"+gw.addr, gw.tokens, os.Getpid()
		o.Licence, o.OrganizationID = benchLicence, benchOrgID
		rep.Target, rep.InProcess, rep.PID = o.Target, true, os.Getpid()
	}
	rep.RSSBeforeBytes = readRSS(o.PID)
	if o.Capacity > 0 {
		rep.VisitorSurface, rep.RocketChatSend, rep.Agents, rep.Visitors, rep.Window = "", "", 0, 0, 0
		c, err := runCapacity(ctx, o)
		rep.Capacity = c
		return rep, err
	}
	if err := runLoad(ctx, o, rep); err != nil {
		return nil, err
	}
	if err := writeAllocProfile(o.MemProfile); err != nil {
		return nil, err
	}
	if o.VisitorSurface == "v2" && ctx.Err() == nil {
		rep.V2PollsPerSec = runV2PollPhase(ctx, o)
	}
	if !o.NoBaselines && ctx.Err() == nil {
		// An open-loop run's floor: the echoes open-loop at the relayed
		// rate offered (each relayed message is one durable commit and
		// one websocket message each way), so that its latencies can be
		// held against theirs; throughput ratios mean nothing there.
		b, err := runBaselines(ctx, o.Visitors, o.Window, 2*o.Rate, o.BaselineDuration)
		if err != nil {
			return nil, fmt.Errorf("baselines: %w", err)
		}
		rep.Baselines = b
		if o.Rate > 0 {
			rep.Interrupted = ctx.Err() != nil
			return rep, nil
		}
		rep.Ratios = map[string]float64{}
		if b.EchoMsgsPerSec > 0 {
			rep.Ratios["relayed_vs_echo"] = rep.RelayedPerSec / b.EchoMsgsPerSec
		}
		if b.RawDurableEchoMsgsPerSec > 0 {
			// The headline: chatgate against the physical floor of "save,
			// then answer" (bbolt used directly, nothing of chatgate).
			rep.Ratios["relayed_vs_raw_durable_echo"] = rep.RelayedPerSec / b.RawDurableEchoMsgsPerSec
			rep.Ratios["store_echo_vs_raw_durable_echo"] = b.BoltEchoMsgsPerSec / b.RawDurableEchoMsgsPerSec
		}
		if b.BoltEchoMsgsPerSec > 0 {
			rep.Ratios["relayed_vs_bolt_echo"] = rep.RelayedPerSec / b.BoltEchoMsgsPerSec
		}
		if b.GinReqPerSec > 0 && rep.V2PollsPerSec > 0 {
			rep.Ratios["v2_polls_vs_gin"] = rep.V2PollsPerSec / b.GinReqPerSec
		}
	}
	rep.Interrupted = ctx.Err() != nil
	return rep, nil
}

// startProfile starts the CPU profiler when path is set and returns what
// stops it. runLoad calls it when the load phase starts, so that the
// visitors' and agents' setup (logins, room starts, dials) stays out of
// the profile.
func startProfile(path string) (stop func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	out, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(out); err != nil {
		out.Close()
		return nil, err
	}
	return func() {
		pprof.StopCPUProfile()
		out.Close()
	}, nil
}

// writeAllocProfile writes the allocation profile to path when it is set.
func writeAllocProfile(path string) error {
	if path == "" {
		return nil
	}
	out, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("memprofile: %w", err)
	}
	if err := pprof.Lookup("allocs").WriteTo(out, 0); err != nil {
		out.Close()
		return fmt.Errorf("memprofile: %w", err)
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("memprofile: %w", err)
	}
	return nil
}

// benchGateway is a gateway run by the bench in this process.
type benchGateway struct {
	addr   string
	tokens []string
	dir    string
	cancel context.CancelFunc
	done   chan error
}

// startBenchGateway starts serve() on 127.0.0.1:0 with a temporary data
// file and a generated config of `agents` agents whose tokens it knows.
func startBenchGateway(ctx context.Context, agents int) (*benchGateway, error) {
	dir, err := os.MkdirTemp("", "chatgate-bench-")
	if err != nil {
		return nil, err
	}
	var cfg strings.Builder
	// Hundreds of visitors from 127.0.0.1: the per-address limits and
	// caps (rate_limits) are off for the bench's own gateway.
	fmt.Fprintf(&cfg, "log:\n  level: error\n  format: json\nlicense:\n  id: %q\n  organization_id: %q\nlivechat:\n  v2:\n    poll_timeout: 1h\n"+
		"rate_limits:\n  connections_per_address: 0\n  failed_logins: {burst: 0}\n  starts: {burst: 0}\n  messages: {burst: 0}\n"+
		"  uploads: {burst: 0}\n  new_customers: {burst: 0}\nagents:\n", benchLicence, benchOrgID)
	g := &benchGateway{dir: dir, done: make(chan error, 1)}
	for i := range max(agents, 1) {
		tok := "bench-agent-" + randHex(16)
		g.tokens = append(g.tokens, tok)
		fmt.Fprintf(&cfg, "  - id: agent%d@bench.local\n    name: Bench Agent %d\n    token: %s\n", i, i, tok)
	}
	cfgPath := filepath.Join(dir, "chatgate.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg.String()), 0o600); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	gctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	g.cancel = cancel
	logs := &limitedBuffer{max: 64 << 10}
	up := make(chan string, 1)
	go func() {
		g.done <- serve(gctx, serveOptions{ConfigPath: cfgPath, DataPath: filepath.Join(dir, "bench.db"), Addr: "127.0.0.1:0",
			Stderr: logs, Getenv: func(string) string { return "" }, Listening: func(a string) { up <- a }})
	}()
	select {
	case g.addr = <-up:
		return g, nil
	case err := <-g.done:
		cancel()
		os.RemoveAll(dir)
		return nil, fmt.Errorf("in-process gateway: %v\n%s", err, logs.String())
	case <-time.After(30 * time.Second):
		g.stop()
		return nil, fmt.Errorf("in-process gateway did not start\n%s", logs.String())
	}
}

func (g *benchGateway) stop() {
	g.cancel()
	<-g.done
	os.RemoveAll(g.dir)
}

type limitedBuffer struct {
	mu  sync.Mutex
	b   []byte
	max int
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if room := l.max - len(l.b); room > 0 {
		l.b = append(l.b, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

func (l *limitedBuffer) String() string { l.mu.Lock(); defer l.mu.Unlock(); return string(l.b) }

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// benchRun is the shared state of one load phase.
type benchRun struct {
	o       benchOptions
	client  *http.Client
	v2a     atomic.Int64 // visitor messages received by agents
	a2v     atomic.Int64 // agent replies received by visitors
	sent    atomic.Int64 // visitor messages sent
	polls   atomic.Int64
	errs    atomic.Int64
	mu      sync.Mutex
	samples []string
	claims  sync.Map // chat id → *benchAgent that answers it
}

// fail counts an error unless the run is ending (errors of cancelled
// requests are not the server's).
func (r *benchRun) fail(ctx context.Context, err error) {
	if ctx.Err() != nil || err == nil {
		return
	}
	r.errs.Add(1)
	r.mu.Lock()
	if len(r.samples) < 5 {
		r.samples = append(r.samples, err.Error())
	}
	r.mu.Unlock()
}

func newBenchHTTPClient(conns int) *http.Client {
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
		MaxIdleConns:        conns + 16,
		MaxIdleConnsPerHost: conns + 16,
		IdleConnTimeout:     30 * time.Second,
	}}
}

// visitorTarget is the node visitor i talks to.
func (o *benchOptions) visitorTarget(i int) string {
	if len(o.Targets) == 0 {
		return o.Target
	}
	return o.Targets[i%len(o.Targets)]
}

// agentTarget is the node the agents connect to.
func (o *benchOptions) agentTarget() string {
	if o.AgentTarget != "" {
		return o.AgentTarget
	}
	return o.Target
}

func wsBase(target string) string {
	if rest, ok := strings.CutPrefix(target, "https://"); ok {
		return "wss://" + rest
	}
	return "ws://" + strings.TrimPrefix(target, "http://")
}

// waitAgentsOnline waits, when agents and visitors are on different nodes,
// until every visitor node sees an agent online (presence crosses nodes
// within about a second; the Rocket.Chat widget refuses a room before).
func waitAgentsOnline(ctx context.Context, r *benchRun, o benchOptions) error {
	for _, t := range o.Targets {
		if t == o.agentTarget() {
			continue
		}
		deadline := time.Now().Add(30 * time.Second)
		for {
			var cfg struct {
				Config struct {
					Online bool `json:"online"`
				} `json:"config"`
			}
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, t+"/api/v1/livechat/config", nil)
			if err != nil {
				return err
			}
			if doJSON(r.client, req, &cfg) == nil && cfg.Config.Online {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s never saw the agents of %s online", t, o.agentTarget())
			}
			sleepCtx(ctx, 100*time.Millisecond)
			if ctx.Err() != nil {
				return ctx.Err()
			}
		}
	}
	return nil
}

// benchVisitor is one visitor on some surface.
type benchVisitor interface {
	// loop sends and receives until ctx ends; it returns the agent→visitor
	// latencies it saw.
	loop(ctx context.Context, r *benchRun) []time.Duration
	close()
}

// runLoad connects the agents, sets up the visitors, runs the load phase
// and fills rep.
func runLoad(ctx context.Context, o benchOptions, rep *benchReport) error {
	r := &benchRun{o: o, client: newBenchHTTPClient(o.Visitors)}
	defer r.client.CloseIdleConnections()

	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	agents := make([]*benchAgent, 0, o.Agents)
	defer func() {
		for _, a := range agents {
			a.close()
		}
	}()
	for i := range o.Agents {
		a, err := dialBenchAgent(lctx, wsBase(o.agentTarget()), o.AgentTokens[i%len(o.AgentTokens)])
		if err != nil {
			return fmt.Errorf("agent %d: %w", i, err)
		}
		agents = append(agents, a)
	}
	var agentWG sync.WaitGroup
	for _, a := range agents {
		agentWG.Go(func() { a.run(lctx, r) })
	}
	if err := waitAgentsOnline(lctx, r, o); err != nil {
		return err
	}

	// Visitors: set up with bounded parallelism; a visitor that cannot
	// start is an error, not the end of the run.
	visitors := make([]benchVisitor, o.Visitors)
	sem := make(chan struct{}, 32)
	var setup sync.WaitGroup
	for i := range o.Visitors {
		sem <- struct{}{}
		setup.Go(func() {
			defer func() { <-sem }()
			v, err := newBenchVisitor(lctx, r, i)
			if err != nil {
				r.fail(lctx, fmt.Errorf("visitor %d setup: %w", i, err))
				return
			}
			visitors[i] = v
		})
	}
	setup.Wait()
	defer func() {
		for _, v := range visitors {
			if v != nil {
				v.close()
			}
		}
	}()
	live := 0
	for _, v := range visitors {
		if v != nil {
			live++
		}
	}
	if ctx.Err() == nil && live == 0 {
		r.mu.Lock()
		defer r.mu.Unlock()
		return fmt.Errorf("no visitor could start: %s", strings.Join(r.samples, "; "))
	}

	// The load phase.
	stopProfile, err := startProfile(o.CPUProfile)
	if err != nil {
		return err
	}
	// The stages are those of the node the agents use.
	stagesAt := o.agentTarget()
	metrics0 := scrapeMetrics(lctx, r.client, stagesAt)
	cpu0 := readCPU(o.PID)
	io0, ioOK := readSyscalls(o.PID)
	start := time.Now()
	pctx, pcancel := context.WithTimeout(lctx, o.Duration)
	defer pcancel()
	progressDone := make(chan struct{})
	if o.progress {
		go func() {
			defer close(progressDone)
			benchProgress(pctx, r, start, o.Duration, o.Stderr)
		}()
	} else {
		close(progressDone)
	}
	a2v := make([][]time.Duration, o.Visitors)
	var vwg sync.WaitGroup
	for i, v := range visitors {
		if v != nil {
			vwg.Go(func() { a2v[i] = v.loop(pctx, r) })
		}
	}
	<-pctx.Done()
	elapsed := time.Since(start)
	cpu := readCPU(o.PID) - cpu0
	stopProfile()
	io1, io1OK := readSyscalls(o.PID)
	rep.ServerRSSBytes = readRSS(o.PID)
	rep.Stages = diffStages(metrics0, scrapeMetrics(lctx, r.client, stagesAt))
	// A visitor or agent stuck on a gateway that stopped answering must
	// not hang the run: it is reported, and the run goes on.
	if !waitBounded(&vwg, 30*time.Second) {
		r.fail(context.Background(), errors.New("visitors still busy 30 s after the load phase: the gateway stopped answering some of them"))
	}
	cancel() // stops the agents
	for _, a := range agents {
		a.close()
	}
	if !waitBounded(&agentWG, 30*time.Second) {
		r.fail(context.Background(), errors.New("agents still busy 30 s after the load phase"))
	}
	<-progressDone

	var v2a []time.Duration
	for _, a := range agents {
		v2a = append(v2a, a.lat...)
	}
	var back []time.Duration
	for _, l := range a2v {
		back = append(back, l...)
	}
	rep.DurationSec = elapsed.Seconds()
	rep.Sent = r.sent.Load()
	rep.Relayed = r.v2a.Load() + r.a2v.Load()
	rep.RelayedPerSec = float64(rep.Relayed) / elapsed.Seconds()
	if cpu0 > 0 {
		rep.CPUSec = cpu.Seconds()
		rep.CPUMicrosPerRelayed = cpuPer(cpu, rep.Relayed)
	}
	if ioOK && io1OK && rep.Relayed > 0 {
		rep.ReadsPerRelayed = float64(io1.reads-io0.reads) / float64(rep.Relayed)
		rep.WritesPerRelayed = float64(io1.writes-io0.writes) / float64(rep.Relayed)
	}
	rep.VisitorToAgent = summarize(v2a)
	rep.AgentToVisitor = summarize(back)
	rep.Errors = r.errs.Load()
	rep.ErrorSamples = r.samples
	if o.VisitorSurface == "v2" {
		rep.V2PollsDuringLoad = r.polls.Load()
	}
	return nil
}

func newBenchVisitor(ctx context.Context, r *benchRun, i int) (benchVisitor, error) {
	switch r.o.VisitorSurface {
	case "rocketchat":
		return newRCVisitor(ctx, r, i)
	case "customer":
		return newCustomerVisitor(ctx, r, i)
	default:
		return newV2Visitor(ctx, r, i)
	}
}

// Message texts: a visitor sends "bench|<visitor>|<n>|<unix ns>", its
// agent answers "ack|<visitor>|<n>|<unix ns>" with its own send time.
func benchText(prefix string, visitor int, n int64) string {
	return fmt.Sprintf("%s|%d|%d|%d", prefix, visitor, n, time.Now().UnixNano())
}

// parseBenchText returns the visitor, sequence and send time of a bench
// text with the given prefix.
func parseBenchText(prefix, text string) (visitor int, n int64, sent time.Time, ok bool) {
	rest, ok := strings.CutPrefix(text, prefix+"|")
	if !ok {
		return 0, 0, time.Time{}, false
	}
	parts := strings.Split(rest, "|")
	if len(parts) != 3 {
		return 0, 0, time.Time{}, false
	}
	v, err1 := strconv.Atoi(parts[0])
	n, err2 := strconv.ParseInt(parts[1], 10, 64)
	ns, err3 := strconv.ParseInt(parts[2], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return 0, 0, time.Time{}, false
	}
	return v, n, time.Unix(0, ns), true
}

func benchProgress(ctx context.Context, r *benchRun, start time.Time, total time.Duration, w io.Writer) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	var last int64
	for {
		select {
		case <-ctx.Done():
			fmt.Fprint(w, "\r\033[K")
			return
		case <-t.C:
			n := r.v2a.Load() + r.a2v.Load()
			fmt.Fprintf(w, "\r\033[K[%3.0fs/%s] relayed %d (%d/s)  v→a %d  a→v %d  errors %d",
				time.Since(start).Seconds(), total, n, n-last, r.v2a.Load(), r.a2v.Load(), r.errs.Load())
			last = n
		}
	}
}

// readCPU returns the CPU time (user + system) a process has used so far,
// 0 when unknown (Linux /proc; clock ticks of 1/100 s).
func readCPU(pid int) time.Duration {
	if pid <= 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name (field 2) may hold spaces: count from its ")".
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0
	}
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

// syscalls counts a process's read and write system calls.
type syscalls struct{ reads, writes int64 }

// readSyscalls returns the read and write system calls (sockets, files)
// a process has made so far (Linux /proc/<pid>/io), false when unknown.
func readSyscalls(pid int) (syscalls, bool) {
	if pid <= 0 {
		return syscalls{}, false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid))
	if err != nil {
		return syscalls{}, false
	}
	var n syscalls
	found := 0
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		x, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil {
			continue
		}
		switch k {
		case "syscr":
			n.reads, found = x, found+1
		case "syscw":
			n.writes, found = x, found+1
		}
	}
	return n, found == 2
}

// cpuPer returns the microseconds of CPU per item, 0 when unknown.
func cpuPer(cpu time.Duration, n int64) float64 {
	if cpu <= 0 || n <= 0 {
		return 0
	}
	return float64(cpu.Microseconds()) / float64(n)
}

// readRSS returns VmRSS of a process in bytes, 0 when unknown.
func readRSS(pid int) int64 {
	if pid <= 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			var kb int64
			if _, err := fmt.Sscanf(strings.TrimSpace(rest), "%d", &kb); err == nil {
				return kb << 10
			}
		}
	}
	return 0
}

func postJSON(ctx context.Context, c *http.Client, url string, body any, out any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(string(b)))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	return doJSON(c, req, out)
}

func doJSON(c *http.Client, req *http.Request, out any) error {
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: %d %.200s", req.Method, req.URL.Path, resp.StatusCode, b)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	return nil
}

// pacer returns what a visitor calls before each send: in closed loop
// (no --rate) nothing; in open loop it waits for the visitor's next slot
// of the schedule (see openLoopPacer).
func (r *benchRun) pacer(idx int) func(ctx context.Context) bool {
	if r.o.Rate <= 0 {
		return func(ctx context.Context) bool { return ctx.Err() == nil }
	}
	return openLoopPacer(r.o.Rate, r.o.Visitors, idx)
}

// openLoopPacer paces client idx of n that together send rate messages/s:
// each waits for its next slot of the schedule (the clients spread over
// one interval) and reports false when ctx ends. A client behind
// schedule sends at once, catching up.
func openLoopPacer(rate float64, n, idx int) func(ctx context.Context) bool {
	interval := time.Duration(float64(n) / rate * float64(time.Second))
	next := time.Now().Add(interval * time.Duration(idx) / time.Duration(n))
	return func(ctx context.Context) bool {
		sleepCtx(ctx, time.Until(next))
		next = next.Add(interval)
		return ctx.Err() == nil
	}
}

// slotsFor is the in-flight bound of a visitor: --window in closed loop,
// none in open loop (the schedule decides).
func (r *benchRun) slotsFor() chan struct{} {
	if r.o.Rate > 0 {
		return make(chan struct{}, 1<<20)
	}
	return make(chan struct{}, r.o.Window)
}
