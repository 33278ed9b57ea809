// Package configs holds chatgate's configuration: the documented example
// file, embedded so that the binary starts with no file at all, and the
// loader that layers a file, then CHATGATE_* environment variables, over it.
package configs

import (
	"bytes"
	_ "embed"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"chatgate/core/ratelimit"
)

// Example is the documented default configuration.
//
//go:embed chatgate.example.yaml
var Example []byte

// Config is the whole configuration.
type Config struct {
	Server struct {
		Addr            string        `yaml:"addr"`
		ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
		MaxBodyBytes    int64         `yaml:"max_body_bytes"`
		// TLSCertFile and TLSKeyFile, when both set, make chatgate serve
		// HTTPS and WSS (only) on Addr. Both or neither.
		TLSCertFile string `yaml:"tls_cert_file"`
		TLSKeyFile  string `yaml:"tls_key_file"`
		// PprofAddr, if set, serves net/http/pprof on that address (keep it
		// on loopback): for profiling a running gateway.
		PprofAddr string `yaml:"pprof_addr"`
		// ReadTimeout bounds reading one request, headers and body
		// (websockets are hijacked and have their own timeouts).
		ReadTimeout time.Duration `yaml:"read_timeout"`
		// TrustedProxies are the addresses (IPs or CIDRs) whose
		// X-Forwarded-For and X-Forwarded-Proto are believed; none by
		// default.
		TrustedProxies []string `yaml:"trusted_proxies"`
		// MetricsAddr, if set, serves /metrics (and pprof, when
		// pprof_addr is empty) on that address only, not on Addr.
		MetricsAddr string `yaml:"metrics_addr"`
		// GCMinHeadroom is the least the heap may grow between garbage
		// collections, in bytes (core/gcpace); 0 leaves Go's GOGC
		// default. GOGC in the environment wins.
		GCMinHeadroom int64 `yaml:"gc_min_headroom"`
	} `yaml:"server"`
	RateLimits RateLimits `yaml:"rate_limits"`
	Log        struct {
		Level  string `yaml:"level"`
		Format string `yaml:"format"`
	} `yaml:"log"`
	Store struct {
		// URL, if set, selects PostgreSQL (postgres://...) instead of
		// the bbolt file at Path: several nodes share one database.
		URL string `yaml:"url"`
		// LeaseTTL is how long a node's leases (agent sessions, relay
		// connectors, the v2 idle sweeper) outlive it (PostgreSQL only).
		LeaseTTL       time.Duration `yaml:"lease_ttl"`
		Path           string        `yaml:"path"`
		FilesDir       string        `yaml:"files_dir"`
		MaxUploadBytes int64         `yaml:"max_upload_bytes"`
		// Per-visitor upload quota and the grace period of unreferenced
		// uploads (store/files.Limits).
		VisitorUploadBytes int64         `yaml:"visitor_upload_bytes"`
		VisitorUploadFiles int           `yaml:"visitor_upload_files"`
		UnreferencedGrace  time.Duration `yaml:"unreferenced_grace"`
		// AnonymousVisitorTTL: visitors that never had a conversation
		// and have been idle this long are deleted with their tokens
		// (store.Store.ForgetIdleVisitors); 0 keeps them.
		AnonymousVisitorTTL time.Duration `yaml:"anonymous_visitor_ttl"`
	} `yaml:"store"`
	RocketChat struct {
		Enabled   bool   `yaml:"enabled"`
		WidgetDir string `yaml:"widget_dir"`
		PublicURL string `yaml:"public_url"`
		// OfflineEmail receives offline messages of departments without
		// an email of their own (needs smtp).
		OfflineEmail string `yaml:"offline_email"`
		// QueueMessage and QueueWaitPerChat shape queueInfo (the waiting
		// message; the estimated wait is spot × QueueWaitPerChat, 0 = none).
		QueueMessage     string        `yaml:"queue_message"`
		QueueWaitPerChat time.Duration `yaml:"queue_wait_per_chat"`
		// CustomFields are the livechat custom field definitions.
		CustomFields []CustomField `yaml:"custom_fields"`
	} `yaml:"rocketchat"`
	// SMTP sends e-mail (transcripts, offline messages); empty host: none.
	SMTP    SMTP `yaml:"smtp"`
	License struct {
		ID             string `yaml:"id"`
		OrganizationID string `yaml:"organization_id"`
	} `yaml:"license"`
	Limits struct {
		MaxTextBytes  int `yaml:"max_text_bytes"`
		MaxFrameBytes int `yaml:"max_frame_bytes"`
	} `yaml:"limits"`
	LiveChat struct {
		V2 struct {
			Enabled     bool          `yaml:"enabled"`
			PollTimeout time.Duration `yaml:"poll_timeout"`
		} `yaml:"v2"`
		AgentRTM struct {
			Enabled      bool          `yaml:"enabled"`
			LoginTimeout time.Duration `yaml:"login_timeout"`
			PingTimeout  time.Duration `yaml:"ping_timeout"`
		} `yaml:"agent_rtm"`
		Customer struct {
			Enabled        bool          `yaml:"enabled"`
			AllowedOrigins []string      `yaml:"allowed_origins"`
			ClientIDs      []string      `yaml:"client_ids"`
			TokenTTL       time.Duration `yaml:"token_ttl"`
			LoginTimeout   time.Duration `yaml:"login_timeout"`
			PingTimeout    time.Duration `yaml:"ping_timeout"`
		} `yaml:"customer"`
		// Forms are the pre-chat, post-chat and ticket forms groups ask
		// (Customer Chat API get_form; forms.go).
		Forms []Form `yaml:"forms"`
	} `yaml:"livechat"`
	Routing struct {
		DefaultStatus string `yaml:"default_status"`
	} `yaml:"routing"`
	Webhooks    Webhooks     `yaml:"webhooks"`
	Relay       Relay        `yaml:"relay"`
	Departments []Department `yaml:"departments"`
	Agents      []Agent      `yaml:"agents"`
	// Properties declares chat, thread and event properties:
	// namespace → name → declaration (properties.go).
	Properties map[string]map[string]Property `yaml:"properties"`
}

