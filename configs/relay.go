package configs

import (
	"fmt"
	"net/url"
	"strconv"
	"time"
)

// Relay configures relaying conversations into external agent desks
// (core/relay): the connectors and which departments they serve.
type Relay struct {
	// MinBackoff and MaxBackoff bound the wait between attempts of a
	// delivery the upstream desk did not take; deliveries are retried
	// until taken (or refused for good), never dropped.
	MinBackoff time.Duration `yaml:"min_backoff"`
	MaxBackoff time.Duration `yaml:"max_backoff"`
	// Concurrency is how many conversations of one connector are
	// delivered at once.
	Concurrency int              `yaml:"concurrency"`
	Connectors  []RelayConnector `yaml:"connectors"`
	Routes      []RelayRoute     `yaml:"routes"`
}

// RelayConnector is one external desk chatgate is the visitor of.
type RelayConnector struct {
	// Name is what routes call it (letters, digits, '-', '_', '.').
	Name string `yaml:"name"`
	// Kind is rocketchat or livechat.
	Kind string `yaml:"kind"`
	// URL is the desk's base URL: a Rocket.Chat server, or the LiveChat
	// Customer Chat API host (https://api.livechatinc.com).
	URL string `yaml:"url"`
	// Department is the upstream department (Rocket.Chat department id,
	// LiveChat group id) new conversations go to; "" lets the desk route.
	Department string `yaml:"department"`
	// Timeout bounds one call to the desk.
	Timeout time.Duration `yaml:"timeout"`
	// CAFile, if set, is a PEM file of the certificate authorities the
	// desk's TLS certificate is checked against (a private desk).
	CAFile string `yaml:"ca_file"`
	// LiveChat only: OrganizationID of the licence, TokenURL of the
	// customer token endpoint (https://accounts.livechat.com/v2/customer/token)
	// and AgentToken, the agent or personal access token used with the
	// agent_token grant to get each visitor a customer token; keep it
	// secret or set it through CHATGATE_RELAY_<N>_AGENT_TOKEN. APIVersion
	// defaults to 3.5.
	OrganizationID string `yaml:"organization_id"`
	TokenURL       string `yaml:"token_url"`
	AgentToken     string `yaml:"agent_token"`
	ClientID       string `yaml:"client_id"`
	APIVersion     string `yaml:"api_version"`
}

// RelayRoute says who serves a department's new conversations.
type RelayRoute struct {
	// Department is a configured department id; "" is the default route
	// for departments without their own (and conversations without one).
	Department string `yaml:"department"`
	// Upstream is the connector that serves them; "" keeps them on the
	// embedded desk (useful with mirrors).
	Upstream string `yaml:"upstream"`
	// Mirrors get a read-only copy (shadow mode).
	Mirrors []string `yaml:"mirrors"`
}

func (r *Relay) applyEnv(str func(string, *string)) {
	for i := range r.Connectors {
		str("CHATGATE_RELAY_"+strconv.Itoa(i)+"_AGENT_TOKEN", &r.Connectors[i].AgentToken)
		if r.Connectors[i].APIVersion == "" {
			r.Connectors[i].APIVersion = "3.5"
		}
		if r.Connectors[i].Timeout == 0 {
			r.Connectors[i].Timeout = 10 * time.Second
		}
	}
}

func (r *Relay) validate(depts map[string]bool) []string {
	var errs []string
	if len(r.Connectors) > 0 && (r.MinBackoff <= 0 || r.MaxBackoff < r.MinBackoff || r.Concurrency < 1) {
		errs = append(errs, "relay: min_backoff must be > 0, max_backoff >= min_backoff, concurrency >= 1")
	}
	names := map[string]bool{}
	for i, c := range r.Connectors {
		if !validConnectorName(c.Name) || names[c.Name] {
			errs = append(errs, fmt.Sprintf("relay.connectors[%d]: name %q is invalid or repeated", i, c.Name))
		}
		names[c.Name] = true
		u, err := url.Parse(c.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Sprintf("relay.connectors[%d] (%s): url must be http(s)://host", i, c.Name))
		}
		switch c.Kind {
		case "rocketchat":
		case "livechat":
			if c.OrganizationID == "" || c.TokenURL == "" || c.AgentToken == "" {
				errs = append(errs, fmt.Sprintf("relay.connectors[%d] (%s): a livechat connector needs organization_id, token_url and agent_token", i, c.Name))
			}
		default:
			errs = append(errs, fmt.Sprintf("relay.connectors[%d] (%s): kind must be rocketchat or livechat", i, c.Name))
		}
	}
	routes := map[string]bool{}
	for i, rt := range r.Routes {
		if routes[rt.Department] {
			errs = append(errs, fmt.Sprintf("relay.routes[%d]: department %q routed twice", i, rt.Department))
		}
		routes[rt.Department] = true
		if rt.Department != "" && !depts[rt.Department] {
			errs = append(errs, fmt.Sprintf("relay.routes[%d]: unknown department %q", i, rt.Department))
		}
		for _, n := range append([]string{rt.Upstream}, rt.Mirrors...) {
			if n != "" && !names[n] {
				errs = append(errs, fmt.Sprintf("relay.routes[%d]: unknown connector %q", i, n))
			}
		}
	}
	return errs
}

func validConnectorName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return false
		}
	}
	return true
}
