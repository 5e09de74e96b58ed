package etcdkit_test

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/etcdkit/etcdkit"
	"github.com/etcdkit/etcdkit/etcdtest"
)

// deadAddr returns a loopback address nothing listens on.
func deadAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	l.Close()
	return addr
}

// silentAddr returns a loopback address that accepts connections and never
// answers, like a host behind a black-holing firewall.
func silentAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan struct{})
	go func() {
		defer close(done)
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	t.Cleanup(func() { l.Close(); <-done })
	return l.Addr().String()
}

func TestNew_UnreachableEndpoints(t *testing.T) {
	t.Parallel()
	dead, silent := deadAddr(t), silentAddr(t)
	tests := []struct {
		name      string
		endpoints []string
		want      []string
	}{
		{"refused", []string{dead}, []string{dead, "connection refused"}},
		{"silent", []string{silent}, []string{silent, "timed out"}},
		{"no socket file", []string{"unix:///nonexistent/etcd.sock"}, []string{"unix:///nonexistent/etcd.sock", "no such socket file"}},
		{"every endpoint named", []string{dead, silent}, []string{dead, "connection refused", silent, "timed out"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			const dial = 300 * time.Millisecond
			start := time.Now()
			cli, err := etcdkit.New(testCtx(t), etcdkit.Config{Endpoints: tt.endpoints, DialTimeout: dial})
			took := time.Since(start)
			if err == nil {
				cli.Close()
			}
			require.Error(t, err, "New succeeded against unreachable endpoints")
			assert.ErrorIs(t, err, etcdkit.ErrUnavailable)
			for _, w := range tt.want {
				assert.ErrorContains(t, err, w)
			}
			// Liveness, not a benchmark: New must not hang far past DialTimeout.
			assert.LessOrEqual(t, took, 20*dial, "New took %v with DialTimeout %v", took, dial)
		})
	}
}

func TestNew_OneEndpointDownIsFine(t *testing.T) {
	t.Parallel()
	cfg := testServer.Config()
	cfg.Endpoints = append([]string{deadAddr(t)}, cfg.Endpoints...)
	cli, err := etcdkit.New(testCtx(t), cfg)
	require.NoError(t, err, "New with one live endpoint of two")
	defer cli.Close()
	kv := etcdkit.NewKV(cli, testPrefix(t), etcdkit.String())
	_, err = kv.Put(testCtx(t), "k", "v")
	require.NoError(t, err)
}

func TestNew_TLSMismatch(t *testing.T) {
	t.Parallel()
	srv := etcdtest.Start(t, etcdtest.WithTLS())
	hostPort := strings.TrimPrefix(srv.Endpoints()[0], "https://")

	t.Run("plain text to a TLS server", func(t *testing.T) {
		_, err := etcdkit.New(testCtx(t), etcdkit.Config{Endpoints: []string{hostPort}, DialTimeout: time.Second})
		assert.ErrorContains(t, err, "requires TLS")
		assert.ErrorContains(t, err, hostPort, "want the error to name the endpoint")
	})
	t.Run("unknown certificate authority", func(t *testing.T) {
		// A handshake refused is told apart from one that timed out: give
		// the handshake time enough on a loaded machine.
		_, err := etcdkit.New(testCtx(t), etcdkit.Config{Endpoints: srv.Endpoints(), DialTimeout: 10 * time.Second})
		assert.ErrorContains(t, err, "TLS handshake failed")
	})
	t.Run("right config works", func(t *testing.T) {
		cli, err := etcdkit.New(testCtx(t), srv.Config())
		require.NoError(t, err)
		cli.Close()
	})
}

func TestNew_Auth(t *testing.T) {
	t.Parallel()
	srv := etcdtest.Start(t)
	srv.EnableAuth(t, "root-pw-1")
	cfg := srv.Config()

	cfg.Username, cfg.Password = "root", "not-the-password"
	_, err := etcdkit.New(testCtx(t), cfg)
	require.ErrorIs(t, err, etcdkit.ErrAuthFailed, "wrong password")
	assert.NotContains(t, err.Error(), "not-the-password", "the error prints the password")
	assert.ErrorContains(t, err, `"root"`, "the error does not name the user")

	cfg.Password = "root-pw-1"
	cli, err := etcdkit.New(testCtx(t), cfg)
	require.NoError(t, err, "right password")
	defer cli.Close()
	_, err = etcdkit.NewKV(cli, "auth/", etcdkit.String()).Put(testCtx(t), "k", "v")
	assert.NoError(t, err, "put as root")
}