// Webhooks configures LiveChat webhook delivery (see
// adapters/livechat/webhooks and chatgate.example.yaml).
type Webhooks struct {
	Enabled     bool          `yaml:"enabled"`
	Timeout     time.Duration `yaml:"timeout"`
	MaxAttempts int           `yaml:"max_attempts"`
	MinBackoff  time.Duration `yaml:"min_backoff"`
	MaxBackoff  time.Duration `yaml:"max_backoff"`
	MaxAge      time.Duration `yaml:"max_age"`
	Concurrency int           `yaml:"concurrency"`
	// AllowHTTP accepts http:// receivers; AllowPrivateNetworks lets
	// deliveries reach loopback, private and link-local addresses; CAFile
	// is a PEM bundle trusted for https receivers. See docs/security.md.
	AllowHTTP            bool   `yaml:"allow_http"`
	AllowPrivateNetworks bool   `yaml:"allow_private_networks"`
	CAFile               string `yaml:"ca_file"`
	// ConfigToken, if set, is a bearer token for the Configuration API
	// alone (webhooks, property registration), besides administrators'
	// agent tokens: for a deployment tool that should not hold an agent
	// identity. At least 32 characters. CHATGATE_CONFIG_TOKEN.
	ConfigToken string `yaml:"config_token"`
}

// RateLimits are the per-address and per-visitor limits (core/ratelimit,
// docs/security.md).
type RateLimits struct {
	// Exempt addresses (IPs or CIDRs) no rate limit or connection cap
	// applies to.
	Exempt                []string       `yaml:"exempt"`
	ConnectionsPerAddress int            `yaml:"connections_per_address"`
	FailedLogins          ratelimit.Rule `yaml:"failed_logins"`
	Starts                ratelimit.Rule `yaml:"starts"`
	Messages              ratelimit.Rule `yaml:"messages"`
	Uploads               ratelimit.Rule `yaml:"uploads"`
	NewCustomers          ratelimit.Rule `yaml:"new_customers"`
}

// Department is a configured department.
type Department struct {
	ID   string `yaml:"id"`
	Name string `yaml:"name"`
	// Email receives the department's offline messages (needs smtp).
	Email string `yaml:"email"`
}

// SMTP is the mail server e-mail goes through (core/mail).
type SMTP struct {
	Host     string `yaml:"host"`
	Port     int    `yaml:"port"`
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	From     string `yaml:"from"`
	// TLS is none, starttls or tls.
	TLS         string        `yaml:"tls"`
	Timeout     time.Duration `yaml:"timeout"`
	MaxAttempts int           `yaml:"max_attempts"`
}

// Enabled reports whether e-mail is configured.
func (s *SMTP) Enabled() bool { return s.Host != "" }

