package discovery_test

import (
	"context"
	"net"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	etcdresolver "go.etcd.io/etcd/client/v3/naming/resolver"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/resolver"

	"github.com/etcdkit/etcdkit"
	"github.com/etcdkit/etcdkit/discovery"
	"github.com/etcdkit/etcdkit/etcdtest"
)

// counted is a gRPC server with the health service that counts the calls
// it serves.
type counted struct {
	addr  string
	calls atomic.Int64
}

func startCounted(t testing.TB) *counted {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	b := &counted{addr: ln.Addr().String()}
	gs := grpc.NewServer(grpc.UnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		b.calls.Add(1)
		return h(ctx, req)
	}))
	healthpb.RegisterHealthServer(gs, health.NewServer())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = gs.Serve(ln)
	}()
	t.Cleanup(func() {
		gs.Stop()
		<-done
	})
	return b
}

// watched wraps a resolver builder to learn which addresses its resolver
// last handed to gRPC: once UpdateState returns, the balancer has them.
type watched struct {
	resolver.Builder
	mu    sync.Mutex
	addrs []string
}

func (w *watched) Build(target resolver.Target, cc resolver.ClientConn, opts resolver.BuildOptions) (resolver.Resolver, error) {
	return w.Builder.Build(target, &watchedConn{ClientConn: cc, w: w}, opts)
}

type watchedConn struct {
	resolver.ClientConn
	w *watched
}

func (c *watchedConn) UpdateState(s resolver.State) error {
	err := c.ClientConn.UpdateState(s)
	var addrs []string
	for _, ep := range s.Endpoints {
		for _, a := range ep.Addresses {
			addrs = append(addrs, a.Addr)
		}
	}
	slices.Sort(addrs)
	c.w.mu.Lock()
	c.w.addrs = addrs
	c.w.mu.Unlock()
	return err
}

// current returns the addresses gRPC was last given, sorted.
func (w *watched) current() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.addrs
}

// dial connects to target through b with round_robin.
func dial(t testing.TB, target string, b resolver.Builder) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(target, grpc.WithResolvers(b),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultServiceConfig(`{"loadBalancingConfig":[{"round_robin":{}}]}`))
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	return conn
}

// caller makes one call through conn and returns the address that answered.
func caller(t testing.TB, ctx context.Context, conn *grpc.ClientConn) func() string {
	client := healthpb.NewHealthClient(conn)
	return func() string {
		t.Helper()
		var p peer.Peer
		_, err := client.Check(ctx, &healthpb.HealthCheckRequest{}, grpc.Peer(&p), grpc.WaitForReady(true))
		require.NoError(t, err)
		return p.Addr.String()
	}
}

// reachAll calls until every address in want answered.
func reachAll(t testing.TB, call func() string, want ...string) {
	t.Helper()
	seen := map[string]bool{}
	waitFor(t, 10*time.Second, "calls reach "+join(want), func() bool {
		seen[call()] = true
		for _, a := range want {
			if !seen[a] {
				return false
			}
		}
		return true
	})
}

func join(ss []string) string {
	out := ""
	for i, s := range ss {
		if i > 0 {
			out += ", "
		}
		out += s
	}
	return out
}

func TestResolverFollowsChecks(t *testing.T) {
	t.Parallel()
	cli := testServer.Client(t)
	ctx := testCtx(t)
	svc := serviceName(t)
	a, b := startCounted(t), startCounted(t)
	var aFails atomic.Bool
	regA, err := discovery.Register(ctx, cli, svc, discovery.Instance{ID: "a", Addr: a.addr, Metadata: map[string]string{"zone": "z1"}},
		discovery.WithCheck(20*time.Millisecond, func(context.Context) error {
			if aFails.Load() {
				return assert.AnError
			}
			return nil
		}))
	require.NoError(t, err)
	defer regA.Close(ctx)
	regB, err := discovery.Register(ctx, cli, svc, discovery.Instance{ID: "b", Addr: b.addr})
	require.NoError(t, err)
	defer regB.Close(ctx)

	builder, err := discovery.NewResolver(cli)
	require.NoError(t, err)
	require.Equal(t, "etcdkit", builder.Scheme())
	w := &watched{Builder: builder}
	call := caller(t, ctx, dial(t, "etcdkit:///"+svc, w))
	both := []string{a.addr, b.addr}
	slices.Sort(both)

	for round := range 3 {
		reachAll(t, call, a.addr, b.addr)
		aFails.Store(true)
		waitFor(t, 10*time.Second, "the resolver drops the critical instance", func() bool {
			return slices.Equal(w.current(), []string{b.addr})
		})
		before := a.calls.Load()
		for range 20 {
			require.Equal(t, b.addr, call(), "round %d: a call after the update", round)
		}
		require.Equal(t, before, a.calls.Load(), "round %d: calls the critical instance served", round)
		aFails.Store(false)
		waitFor(t, 10*time.Second, "the resolver dials the instance again", func() bool {
			return slices.Equal(w.current(), both)
		})
	}
	reachAll(t, call, a.addr, b.addr)
}

