package etcdtest

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/url"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/etcdkit/etcdkit"
)

// callTimeout bounds each call the kit makes to a server on the caller's
// behalf (compaction, enabling auth, connecting a client).
const callTimeout = 10 * time.Second

// Server is an etcd member running in this process. Make one with [Start]
// (tests) or [Run] (programs), or get one from [Cluster.Member].
//
// Its client and peer addresses are fixed for its whole life: [Server.Stop]
// and [Server.Restart] keep them, and keep its data. Its methods are safe
// for concurrent use.
type Server struct {
	name   string
	opts   options
	timing timing
	root   string // holds data/ and tls/; removed by Close

	holds           []*portHold   // every port of the member, held until Close
	clientURL       url.URL       // public, in Endpoints
	peerURL         url.URL       // public, in the initial cluster
	listenClientURL url.URL       // where etcd listens: behind a proxy unless WithoutClientProxy
	listenPeerURL   url.URL       // where etcd listens: always behind a proxy
	proxies         []*proxy      // peer, and client unless WithoutClientProxy
	initialCluster  string        // "m0=http://127.0.0.1:p0,..."
	token           string        // initial cluster token
	joining         bool          // added to a running cluster: its initial state is existing
	id              atomic.Uint64 // its member ID, once started

	pki   *pki // nil without TLS
	certs certFiles

	life sync.Mutex // serializes start, stop, restart and close

	mu       sync.Mutex // guards the fields below, never held while waiting
	cur      *instance  // nil while stopped
	closed   bool
	closeErr error
}

// Start starts a single-member etcd server for the test and stops it, and
// removes its data, when the test ends. The server listens on loopback
// ports the kernel picks, which no other server of this or any other
// process can take while it lives, and keeps its data in a new temporary
// directory without fsync. etcd's logs are discarded.
//
// Start returns once the server serves clients, usually within 100ms; if
// it does not within 20 seconds, or cannot start at all, Start fails tb
// with the reason.
func Start(tb testing.TB, opts ...Option) *Server {
	tb.Helper()
	s, err := Run(opts...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Error(err)
		}
	})
	return s
}

// Run is [Start] for programs that have no testing.TB, such as examples:
// it starts a single-member server and returns once it serves clients. The
// caller must call [Server.Close] to stop it and remove its data.
//
// Run fails, leaving nothing behind, with an error that says why (no free
// port after three tries, a data directory that cannot be made, a bad
// [WithEmbedConfig]) when the server cannot start, or when it does not
// serve clients within 20 seconds.
func Run(opts ...Option) (*Server, error) {
	ms, err := startMembers(1, buildOptions(opts), singleTiming)
	if err != nil {
		return nil, err
	}
	return ms[0], nil
}

// Endpoints returns the server's client URL, such as
// "http://127.0.0.1:41234", or "https://…" with [WithTLS]. It does not
// change when the server restarts.
func (s *Server) Endpoints() []string {
	return []string{s.clientURL.String()}
}

// Config returns an [etcdkit.Config] that reaches this server: its
// endpoint, and with [WithTLS] a TLS config that trusts the server (and
// presents a client certificate with [WithClientCertAuth]). It carries no
// credentials, even after [Server.EnableAuth]: set Username and Password
// yourself.
func (s *Server) Config() etcdkit.Config {
	return etcdkit.Config{Endpoints: s.Endpoints(), TLS: s.ClientTLS()}
}

// ClientTLS returns a new TLS config for clients of this server: it trusts
// the server's certificate authority and, with [WithClientCertAuth],
// presents a client certificate signed by it. It returns nil when the
// server does not use TLS.
func (s *Server) ClientTLS() *tls.Config {
	if s.pki == nil {
		return nil
	}
	return s.pki.clientConfig(s.opts.clientCertAuth)
}

// Client returns an [etcdkit.Client] connected to the server with
// [Server.Config], changed by opts; it is closed when the test ends. Clients survive
// [Server.Restart]: they reconnect by themselves. Client fails tb if the
// server does not answer, for instance because it is stopped.
func (s *Server) Client(tb testing.TB, opts ...ClientOption) *etcdkit.Client {
	tb.Helper()
	return newClientWith(tb, s.Config(), opts)
}

// RawClient returns a plain clientv3 client of the server, with etcd's
// client logs discarded; it is closed when the test ends. Like
// [Server.Config], it carries no credentials.
func (s *Server) RawClient(tb testing.TB) *clientv3.Client {
	tb.Helper()
	return newRawClient(tb, s.Endpoints(), s.ClientTLS())
}