// CustomField is a livechat custom field definition (Rocket.Chat's
// livechat custom fields; adapters/rocketchat custom_fields.go).
type CustomField struct {
	ID           string `yaml:"id"`
	Label        string `yaml:"label"`
	Scope        string `yaml:"scope"`      // visitor or room
	Visibility   string `yaml:"visibility"` // visible or hidden
	Type         string `yaml:"type"`       // input or select
	Options      string `yaml:"options"`    // comma-separated, for select
	Regexp       string `yaml:"regexp"`
	Required     bool   `yaml:"required"`
	DefaultValue string `yaml:"default_value"`
	Public       bool   `yaml:"public"`
	Searchable   bool   `yaml:"searchable"`
}

// The agent roles (Agent.Role).
const (
	RoleAgent      = "agent"
	RoleSupervisor = "supervisor"
)

// Agent is a configured agent and its credentials.
type Agent struct {
	ID          string   `yaml:"id"`
	Username    string   `yaml:"username"`
	Name        string   `yaml:"name"`
	JobTitle    string   `yaml:"job_title"`
	Avatar      string   `yaml:"avatar"`
	Token       string   `yaml:"token"`
	Password    string   `yaml:"password"`
	Departments []string `yaml:"departments"`
	MaxChats    int      `yaml:"max_chats"`
	// Admin: the agent administers the gateway: the operator view
	// (/console/ops), the Configuration API, customer tokens for any
	// customer. See docs/security.md.
	Admin bool `yaml:"admin"`
	// Role: "agent" (the default) or "supervisor": a supervisor sees the
	// other agents' chats of its departments (list_chats, get_chat,
	// pushes) and may take them over or join them. Admins supervise too.
	Role string `yaml:"role"`
}

// Load returns the embedded defaults, overlaid with the YAML file at path
// (if path is not empty), then with the environment (getenv, normally
// os.Getenv). Unknown YAML fields are errors, so typos do not pass silently.
func Load(path string, getenv func(string) string) (*Config, error) {
	var c Config
	if err := decode(Example, &c); err != nil {
		return nil, fmt.Errorf("embedded config: %w", err)
	}
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("read config: %w", err)
		}
		if err := decode(b, &c); err != nil {
			return nil, fmt.Errorf("config %s: %w", path, err)
		}
	}
	if err := applyEnv(&c, getenv); err != nil {
		return nil, err
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

func decode(b []byte, c *Config) error {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil && err.Error() != "EOF" {
		return err
	}
	return nil
}

// applyEnv overlays CHATGATE_* variables. The table is explicit rather than
// reflective so that README and code list the same names.
func applyEnv(c *Config, getenv func(string) string) error {
	str := func(name string, dst *string) {
		if v := getenv(name); v != "" {
			*dst = v
		}
	}
	dur := func(name string, dst *time.Duration) error {
		if v := getenv(name); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			*dst = d
		}
		return nil
	}
	str("CHATGATE_ADDR", &c.Server.Addr)
	str("CHATGATE_TLS_CERT_FILE", &c.Server.TLSCertFile)
	str("CHATGATE_TLS_KEY_FILE", &c.Server.TLSKeyFile)
	str("CHATGATE_PPROF_ADDR", &c.Server.PprofAddr)
	str("CHATGATE_METRICS_ADDR", &c.Server.MetricsAddr)
	str("CHATGATE_CONFIG_TOKEN", &c.Webhooks.ConfigToken)
	str("CHATGATE_DATA", &c.Store.Path)
	str("CHATGATE_STORE", &c.Store.URL)
	str("CHATGATE_LOG_LEVEL", &c.Log.Level)
	str("CHATGATE_LOG_FORMAT", &c.Log.Format)
	str("CHATGATE_LICENSE_ID", &c.License.ID)
	str("CHATGATE_ORGANIZATION_ID", &c.License.OrganizationID)
	str("CHATGATE_FILES_DIR", &c.Store.FilesDir)
	str("CHATGATE_WIDGET_DIR", &c.RocketChat.WidgetDir)
	str("CHATGATE_PUBLIC_URL", &c.RocketChat.PublicURL)
	str("CHATGATE_SMTP_PASSWORD", &c.SMTP.Password)
	if err := dur("CHATGATE_SHUTDOWN_TIMEOUT", &c.Server.ShutdownTimeout); err != nil {
		return err
	}
	if err := dur("CHATGATE_V2_POLL_TIMEOUT", &c.LiveChat.V2.PollTimeout); err != nil {
		return err
	}
	c.Relay.applyEnv(str)
	for i := range c.RocketChat.CustomFields {
		f := &c.RocketChat.CustomFields[i]
		for _, d := range []struct {
			dst *string
			def string
		}{{&f.Scope, "visitor"}, {&f.Visibility, "visible"}, {&f.Type, "input"}} {
			if *d.dst == "" {
				*d.dst = d.def
			}
		}
	}
	return applyAgentEnv(c, getenv)
}

