package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"

	"chatgate/adapters/livechat/agentrtm"
	"chatgate/adapters/livechat/customer"
	"chatgate/adapters/livechat/visitorv2"
	"chatgate/adapters/livechat/webhooks"
	"chatgate/adapters/rocketchat"
	"chatgate/configs"
	"chatgate/core/desk"
	"chatgate/core/gcpace"
	"chatgate/core/hub"
	"chatgate/core/mail"
	"chatgate/core/model"
	"chatgate/core/relay"
	"chatgate/core/routing"
	"chatgate/store/bolt"
	"chatgate/store/files"
)

// surface is a protocol face the gateway serves (see DESIGN.md).
type surface interface {
	Name() string
	Mount(r gin.IRouter)
	Run(ctx context.Context) error
}

type serveOptions struct {
	ConfigPath, DataPath, Addr string
	// StoreURL selects PostgreSQL (over store.url); NodeID names the node.
	StoreURL, NodeID string
	// Demo creates the demo agent when no agent is configured even when
	// not listening on loopback (--demo).
	Demo   bool
	Stderr io.Writer
	Getenv func(string) string
	// Listening, if set, is told the bound address once the server accepts
	// connections (tests listen on 127.0.0.1:0).
	Listening func(addr string)
	// MetricsListening, if set, is told server.metrics_addr's bound
	// address.
	MetricsListening func(addr string)
	// Routes, if set, is told every gin route and, per surface name, what
	// the surfaces dispatch below them (see dispatcher), before serving.
	Routes func(gin.RoutesInfo, map[string][]string)
}

// dispatcher is a surface that routes requests further itself (one gin
// route for many REST paths, actions or DDP methods) and lists them.
type dispatcher interface {
	Dispatched() []string
}