func TestClient_Close(t *testing.T) {
	t.Parallel()
	cli, err := etcdkit.New(testCtx(t), testServer.Config())
	require.NoError(t, err)
	kv := etcdkit.NewKV(cli, testPrefix(t), etcdkit.String())
	require.NoError(t, cli.Close(), "Close")
	require.NoError(t, cli.Close(), "second Close")
	_, err = kv.Get(testCtx(t), "k")
	assert.ErrorIs(t, err, etcdkit.ErrClosed, "Get after Close")
	_, err = kv.Put(testCtx(t), "k", "v")
	assert.ErrorIs(t, err, etcdkit.ErrClosed, "Put after Close")
}

func TestWrap_DoesNotCloseRaw(t *testing.T) {
	t.Parallel()
	raw := testServer.RawClient(t)
	cli := etcdkit.Wrap(raw)
	kv := etcdkit.NewKV(cli, testPrefix(t), etcdkit.String())
	_, err := kv.Put(testCtx(t), "k", "v")
	require.NoError(t, err)
	require.NoError(t, cli.Close())
	resp, err := raw.Get(testCtx(t), testPrefix(t)+"k")
	if assert.NoError(t, err, "raw client after Wrap's Close") && assert.Len(t, resp.Kvs, 1, "raw client after Wrap's Close") {
		assert.Equal(t, "v", string(resp.Kvs[0].Value), "raw client after Wrap's Close")
	}
	assert.Same(t, raw, cli.Raw(), "Raw() is not the wrapped client")
}

func TestNamespace(t *testing.T) {
	t.Parallel()
	cfg := testServer.Config()
	cfg.Namespace = testPrefix(t) + "ns/"
	cli, err := etcdkit.New(testCtx(t), cfg)
	require.NoError(t, err)
	defer cli.Close()
	kv := etcdkit.NewKV(cli, "app/", etcdkit.String())
	_, err = kv.Put(testCtx(t), "k", "v")
	require.NoError(t, err)
	raw := testServer.RawClient(t)
	resp, err := raw.Get(testCtx(t), cfg.Namespace+"app/k")
	require.NoError(t, err, "key not stored under the namespace")
	require.Len(t, resp.Kvs, 1, "key not stored under the namespace")
	e, err := kv.Get(testCtx(t), "k")
	assert.NoError(t, err, "Get through the namespace")
	assert.Equal(t, "k", e.Key, "Get through the namespace")
	assert.Equal(t, "v", e.Value, "Get through the namespace")
	resp, _ = raw.Get(testCtx(t), "app/k")
	assert.Empty(t, resp.Kvs, "the key also exists outside the namespace")
}

func TestRequestTimeout_BoundsCallsWithoutDeadline(t *testing.T) {
	t.Parallel()
	srv := etcdtest.Start(t)
	cfg := srv.Config()
	cfg.RequestTimeout = 300 * time.Millisecond
	cli, err := etcdkit.New(testCtx(t), cfg)
	require.NoError(t, err)
	defer cli.Close()
	kv := etcdkit.NewKV(cli, "t/", etcdkit.String())
	srv.Stop()
	done := make(chan error, 1)
	go func() {
		_, err := kv.Get(context.Background(), "k")
		done <- err
	}()
	select {
	case err := <-done:
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		assert.ErrorContains(t, err, `get "t/k"`, "the error does not say what was attempted on which key")
	case <-time.After(20 * time.Second):
		require.FailNow(t, "a call without a deadline hung although RequestTimeout is set")
	}
}