func TestResolverPassesMetadata(t *testing.T) {
	t.Parallel()
	cli := testServer.Client(t)
	ctx := testCtx(t)
	svc := serviceName(t)
	reg, err := discovery.Register(ctx, cli, svc, discovery.Instance{ID: "a", Addr: "127.0.0.1:1", Metadata: map[string]string{"zone": "z1"}})
	require.NoError(t, err)
	defer reg.Close(ctx)
	builder, err := discovery.NewResolver(cli)
	require.NoError(t, err)
	cc := &stateConn{states: make(chan resolver.State, 8)}
	r, err := builder.Build(resolver.Target{URL: *mustParse(t, "etcdkit:///"+svc)}, cc, resolver.BuildOptions{})
	require.NoError(t, err)
	defer r.Close()
	var st resolver.State
	select {
	case st = <-cc.states:
	case <-time.After(10 * time.Second):
		require.FailNow(t, "no state from the resolver")
	}
	require.Len(t, st.Endpoints, 1)
	ep := st.Endpoints[0]
	require.Len(t, ep.Addresses, 1)
	assert.Equal(t, "127.0.0.1:1", ep.Addresses[0].Addr)
	inst, ok := discovery.ResolvedInstance[map[string]string](ep.Attributes)
	require.True(t, ok)
	assert.Equal(t, "a", inst.ID)
	assert.Equal(t, map[string]string{"zone": "z1"}, inst.Metadata)
	assert.Equal(t, discovery.Passing, inst.Health.Status)
	_, ok = discovery.ResolvedInstance[int](ep.Attributes)
	assert.False(t, ok, "metadata that does not decode into int")
	_, ok = discovery.ResolvedInstance[map[string]string](nil)
	assert.False(t, ok, "no attributes")
}

func mustParse(t testing.TB, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	require.NoError(t, err)
	return u
}

// stateConn is a resolver.ClientConn that hands over the states it gets.
type stateConn struct {
	resolver.ClientConn
	states chan resolver.State
}

func (c *stateConn) UpdateState(s resolver.State) error {
	c.states <- s
	return nil
}

func (c *stateConn) ReportError(error) {}

// TestResolverKeepsUpAfterCompaction compacts the store past what both
// resolvers saw and restarts etcd: etcd's own resolver stops following the
// service, this package's goes on.
func TestResolverKeepsUpAfterCompaction(t *testing.T) {
	t.Parallel()
	srv := etcdtest.Start(t)
	cli := srv.Client(t)
	raw := srv.RawClient(t)
	ctx := testCtx(t)
	svc := serviceName(t)
	s1, s2, s3 := startCounted(t), startCounted(t), startCounted(t)
	register := func(id string, b *counted) *discovery.Registration {
		reg, err := discovery.Register(ctx, cli, svc, discovery.Instance{ID: id, Addr: b.addr}, discovery.WithTTL(keepTTL))
		require.NoError(t, err)
		t.Cleanup(func() { _ = reg.Close(context.Background()) })
		return reg
	}
	reg1 := register("s1", s1)
	register("s2", s2)

	builder, err := discovery.NewResolver(cli)
	require.NoError(t, err)
	ours := &watched{Builder: builder}
	callOurs := caller(t, ctx, dial(t, "etcdkit:///"+svc, ours))
	etcds, err := etcdresolver.NewBuilder(cli.Raw())
	require.NoError(t, err)
	callEtcds := caller(t, ctx, dial(t, "etcd:///"+svc, etcds))
	reachAll(t, callOurs, s1.addr, s2.addr)
	reachAll(t, callEtcds, s1.addr, s2.addr)

	var rev int64
	for range 10 { // revisions neither resolver's watch has seen
		resp, err := raw.Put(ctx, svc+"-filler", "x")
		require.NoError(t, err)
		rev = resp.Header.Revision
	}
	srv.Compact(t, rev)
	srv.Restart(t)

	register("s3", s3)
	require.NoError(t, reg1.Close(ctx))
	want := []string{s2.addr, s3.addr}
	slices.Sort(want)
	waitFor(t, 10*time.Second, "our resolver has s2 and s3", func() bool {
		return slices.Equal(ours.current(), want)
	})
	before := s1.calls.Load()
	reachAll(t, callOurs, s2.addr, s3.addr)
	assert.Equal(t, before, s1.calls.Load(), "calls the removed instance served")

	// etcd's resolver stopped at the compaction: it still dials s1, whose
	// server still runs, and never learns of s3.
	reachAll(t, callEtcds, s1.addr, s2.addr)
	assert.Greater(t, s1.calls.Load(), before, "etcd's resolver calls the deregistered s1")
}

func TestResolverEndsWithClient(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	owner, err := etcdkit.New(ctx, testServer.Config())
	require.NoError(t, err)
	builder, err := discovery.NewResolver(owner)
	require.NoError(t, err)
	cc := &stateConn{states: make(chan resolver.State, 8)}
	r, err := builder.Build(resolver.Target{URL: *mustParse(t, "etcdkit:///"+serviceName(t))}, cc, resolver.BuildOptions{})
	require.NoError(t, err)
	require.NoError(t, owner.Close())
	r.Close() // returns: TestMain's leak check finds nothing left
	_, err = builder.Build(resolver.Target{URL: *mustParse(t, "etcdkit:///")}, cc, resolver.BuildOptions{})
	assert.ErrorIs(t, err, etcdkit.ErrInvalidArgument, "a target without a service")
}
