package main

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"strings"

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

// credential is one agent's secrets.
type credential struct {
	id       model.AgentID
	username string
	token    []byte
	password []byte
}

// credentials authenticates agents by bearer token (LiveChat RTM) or by
// username-or-id and password (Rocket.Chat login). Every comparison runs
// against every agent in constant time, so timing tells nothing about
// which secret or prefix matched.
type credentials []credential

func (cs credentials) byToken(token string) (model.AgentID, bool) {
	var found model.AgentID
	for _, c := range cs {
		if subtle.ConstantTimeCompare(c.token, []byte(token)) == 1 {
			found = c.id
		}
	}
	return found, found != ""
}

func (cs credentials) byPassword(user, password string) (model.AgentID, bool) {
	var found model.AgentID
	for _, c := range cs {
		nameOK := strings.EqualFold(user, c.username) || strings.EqualFold(user, string(c.id))
		passOK := len(c.password) > 0 && subtle.ConstantTimeCompare(c.password, []byte(password)) == 1
		if nameOK && passOK {
			found = c.id
		}
	}
	return found, found != ""
}

// agentsFromConfig returns the configured agents, or the demo agent when
// none is configured. The demo agent's secrets are generated once, kept in
// the store (so restarts keep them) and printed to stderr, not to the log.
func agentsFromConfig(ctx context.Context, cfg *configs.Config, st store.Store, stderr io.Writer) ([]model.Agent, credentials, error) {
	var agents []model.Agent
	var creds credentials
	for _, a := range cfg.Agents {
		depts := make([]model.DeptID, 0, len(a.Departments))
		for _, d := range a.Departments {
			depts = append(depts, model.DeptID(d))
		}
		agents = append(agents, model.Agent{ID: model.AgentID(a.ID), Username: a.Username, Name: a.Name,
			JobTitle: a.JobTitle, Avatar: a.Avatar, Departments: depts, MaxChats: a.MaxChats, Admin: a.Admin})
		creds = append(creds, credential{id: model.AgentID(a.ID), username: a.Username, token: []byte(a.Token), password: []byte(a.Password)})
	}
	if len(agents) > 0 {
		return agents, creds, nil
	}
	tok, err := demoSecret(ctx, st, demoAgentTokenKey)
	if err != nil {
		return nil, nil, err
	}
	pass, err := demoSecret(ctx, st, demoAgentPasswordKey)
	if err != nil {
		return nil, nil, err
	}
	// The demo agent is the only one, so it administers too.
	agents = []model.Agent{{ID: demoAgentID, Username: demoAgentUsername, Name: "Demo Agent", JobTitle: "Support Agent", Admin: true}}
	creds = credentials{{id: demoAgentID, username: demoAgentUsername, token: tok, password: pass}}
	fmt.Fprintf(stderr, "\nchatgate demo agent (no agents configured):\n  id:       %s\n  username: %s\n  token:    %s\n  password: %s\n"+
		"  LiveChat agent RTM: ws://%s/v3.5/agent/rtm/ws  then {\"action\":\"login\",\"payload\":{\"token\":\"Bearer <token>\"}}\n"+
		"  Rocket.Chat agent login: POST http://%s/api/v1/login {\"user\":\"%s\",\"password\":\"<password>\"}\n"+
		"  LiveChat v2 visitor licence_id: %s\n\n",
		demoAgentID, demoAgentUsername, tok, pass, cfg.Server.Addr, cfg.Server.Addr, demoAgentUsername, cfg.License.ID)
	return agents, creds, nil
}

// demoSecret returns the named secret from the store, generating and
// committing it the first time.
func demoSecret(ctx context.Context, st store.Store, key string) ([]byte, error) {
	v, err := st.Meta(ctx, key)
	if errors.Is(err, store.ErrNotFound) {
		s, serr := model.Secret(24)
		if serr != nil {
			return nil, serr
		}
		v = []byte(s)
		err = st.Commit(ctx, &store.Batch{Meta: map[string][]byte{key: v}})
	}
	if err != nil {
		return nil, fmt.Errorf("demo agent secret: %w", err)
	}
	return v, nil
}
