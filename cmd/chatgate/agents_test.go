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
				if !strings.Contains(stderr.String(), string(creds.list[0].token)) {
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
	creds, err := newCredentials([]credential{
		{id: "ann@example.com", username: "ann", token: []byte("ann-token"), password: h, hashed: isBcrypt(string(h))},
		{id: "bob@example.com", username: "bob", token: []byte("bob-token"), password: []byte("bob-plain-pw")},
	})
	if err != nil {
		t.Fatal(err)
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

// TestPasswordCheckRunsOneHashWhoeverAsks: with a bcrypt hash configured,
// every password check runs exactly one bcrypt comparison, whether the
// user exists with a hash, exists with a plain password or does not exist
// at all (against a dummy hash of the configured cost), so that a wrong
// user name costs as long as a wrong password. Counted, not timed.
func TestPasswordCheckRunsOneHashWhoeverAsks(t *testing.T) {
	h, err := bcrypt.GenerateFromPassword([]byte("ann-secret-pw"), bcrypt.MinCost+1)
	if err != nil {
		t.Fatal(err)
	}
	list := []credential{
		{id: "ann@example.com", username: "ann", token: []byte("ann-token"), password: h, hashed: true},
		{id: "bob@example.com", username: "bob", token: []byte("bob-token"), password: []byte("bob-plain-pw")},
	}
	creds, err := newCredentials(list)
	if err != nil {
		t.Fatal(err)
	}
	if cost, err := bcrypt.Cost(creds.dummy); err != nil || cost != bcrypt.MinCost+1 {
		t.Fatalf("dummy hash cost = %d, %v; want the configured %d", cost, err, bcrypt.MinCost+1)
	}
	var hashed [][]byte
	creds.compareHash = func(hash, pw []byte) error {
		hashed = append(hashed, hash)
		return bcrypt.CompareHashAndPassword(hash, pw)
	}
	cases := []struct {
		name, user, pass string
		want             string
		dummy            bool // the comparison ran against the dummy hash
	}{
		{"unknown user", "nobody", "whatever", "", true},
		{"unknown user, a real password", "nobody", "ann-secret-pw", "", true},
		{"hashed user, wrong password", "ann", "wrong", "", false},
		{"hashed user, right password", "ann", "ann-secret-pw", "ann@example.com", false},
		{"plain user, wrong password", "bob", "wrong", "", true},
		{"plain user, right password", "bob", "bob-plain-pw", "bob@example.com", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			hashed = nil
			id, ok := creds.byPassword(tc.user, tc.pass)
			if string(id) != tc.want || ok != (tc.want != "") {
				t.Errorf("byPassword = %q, %v; want %q", id, ok, tc.want)
			}
			if len(hashed) != 1 {
				t.Fatalf("%d bcrypt comparisons, want exactly 1", len(hashed))
			}
			if got := string(hashed[0]) == string(creds.dummy); got != tc.dummy {
				t.Errorf("compared against the dummy hash: %v, want %v", got, tc.dummy)
			}
		})
	}
	// Without any hashed password there is no dummy and no bcrypt at all.
	plain, err := newCredentials(list[1:])
	if err != nil {
		t.Fatal(err)
	}
	plain.compareHash = func(hash, pw []byte) error { t.Error("bcrypt ran with no hashed password configured"); return nil }
	if _, ok := plain.byPassword("nobody", "x"); ok || plain.dummy != nil {
		t.Errorf("plain-only credentials: ok=%v dummy=%q", ok, plain.dummy)
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
