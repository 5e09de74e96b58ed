package admin_test

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/etcdkit/etcdkit/etcdtest"
	"github.com/etcdkit/etcdkit/internal/testmain"
)

// testCluster is the 3-member cluster shared by the tests that leave it as
// they found it; tests that stop members, fill the quota or defragment
// start their own.
var testCluster *etcdtest.Cluster

func TestMain(m *testing.M) {
	testmain.Run(m, "embedded etcd cluster", func() (io.Closer, error) {
		c, err := etcdtest.RunCluster(3)
		testCluster = c
		return c, err
	})
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
