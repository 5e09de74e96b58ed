package discovery_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/etcdkit/etcdkit"
	"github.com/etcdkit/etcdkit/etcdtest"
	"github.com/etcdkit/etcdkit/internal/testmain"
)

// testServer is the one embedded etcd shared by this package's tests.
// Tests that restart or wipe a server start their own.
var testServer *etcdtest.Server

func TestMain(m *testing.M) {
	testmain.Run(m, "embedded etcd", func() (io.Closer, error) {
		srv, err := etcdtest.Run()
		testServer = srv
		return srv, err
	}, closeExampleClient)
}

// testCtx returns a context that ends with t, bounded so that a hung call
// fails the test instead of the whole run.
func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// serviceName returns a service name no other test uses.
func serviceName(t testing.TB) string {
	return strings.NewReplacer("/", "_", " ", "_").Replace(t.Name())
}

// waitFor calls cond every 50ms until it returns true, and fails t with
// what if that does not happen within limit.
func waitFor(t testing.TB, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			require.FailNow(t, fmt.Sprintf("%s: not after %v", what, limit))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// cutter is a TCP forwarder to an etcd server: a client that connects
// through it loses its connection, as a killed process would, when Cut is
// called, while the server and every other client go on.
type cutter struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	conns []net.Conn
	cut   bool
	wg    sync.WaitGroup
}

func newCutter(t testing.TB, srv *etcdtest.Server) *cutter {
	t.Helper()
	u, err := url.Parse(srv.Endpoints()[0])
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	c := &cutter{ln: ln, target: u.Host}
	c.wg.Go(c.accept)
	t.Cleanup(c.Cut)
	return c
}

// client connects an etcdkit client through the forwarder; the test closes it.
func (c *cutter) client(t testing.TB) *etcdkit.Client {
	t.Helper()
	cli, err := etcdkit.New(testCtx(t), etcdkit.Config{Endpoints: []string{"http://" + c.ln.Addr().String()}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = cli.Close() })
	return cli
}

func (c *cutter) accept() {
	for {
		down, err := c.ln.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", c.target)
		if err != nil {
			down.Close()
			continue
		}
		c.mu.Lock()
		if c.cut {
			c.mu.Unlock()
			down.Close()
			up.Close()
			return
		}
		c.conns = append(c.conns, down, up)
		c.mu.Unlock()
		c.wg.Go(func() { pipe(down, up) })
		c.wg.Go(func() { pipe(up, down) })
	}
}

func pipe(dst, src net.Conn) {
	_, _ = io.Copy(dst, src)
	dst.Close()
	src.Close()
}

// Cut drops every connection and refuses new ones. It is safe to call twice.
func (c *cutter) Cut() {
	c.mu.Lock()
	c.cut = true
	conns := c.conns
	c.conns = nil
	c.mu.Unlock()
	c.ln.Close()
	for _, conn := range conns {
		conn.Close()
	}
	c.wg.Wait()
}
