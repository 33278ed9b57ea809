package mail

import (
	"context"
	"io"
	"net/mail"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"chatgate/core/mail/mailtest"
	"chatgate/store"
	"chatgate/store/bolt"
)

func openStore(t *testing.T) store.Store {
	t.Helper()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "mail.db"), bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func TestConfigValidate(t *testing.T) {
	ok := Config{Host: "127.0.0.1", Port: 25, From: "desk@example.com", TLS: TLSNone}
	for _, tc := range []struct {
		name string
		mod  func(*Config)
		bad  bool
	}{
		{"ok", func(*Config) {}, false},
		{"no host", func(c *Config) { c.Host = "" }, true},
		{"bad port", func(c *Config) { c.Port = 0 }, true},
		{"bad tls", func(c *Config) { c.TLS = "ssl" }, true},
		{"user without password", func(c *Config) { c.Username = "u" }, true},
		{"bad from", func(c *Config) { c.From = "not an address" }, true},
		{"starttls", func(c *Config) { c.TLS = TLSStartTLS }, false},
		{"tls", func(c *Config) { c.TLS = TLSImplicit }, false},
	} {
		c := ok
		tc.mod(&c)
		if err := c.Validate(); (err != nil) != tc.bad {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
}

// TestSenderDelivers: a committed row reaches a real SMTP server (AUTH
// PLAIN), with the text and HTML parts, and leaves the outbox; a row the
// server refuses for a while (451) is retried until accepted.
func TestSenderDelivers(t *testing.T) {
	srv := mailtest.Start(t, "desk", "s3cret-pw")
	st := openStore(t)
	now := time.Now()
	s, err := NewSender(st, Config{Host: srv.Host, Port: srv.Port, Username: "desk", Password: "s3cret-pw",
		From: "Desk <desk@example.com>", TLS: TLSNone, MinBackoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond,
		PollInterval: 5 * time.Millisecond, Timeout: 10 * time.Second}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	srv.FailNext(2)
	r, err := Row("01DELIVERY", "transcript", "conv-1", Message{To: []string{"ann@example.com"}, Subject: "Your chat",
		Text: "Ann: hello\nAmy: hi there", HTML: "<p>Ann: hello</p>"}, now)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Commit(context.Background(), &store.Batch{Outbox: []store.OutboxRow{r}}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	s.Kick()
	got := srv.Wait(t, 1, 10*time.Second)
	cancel()
	<-done
	if got.From != "desk@example.com" || len(got.To) != 1 || got.To[0] != "ann@example.com" {
		t.Errorf("envelope %q -> %v", got.From, got.To)
	}
	msg, err := mail.ReadMessage(strings.NewReader(string(got.Data)))
	if err != nil {
		t.Fatal(err)
	}
	if msg.Header.Get("Subject") != "Your chat" || msg.Header.Get("Message-Id") != "<01DELIVERY@chatgate>" {
		t.Errorf("headers %v", msg.Header)
	}
	body, _ := io.ReadAll(msg.Body)
	if !strings.Contains(string(body), "Amy: hi there") || !strings.Contains(string(body), "text/html") {
		t.Errorf("body %s", body)
	}
	if n := len(srv.Mails()); n != 1 {
		t.Errorf("%d mails, want 1", n)
	}
	due, err := st.OutboxDue(context.Background(), TargetPrefix, time.Now().Add(time.Hour), 0, 0)
	if err != nil || len(due) != 0 {
		t.Errorf("outbox after delivery: %v %v", due, err)
	}
}

// TestSenderGivesUp: wrong credentials are retried, then the row is given
// up and kept (store.OutboxExhausted), never lost.
func TestSenderGivesUp(t *testing.T) {
	srv := mailtest.Start(t, "desk", "right-password")
	st := openStore(t)
	s, err := NewSender(st, Config{Host: srv.Host, Port: srv.Port, Username: "desk", Password: "wrong-password",
		From: "desk@example.com", TLS: TLSNone, MaxAttempts: 2, MinBackoff: time.Millisecond, MaxBackoff: time.Millisecond,
		PollInterval: 5 * time.Millisecond}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	r, _ := Row("02GIVEUP", "offline", "conv-2", Message{To: []string{"desk@example.com"}, Subject: "s", Text: "t"}, time.Now())
	if err := st.Commit(context.Background(), &store.Batch{Outbox: []store.OutboxRow{r}}); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		due, err := st.OutboxDue(context.Background(), TargetPrefix, time.Now().Add(time.Hour), 0, 0)
		if err != nil || len(due) != 1 {
			t.Fatalf("due %v %v", due, err)
		}
		s.deliverQueue(context.Background(), due)
	}
	dead, err := st.OutboxExhausted(context.Background(), TargetPrefix+"offline", 10)
	if err != nil || len(dead) != 1 || dead[0].Attempts != 2 || !strings.Contains(dead[0].LastError, "535") && !strings.Contains(strings.ToLower(dead[0].LastError), "auth") {
		t.Errorf("exhausted %+v %v", dead, err)
	}
	if strings.Contains(dead[0].LastError, "wrong-password") {
		t.Errorf("the password is in the recorded error: %s", dead[0].LastError)
	}
	// The operator view's listings.
	if x, err := Exhausted(context.Background(), st, 10); err != nil || len(x) != 1 || x[0].Kind != "offline" || x[0].Attempts != 2 {
		t.Errorf("Exhausted %+v %v", x, err)
	}
	if p, err := Pending(context.Background(), st, 10); err != nil || len(p) != 0 {
		t.Errorf("Pending %+v %v", p, err)
	}
	if len(srv.Mails()) != 0 {
		t.Errorf("mail accepted with wrong credentials")
	}
}

func TestRowRefusesBadRecipients(t *testing.T) {
	for _, to := range [][]string{nil, {"not an address"}} {
		if _, err := Row("x", "k", "c", Message{To: to}, time.Now()); err == nil {
			t.Errorf("Row(%v) accepted", to)
		}
	}
}
