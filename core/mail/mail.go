// Package mail sends e-mail that chatgate owes (Rocket.Chat transcripts,
// offline messages) through an SMTP server, out of the store's durable
// outbox: a request that owes an e-mail commits its outbox row (Row)
// before it is acknowledged, and the Sender delivers the rows, retrying
// with backoff across restarts, until the server accepts the message or
// the row is given up on (kept, listed by store.OutboxExhausted).
//
// SMTP is spoken by github.com/wneessen/go-mail (v0.8.1: v0.8.2 needs a
// newer Go), which handles MIME, STARTTLS/implicit TLS and SMTP AUTH.
package mail

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/mail"
	"strings"
	"time"

	"github.com/rs/zerolog"
	gomail "github.com/wneessen/go-mail"

	"chatgate/core/model"
	"chatgate/core/outbox"
	"chatgate/store"
)

// TargetPrefix starts the outbox Target of every e-mail row.
const TargetPrefix = "mail:"

// TLS modes of Config.TLS.
const (
	TLSNone     = "none"     // plain SMTP (a relay on the same host)
	TLSStartTLS = "starttls" // STARTTLS required
	TLSImplicit = "tls"      // implicit TLS (SMTPS, usually port 465)
)

// Config is the SMTP server and the delivery policy.
type Config struct {
	Host     string
	Port     int
	Username string
	Password string // never logged
	// From is the sender address of every message.
	From string
	TLS  string
	// TLSConfig, if set, replaces the default (tests trust their own CA).
	TLSConfig *tls.Config
	// Timeout bounds one attempt (dial to QUIT).
	Timeout time.Duration
	// MaxAttempts failed attempts give a row up; backoff between attempts
	// doubles from MinBackoff up to MaxBackoff (with jitter).
	MaxAttempts            int
	MinBackoff, MaxBackoff time.Duration
	// PollInterval is how often due retries are looked for.
	PollInterval time.Duration
	Now          func() time.Time
}

// Validate checks a configuration that is meant to send.
func (c *Config) Validate() error {
	switch {
	case c.Host == "":
		return errors.New("smtp.host is empty")
	case c.Port <= 0 || c.Port > 65535:
		return errors.New("smtp.port must be 1..65535")
	case c.TLS != TLSNone && c.TLS != TLSStartTLS && c.TLS != TLSImplicit:
		return fmt.Errorf("smtp.tls must be none, starttls or tls, not %q", c.TLS)
	case (c.Username == "") != (c.Password == ""):
		return errors.New("smtp.username and smtp.password go together")
	}
	if _, err := mail.ParseAddress(c.From); err != nil {
		return fmt.Errorf("smtp.from: %w", err)
	}
	return nil
}

