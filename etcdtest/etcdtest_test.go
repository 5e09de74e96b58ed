package etcdtest_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/goleak"

	"github.com/stretchr/testify/require"

	"github.com/etcdkit/etcdkit"
	"github.com/etcdkit/etcdkit/etcdtest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// ctx returns a context bounded well below the test timeout.
func ctx(t *testing.T) context.Context {
	t.Helper()
	c, cancel := context.WithTimeout(t.Context(), 15*time.Second)
	t.Cleanup(cancel)
	return c
}

func put(t *testing.T, cli *clientv3.Client, key, val string) int64 {
	t.Helper()
	resp, err := cli.Put(ctx(t), key, val)
	require.NoError(t, err, "put %q", key)
	return resp.Header.Revision
}

func mustGet(t *testing.T, cli *clientv3.Client, key, want string) {
	t.Helper()
	resp, err := cli.Get(ctx(t), key)
	require.NoError(t, err, "get %q", key)
	require.Len(t, resp.Kvs, 1, "get %q", key)
	require.Equal(t, want, string(resp.Kvs[0].Value), "get %q", key)
}

func TestStartParallel(t *testing.T) {
	for i := range 20 {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			srv := etcdtest.Start(t)
			t.Logf("started in %v on %v", time.Since(start), srv.Endpoints())
			eps := srv.Endpoints()
			require.Len(t, eps, 1, "Endpoints()")
			require.True(t, strings.HasPrefix(eps[0], "http://127.0.0.1:"), "Endpoints() = %q, want an http://127.0.0.1:port URL", eps)
			cli := srv.Client(t).Raw()
			key, val := fmt.Sprintf("/parallel/%d", i), fmt.Sprintf("value-%d", i)
			put(t, cli, key, val)
			mustGet(t, cli, key, val)
		})
	}
}

// modes are the two ways a member can listen, for tests that depend on it.
var modes = []struct {
	name string
	opts []etcdtest.Option
}{
	{"proxy", nil},
	{"without client proxy", []etcdtest.Option{etcdtest.WithoutClientProxy()}},
}

func TestRestartKeepsDataAndClients(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode.name, func(t *testing.T) {
			srv := etcdtest.Start(t, mode.opts...)
			cli := srv.Client(t)
			raw := srv.RawClient(t)
			put(t, cli.Raw(), "/restart/before", "1")
			eps := srv.Endpoints()

			start := time.Now()
			srv.Restart(t)
			t.Logf("restarted in %v", time.Since(start))

			require.Equal(t, eps[0], srv.Endpoints()[0], "Endpoints() after Restart")
			start = time.Now()
			mustGet(t, cli.Raw(), "/restart/before", "1")
			t.Logf("first read after restart took %v", time.Since(start))
			mustGet(t, raw, "/restart/before", "1")
			put(t, cli.Raw(), "/restart/after", "2")
			mustGet(t, raw, "/restart/after", "2")
		})
	}
}

func TestStopThenRestart(t *testing.T) {
	srv := etcdtest.Start(t)
	cli := srv.Client(t).Raw()
	put(t, cli, "/stop/key", "v")

	srv.Stop()
	srv.Stop() // stopping twice is harmless
	require.False(t, srv.Running(), "Running() after Stop")
	short, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	_, err := cli.Get(short, "/stop/key")
	require.Error(t, err, "Get on a stopped server succeeded")

	srv.Restart(t)
	require.True(t, srv.Running(), "Running() after Restart")
	mustGet(t, cli, "/stop/key", "v")
}

// TestStopWithOpenWatch checks that a client stream does not hold a stop
// up for etcd's graceful-shutdown timeout (over 5s).
func TestStopWithOpenWatch(t *testing.T) {
	srv := etcdtest.Start(t)
	cli := srv.RawClient(t)
	wctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	wch := cli.Watch(wctx, "/watched", clientv3.WithCreatedNotify())
	resp := <-wch
	require.True(t, resp.Created, "watch not created: %v", resp.Err())
	start := time.Now()
	srv.Stop()
	require.LessOrEqual(t, time.Since(start), 2*time.Second, "Stop with an open watch: want well under 2s")
	srv.Restart(t)
	put(t, cli, "/watched", "x")
	// The watch resumes on the restarted server.
	select {
	case resp := <-wch:
		require.NoError(t, resp.Err(), "watch after restart")
		require.Len(t, resp.Events, 1, "watch after restart: want the put")
	case <-time.After(10 * time.Second):
		require.FailNow(t, "no watch event after restart")
	}
}

