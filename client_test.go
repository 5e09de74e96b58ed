package etcdkit_test

import (
	"bytes"
	"context"
	"errors"
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
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// silentAddr returns a loopback address that accepts connections and never
// answers, like a host behind a black-holing firewall.
func silentAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
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
				t.Fatal("New succeeded against unreachable endpoints")
			}
			if !errors.Is(err, etcdkit.ErrUnavailable) {
				t.Errorf("err = %v, want ErrUnavailable", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("err %q does not mention %q", err, w)
				}
			}
			// Liveness, not a benchmark: New must not hang far past DialTimeout.
			if took > 20*dial {
				t.Errorf("New took %v with DialTimeout %v", took, dial)
			}
		})
	}
}

func TestNew_OneEndpointDownIsFine(t *testing.T) {
	t.Parallel()
	cfg := testServer.Config()
	cfg.Endpoints = append([]string{deadAddr(t)}, cfg.Endpoints...)
	cli, err := etcdkit.New(testCtx(t), cfg)
	if err != nil {
		t.Fatalf("New with one live endpoint of two: %v", err)
	}
	defer cli.Close()
	kv := etcdkit.NewKV(cli, testPrefix(t), etcdkit.String())
	if _, err := kv.Put(testCtx(t), "k", "v"); err != nil {
		t.Fatal(err)
	}
}