func (c *Config) defaults() {
	if c.Timeout <= 0 {
		c.Timeout = 30 * time.Second
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 10
	}
	if c.MinBackoff <= 0 {
		c.MinBackoff = 30 * time.Second
	}
	if c.MaxBackoff < c.MinBackoff {
		c.MaxBackoff = max(c.MinBackoff, time.Hour)
	}
	if c.PollInterval <= 0 {
		c.PollInterval = 5 * time.Second
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Message is one e-mail, as an outbox row carries it.
type Message struct {
	To      []string `json:"to"`
	ReplyTo string   `json:"reply_to,omitempty"`
	Subject string   `json:"subject"`
	Text    string   `json:"text"`
	HTML    string   `json:"html,omitempty"`
}

// Row is the outbox row that owes m: kind names what it is ("transcript",
// "offline"), id the delivery (it becomes the Message-ID, so a server
// that got a message twice after a lost answer sees the same id).
func Row(id, kind string, conv model.ConvID, m Message, now time.Time) (store.OutboxRow, error) {
	if len(m.To) == 0 {
		return store.OutboxRow{}, errors.New("mail: no recipient")
	}
	for _, to := range m.To {
		if _, err := mail.ParseAddress(to); err != nil {
			return store.OutboxRow{}, fmt.Errorf("mail: recipient %q: %w", to, err)
		}
	}
	b, err := json.Marshal(m)
	if err != nil {
		return store.OutboxRow{}, err
	}
	return store.OutboxRow{ID: id, Target: TargetPrefix + kind, Conv: conv, Payload: b, CreatedAt: now.UTC()}, nil
}

// Sender delivers the e-mail rows of the outbox.
type Sender struct {
	st   store.Store
	cfg  Config
	log  zerolog.Logger
	kick chan struct{}
}

// NewSender returns a Sender; cfg must Validate.
func NewSender(st store.Store, cfg Config, log zerolog.Logger) (*Sender, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.defaults()
	return &Sender{st: st, cfg: cfg, log: log.With().Str("component", "mail").Logger(), kick: make(chan struct{}, 1)}, nil
}

// Kick makes the Sender look for due rows now (a row was committed).
func (s *Sender) Kick() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// Run delivers until ctx ends; attempts in flight finish and are recorded.
func (s *Sender) Run(ctx context.Context) error {
	outbox.Dispatcher{Store: s.st, Prefix: TargetPrefix, Concurrency: 2, PerQueue: 16,
		PollInterval: s.cfg.PollInterval, Now: s.cfg.Now, Kick: s.kick, Deliver: s.deliverQueue,
		OnReadError: func(err error) { s.log.Warn().Err(err).Msg("mail: read due rows") },
	}.Run(ctx)
	return nil
}

// deliverQueue sends one queue's rows in order until one is not done.
func (s *Sender) deliverQueue(ctx context.Context, rows []store.OutboxRow) {
	for _, r := range rows {
		if ctx.Err() != nil || !s.deliver(ctx, r) {
			return
		}
	}
}

// deliver makes one attempt at r and records its outcome; it reports
// whether the queue may go on.
func (s *Sender) deliver(ctx context.Context, r store.OutboxRow) bool {
	var m Message
	if err := json.Unmarshal(r.Payload, &m); err != nil {
		return s.exhaust(ctx, r, "outbox row is not an e-mail")
	}
	// Started attempts finish even when shutdown begins (as webhooks).
	wctx := context.WithoutCancel(ctx)
	err := s.send(wctx, r.ID, m)
	if err == nil {
		if err := s.st.OutboxDelivered(wctx, r); err != nil {
			s.log.Warn().Err(err).Str("delivery", r.ID).Msg("mail: sent but not recorded; it will be sent again")
			return false
		}
		s.log.Info().Str("delivery", r.ID).Str("kind", r.Target).Int("recipients", len(m.To)).Msg("mail sent")
		return true
	}
	r.Attempts++
	r.LastError = clip(err.Error())
	var se *gomail.SendError
	permanent := errors.As(err, &se) && !se.IsTemp() && se.Reason == gomail.ErrSMTPRcptTo
	if permanent || r.Attempts >= s.cfg.MaxAttempts {
		return s.exhaust(ctx, r, r.LastError)
	}
	r.NextAt = s.cfg.Now().UTC().Add(s.backoff(r.Attempts))
	if err := s.st.OutboxRetry(wctx, r); err != nil {
		s.log.Warn().Err(err).Str("delivery", r.ID).Msg("mail: record failed attempt")
		return false
	}
	s.log.Warn().Str("delivery", r.ID).Int("attempts", r.Attempts).Time("next", r.NextAt).Str("error", r.LastError).Msg("mail: attempt failed")
	return false
}

// exhaust gives r up, keeping it (store.OutboxExhausted lists it).
func (s *Sender) exhaust(ctx context.Context, r store.OutboxRow, reason string) bool {
	r.LastError = clip(reason)
	r.NextAt = s.cfg.Now().UTC()
	if err := s.st.OutboxExhaust(context.WithoutCancel(ctx), r); err != nil {
		s.log.Warn().Err(err).Str("delivery", r.ID).Msg("mail: record given-up row")
		return false
	}
	s.log.Error().Str("delivery", r.ID).Str("kind", r.Target).Int("attempts", r.Attempts).Str("error", r.LastError).Msg("mail: given up")
	return true
}

func (s *Sender) backoff(n int) time.Duration {
	d := s.cfg.MinBackoff
	for i := 1; i < n && d < s.cfg.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, s.cfg.MaxBackoff)
	return d/2 + time.Duration(rand.Float64()*float64(d-d/2))
}

// send makes one SMTP transaction.
func (s *Sender) send(ctx context.Context, id string, m Message) error {
	msg := gomail.NewMsg()
	if err := msg.From(s.cfg.From); err != nil {
		return fmt.Errorf("from: %w", err)
	}
	if err := msg.To(m.To...); err != nil {
		return fmt.Errorf("to: %w", err)
	}
	if m.ReplyTo != "" {
		if err := msg.ReplyTo(m.ReplyTo); err != nil {
			return fmt.Errorf("reply-to: %w", err)
		}
	}
	msg.Subject(m.Subject)
	msg.SetMessageIDWithValue(id + "@chatgate")
	msg.SetDate()
	msg.SetBodyString(gomail.TypeTextPlain, m.Text)
	if m.HTML != "" {
		msg.AddAlternativeString(gomail.TypeTextHTML, m.HTML)
	}
	opts := []gomail.Option{gomail.WithPort(s.cfg.Port), gomail.WithTimeout(s.cfg.Timeout)}
	switch s.cfg.TLS {
	case TLSNone:
		opts = append(opts, gomail.WithTLSPolicy(gomail.NoTLS))
	case TLSStartTLS:
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
	case TLSImplicit:
		opts = append(opts, gomail.WithSSL())
	}
	if s.cfg.TLSConfig != nil {
		opts = append(opts, gomail.WithTLSConfig(s.cfg.TLSConfig))
	}
	if s.cfg.Username != "" {
		opts = append(opts, gomail.WithSMTPAuth(gomail.SMTPAuthPlain), gomail.WithUsername(s.cfg.Username), gomail.WithPassword(s.cfg.Password))
	}
	c, err := gomail.NewClient(s.cfg.Host, opts...)
	if err != nil {
		return fmt.Errorf("smtp client: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	if err := c.DialAndSendWithContext(ctx, msg); err != nil {
		return fmt.Errorf("smtp %s:%d: %w", s.cfg.Host, s.cfg.Port, err)
	}
	return nil
}

// Status is one e-mail row as operators see it: no recipient or content.
type Status struct {
	ID        string    `json:"id"`
	Kind      string    `json:"kind"`
	Attempts  int       `json:"attempts"`
	NextAt    time.Time `json:"next_at"` // the next attempt, or when it was given up
	LastError string    `json:"last_error,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

// Kinds of e-mail rows (Row's kind), for listings.
var Kinds = []string{"transcript", "offline"}

// Pending lists up to limit e-mail rows waiting for delivery (due or
// retrying), and Exhausted those given up, newest last.
func Pending(ctx context.Context, st store.Store, limit int) ([]Status, error) {
	rows, err := st.OutboxDue(ctx, TargetPrefix, time.Now().Add(100*365*24*time.Hour), limit, 0)
	if err != nil {
		return nil, err
	}
	return statuses(rows, limit), nil
}

// Exhausted lists up to limit given-up e-mail rows of every kind.
func Exhausted(ctx context.Context, st store.Store, limit int) ([]Status, error) {
	var all []store.OutboxRow
	for _, k := range Kinds {
		rows, err := st.OutboxExhausted(ctx, TargetPrefix+k, limit)
		if err != nil {
			return nil, err
		}
		all = append(all, rows...)
	}
	return statuses(all, limit), nil
}

func statuses(rows []store.OutboxRow, limit int) []Status {
	out := []Status{}
	for _, r := range rows {
		if limit > 0 && len(out) == limit {
			break
		}
		out = append(out, Status{ID: r.ID, Kind: strings.TrimPrefix(r.Target, TargetPrefix), Attempts: r.Attempts,
			NextAt: r.NextAt, LastError: r.LastError, CreatedAt: r.CreatedAt})
	}
	return out
}

func clip(s string) string {
	if len(s) > 512 {
		return s[:512]
	}
	return s
}
