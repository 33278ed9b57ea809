package main

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"

	"github.com/rs/zerolog"
	"golang.org/x/crypto/bcrypt"

	"chatgate/configs"
	"chatgate/core/model"
	"chatgate/store"
)

const (
	demoAgentID          = "demo@chatgate.local"
	demoAgentUsername    = "demo"
	demoAgentTokenKey    = "demo_agent_token"
	demoAgentPasswordKey = "demo_agent_password"
)

// credential is one agent's secrets. A password configured as a bcrypt
// hash ($2a$, $2b$, $2y$) is checked with bcrypt; any other value is the
// password itself, compared in constant time.
type credential struct {
	id       model.AgentID
	username string
	token    []byte
	password []byte
	hashed   bool
}

// isBcrypt reports whether a configured password is a bcrypt hash.
func isBcrypt(p string) bool {
	if !strings.HasPrefix(p, "$2") {
		return false
	}
	_, err := bcrypt.Cost([]byte(p))
	return err == nil
}

// plainOK compares a plain configured password in constant time.
func (c *credential) plainOK(password string) bool {
	return !c.hashed && len(c.password) > 0 && subtle.ConstantTimeCompare(c.password, []byte(password)) == 1
}

// credentials authenticates agents by bearer token (LiveChat RTM) or by
// username-or-id and password (Rocket.Chat login, the console). Every
// comparison runs against every agent in constant time, so timing tells
// nothing about which secret or prefix matched; and when any password is a
// bcrypt hash, every password check runs exactly one bcrypt comparison
// (the named agent's hash, or a dummy hash of the same cost for an unknown
// user or one with a plain password), so that a wrong user name does not
// answer faster than a wrong password.
type credentials struct {
	list []credential
	// dummy is a bcrypt hash of a random secret at the highest cost
	// configured; nil when no password is hashed.
	dummy []byte
	// compareHash is bcrypt.CompareHashAndPassword (tests count calls).
	compareHash func(hash, password []byte) error
}

// newCredentials prepares the dummy hash the password check compares
// against when no hashed password belongs to the named user.
func newCredentials(list []credential) (credentials, error) {
	cs := credentials{list: list, compareHash: bcrypt.CompareHashAndPassword}
	cost := 0
	for _, c := range list {
		if !c.hashed {
			continue
		}
		if n, err := bcrypt.Cost(c.password); err == nil && n > cost {
			cost = n
		}
	}
	if cost == 0 {
		return cs, nil
	}
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return cs, fmt.Errorf("dummy password: %w", err)
	}
	h, err := bcrypt.GenerateFromPassword([]byte(hex.EncodeToString(secret)), cost)
	if err != nil {
		return cs, fmt.Errorf("dummy password hash: %w", err)
	}
	cs.dummy = h
	return cs, nil
}

func (cs credentials) byToken(token string) (model.AgentID, bool) {
	var found model.AgentID
	for _, c := range cs.list {
		if subtle.ConstantTimeCompare(c.token, []byte(token)) == 1 {
			found = c.id
		}
	}
	return found, found != ""
}

func (cs credentials) byPassword(user, password string) (model.AgentID, bool) {
	var found model.AgentID
	var hash []byte // the one bcrypt hash this check compares against
	var hashOwner model.AgentID
	for i := range cs.list {
		c := &cs.list[i]
		nameOK := strings.EqualFold(user, c.username) || strings.EqualFold(user, string(c.id))
		if c.hashed {
			// A bcrypt check costs tens of milliseconds: only the named
			// agent's hash is checked, once, below.
			if nameOK && hash == nil {
				hash, hashOwner = c.password, c.id
			}
			continue
		}
		if passOK := c.plainOK(password); nameOK && passOK {
			found = c.id
		}
	}
	if hash == nil {
		hash = cs.dummy
	}
	if hash != nil {
		compare := cs.compareHash
		if compare == nil {
			compare = bcrypt.CompareHashAndPassword
		}
		if compare(hash, []byte(password)) == nil && hashOwner != "" {
			found = hashOwner
		}
	}
	return found, found != ""
}

// tokenOf returns an agent's bearer token: the console's password login
// hands it to the browser, which then logs in to the agent RTM with it.
func (cs credentials) tokenOf(id model.AgentID) (string, bool) {
	for _, c := range cs.list {
		if c.id == id {
			return string(c.token), true
		}
	}
	return "", false
}