// applyAgentEnv overlays CHATGATE_AGENT_<N>_* on agents[N] and appends an
// agent for each further N whose _ID is set (N counts from 0 without
// gaps), so that a container needs no config file for its agents:
// _ID, _NAME, _USERNAME, _TOKEN, _PASSWORD, _DEPARTMENTS (comma-separated
// ids), _MAX_CHATS, _ADMIN (true/false), _ROLE (agent/supervisor).
func applyAgentEnv(c *Config, getenv func(string) string) error {
	for i := 0; ; i++ {
		pre := "CHATGATE_AGENT_" + strconv.Itoa(i) + "_"
		created := false
		if i >= len(c.Agents) {
			if getenv(pre+"ID") == "" {
				break
			}
			c.Agents = append(c.Agents, Agent{})
			created = true
		}
		a := &c.Agents[i]
		for _, f := range []struct {
			name string
			dst  *string
		}{{"ID", &a.ID}, {"NAME", &a.Name}, {"USERNAME", &a.Username}, {"TOKEN", &a.Token}, {"PASSWORD", &a.Password}} {
			if v := getenv(pre + f.name); v != "" {
				*f.dst = v
			}
		}
		if v := getenv(pre + "DEPARTMENTS"); v != "" {
			a.Departments = nil
			for _, d := range strings.Split(v, ",") {
				if d = strings.TrimSpace(d); d != "" {
					a.Departments = append(a.Departments, d)
				}
			}
		}
		if v := getenv(pre + "MAX_CHATS"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return fmt.Errorf("%sMAX_CHATS: want a number >= 0, got %q", pre, v)
			}
			a.MaxChats = n
		}
		if v := getenv(pre + "ADMIN"); v != "" {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return fmt.Errorf("%sADMIN: want true or false, got %q", pre, v)
			}
			a.Admin = b
		}
		if v := getenv(pre + "ROLE"); v != "" {
			a.Role = v
		}
		if created && a.Name == "" {
			a.Name = a.ID
		}
		if a.Username == "" {
			a.Username, _, _ = strings.Cut(a.ID, "@")
		}
	}
	return nil
}

