package configs

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestEmbeddedDefaultsAreValid(t *testing.T) {
	c, err := Load("", env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.Server.Addr != "127.0.0.1:8080" || c.LiveChat.V2.PollTimeout != 30*time.Second || !c.LiveChat.AgentRTM.Enabled || len(c.Agents) != 0 {
		t.Fatalf("unexpected defaults: %+v", c)
	}
}

func TestLoadLayers(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	agent := "agents:\n  - id: a@x\n    name: A\n    token: 0123456789abcdef\n    departments: [\"0\"]\n"
	cases := []struct {
		name    string
		file    string
		env     map[string]string
		check   func(*Config) bool
		wantErr string
	}{
		{"file overrides default", "server:\n  addr: 127.0.0.1:9999\n", nil,
			func(c *Config) bool { return c.Server.Addr == "127.0.0.1:9999" && c.Store.Path == "chatgate.db" }, ""},
		{"env overrides file", "server:\n  addr: 127.0.0.1:9999\n", map[string]string{"CHATGATE_ADDR": "127.0.0.1:1", "CHATGATE_V2_POLL_TIMEOUT": "5s"},
			func(c *Config) bool {
				return c.Server.Addr == "127.0.0.1:1" && c.LiveChat.V2.PollTimeout == 5*time.Second
			}, ""},
		{"agent token from env", agent, map[string]string{"CHATGATE_AGENT_0_TOKEN": "from-environment-123"},
			func(c *Config) bool { return c.Agents[0].Token == "from-environment-123" }, ""},
		{"agents entirely from env", "", map[string]string{
			"CHATGATE_AGENT_0_ID": "jane@example.com", "CHATGATE_AGENT_0_TOKEN": "jane-token-0123456789",
			"CHATGATE_AGENT_0_PASSWORD": "jane-password", "CHATGATE_AGENT_0_DEPARTMENTS": "0", "CHATGATE_AGENT_0_ADMIN": "true",
			"CHATGATE_AGENT_1_ID": "carl@example.com", "CHATGATE_AGENT_1_NAME": "Carl", "CHATGATE_AGENT_1_TOKEN": "carl-token-0123456789",
			"CHATGATE_AGENT_3_ID": "gap@example.com", // after a gap: not read
		}, func(c *Config) bool {
			return len(c.Agents) == 2 && c.Agents[0].ID == "jane@example.com" && c.Agents[0].Admin && c.Agents[0].Username == "jane" &&
				c.Agents[0].Name == "jane@example.com" && c.Agents[0].Password == "jane-password" && len(c.Agents[0].Departments) == 1 &&
				c.Agents[1].Name == "Carl" && !c.Agents[1].Admin
		}, ""},
		{"env agent admin not a bool", "", map[string]string{"CHATGATE_AGENT_0_ID": "a@x", "CHATGATE_AGENT_0_TOKEN": "0123456789abcdef",
			"CHATGATE_AGENT_0_ADMIN": "yes please"}, nil, "CHATGATE_AGENT_0_ADMIN"},
		{"env agent without token", "", map[string]string{"CHATGATE_AGENT_0_ID": "a@x"}, nil, "at least 16"},
		{"admin from file", "agents:\n  - {id: a@x, token: 0123456789abcdef, admin: true}\n", nil,
			func(c *Config) bool { return c.Agents[0].Admin }, ""},
		{"supervisor from file", "agents:\n  - {id: a@x, token: 0123456789abcdef, role: supervisor}\n", nil,
			func(c *Config) bool { return c.Agents[0].Role == RoleSupervisor && !c.Agents[0].Admin }, ""},
		{"supervisor from env", agent, map[string]string{"CHATGATE_AGENT_0_ROLE": "supervisor"},
			func(c *Config) bool { return c.Agents[0].Role == RoleSupervisor }, ""},
		{"unknown role", "agents:\n  - {id: a@x, token: 0123456789abcdef, role: boss}\n", nil, nil, "role \"boss\""},
		{"unknown field", "server:\n  adr: x\n", nil, nil, "adr"},
		{"bad duration env", "", map[string]string{"CHATGATE_SHUTDOWN_TIMEOUT": "soon"}, nil, "CHATGATE_SHUTDOWN_TIMEOUT"},
		{"short token", "agents:\n  - id: a@x\n    token: short\n", nil, nil, "at least 16"},
		{"duplicate agent", "agents:\n  - {id: a@x, token: 0123456789abcdef}\n  - {id: a@x, token: fedcba9876543210}\n", nil, nil, "repeated"},
		{"unknown department", "agents:\n  - {id: a@x, token: 0123456789abcdef, departments: [\"9\"]}\n", nil, nil, "unknown department"},
		{"bad routing status", "routing:\n  default_status: maybe\n", nil, nil, "default_status"},
		{"frame below text", "limits:\n  max_text_bytes: 100\n  max_frame_bytes: 50\n", nil, nil, "max_frame_bytes"},
		{"malformed yaml", "server: [", nil, nil, "config"},
		{"webhooks defaults", "", nil, func(c *Config) bool {
			w := c.Webhooks
			return w.Enabled && w.Timeout == 10*time.Second && w.MaxAttempts == 15 && w.MaxBackoff == 15*time.Minute &&
				w.MinBackoff == time.Second && w.MaxAge == 24*time.Hour && w.Concurrency == 4
		}, ""},
		{"webhooks max_backoff below min", "webhooks:\n  min_backoff: 1m\n  max_backoff: 1s\n", nil, nil, "max_backoff"},
		{"tls cert without key", "server:\n  tls_cert_file: c.pem\n", nil, nil, "tls_key_file"},
		{"tls key from env only", "", map[string]string{"CHATGATE_TLS_KEY_FILE": "k.pem"}, nil, "set together"},
		{"tls both from env", "", map[string]string{"CHATGATE_TLS_CERT_FILE": "c.pem", "CHATGATE_TLS_KEY_FILE": "k.pem"},
			func(c *Config) bool { return c.Server.TLSCertFile == "c.pem" && c.Server.TLSKeyFile == "k.pem" }, ""},
		{"webhooks zero attempts", "webhooks:\n  max_attempts: 0\n", nil, nil, "max_attempts"},
		{"webhooks disabled skips checks", "webhooks:\n  enabled: false\n  max_attempts: 0\n", nil,
			func(c *Config) bool { return !c.Webhooks.Enabled }, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := write(strings.ReplaceAll(tc.name, " ", "_")+".yaml", tc.file)
			c, err := Load(p, env(tc.env))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want it to mention %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tc.check(c) {
				t.Fatalf("config not as expected: %+v", c)
			}
		})
	}
	if _, err := Load(filepath.Join(dir, "missing.yaml"), env(nil)); err == nil {
		t.Fatal("missing file accepted")
	}
}