// loopback reports whether addr (host:port) listens on loopback only.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// agentsFromConfig returns the configured agents, or the demo agent when
// none is configured and chatgate listens on loopback only (or demo is
// set: --demo). The demo agent's secrets are generated once, kept in the
// store (so restarts keep them) and printed to stderr, not to the log.
// With no agent and no demo agent it says so in one log line, with no
// secret in it.
func agentsFromConfig(ctx context.Context, cfg *configs.Config, st store.Store, stderr io.Writer, demo bool, log zerolog.Logger) ([]model.Agent, credentials, error) {
	var agents []model.Agent
	var list []credential
	for _, a := range cfg.Agents {
		depts := make([]model.DeptID, 0, len(a.Departments))
		for _, d := range a.Departments {
			depts = append(depts, model.DeptID(d))
		}
		agents = append(agents, model.Agent{ID: model.AgentID(a.ID), Username: a.Username, Name: a.Name,
			JobTitle: a.JobTitle, Avatar: a.Avatar, Departments: depts, MaxChats: a.MaxChats, Admin: a.Admin,
			Supervisor: a.Role == configs.RoleSupervisor})
		list = append(list, credential{id: model.AgentID(a.ID), username: a.Username, token: []byte(a.Token),
			password: []byte(a.Password), hashed: isBcrypt(a.Password)})
	}
	if len(agents) > 0 {
		creds, err := newCredentials(list)
		return agents, creds, err
	}
	if !demo && !loopback(cfg.Server.Addr) {
		log.Warn().Str("addr", cfg.Server.Addr).Msg("no agents configured and not on loopback, so no demo agent: no agent can log in. " +
			"Add agents under agents: in the config file or with CHATGATE_AGENT_0_ID and CHATGATE_AGENT_0_TOKEN (see docs/console.md), or start with --demo")
		return nil, credentials{}, nil
	}
	tok, err := demoSecret(ctx, st, demoAgentTokenKey)
	if err != nil {
		return nil, credentials{}, err
	}
	pass, err := demoSecret(ctx, st, demoAgentPasswordKey)
	if err != nil {
		return nil, credentials{}, err
	}
	// The demo agent is the only one, so it administers too.
	agents = []model.Agent{{ID: demoAgentID, Username: demoAgentUsername, Name: "Demo Agent", JobTitle: "Support Agent", Admin: true}}
	creds := credentials{list: []credential{{id: demoAgentID, username: demoAgentUsername, token: tok, password: pass}}}
	fmt.Fprintf(stderr, "\nchatgate demo agent (no agents configured):\n  id:       %s\n  username: %s\n  token:    %s\n  password: %s\n"+
		"  Open http://%s/ (console: /console, log in as %s with the password above)\n"+
		"  LiveChat agent RTM: ws://%s/v3.5/agent/rtm/ws  then {\"action\":\"login\",\"payload\":{\"token\":\"Bearer <token>\"}}\n"+
		"  Rocket.Chat agent login: POST http://%s/api/v1/login {\"user\":\"%s\",\"password\":\"<password>\"}\n"+
		"  LiveChat v2 visitor licence_id: %s\n\n",
		demoAgentID, demoAgentUsername, tok, pass, cfg.Server.Addr, demoAgentUsername, cfg.Server.Addr, cfg.Server.Addr, demoAgentUsername, cfg.License.ID)
	return agents, creds, nil
}

// demoSecret returns the named secret from the store, generating and
// committing it the first time. Several nodes may start on one empty
// database at once: the secret is bound as a mapping, which never rebinds,
// so that a node that loses the race reads the winner's and every node
// agrees. (Data files of earlier versions keep theirs in meta.)
func demoSecret(ctx context.Context, st store.Store, key string) ([]byte, error) {
	v, err := st.Meta(ctx, key)
	if err == nil {
		return v, nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("demo agent secret: %w", err)
	}
	mk := store.MapKey{System: "chatgate", Kind: "secret", Foreign: key}
	for range 2 {
		got, err := st.Resolve(ctx, mk)
		if err == nil {
			return []byte(got), nil
		}
		if !errors.Is(err, store.ErrNotFound) {
			return nil, fmt.Errorf("demo agent secret: %w", err)
		}
		s, err := model.Secret(24)
		if err != nil {
			return nil, err
		}
		err = st.Commit(ctx, &store.Batch{Maps: []store.Mapping{{MapKey: mk, Core: s}}})
		if err == nil {
			return []byte(s), nil
		}
		if !errors.Is(err, store.ErrConflict) {
			return nil, fmt.Errorf("demo agent secret: %w", err)
		}
		// Another node bound it first: read theirs.
	}
	return nil, fmt.Errorf("demo agent secret: %w", store.ErrConflict)
}
