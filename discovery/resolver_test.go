package discovery_test

import (
	"net"
	"testing"
	"time"

	"go.etcd.io/etcd/client/v3/naming/resolver"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/peer"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/etcdkit/etcdkit/discovery"
)

// startBackend starts a gRPC server with the health service on a free
// loopback port, stopped when t ends, and returns its address.
func startBackend(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	gs := grpc.NewServer()
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
	return ln.Addr().String()
}

// TestResolverDialsRegistered checks that etcd's own gRPC resolver reaches
// the instances Register registers, and drops one whose process dies
// without deregistering once its lease expires.
func TestResolverDialsRegistered(t *testing.T) {
	t.Parallel()
	cli := testServer.Client(t)
	ctx := testCtx(t)
	svc := serviceName(t)
	addr1, addr2 := startBackend(t), startBackend(t)

	reg1, err := discovery.Register(ctx, cli, svc, discovery.Instance{ID: "s1", Addr: addr1})
	require.NoError(t, err)
	defer reg1.Close(ctx)
	// s2 registers through a connection of its own, which the test cuts
	// to play a process killed without deregistering.
	link := newCutter(t, testServer)
	reg2, err := discovery.Register(ctx, link.client(t), svc, discovery.Instance{ID: "s2", Addr: addr2}, discovery.WithTTL(2*time.Second))
	require.NoError(t, err)
	defer reg2.Close(ctx)

	builder, err := resolver.NewBuilder(cli.Raw())
	require.NoError(t, err)
	conn, err := grpc.NewClient("etcd:///"+svc,
		grpc.WithResolvers(builder),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultServiceConfig(`{"loadBalancingConfig":[{"round_robin":{}}]}`))
	require.NoError(t, err)
	defer conn.Close()
	health := healthpb.NewHealthClient(conn)
	call := func() string {
		var p peer.Peer
		_, err := health.Check(ctx, &healthpb.HealthCheckRequest{}, grpc.Peer(&p))
		require.NoError(t, err, "Check through etcd:///%s", svc)
		return p.Addr.String()
	}

	seen := map[string]bool{}
	waitFor(t, 10*time.Second, "calls reach both backends", func() bool {
		seen[call()] = true
		return seen[addr1] && seen[addr2]
	})

	link.Cut()
	// Once the lease expires (one TTL), the resolver drops s2: then every
	// call goes to s1. Twenty in a row make chance unlikely.
	streak := 0
	waitFor(t, 15*time.Second, "calls stop reaching the dead backend", func() bool {
		if call() == addr1 {
			streak++
		} else {
			streak = 0
		}
		return streak >= 20
	})
	got, err := discovery.Lookup(ctx, cli, svc)
	assert.NoError(t, err, "Lookup after s2 died")
	if assert.Len(t, got, 1, "Lookup after s2 died: want only s1") {
		assert.Equal(t, "s1", got[0].ID, "Lookup after s2 died")
	}
}