// EnableAuth turns on etcd's authentication: it creates the role root and
// the user root with rootPassword, grants the role to the user, and enables
// auth, for the whole cluster the server belongs to. From then on, clients
// must authenticate (etcdkit.Config's Username and Password); those made
// before get permission errors. EnableAuth fails tb if any step fails, for
// instance when auth is already on.
func (s *Server) EnableAuth(tb testing.TB, rootPassword string) {
	tb.Helper()
	if rootPassword == "" {
		tb.Fatal("etcdtest: EnableAuth: the root password must not be empty")
	}
	cli, err := rawClient(s.Endpoints(), s.ClientTLS())
	if err != nil {
		tb.Fatalf("etcdtest: enable auth: %v", err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	steps := []struct {
		what string
		do   func() error
	}{
		{"add role root", func() error { _, err := cli.RoleAdd(ctx, "root"); return err }},
		{"add user root", func() error { _, err := cli.UserAdd(ctx, "root", rootPassword); return err }},
		{"grant role root to user root", func() error { _, err := cli.UserGrantRole(ctx, "root", "root"); return err }},
		{"enable auth", func() error { _, err := cli.AuthEnable(ctx); return err }},
	}
	for _, step := range steps {
		if err := step.do(); err != nil {
			tb.Fatalf("etcdtest: enable auth on %s: %s: %v", s.clientURL.String(), step.what, err)
		}
	}
}

// Compact compacts the key-value history up to rev and waits until the
// compacted revisions are physically removed, so that reading or watching
// from a revision below rev then fails with etcd's "required revision has
// been compacted". It fails tb if the server is stopped, if rev is higher
// than the current revision or if rev is already compacted. It works
// whether or not auth is enabled.
func (s *Server) Compact(tb testing.TB, rev int64) {
	tb.Helper()
	in := s.current()
	if in == nil {
		tb.Fatalf("etcdtest: compact at revision %d: member %s is stopped", rev, s.name)
	}
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	// Going to the server directly, not through a client, needs no
	// credentials once auth is on.
	if _, err := in.etcd.Server.Compact(ctx, &pb.CompactionRequest{Revision: rev, Physical: true}); err != nil {
		tb.Fatalf("etcdtest: compact at revision %d: %v", rev, err)
	}
}

// Running reports whether the server is started: true from [Start] or
// [Server.Restart] until [Server.Stop] or [Server.Close].
func (s *Server) Running() bool {
	return s.current() != nil
}

// Stop stops the server and returns once it is fully stopped, keeping its
// data and addresses for [Server.Restart]. A leader of a cluster first
// hands leadership over to another member. Client connections are dropped
// at once and new ones refused, as by a server that is down.
//
// Clients keep trying to reconnect, but gRPC waits longer after each
// refusal (about 1s, then 1.6s, 2.6s…), so after Stop and a later Restart a
// client may need a second or more to find the server again. Restart alone,
// on a running server, has no such delay. Stopping a stopped server does
// nothing.
func (s *Server) Stop() {
	s.life.Lock()
	defer s.life.Unlock()
	s.stopInstance(stopKeep)
}

// Restart stops the server if it is running and starts it again on the same
// client address with the same data, and returns once it serves clients.
// Clients made before, including those of [Server.Client], reconnect by
// themselves. A member of a cluster can only serve once a quorum of its
// cluster runs. Restart fails tb if the server cannot start within 20
// seconds, or after [Server.Close].
func (s *Server) Restart(tb testing.TB) {
	tb.Helper()
	if err := s.restart(); err != nil {
		tb.Fatal(err)
	}
}

func (s *Server) restart() error {
	s.life.Lock()
	defer s.life.Unlock()
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return fmt.Errorf("etcdtest: restart member %s: the server is closed", s.name)
	}
	s.stopInstance(stopRestart)
	deadline := time.Now().Add(readyTimeout)
	for {
		err := s.startInstance()
		if err == nil {
			return s.waitReady(deadline)
		}
		// Only where ports cannot be held (not Linux) can someone else
		// be listening on ours; they may go away.
		if !errors.Is(err, syscall.EADDRINUSE) || time.Now().After(deadline) {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Close stops the server, waits until it is fully stopped, and removes its
// data. It is safe to call more than once; later calls return the first
// call's result. [Start] calls it when the test ends. Its only error is
// one removing the data directory; the server is stopped all the same.
func (s *Server) Close() error {
	s.life.Lock()
	defer s.life.Unlock()
	s.mu.Lock()
	closed := s.closed
	s.closed = true
	s.mu.Unlock()
	if !closed {
		s.stopInstance(stopClose)
		s.closeErr = s.releaseResources()
	}
	return s.closeErr
}

// newClient connects an etcdkit client and closes it when the test ends.
func newClient(tb testing.TB, cfg etcdkit.Config) *etcdkit.Client {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	cli, err := etcdkit.New(ctx, cfg)
	if err != nil {
		tb.Fatalf("etcdtest: new client: %v", err)
	}
	tb.Cleanup(func() {
		if err := cli.Close(); err != nil {
			tb.Errorf("etcdtest: close client: %v", err)
		}
	})
	return cli
}

func newRawClient(tb testing.TB, endpoints []string, tlsCfg *tls.Config) *clientv3.Client {
	tb.Helper()
	cli, err := rawClient(endpoints, tlsCfg)
	if err != nil {
		tb.Fatalf("etcdtest: new raw client: %v", err)
	}
	tb.Cleanup(func() {
		// clientv3 reports its own cancellation as a close error.
		if err := cli.Close(); err != nil && !errors.Is(err, context.Canceled) {
			tb.Errorf("etcdtest: close raw client: %v", err)
		}
	})
	return cli
}

// rawClient makes a clientv3 client; like clientv3.New, it does not wait
// for a connection.
func rawClient(endpoints []string, tlsCfg *tls.Config) (*clientv3.Client, error) {
	return clientv3.New(clientv3.Config{
		Endpoints:   endpoints,
		TLS:         tlsCfg,
		DialTimeout: callTimeout,
		Logger:      zap.NewNop(),
	})
}
