package webhooks

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestPrivateAddresses: the ranges refused without
// webhooks.allow_private_networks.
func TestPrivateAddresses(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1": true, "::1": true, "10.0.0.1": true, "172.16.5.4": true, "192.168.1.1": true,
		"169.254.169.254": true, "fe80::1": true, "fd00:ec2::254": true, "100.64.0.1": true, "0.0.0.0": true,
		"::": true, "::ffff:127.0.0.1": true, "::ffff:10.0.0.1": true, "224.0.0.1": true, "255.255.255.255": true,
		"64:ff9b::a9fe:a9fe": true,
		"93.184.216.34":      false, "2606:2800:220:1:248:1893:25c8:1946": false, "8.8.8.8": false,
	} {
		if got := privateAddr(netip.MustParseAddr(addr)); got != want {
			t.Errorf("privateAddr(%s) = %v, want %v", addr, got, want)
		}
	}
}

// TestDialGuard: the delivery client refuses to connect to a loopback
// address (the check runs on the dialled address, so names resolving there
// are refused the same way) unless private networks are allowed.
func TestDialGuard(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(204) }))
	defer srv.Close()
	for _, allow := range []bool{false, true} {
		c, err := newClient(allow, "")
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range []string{srv.URL, strings.Replace(srv.URL, "127.0.0.1", "localhost", 1)} {
			resp, err := c.Post(u, "application/json", strings.NewReader("{}"))
			if resp != nil {
				resp.Body.Close()
			}
			if allow && err != nil {
				t.Errorf("allowed: %s: %v", u, err)
			}
			if !allow && !errors.Is(err, errBlockedAddress) {
				t.Errorf("not allowed: %s: want errBlockedAddress, got %v", u, err)
			}
		}
	}
}

// syncBuf is a log sink safe for the worker's goroutines.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// TestFailedAttemptLogged: every failed attempt is one warn line with the
// receiver, the error, the attempt, the next retry and the webhook id, and
// never the secret (issue 11 item 4).
func TestFailedAttemptLogged(t *testing.T) {
	clk := newClock()
	logs := &syncBuf{}
	g := newGateway(t, gwOptions{clock: clk, log: logs, cfg: Config{MaxAttempts: 5, MinBackoff: time.Second,
		Rand: func() float64 { return 1 }}})
	rc := newReceiver(t, always(http.StatusBadGateway))
	hook := g.register(IncomingEvent, rc.srv.URL+"/hook?token=q-secret", nil)
	v := g.visitor("vera")
	c := g.start(v, "hi")
	g.post(c.ID, vAuthor(v), "first")
	g.deliverDue()
	clk.Advance(time.Second)
	g.deliverDue()

	var lines []map[string]any
	sc := bufio.NewScanner(strings.NewReader(logs.String()))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("log line not JSON: %s", sc.Bytes())
		}
		if m["message"] == "webhook delivery failed" {
			lines = append(lines, m)
		}
	}
	if len(lines) != 2 {
		t.Fatalf("want 2 failed-attempt lines, got %d:\n%s", len(lines), logs)
	}
	for i, m := range lines {
		if m["level"] != "warn" || m["webhook_id"] != hook || m["error"] != "HTTP 502" || m["attempt"] != float64(i+1) ||
			m["next_retry"] == nil || m["receiver"] != rc.srv.URL+"/hook" {
			t.Errorf("line %d: %v", i, m)
		}
	}
	if s := logs.String(); strings.Contains(s, secretKey) || strings.Contains(s, "q-secret") {
		t.Errorf("log shows a secret:\n%s", s)
	}
}
