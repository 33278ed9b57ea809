package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"
	"golang.org/x/crypto/bcrypt"

	"chatgate/configs"
	"chatgate/store/bolt"
)

// TestDemoAgentOnlyOnLoopback: with no agents, the demo agent exists on
// loopback or with --demo; elsewhere one log line says that nobody can
// log in and how to fix it, and no secret is printed anywhere.
func TestDemoAgentOnlyOnLoopback(t *testing.T) {
	cases := []struct {
		addr      string
		demo      bool
		wantDemo  bool
		wantAdmin bool
	}{
		{"127.0.0.1:8080", false, true, true},
		{"[::1]:8080", false, true, true},
		{"localhost:8080", false, true, true},
		{"0.0.0.0:8080", false, false, false},
		{":8080", false, false, false},
		{"192.0.2.10:8080", false, false, false},
		{"0.0.0.0:8080", true, true, true},
	}
	for _, tc := range cases {
		t.Run(tc.addr, func(t *testing.T) {
			cfg, err := configs.Load("", func(string) string { return "" })
			if err != nil {
				t.Fatal(err)
			}
			cfg.Server.Addr = tc.addr
			st, err := bolt.Open(filepath.Join(t.TempDir(), "c.db"), bolt.Options{NoSync: true})
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			var stderr, logs bytes.Buffer
			agents, creds, err := agentsFromConfig(context.Background(), cfg, st, &stderr, tc.demo, zerolog.New(&logs))
			if err != nil {
				t.Fatal(err)
			}
			if got := len(agents) == 1; got != tc.wantDemo {
				t.Fatalf("demo agent %v, want %v (agents %v)", got, tc.wantDemo, agents)
			}
			if tc.wantDemo {
				if !agents[0].Admin {
					t.Error("the demo agent is not an admin (no operator view for the newcomer)")
				}
				if !strings.Contains(stderr.String(), string(creds[0].token)) {
					t.Error("demo token not printed to stderr")
				}
				return
			}
			if stderr.Len() != 0 {
				t.Errorf("printed %q", stderr.String())
			}
			line := logs.String()
			if strings.Count(line, "\n") != 1 || !strings.Contains(line, "no agent can log in") || !strings.Contains(line, "CHATGATE_AGENT_0_ID") ||
				!strings.Contains(line, "--demo") {
				t.Errorf("log %q", line)
			}
			if _, err := st.Meta(context.Background(), demoAgentTokenKey); err == nil {
				t.Error("a demo secret was generated anyway")
			}
		})
	}
}

// TestPasswordsBcrypt: a configured bcrypt hash is checked with bcrypt; a
// plain password still works; neither matches another agent's name.
func TestPasswordsBcrypt(t *testing.T) {
	h, err := bcrypt.GenerateFromPassword([]byte("ann-secret-pw"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	creds := credentials{
		{id: "ann@example.com", username: "ann", token: []byte("ann-token"), password: h, hashed: isBcrypt(string(h))},
		{id: "bob@example.com", username: "bob", token: []byte("bob-token"), password: []byte("bob-plain-pw")},
	}
	cases := []struct {
		user, pass string
		want       string
	}{
		{"ann", "ann-secret-pw", "ann@example.com"},
		{"ANN@example.com", "ann-secret-pw", "ann@example.com"},
		{"ann", string(h), ""}, // the hash itself is not the password
		{"bob", "bob-plain-pw", "bob@example.com"},
		{"bob", "ann-secret-pw", ""},
		{"ann", "bob-plain-pw", ""},
	}
	for _, tc := range cases {
		if id, ok := creds.byPassword(tc.user, tc.pass); string(id) != tc.want || ok != (tc.want != "") {
			t.Errorf("byPassword(%q, %q) = %q, %v; want %q", tc.user, tc.pass, id, ok, tc.want)
		}
	}
	if !isBcrypt(string(h)) || isBcrypt("$2-not-a-hash") || isBcrypt("plain") {
		t.Error("isBcrypt")
	}
	if tok, ok := creds.tokenOf("bob@example.com"); !ok || tok != "bob-token" {
		t.Errorf("tokenOf = %q, %v", tok, ok)
	}
}

// TestHelpExitsZero runs the binary's main with --help in a subprocess.
func TestHelpExitsZero(t *testing.T) {
	if os.Getenv("CHATGATE_TEST_MAIN_HELP") == "1" {
		os.Args = []string{"chatgate", "--help"}
		main()
		os.Exit(0)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelpExitsZero$")
	cmd.Env = append(os.Environ(), "CHATGATE_TEST_MAIN_HELP=1")
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		t.Fatalf("chatgate --help exited %d: %s", ee.ExitCode(), out)
	}
	if err != nil || !strings.Contains(string(out), "Usage: chatgate") || !strings.Contains(string(out), "-demo") {
		t.Fatalf("%v: %s", err, out)
	}
}