// serve runs the gateway until ctx ends, then shuts down in this order:
// readiness off; the HTTP server stops accepting and finishes in-flight
// requests; surfaces close their sessions (telling clients why) and the
// webhook worker finishes the attempts in flight (each bounded by
// webhooks.timeout) and records them; undelivered rows stay in the outbox
// for the next start; the router loop stops; the store writes what is
// queued and closes.
func serve(ctx context.Context, o serveOptions) error {
	cfg, err := configs.Load(o.ConfigPath, o.Getenv)
	if err != nil {
		return err
	}
	if o.DataPath != "" {
		cfg.Store.Path = o.DataPath
	}
	if o.Addr != "" {
		cfg.Server.Addr = o.Addr
	}
	if o.StoreURL != "" {
		cfg.Store.URL = o.StoreURL
		if err := cfg.Validate(); err != nil {
			return err
		}
	}
	nodeID := o.NodeID
	if nodeID == "" && o.Getenv != nil {
		nodeID = o.Getenv("CHATGATE_NODE_ID")
	}
	if nodeID == "" {
		nodeID = defaultNodeID()
	}
	log, err := newLogger(o.Stderr, cfg.Log.Level, cfg.Log.Format)
	if err != nil {
		return fmt.Errorf("log level: %w", err)
	}
	// Every line says which node wrote it.
	log = log.With().Str("node", nodeID).Logger()
	// The collector's pacing is the process's: GOGC as the runtime read
	// it from the real environment wins over server.gc_min_headroom.
	defer gcpace.Start(uint64(cfg.Server.GCMinHeadroom), time.Second, os.Getenv)()

	var m *metrics
	opened, err := openStore(ctx, cfg, func(s bolt.Stats) {
		if m != nil {
			m.onCommit(s)
		}
	})
	if err != nil {
		return err
	}
	st := opened.Store
	storeClosed := false
	defer func() {
		if !storeClosed {
			st.Close()
		}
	}()

	agents, creds, err := agentsFromConfig(ctx, cfg, st, o.Stderr, o.Demo, log)
	if err != nil {
		return err
	}
	router := routing.New(agents, cfg.Routing.DefaultStatus == string(routing.Accepting))
	m = newMetrics(router, nodeID)
	gd, err := newGuard(cfg.RateLimits, m)
	if err != nil {
		return err
	}
	departs := make([]model.Department, 0, len(cfg.Departments))
	for _, d := range cfg.Departments {
		departs = append(departs, model.Department{ID: model.DeptID(d.ID), Name: d.Name})
	}
	bus := hub.NewBus()
	cl := newCluster(opened, nodeID, cfg.Store.LeaseTTL, router, bus, log)
	cl.share(gd.logins)
	propDefs, err := cfg.PropertyDefs()
	if err != nil {
		return err
	}
	props, err := desk.NewProperties(st, propDefs)
	if err != nil {
		return err
	}
	forms, err := liveChatForms(cfg.LiveChat.Forms)
	if err != nil {
		return fmt.Errorf("livechat.forms: %w", err)
	}
	// Webhooks: the desk's outbox hook writes their deliveries with the
	// events that cause them; the service (a surface) serves the
	// Configuration API and runs the delivery worker.
	var wh *webhooks.Service
	if w := cfg.Webhooks; w.Enabled {
		deliveries := prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chatgate_webhook_deliveries_total",
			Help: "Webhook delivery attempts by action and outcome (delivered, retry, exhausted).",
		}, []string{"action", "outcome"})
		m.reg.MustRegister(deliveries)
		wh, err = webhooks.New(st, webhooks.Config{
			OrganizationID: cfg.License.OrganizationID, Authenticate: creds.byToken,
			Agent: router.Agent, QueuePosition: router.Position, Bus: bus,
			Timeout: w.Timeout, MaxAttempts: w.MaxAttempts, MinBackoff: w.MinBackoff, MaxBackoff: w.MaxBackoff,
			MaxAge: w.MaxAge, Concurrency: w.Concurrency, Properties: props, Exclusive: cl.exclusive(),
			OnDelivery: func(action, outcome string) { deliveries.WithLabelValues(action, outcome).Inc() },
			AllowHTTP:  w.AllowHTTP, AllowPrivateNetworks: w.AllowPrivateNetworks, CAFile: w.CAFile,
			ConfigToken: w.ConfigToken,
		}, log)
		if err != nil {
			return err
		}
		if err := wh.Load(ctx); err != nil {
			return err
		}
	}
	dopts := desk.Options{
		Store: st, Router: router, Bus: bus, Actors: hub.NewActors(256),
		Limits: desk.Limits{MaxText: cfg.Limits.MaxTextBytes, Starts: gd.starts, Messages: gd.messages}, Logger: log, Departs: departs,
		OnEvents: func(n int) { m.events.Add(float64(n)) }, OnStale: m.stale.Inc, Properties: props,
		Coordinator: cl.coordinator(),
	}
	if wh != nil {
		dopts.Outbox = wh.Outbox
		dopts.NoticeOutbox = wh.NoticeOutbox
	}
	// Relay: routes decide at start which conversations an external desk
	// serves; the hook writes their outbox rows with the events.
	rs, err := newRelay(cfg, m, cl.exclusive(), log)
	if err != nil {
		return err
	}
	if rs != nil {
		dopts.Route, dopts.Relay = rs.Route, rs.Hook
	}
	dk := desk.New(dopts)
	if rs != nil {
		rs.Attach(dk)
		if err := rs.Load(ctx); err != nil {
			return err
		}
	}
	if err := dk.Load(ctx); err != nil {
		return err
	}

	var surfaces []surface
	if wh != nil {
		surfaces = append(surfaces, wh)
	}
	if cfg.LiveChat.V2.Enabled {
		surfaces = append(surfaces, visitorv2.New(dk, visitorv2.Config{
			LicenceID: cfg.License.ID, PollTimeout: cfg.LiveChat.V2.PollTimeout, MaxBody: cfg.Server.MaxBodyBytes,
			Polls: cl.v2Polls(),
		}, log))
	}
	// Uploaded files: the Rocket.Chat surface serves /file-upload/...;
	// the agent Web API's upload_file stores there too.
	fs := opened.Files
	fs.SetLimits(files.Limits{OwnerBytes: cfg.Store.VisitorUploadBytes, OwnerFiles: cfg.Store.VisitorUploadFiles,
		Grace: cfg.Store.UnreferencedGrace})
	if cfg.LiveChat.AgentRTM.Enabled {
		surfaces = append(surfaces, agentrtm.New(dk, agentrtm.Config{
			LicenseID: cfg.License.ID, OrganizationID: cfg.License.OrganizationID, Forms: forms,
			Authenticate: creds.byToken,
			LoginTimeout: cfg.LiveChat.AgentRTM.LoginTimeout, PingTimeout: cfg.LiveChat.AgentRTM.PingTimeout,
			MaxFrame: cfg.Limits.MaxFrameBytes, OnConnections: m.connGauge("livechat.agent.rtm"), Files: fs,
			Logins: gd.logins, PublicURL: cfg.RocketChat.PublicURL,
		}, log))
	}
	if lc := cfg.LiveChat.Customer; lc.Enabled {
		surfaces = append(surfaces, customer.New(dk, customer.Config{LicenseID: cfg.License.ID, OrganizationID: cfg.License.OrganizationID, Forms: forms,
			AgentToken: creds.byToken, TokenTTL: lc.TokenTTL, AllowedOrigins: lc.AllowedOrigins, ClientIDs: lc.ClientIDs, Files: fs,
			PublicURL: cfg.RocketChat.PublicURL, LoginTimeout: lc.LoginTimeout,
			PingTimeout: lc.PingTimeout, MaxFrame: cfg.Limits.MaxFrameBytes, OnConnections: m.connGauge("livechat.customer.rtm"),
			Uploads: gd.uploads, NewCustomers: gd.newCustomers}, log))
	}

	// E-mail: the sender delivers the outbox's e-mail rows (it runs with
	// the surfaces); without smtp.host nothing owes e-mail.
	var mailer *mail.Sender
	if cfg.SMTP.Enabled() {
		if mailer, err = mail.NewSender(st, cfg.MailConfig(), log); err != nil {
			return err
		}
	}
	trusted, err := parseTrusted(cfg.Server.TrustedProxies)
	if err != nil {
		return err
	}
	if cfg.RocketChat.Enabled {
		rcfg := rocketchat.Config{
			PublicURL: cfg.RocketChat.PublicURL, WidgetDir: cfg.RocketChat.WidgetDir, Files: fs,
			Login: creds.byPassword, MaxBody: cfg.Server.MaxBodyBytes, MaxFrame: cfg.Limits.MaxFrameBytes,
			OnConnections: m.connGauge("rocketchat.ddp"),
			QueueMessage:  cfg.RocketChat.QueueMessage, QueueWaitPerChat: cfg.RocketChat.QueueWaitPerChat,
			OfflineEmail: cfg.RocketChat.OfflineEmail, DepartmentEmails: map[model.DeptID]string{},
			RoomFieldNamespace: configs.CustomFieldNamespace,
			Uploads:            gd.uploads, NewVisitors: gd.newCustomers, TrustForwarded: trusted.contains,
		}
		if mailer != nil {
			rcfg.Mail = mailer
		}
		for _, d := range cfg.Departments {
			if d.Email != "" {
				rcfg.DepartmentEmails[model.DeptID(d.ID)] = d.Email
			}
		}
		for _, f := range cfg.RocketChat.CustomFields {
			rcfg.CustomFields = append(rcfg.CustomFields, rocketchat.CustomField{ID: f.ID, Label: f.Label, Scope: f.Scope,
				Visibility: f.Visibility, Type: f.Type, Options: f.Options, Regexp: f.Regexp, DefaultValue: f.DefaultValue,
				Required: f.Required, Public: f.Public, Searchable: f.Searchable})
		}
		surfaces = append(surfaces, rocketchat.New(dk, rcfg, log))
	}

	surfaces = append(surfaces, newConsole(cfg, creds, router, &opsSource{cfg: cfg, router: router, desk: dk, relay: rs, hooks: wh, m: m,
		kind: opened.Kind, node: nodeID}, log))

	var ready atomic.Bool
	engine, err := newEngine(log, m, engineOptions{limits: bodyLimits{normal: cfg.Server.MaxBodyBytes, upload: cfg.Store.MaxUploadBytes + 64<<10},
		ready: &ready, relay: rs, guard: gd, trustedProxies: cfg.Server.TrustedProxies, metricsElsewhere: cfg.Server.MetricsAddr != "",
		info: readyInfo{Node: nodeID, Store: opened.Kind}})
	if err != nil {
		return err
	}
	if rs != nil {
		mountRelayView(engine, st, creds.byToken)
	}
	for _, s := range surfaces {
		s.Mount(engine)
	}
	if !cfg.RocketChat.Enabled {
		// The Rocket.Chat surface serves stored files; without it the
		// LiveChat upload_file URLs must still resolve.
		engine.GET(files.URLPrefix+":id/:name", func(c *gin.Context) {
			if err := fs.Serve(c.Writer, c.Request, c.Param("id")); err != nil {
				c.JSON(http.StatusNotFound, gin.H{"error": "not found"})
			}
		})
	}

	if o.Routes != nil {
		sub := make(map[string][]string)
		for _, s := range surfaces {
			if d, ok := s.(dispatcher); ok {
				sub[s.Name()] = d.Dispatched()
			}
		}
		o.Routes(engine.Routes(), sub)
	}

	ln, err := listen(cfg.Server.Addr, cfg.Server.TLSCertFile, cfg.Server.TLSKeyFile)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: engine, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
		MaxHeaderBytes: 64 << 10, ErrorLog: httpErrorLog(log),
		// Bounds reading a request, headers and body (a trickled body
		// holds a goroutine otherwise); hijacked websockets set their own
		// deadlines.
		ReadTimeout: cfg.Server.ReadTimeout}

	if pa, ma := cfg.Server.PprofAddr, cfg.Server.MetricsAddr; pa != "" && pa == ma {
		stop, err := serveInternal(pa, m, true, log, o.MetricsListening)
		if err != nil {
			return err
		}
		defer stop()
	} else {
		if pa != "" {
			stopPprof, err := servePprof(pa, log)
			if err != nil {
				return err
			}
			defer stopPprof()
		}
		if ma != "" {
			stopMetrics, err := serveMetrics(ma, m, log, o.MetricsListening)
			if err != nil {
				return err
			}
			defer stopMetrics()
		}
	}

	runCtx, stopRun := context.WithCancel(context.Background())
	defer stopRun()
	var wg sync.WaitGroup
	wg.Go(func() { _ = dk.Run(runCtx) })
	// Settings another node may change through its Configuration API:
	// registered properties and webhooks.
	reload := func(ctx context.Context) error {
		if err := props.Load(ctx); err != nil {
			return err
		}
		if wh != nil {
			return wh.Load(ctx)
		}
		return nil
	}
	cl.run(runCtx, &wg, dk.Kick, reload, log)
	surfCtx, stopSurfaces := context.WithCancel(context.Background())
	defer stopSurfaces()
	var swg sync.WaitGroup
	for _, s := range surfaces {
		swg.Go(func() {
			if err := s.Run(surfCtx); err != nil {
				log.Error().Err(err).Str("surface", s.Name()).Msg("surface stopped")
			}
		})
	}
	if rs != nil {
		swg.Go(func() { _ = rs.Run(surfCtx) })
	}
	if mailer != nil {
		swg.Go(func() { _ = mailer.Run(surfCtx) })
	}
	swg.Go(func() { sweepFiles(surfCtx, fs, log) })
	swg.Go(func() {
		props.RunDrops(surfCtx, func(err error) { log.Warn().Err(err).Msg("properties: drop the values of an unregistered property") })
	})
	swg.Go(func() {
		sweep := func(ctx context.Context) {
			sweepVisitors(ctx, st, cfg.Store.AnonymousVisitorTTL, func(n int) { m.forgotten.Add(float64(n)) }, log)
		}
		if hold := cl.exclusive(); hold != nil && cfg.Store.AnonymousVisitorTTL > 0 {
			hold(surfCtx, "store.visitor-expiry", sweep)
			return
		}
		sweep(surfCtx)
	})
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	ready.Store(true)
	log.Info().Str("addr", ln.Addr().String()).Bool("tls", cfg.Server.TLSCertFile != "").Str("store", opened.Kind).Str("data", opened.Where).Int("agents", len(agents)).Msg("chatgate serving")
	if o.Listening != nil {
		o.Listening(ln.Addr().String())
	}

	var runErr error
	select {
	case <-ctx.Done():
	case err := <-serveErr:
		runErr = fmt.Errorf("http server: %w", err)
	}

	log.Info().Msg("shutting down")
	ready.Store(false)
	shCtx, cancel := context.WithTimeout(context.Background(), cfg.Server.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Warn().Err(err).Msg("http shutdown")
	}
	stopSurfaces()
	// Bounded like the HTTP shutdown: a session that does not let go
	// must not keep the process (and its data file lock) forever. Past the
	// limit the store is closed anyway; late commits fail, none is
	// acknowledged unwritten.
	if !waitBounded(&swg, cfg.Server.ShutdownTimeout) {
		log.Error().Dur("after", cfg.Server.ShutdownTimeout).Msg("surfaces did not stop in time; closing the store anyway")
	}
	stopRun()
	wg.Wait()
	storeClosed = true
	if err := st.Close(); err != nil {
		return fmt.Errorf("close store: %w", err)
	}
	log.Info().Msg("stopped")
	return runErr
}

