package etcdotel_test

import (
	"io"
	"testing"

	"github.com/etcdkit/etcdkit/etcdtest"
	"github.com/etcdkit/etcdkit/internal/testmain"
)

// testServer is the one embedded etcd shared by this package's tests. Tests
// that stop, restart or reconfigure a server start their own.
var testServer *etcdtest.Server

func TestMain(m *testing.M) {
	testmain.Run(m, "embedded etcd", func() (io.Closer, error) {
		srv, err := etcdtest.Run()
		testServer = srv
		return srv, err
	})
}