func TestCompact(t *testing.T) {
	srv := etcdtest.Start(t)
	cli := srv.Client(t).Raw()
	rev1 := put(t, cli, "/compact/k", "1")
	rev2 := put(t, cli, "/compact/k", "2")
	put(t, cli, "/compact/k", "3")

	srv.Compact(t, rev2)

	_, err := cli.Get(ctx(t), "/compact/k", clientv3.WithRev(rev1))
	require.ErrorIs(t, err, rpctypes.ErrCompacted, "get at compacted revision %d", rev1)
	resp, err := cli.Get(ctx(t), "/compact/k", clientv3.WithRev(rev2))
	require.NoError(t, err, "get at revision %d", rev2)
	require.Len(t, resp.Kvs, 1, "get at revision %d", rev2)
	require.Equal(t, "2", string(resp.Kvs[0].Value), "get at revision %d", rev2)
}

func TestCluster(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode.name, func(t *testing.T) {
			start := time.Now()
			cl := etcdtest.StartCluster(t, 3, mode.opts...)
			t.Logf("3-member cluster started in %v", time.Since(start))
			require.Len(t, cl.Endpoints(), 3, "Endpoints()")
			cli := cl.Client(t).Raw()
			put(t, cli, "/cluster/before", "1")

			old := cl.WaitLeader(t)
			start = time.Now()
			cl.StopMember(old)
			require.False(t, cl.Member(old).Running(), "member %d still running after StopMember", old)
			lead := cl.WaitLeader(t)
			t.Logf("leader %d stopped; member %d leads after %v", old, lead, time.Since(start))
			require.NotEqual(t, old, lead, "WaitLeader() named the stopped member")
			for i := range 10 {
				put(t, cli, fmt.Sprintf("/cluster/during/%d", i), "2")
			}
			mustGet(t, cli, "/cluster/before", "1")

			cl.RestartMember(old)
			require.True(t, cl.Member(old).Running(), "member %d not running after RestartMember", old)
			// The restarted member caught up: read through it alone.
			mustGet(t, cl.Member(old).RawClient(t), "/cluster/during/9", "2")
			l := cl.WaitLeader(t)
			require.GreaterOrEqual(t, l, 0, "WaitLeader() after restart")
			require.Less(t, l, 3, "WaitLeader() after restart")
		})
	}
}

func TestClusterTLS(t *testing.T) {
	cl := etcdtest.StartCluster(t, 3, etcdtest.WithTLS())
	for _, ep := range cl.Endpoints() {
		require.True(t, strings.HasPrefix(ep, "https://127.0.0.1:"), "Endpoints() = %q, want https URLs", cl.Endpoints())
	}
	put(t, cl.Client(t).Raw(), "/cluster-tls/k", "v")
	mustGet(t, cl.RawClient(t), "/cluster-tls/k", "v")
}

func TestTLS(t *testing.T) {
	srv := etcdtest.Start(t, etcdtest.WithTLS())
	ep := srv.Endpoints()[0]
	require.True(t, strings.HasPrefix(ep, "https://"), "Endpoints() = %q, want an https URL", ep)
	require.NotNil(t, srv.ClientTLS(), "ClientTLS() with WithTLS")
	cli := srv.Client(t).Raw()
	put(t, cli, "/tls/k", "v")
	mustGet(t, srv.RawClient(t), "/tls/k", "v")

	// Without the CA, the server's certificate is not trusted.
	cfg := srv.Config()
	cfg.TLS = nil
	cfg.DialTimeout = 2 * time.Second
	c, err := etcdkit.New(ctx(t), cfg)
	if err == nil {
		c.Close()
	}
	require.Error(t, err, "client without the CA connected to a TLS server")
}