func TestNew_TLSMismatch(t *testing.T) {
	t.Parallel()
	srv := etcdtest.Start(t, etcdtest.WithTLS())
	hostPort := strings.TrimPrefix(srv.Endpoints()[0], "https://")

	t.Run("plain text to a TLS server", func(t *testing.T) {
		_, err := etcdkit.New(testCtx(t), etcdkit.Config{Endpoints: []string{hostPort}, DialTimeout: time.Second})
		if err == nil || !strings.Contains(err.Error(), "requires TLS") || !strings.Contains(err.Error(), hostPort) {
			t.Errorf("err = %v, want one naming %s and saying it requires TLS", err, hostPort)
		}
	})
	t.Run("unknown certificate authority", func(t *testing.T) {
		_, err := etcdkit.New(testCtx(t), etcdkit.Config{Endpoints: srv.Endpoints(), DialTimeout: time.Second})
		if err == nil || !strings.Contains(err.Error(), "TLS handshake failed") {
			t.Errorf("err = %v, want a TLS handshake failure", err)
		}
	})
	t.Run("right config works", func(t *testing.T) {
		cli, err := etcdkit.New(testCtx(t), srv.Config())
		if err != nil {
			t.Fatal(err)
		}
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
	if !errors.Is(err, etcdkit.ErrAuthFailed) {
		t.Fatalf("wrong password: err = %v, want ErrAuthFailed", err)
	}
	if strings.Contains(err.Error(), "not-the-password") {
		t.Errorf("the error prints the password: %v", err)
	}
	if !strings.Contains(err.Error(), `"root"`) {
		t.Errorf("the error does not name the user: %v", err)
	}

	cfg.Password = "root-pw-1"
	cli, err := etcdkit.New(testCtx(t), cfg)
	if err != nil {
		t.Fatalf("right password: %v", err)
	}
	defer cli.Close()
	if _, err := etcdkit.NewKV(cli, "auth/", etcdkit.String()).Put(testCtx(t), "k", "v"); err != nil {
		t.Errorf("put as root: %v", err)
	}
}

func TestClient_Close(t *testing.T) {
	t.Parallel()
	cli, err := etcdkit.New(testCtx(t), testServer.Config())
	if err != nil {
		t.Fatal(err)
	}
	kv := etcdkit.NewKV(cli, testPrefix(t), etcdkit.String())
	if err := cli.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := cli.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := kv.Get(testCtx(t), "k"); !errors.Is(err, etcdkit.ErrClosed) {
		t.Errorf("Get after Close: err = %v, want ErrClosed", err)
	}
	if _, err := kv.Put(testCtx(t), "k", "v"); !errors.Is(err, etcdkit.ErrClosed) {
		t.Errorf("Put after Close: err = %v, want ErrClosed", err)
	}
}

func TestWrap_DoesNotCloseRaw(t *testing.T) {
	t.Parallel()
	raw := testServer.RawClient(t)
	cli := etcdkit.Wrap(raw)
	kv := etcdkit.NewKV(cli, testPrefix(t), etcdkit.String())
	if _, err := kv.Put(testCtx(t), "k", "v"); err != nil {
		t.Fatal(err)
	}
	if err := cli.Close(); err != nil {
		t.Fatal(err)
	}
	resp, err := raw.Get(testCtx(t), testPrefix(t)+"k")
	if err != nil || len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "v" {
		t.Errorf("raw client after Wrap's Close: %v, %v", resp, err)
	}
	if cli.Raw() != raw {
		t.Error("Raw() is not the wrapped client")
	}
}

func TestNamespace(t *testing.T) {
	t.Parallel()
	cfg := testServer.Config()
	cfg.Namespace = testPrefix(t) + "ns/"
	cli, err := etcdkit.New(testCtx(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	kv := etcdkit.NewKV(cli, "app/", etcdkit.String())
	if _, err := kv.Put(testCtx(t), "k", "v"); err != nil {
		t.Fatal(err)
	}
	raw := testServer.RawClient(t)
	resp, err := raw.Get(testCtx(t), cfg.Namespace+"app/k")
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("key not stored under the namespace: %v, %v", resp, err)
	}
	e, err := kv.Get(testCtx(t), "k")
	if err != nil || e.Key != "k" || e.Value != "v" {
		t.Errorf("Get through the namespace = %+v, %v", e, err)
	}
	if resp, _ := raw.Get(testCtx(t), "app/k"); len(resp.Kvs) != 0 {
		t.Error("the key also exists outside the namespace")
	}
}

func TestRequestTimeout_BoundsCallsWithoutDeadline(t *testing.T) {
	t.Parallel()
	srv := etcdtest.Start(t)
	cfg := srv.Config()
	cfg.RequestTimeout = 300 * time.Millisecond
	cli, err := etcdkit.New(testCtx(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
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
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("err = %v, want DeadlineExceeded", err)
		}
		if !strings.Contains(err.Error(), `get "t/k"`) {
			t.Errorf("err %q does not say what was attempted on which key", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("a call without a deadline hung although RequestTimeout is set")
	}
}

// TestDeps checks that a service importing etcdkit never compiles etcd's server.
func TestDeps(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/etcdkit/etcdkit").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "go.etcd.io/etcd/client/v3") {
		t.Fatalf("go list output lacks clientv3, so it proves nothing:\n%s", out)
	}
	for line := range strings.SplitSeq(string(out), "\n") {
		if strings.HasPrefix(line, "go.etcd.io/etcd/server") || strings.HasPrefix(line, "go.etcd.io/raft") || strings.HasPrefix(line, "go.etcd.io/bbolt") {
			t.Errorf("etcdkit depends on %s", line)
		}
	}
}

func TestConfig_ServerLimits(t *testing.T) {
	t.Parallel()
	cfg := testServer.Config()
	cfg.MaxTxnOps, cfg.MaxRequestBytes = 2, 1024
	cli, err := etcdkit.New(testCtx(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	kv := etcdkit.NewKV(cli, testPrefix(t), etcdkit.String())
	_, err = cli.Txn(testCtx(t)).Then(kv.PutOp("a", "1"), kv.PutOp("b", "2"), kv.PutOp("c", "3")).Commit()
	if !errors.Is(err, etcdkit.ErrTooManyOps) || !strings.Contains(err.Error(), "2") {
		t.Errorf("3 ops with MaxTxnOps 2: err = %v, want ErrTooManyOps naming the limit", err)
	}
	if _, err := kv.Put(testCtx(t), "big", strings.Repeat("x", 2048)); !errors.Is(err, etcdkit.ErrTooLarge) {
		t.Errorf("2 KiB value with MaxRequestBytes 1024: err = %v, want ErrTooLarge", err)
	}
	if _, err := kv.Put(testCtx(t), "small", "x"); err != nil {
		t.Errorf("small put: %v", err)
	}
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
				t.Fatal("Close did not return while a callback was stuck")
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