// Validate checks the values a running gateway depends on.
func (c *Config) Validate() error {
	var errs []string
	if c.Server.Addr == "" {
		errs = append(errs, "server.addr is empty")
	}
	if (c.Server.TLSCertFile == "") != (c.Server.TLSKeyFile == "") {
		errs = append(errs, "server.tls_cert_file and server.tls_key_file must be set together")
	}
	switch u := c.Store.URL; {
	case u == "" && c.Store.Path == "":
		errs = append(errs, "store.path is empty")
	case u != "" && !strings.HasPrefix(u, "postgres://") && !strings.HasPrefix(u, "postgresql://"):
		errs = append(errs, "store.url must be a postgres:// URL (or empty for the bbolt file at store.path)")
	}
	if c.License.ID == "" {
		errs = append(errs, "license.id is empty")
	}
	if c.Limits.MaxTextBytes <= 0 || c.Limits.MaxFrameBytes <= c.Limits.MaxTextBytes {
		errs = append(errs, "limits: max_text_bytes must be > 0 and below max_frame_bytes")
	}
	if c.Server.MaxBodyBytes <= int64(c.Limits.MaxTextBytes) {
		errs = append(errs, "server.max_body_bytes must exceed limits.max_text_bytes")
	}
	switch c.Routing.DefaultStatus {
	case "accepting_chats", "not_accepting_chats":
	default:
		errs = append(errs, "routing.default_status must be accepting_chats or not_accepting_chats")
	}
	depts := map[string]bool{}
	for _, d := range c.Departments {
		if d.ID == "" || depts[d.ID] {
			errs = append(errs, fmt.Sprintf("department id %q is empty or repeated", d.ID))
		}
		depts[d.ID] = true
	}
	if w := c.Webhooks; w.Enabled {
		switch {
		case w.Timeout <= 0:
			errs = append(errs, "webhooks.timeout must be > 0")
		case w.MaxAttempts < 1:
			errs = append(errs, "webhooks.max_attempts must be >= 1")
		case w.MinBackoff <= 0 || w.MaxBackoff < w.MinBackoff:
			errs = append(errs, "webhooks: min_backoff must be > 0 and max_backoff >= min_backoff")
		case w.MaxAge < 0:
			errs = append(errs, "webhooks.max_age must be >= 0")
		case w.Concurrency < 1:
			errs = append(errs, "webhooks.concurrency must be >= 1")
		}
	}
	if c.Store.LeaseTTL != 0 && c.Store.LeaseTTL < time.Second {
		errs = append(errs, "store.lease_ttl must be at least 1s (or 0 for the default 15s)")
	}
	if t := c.Webhooks.ConfigToken; t != "" && (len(t) < 32 || strings.TrimSpace(t) != t || strings.ContainsAny(t, " \t\r\n")) {
		errs = append(errs, "webhooks.config_token must be at least 32 characters without spaces (generate one: openssl rand -hex 32)")
	}
	if c.Server.GCMinHeadroom < 0 {
		errs = append(errs, "server.gc_min_headroom must be >= 0 (0: Go's own GOGC default)")
	}
	if c.Server.ReadTimeout < 0 || c.Store.VisitorUploadBytes < 0 || c.Store.VisitorUploadFiles < 0 || c.Store.UnreferencedGrace < 0 || c.Store.AnonymousVisitorTTL < 0 ||
		c.RateLimits.ConnectionsPerAddress < 0 {
		errs = append(errs, "server.read_timeout, store.visitor_upload_*, store.unreferenced_grace, store.anonymous_visitor_ttl and rate_limits.connections_per_address must be >= 0")
	}
	for name, r := range map[string]ratelimit.Rule{"failed_logins": c.RateLimits.FailedLogins, "starts": c.RateLimits.Starts,
		"messages": c.RateLimits.Messages, "uploads": c.RateLimits.Uploads, "new_customers": c.RateLimits.NewCustomers} {
		if r.Burst < 0 || r.PerMinute < 0 || r.Burst > 0 && r.PerMinute == 0 {
			errs = append(errs, "rate_limits."+name+": burst and per_minute must be >= 0, per_minute > 0 when burst is set")
		}
	}
	if c.Store.MaxUploadBytes <= 0 {
		errs = append(errs, "store.max_upload_bytes must be > 0")
	}
	ids := map[string]bool{}
	usernames := map[string]bool{}
	tokens := map[string]bool{}
	for i, a := range c.Agents {
		if a.ID == "" || ids[a.ID] {
			errs = append(errs, fmt.Sprintf("agents[%d]: id %q is empty or repeated", i, a.ID))
		}
		ids[a.ID] = true
		if len(a.Token) < 16 {
			errs = append(errs, fmt.Sprintf("agents[%d] (%s): token must be at least 16 characters", i, a.ID))
		} else if tokens[a.Token] {
			errs = append(errs, fmt.Sprintf("agents[%d] (%s): token repeated", i, a.ID))
		}
		tokens[a.Token] = true
		if a.Role != "" && a.Role != RoleAgent && a.Role != RoleSupervisor {
			errs = append(errs, fmt.Sprintf("agents[%d] (%s): role %q must be %s or %s", i, a.ID, a.Role, RoleAgent, RoleSupervisor))
		}
		if a.Username == "" || usernames[a.Username] {
			errs = append(errs, fmt.Sprintf("agents[%d] (%s): username %q is empty or repeated", i, a.ID, a.Username))
		}
		usernames[a.Username] = true
		if a.Password != "" && len(a.Password) < 8 {
			errs = append(errs, fmt.Sprintf("agents[%d] (%s): password must be at least 8 characters", i, a.ID))
		}
		for _, d := range a.Departments {
			if !depts[d] {
				errs = append(errs, fmt.Sprintf("agents[%d] (%s): unknown department %q", i, a.ID, d))
			}
		}
	}
	if _, err := c.PropertyDefs(); err != nil {
		errs = append(errs, err.Error())
	}
	errs = append(errs, c.Relay.validate(depts)...)
	if c.SMTP.Enabled() {
		mc := c.MailConfig()
		if err := mc.Validate(); err != nil {
			errs = append(errs, err.Error())
		}
	}
	for i, d := range c.Departments {
		if d.Email != "" {
			if err := validAddress(d.Email); err != nil {
				errs = append(errs, fmt.Sprintf("departments[%d].email: %v", i, err))
			}
		}
	}
	if a := c.RocketChat.OfflineEmail; a != "" {
		if err := validAddress(a); err != nil {
			errs = append(errs, fmt.Sprintf("rocketchat.offline_email: %v", err))
		}
	}
	if c.RocketChat.QueueWaitPerChat < 0 {
		errs = append(errs, "rocketchat.queue_wait_per_chat must be >= 0")
	}
	errs = append(errs, validateCustomFields(c.RocketChat.CustomFields)...)
	errs = append(errs, validateForms(c.LiveChat.Forms, depts)...)
	if len(errs) > 0 {
		return fmt.Errorf("invalid config: %s", strings.Join(errs, "; "))
	}
	return nil
}
