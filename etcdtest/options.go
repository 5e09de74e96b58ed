package etcdtest

import "go.etcd.io/etcd/server/v3/embed"

// Option changes how [Start], [Run] or [StartCluster] set a server up.
// Make one with [WithTLS], [WithClientCertAuth], [WithoutClientProxy] or
// [WithEmbedConfig].
type Option interface{ apply(*options) }

type options struct {
	tls            bool
	clientCertAuth bool
	noClientProxy  bool
	hooks          []func(*embed.Config)
}

type optionFunc func(*options)

func (f optionFunc) apply(o *options) { f(o) }

func buildOptions(opts []Option) options {
	var o options
	for _, opt := range opts {
		if opt != nil {
			opt.apply(&o)
		}
	}
	if o.clientCertAuth {
		o.tls = true
	}
	return o
}

// WithTLS makes the server serve client traffic over TLS only, with an
// https:// endpoint. The certificate authority and the server certificate
// (ECDSA P-256, valid for 127.0.0.1, ::1 and localhost) are generated in
// memory once per process, so the option costs next to nothing.
// [Server.ClientTLS] and [Server.Config] return a TLS config that trusts
// that authority. Peer traffic between cluster members stays plain text.
func WithTLS() Option {
	return optionFunc(func(o *options) { o.tls = true })
}

// WithClientCertAuth implies [WithTLS] and makes the server refuse clients
// that do not present a certificate signed by the same in-process authority.
// [Server.ClientTLS] and [Server.Config] then carry such a client
// certificate (common name "etcdtest-client").
func WithClientCertAuth() Option {
	return optionFunc(func(o *options) { o.clientCertAuth = true })
}

// WithoutClientProxy makes clients connect straight to etcd.
//
// By default, a member's client traffic goes through a small TCP forwarder
// inside the process, which costs some 20µs per request on loopback. It
// lets [Server.Restart] hold reconnecting clients until etcd listens again
// instead of refusing them, which would make gRPC wait about a second
// before it tries again. Use WithoutClientProxy for benchmarks. (Traffic
// between cluster members always goes through the forwarder: it lets a
// member stop in milliseconds rather than a second, and etcd leaves
// goroutines behind without it.)
func WithoutClientProxy() Option {
	return optionFunc(func(o *options) { o.noClientProxy = true })
}

// WithEmbedConfig lets fn change etcd's own configuration just before each
// member starts (and restarts), after etcdtest has filled it in: for
// example to lower MaxTxnOps or MaxRequestBytes, or to turn auto-compaction
// on. Changing the URLs, the data directory, the cluster fields or the
// logger breaks the kit's guarantees; leave them alone.
func WithEmbedConfig(fn func(*embed.Config)) Option {
	return optionFunc(func(o *options) {
		if fn != nil {
			o.hooks = append(o.hooks, fn)
		}
	})
}
