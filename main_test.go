package etcdkit_test

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/etcdkit/etcdkit"
	"github.com/etcdkit/etcdkit/etcdtest"
	"github.com/etcdkit/etcdkit/internal/testmain"
)

// testServer is the one embedded etcd shared by this package's tests and
// examples. Tests that stop, restart or compact a server start their own.
var testServer *etcdtest.Server

func TestMain(m *testing.M) {
	testmain.Run(m, "embedded etcd", func() (io.Closer, error) {
		srv, err := etcdtest.Run()
		testServer = srv
		return srv, err
	}, closeExampleClient)
}

// newClient returns a client of the shared server, closed when t ends.
func newClient(t testing.TB) *etcdkit.Client {
	t.Helper()
	return testServer.Client(t)
}

// testCtx returns a context that ends with t, bounded so a hung call fails
// the test instead of the whole run.
func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// testPrefix returns a key prefix no other test uses.
func testPrefix(t testing.TB) string {
	return strings.NewReplacer("/", "_", " ", "_").Replace(t.Name()) + "/"
}
