package etcdkit_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/etcdkit/etcdkit"
	"github.com/etcdkit/etcdkit/etcdtest"
)

// testServer is the one embedded etcd shared by this package's tests and
// examples. Tests that stop, restart or compact a server start their own.
var testServer *etcdtest.Server

func TestMain(m *testing.M) {
	srv, err := etcdtest.Run()
	if err != nil {
		fmt.Fprintln(os.Stderr, "start embedded etcd:", err)
		os.Exit(1)
	}
	testServer = srv
	code := m.Run()
	closeExampleClient()
	if err := srv.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "stop embedded etcd:", err)
		code = 1
	}
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "leaked goroutines:", err)
			code = 1
		}
	}
	os.Exit(code)
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
