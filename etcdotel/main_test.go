package etcdotel_test

import (
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/etcdkit/etcdkit/etcdtest"
)

// testServer is the one embedded etcd shared by this package's tests. Tests
// that stop, restart or reconfigure a server start their own.
var testServer *etcdtest.Server

func TestMain(m *testing.M) {
	srv, err := etcdtest.Run()
	if err != nil {
		fmt.Fprintln(os.Stderr, "start embedded etcd:", err)
		os.Exit(1)
	}
	testServer = srv
	code := m.Run()
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
