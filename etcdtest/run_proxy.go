package etcdtest

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/etcdkit/etcdkit"
)

// RunProxy is [Server.Proxy] for programs that have no testing.TB, such as
// examples: it returns a new [Proxy] in front of every endpoint of cfg (an
// embedded server's, or those [etcdkit.ConfigFromEnv] found), so that a
// program can cut its own clients off. [Proxy.Config] returns cfg with the
// proxy's endpoints, its TLS and credentials kept. The caller must call
// [Proxy.Close] when done. It fails when cfg has no endpoints, when one is
// not a URL or host:port, or when no loopback port can be listened on.
func RunProxy(cfg etcdkit.Config) (*Proxy, error) {
	if len(cfg.Endpoints) == 0 {
		return nil, fmt.Errorf("etcdtest: RunProxy: the config has no endpoints")
	}
	targets := make([]url.URL, len(cfg.Endpoints))
	for i, ep := range cfg.Endpoints {
		u, err := endpointURL(ep, cfg.TLS != nil)
		if err != nil {
			return nil, fmt.Errorf("etcdtest: RunProxy: endpoint %q: %w", ep, err)
		}
		targets[i] = *u
	}
	return openProxy(cfg, targets)
}

// endpointURL parses an endpoint as etcd clients accept it: a URL, or a
// bare host:port.
func endpointURL(ep string, tls bool) (*url.URL, error) {
	if !strings.Contains(ep, "://") {
		scheme := "http"
		if tls {
			scheme = "https"
		}
		ep = scheme + "://" + ep
	}
	u, err := url.Parse(ep)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("not a TCP endpoint")
	}
	return u, nil
}
