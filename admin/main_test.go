package admin_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/etcdkit/etcdkit/etcdtest"
)

// testCluster is the 3-member cluster shared by the tests that leave it as
// they found it; tests that stop members, fill the quota or defragment
// start their own.
var testCluster *etcdtest.Cluster

func TestMain(m *testing.M) {
	c, err := etcdtest.RunCluster(3)
	if err != nil {
		fmt.Fprintln(os.Stderr, "start embedded etcd cluster:", err)
		os.Exit(1)
	}
	testCluster = c
	code := m.Run()
	if err := c.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "stop embedded etcd cluster:", err)
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

// testCtx returns a context that ends with t, bounded so that a hung call
// fails the test instead of the whole run.
func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// prefix returns a key prefix no other test uses.
func prefix(t testing.TB) string {
	return "/" + strings.NewReplacer("/", "_", " ", "_").Replace(t.Name()) + "/"
}
