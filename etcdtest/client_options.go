package etcdtest

import (
	"testing"

	"github.com/etcdkit/etcdkit"
)

// ClientOption changes the client that [Server.Client] or [Cluster.Client]
// makes. Make one with [WithFaults] or [WithClientConfig].
type ClientOption interface{ applyClient(*clientSetup) }

// clientSetup is what the options build: the config, and what to wait for
// before the client closes.
type clientSetup struct {
	cfg   etcdkit.Config
	waits []func()
}

type clientOptionFunc func(*clientSetup)

func (f clientOptionFunc) applyClient(s *clientSetup) { f(s) }

// WithFaults makes the client's unary calls go through f, which injects
// ambiguous outcomes into those it is told to (see [Faults]). Before the
// client closes, at the end of the test, it waits for the calls that f
// delayed ([Faults.Wait]).
func WithFaults(f *Faults) ClientOption {
	return clientOptionFunc(func(s *clientSetup) {
		s.cfg.UnaryInterceptors = append(s.cfg.UnaryInterceptors, f.UnaryInterceptor())
		s.waits = append(s.waits, f.Wait)
	})
}

// WithClientConfig lets fn change the client's config (its timeouts,
// credentials, namespace or logger) after the kit has filled in the
// endpoints and TLS.
func WithClientConfig(fn func(*etcdkit.Config)) ClientOption {
	return clientOptionFunc(func(s *clientSetup) { fn(&s.cfg) })
}

// newClientWith applies opts to cfg and connects a client, closed when the
// test ends.
func newClientWith(tb testing.TB, cfg etcdkit.Config, opts []ClientOption) *etcdkit.Client {
	tb.Helper()
	s := clientSetup{cfg: cfg}
	for _, o := range opts {
		if o != nil {
			o.applyClient(&s)
		}
	}
	cli := newClient(tb, s.cfg)
	for _, wait := range s.waits {
		tb.Cleanup(wait) // runs before the client's Close, registered earlier
	}
	return cli
}