// listen binds addr; with a certificate and key it serves TLS only
// (HTTPS and WSS on the same address; a plain HTTP request gets Go's
// "400 Client sent an HTTP request to an HTTPS server" and no route).
func listen(addr, certFile, keyFile string) (net.Listener, error) {
	var conf *tls.Config
	if certFile != "" || keyFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("tls: %w", err)
		}
		// HTTP/1.1 only: websockets upgrade over it, and gin's
		// handlers need nothing from h2.
		conf = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12,
			NextProtos: []string{"http/1.1"}}
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	if conf != nil {
		ln = tls.NewListener(ln, conf)
	}
	return ln, nil
}

// newEngine builds the gin engine with the gateway-wide routes and
// middleware: panic recovery, body limit, request log without query
// strings (they carry session secrets), metrics, health and JSON 404/405.
// readyInfo is what /readyz says about the node besides its readiness.
type readyInfo struct {
	Node  string // --node-id
	Store string // bolt or postgres
}

type engineOptions struct {
	limits         bodyLimits
	ready          *atomic.Bool
	relay          *relay.Service
	info           readyInfo
	guard          *guard
	trustedProxies []string
	// metricsElsewhere: /metrics is on server.metrics_addr, not here.
	metricsElsewhere bool
}

func newEngine(log zerolog.Logger, m *metrics, o engineOptions) (*gin.Engine, error) {
	limits, ready, rs, info := o.limits, o.ready, o.relay, o.info
	gin.SetMode(gin.ReleaseMode)
	e := gin.New()
	e.HandleMethodNotAllowed = true
	e.ContextWithFallback = true
	// Forwarded headers are believed from the configured proxies only
	// (gin trusts every peer by default).
	if err := e.SetTrustedProxies(o.trustedProxies); err != nil {
		return nil, fmt.Errorf("server.trusted_proxies: %w", err)
	}
	if o.guard != nil {
		e.Use(o.guard.middleware)
	}
	e.Use(gin.CustomRecoveryWithWriter(io.Discard, func(c *gin.Context, err any) {
		log.Error().Interface("panic", err).Str("route", c.FullPath()).Msg("handler panicked")
		c.AbortWithStatusJSON(http.StatusInternalServerError, gin.H{"error": "internal server error"})
	}))
	e.Use(func(c *gin.Context) {
		if c.Request.Body != nil {
			c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, limits.of(c.Request.URL.Path))
		}
		start := time.Now()
		c.Next()
		log.Debug().Str("method", c.Request.Method).Str("route", c.FullPath()).Int("status", c.Writer.Status()).
			Dur("took", time.Since(start)).Msg("http")
	})
	e.Use(m.httpMiddleware)
	e.GET("/healthz", func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"status": "ok"}) })
	e.GET("/readyz", func(c *gin.Context) {
		if !ready.Load() {
			c.JSON(http.StatusServiceUnavailable, gin.H{"status": "not ready", "node": info.Node})
			return
		}
		body := gin.H{"status": "ready", "node": info.Node, "store": info.Store}
		if rs != nil {
			// Connectors report, but do not gate readiness: while an
			// upstream desk is away its messages wait in the outbox.
			body["relay"] = rs.Statuses(c.Request.Context())
		}
		c.JSON(http.StatusOK, body)
	})
	if !o.metricsElsewhere {
		e.GET("/metrics", gin.WrapH(promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})))
	}
	e.NoRoute(func(c *gin.Context) { c.JSON(http.StatusNotFound, gin.H{"error": "not found"}) })
	e.NoMethod(func(c *gin.Context) { c.JSON(http.StatusMethodNotAllowed, gin.H{"error": "method not allowed"}) })
	return e, nil
}

// bodyLimits caps request bodies: uploads may carry a file of up to
// store.max_upload_bytes (plus multipart framing), everything else
// server.max_body_bytes.
type bodyLimits struct{ normal, upload int64 }

func (l bodyLimits) of(path string) int64 {
	if strings.HasPrefix(path, "/api/v1/livechat/upload/") || strings.HasSuffix(path, "/action/upload_file") {
		return max(l.normal, l.upload)
	}
	return l.normal
}