// TestDeps checks that a service importing etcdkit never compiles etcd's server.
func TestDeps(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/etcdkit/etcdkit").CombinedOutput()
	require.NoError(t, err, "go list:\n%s", out)
	require.Contains(t, string(out), "go.etcd.io/etcd/client/v3", "go list output lacks clientv3, so it proves nothing")
	for line := range strings.SplitSeq(string(out), "\n") {
		server := strings.HasPrefix(line, "go.etcd.io/etcd/server") || strings.HasPrefix(line, "go.etcd.io/raft") || strings.HasPrefix(line, "go.etcd.io/bbolt")
		assert.False(t, server, "etcdkit depends on %s", line)
	}
}

func TestConfig_ServerLimits(t *testing.T) {
	t.Parallel()
	cfg := testServer.Config()
	cfg.MaxTxnOps, cfg.MaxRequestBytes = 2, 1024
	cli, err := etcdkit.New(testCtx(t), cfg)
	require.NoError(t, err)
	defer cli.Close()
	kv := etcdkit.NewKV(cli, testPrefix(t), etcdkit.String())
	_, err = cli.Txn(testCtx(t)).Then(kv.PutOp("a", "1"), kv.PutOp("b", "2"), kv.PutOp("c", "3")).Commit()
	assert.ErrorIs(t, err, etcdkit.ErrTooManyOps, "3 ops with MaxTxnOps 2")
	assert.ErrorContains(t, err, "2", "3 ops with MaxTxnOps 2: want the error to name the limit")
	_, err = kv.Put(testCtx(t), "big", strings.Repeat("x", 2048))
	assert.ErrorIs(t, err, etcdkit.ErrTooLarge, "2 KiB value with MaxRequestBytes 1024")
	_, err = kv.Put(testCtx(t), "small", "x")
	assert.NoError(t, err, "small put")
}

// lockedBuffer is a bytes.Buffer safe for concurrent writes, for a logger.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestClient_CloseDoesNotWaitForStuckCallback checks that a callback of the
// caller's that never returns does not hang Close, and that Close names it.
func TestClient_CloseDoesNotWaitForStuckCallback(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		// start makes a handle whose callback runs block after the next
		// write of "k", and returns the handle's Done channel.
		start func(t *testing.T, kv *etcdkit.KV[string], block func()) <-chan struct{}
	}{
		{name: "OnEntryChange", start: func(t *testing.T, kv *etcdkit.KV[string], block func()) <-chan struct{} {
			m, err := kv.Mirror(testCtx(t), etcdkit.OnEntryChange(func(string, *etcdkit.Entry[string], *etcdkit.Entry[string]) { block() }))
			require.NoError(t, err)
			return m.Done()
		}},
		{name: "OnChange", start: func(t *testing.T, kv *etcdkit.KV[string], block func()) <-chan struct{} {
			kvMustPut(t, kv, "k", "first")
			l, err := kv.Follow(testCtx(t), "k", etcdkit.OnChange(func(string, string) { block() }))
			require.NoError(t, err)
			return l.Done()
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var logged lockedBuffer
			c := testServer.Client(t, etcdtest.WithClientConfig(func(cfg *etcdkit.Config) {
				cfg.Logger = slog.New(slog.NewTextHandler(&logged, nil))
			}))
			kv := etcdkit.NewKV(c, testPrefix(t), etcdkit.String())
			entered, release := make(chan struct{}, 1), make(chan struct{})
			var once sync.Once
			t.Cleanup(func() { once.Do(func() { close(release) }) })
			done := tc.start(t, kv, func() {
				select {
				case entered <- struct{}{}:
				default:
				}
				<-release
			})
			kvMustPut(t, kv, "k", "secret-value")
			recv(t, entered, "the callback")

			closed := make(chan error, 1)
			go func() { closed <- c.Close() }()
			select {
			case err := <-closed:
				require.NoError(t, err)
			case <-time.After(10 * time.Second):
				require.FailNow(t, "Close did not return while a callback was stuck")
			}
			out := logged.String()
			assert.Contains(t, out, "callback has not returned")
			assert.Contains(t, out, "callback="+tc.name)
			assert.Contains(t, out, testPrefix(t))
			assert.NotContains(t, out, "secret-value")

			once.Do(func() { close(release) })
			recv(t, done, "the handle's end once the callback returned")
		})
	}
}
