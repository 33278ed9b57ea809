package webhooks

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"syscall"
	"time"
)

// Where webhook deliveries may go (issue 16, Medium 4; issue 11, item 4).
//
// A webhook URL is chosen by whoever registers it, and chatgate POSTs from
// inside the operator's network: without limits it is a way to reach
// loopback services, the private network and cloud metadata endpoints
// (SSRF). So, unless the operator allows them:
//
//   - only https:// URLs are accepted (webhooks.allow_http allows http://);
//   - no delivery connects to a loopback, private, link-local (cloud
//     metadata: 169.254.169.254, fd00:ec2::254), CGNAT, unspecified,
//     multicast or reserved address (webhooks.allow_private_networks allows
//     them). The check runs on the address actually dialled, after DNS
//     resolution, so a name that resolves (or re-resolves) to such an
//     address is refused too; URLs naming such an address literally are
//     refused already at registration.
//
// The two switches are independent and both fail closed: a receiver at
// http://127.0.0.1 needs allow_http and allow_private_networks. Redirects
// are never followed, and environment proxies are not used (a proxy
// would dial on our behalf, past the check).

// errBlockedAddress is the error of a dial refused by the address check;
// only administrators read it (list_webhook_failures).
var errBlockedAddress = errors.New("destination address not allowed (private, loopback or link-local; see webhooks.allow_private_networks)")

// blockedPrefixes are the ranges refused without allow_private_networks,
// besides what netip's predicates cover (loopback, private, link-local,
// multicast, unspecified).
var blockedPrefixes = func() []netip.Prefix {
	var out []netip.Prefix
	for _, s := range []string{
		"0.0.0.0/8",       // "this network"
		"100.64.0.0/10",   // CGNAT (RFC 6598)
		"192.0.0.0/24",    // IETF protocol assignments
		"192.0.2.0/24",    // TEST-NET-1
		"198.18.0.0/15",   // benchmarking
		"198.51.100.0/24", // TEST-NET-2
		"203.0.113.0/24",  // TEST-NET-3
		"240.0.0.0/4",     // reserved, broadcast
		"64:ff9b::/96",    // NAT64: embeds an IPv4 address
		"64:ff9b:1::/48",  // local-use NAT64
		"2001:db8::/32",   // documentation
		"fec0::/10",       // deprecated site-local
	} {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}()

// privateAddr reports whether ip is one a webhook may reach only with
// allow_private_networks.
func privateAddr(ip netip.Addr) bool {
	ip = ip.Unmap()
	if !ip.IsValid() || ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() ||
		ip.IsInterfaceLocalMulticast() || ip.IsMulticast() || ip.IsUnspecified() {
		return true
	}
	for _, p := range blockedPrefixes {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// guardControl is a net.Dialer Control refusing private addresses.
func guardControl(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil || privateAddr(ap.Addr()) {
		return errBlockedAddress
	}
	return nil
}

// newClient is the delivery client: no redirects, no environment proxy,
// the address check unless allowPrivate, and caFile's certificates trusted
// besides the system's.
func newClient(allowPrivate bool, caFile string) (*http.Client, error) {
	dialer := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
	if !allowPrivate {
		dialer.Control = guardControl
	}
	tr := &http.Transport{
		Proxy:                 nil,
		DialContext:           dialer.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          64,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		TLSClientConfig:       &tls.Config{MinVersion: tls.VersionTLS12},
	}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("webhooks.ca_file: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("webhooks.ca_file: no PEM certificate in %s", caFile)
		}
		tr.TLSClientConfig.RootCAs = pool
	}
	return &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error {
		// A webhook answering with a redirect has not taken the
		// delivery; following it would POST elsewhere than registered.
		return http.ErrUseLastResponse
	}}, nil
}

// literalPrivate reports whether a URL host is an IP literal (or
// "localhost") in a private range: refused at registration already.
func literalPrivate(host string) bool {
	if host == "localhost" || len(host) > len(".localhost") && host[len(host)-len(".localhost"):] == ".localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && privateAddr(ip)
}