func TestClientCertAuth(t *testing.T) {
	srv := etcdtest.Start(t, etcdtest.WithClientCertAuth())
	tc := srv.ClientTLS()
	require.NotNil(t, tc, "ClientTLS()")
	require.Len(t, tc.Certificates, 1, "ClientTLS(): want one client certificate")
	put(t, srv.Client(t).Raw(), "/mtls/k", "v")

	cfg := srv.Config()
	cfg.TLS.Certificates = nil
	cfg.DialTimeout = time.Second
	c, err := etcdkit.New(ctx(t), cfg)
	if err == nil {
		// The TLS 1.3 handshake ends before the server checks the
		// client's certificate, so the refusal may come with the first
		// request instead.
		defer c.Close()
		short, cancel := context.WithTimeout(ctx(t), 2*time.Second)
		defer cancel()
		_, err = c.Raw().Get(short, "/mtls/k")
		require.Error(t, err, "client without a certificate read from a client-cert-auth server")
	}
	t.Logf("client without certificate refused: %v", err)
}

func TestEnableAuth(t *testing.T) {
	srv := etcdtest.Start(t)
	before := srv.RawClient(t)
	put(t, before, "/auth/k", "v")

	srv.EnableAuth(t, "s3cret")

	_, err := before.Get(ctx(t), "/auth/k")
	require.Error(t, err, "client without credentials read after EnableAuth")
	cfg := srv.Config()
	c, err := etcdkit.New(ctx(t), cfg)
	if err == nil {
		c.Close()
	}
	require.Error(t, err, "client without credentials connected after EnableAuth")

	cfg.Username, cfg.Password = "root", "wrong"
	c, err = etcdkit.New(ctx(t), cfg)
	if err == nil {
		c.Close()
	}
	require.Error(t, err, "client with a wrong password connected")

	cfg.Password = "s3cret"
	root, err := etcdkit.New(ctx(t), cfg)
	require.NoError(t, err, "connect as root")
	defer root.Close()
	mustGet(t, root.Raw(), "/auth/k", "v")
	rev := put(t, root.Raw(), "/auth/k", "w")

	// The kit's own operations still work with auth on.
	srv.Compact(t, rev)
	srv.Restart(t)
	mustGet(t, root.Raw(), "/auth/k", "w")
}

func TestRunAndClose(t *testing.T) {
	srv, err := etcdtest.Run()
	require.NoError(t, err)
	cli, err := clientv3.New(clientv3.Config{Endpoints: srv.Endpoints(), DialTimeout: 5 * time.Second})
	require.NoError(t, err)
	put(t, cli, "/run/k", "v")
	cli.Close()

	require.NoError(t, srv.Close(), "Close")
	require.NoError(t, srv.Close(), "second Close")
	require.False(t, srv.Running(), "Running() after Close")
	// Restart after Close fails the test it is given.
	ft := &fakeTB{TB: t}
	func() {
		defer func() { _ = recover() }()
		srv.Restart(ft)
	}()
	require.True(t, ft.failed, "Restart after Close did not fail")
}

func TestOptionsPassedToEmbed(t *testing.T) {
	srv := etcdtest.Start(t, etcdtest.WithEmbedConfig(func(c *embed.Config) { c.MaxTxnOps = 2 }))
	cli := srv.RawClient(t)
	ops := []clientv3.Op{clientv3.OpPut("/o/a", "1"), clientv3.OpPut("/o/b", "1"), clientv3.OpPut("/o/c", "1")}
	_, err := cli.Txn(ctx(t)).Then(ops...).Commit()
	require.ErrorIs(t, err, rpctypes.ErrTooManyOps, "txn of 3 ops with MaxTxnOps 2")
}

// fakeTB records a Fatal without ending the real test.
type fakeTB struct {
	testing.TB
	failed bool
	msg    string
}

func (f *fakeTB) Helper() {}
func (f *fakeTB) Fatal(args ...any) {
	f.failed, f.msg = true, fmt.Sprint(args...)
	panic(f)
}
func (f *fakeTB) Fatalf(format string, args ...any) { f.Fatal(fmt.Sprintf(format, args...)) }

func BenchmarkStart(b *testing.B) {
	for b.Loop() {
		srv, err := etcdtest.Run()
		require.NoError(b, err)
		srv.Close()
	}
}

func BenchmarkStartCluster3(b *testing.B) {
	for b.Loop() {
		cl := etcdtest.StartCluster(b, 3)
		cl.Close()
	}
}
