package etcdtest

import (
	"fmt"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/etcdkit/etcdkit"
)

// Direction says which way a [Proxy] holds traffic.
type Direction int

const (
	// ToServer holds requests: the server never sees them, as when the
	// client's packets are dropped.
	ToServer Direction = 1 << iota
	// ToClient holds answers: the server receives and applies requests
	// but the client never hears back, so every write it makes has an
	// unknown outcome.
	ToClient
	// BothWays holds traffic both ways: a full partition.
	BothWays = ToServer | ToClient
)

// Proxy is a TCP forwarder between clients and etcd that can cut the
// network: [Proxy.Blackhole] holds traffic one way or both while keeping
// every connection open, as a partition does (no error, no reset: calls
// just get no answer), and [Proxy.Heal] lets the held bytes through again,
// as TCP retransmits once the network is back. Make one with
// [Server.Proxy] or [Cluster.Proxy], and connect clients through it with
// [Proxy.Client] or [Proxy.Config]; clients that do not use it are not
// affected.
//
// Its methods are safe for concurrent use. It is closed when the test ends
// (one made by [RunProxy], by its Close).
type Proxy struct {
	fwds   []*proxy
	scheme string
	base   etcdkit.Config // TLS and the like of the target

	mu   sync.Mutex
	heal *time.Timer // pending end of a Partition
}

// Proxy returns a new [Proxy] in front of the server's client address.
func (s *Server) Proxy(tb testing.TB) *Proxy {
	tb.Helper()
	return newPublicProxy(tb, s.Config(), []url.URL{s.clientURL})
}

// Proxy returns a new [Proxy] in front of every member's client address:
// a client made with [Proxy.Client] reaches the whole cluster through it,
// and [Proxy.Blackhole] cuts it off from every member at once.
func (c *Cluster) Proxy(tb testing.TB) *Proxy {
	tb.Helper()
	targets := make([]url.URL, len(c.members))
	for i, m := range c.members {
		targets[i] = m.clientURL
	}
	return newPublicProxy(tb, c.Config(), targets)
}

func newPublicProxy(tb testing.TB, base etcdkit.Config, targets []url.URL) *Proxy {
	tb.Helper()
	p, err := openProxy(base, targets)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(p.Close)
	return p
}

// openProxy starts a forwarder on a loopback port for each target.
func openProxy(base etcdkit.Config, targets []url.URL) (*Proxy, error) {
	p := &Proxy{scheme: targets[0].Scheme, base: base}
	for _, t := range targets {
		fwd := newProxy("127.0.0.1:0", t.Host)
		if err := fwd.open(); err != nil {
			p.Close()
			return nil, fmt.Errorf("etcdtest: proxy to %s: %w", t.Host, err)
		}
		fwd.resume()
		p.fwds = append(p.fwds, fwd)
	}
	return p, nil
}

// Endpoints returns the proxy's client URLs, one per server behind it.
func (p *Proxy) Endpoints() []string {
	eps := make([]string, len(p.fwds))
	for i, f := range p.fwds {
		eps[i] = (&url.URL{Scheme: p.scheme, Host: f.listenAddr()}).String()
	}
	return eps
}

// Config returns an [etcdkit.Config] that reaches the servers through the
// proxy, with the same TLS as theirs and no credentials (for a proxy made
// by [RunProxy], the TLS and credentials of the config it was given).
func (p *Proxy) Config() etcdkit.Config {
	cfg := p.base
	cfg.Endpoints = p.Endpoints()
	return cfg
}

// Client returns an [etcdkit.Client] connected through the proxy, changed
// by opts, and closed when the test ends. The proxy heals before that
// close, so that the client can revoke its leases.
func (p *Proxy) Client(tb testing.TB, opts ...ClientOption) *etcdkit.Client {
	tb.Helper()
	cli := newClientWith(tb, p.Config(), opts)
	tb.Cleanup(p.Heal) // runs before the client's Close, registered earlier
	return cli
}

// Blackhole holds the traffic of every connection through the proxy in
// dir, until [Proxy.Heal]. New connections are accepted and held the same
// way. It replaces an earlier Blackhole's direction and cancels a pending
// [Proxy.Partition] heal.
func (p *Proxy) Blackhole(dir Direction) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stopHealLocked()
	p.setLocked(dir)
}

// Heal lets traffic through both ways again; what was held is delivered.
func (p *Proxy) Heal() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stopHealLocked()
	p.setLocked(0)
}

// Partition blackholes dir now and heals after d, without waiting: the
// test goes on while the client is cut off.
func (p *Proxy) Partition(dir Direction, d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stopHealLocked()
	p.setLocked(dir)
	p.heal = time.AfterFunc(d, p.Heal)
}

// Drop closes every connection through the proxy at once, as when a
// connection is reset; clients reconnect by themselves. A blackhole stays
// in force for the new connections.
func (p *Proxy) Drop() {
	for _, f := range p.fwds {
		f.mu.Lock()
		f.pauseLocked()
		f.mu.Unlock()
		f.resume()
	}
}

// Close stops the proxy and drops its connections. It is called when the
// test ends; calling it again is harmless.
func (p *Proxy) Close() {
	p.Heal()
	for _, f := range p.fwds {
		f.close()
	}
}

func (p *Proxy) setLocked(dir Direction) {
	for _, f := range p.fwds {
		f.gates[toTarget].set(dir&ToServer != 0)
		f.gates[toClient].set(dir&ToClient != 0)
	}
}

func (p *Proxy) stopHealLocked() {
	if p.heal != nil {
		p.heal.Stop()
		p.heal = nil
	}
}
