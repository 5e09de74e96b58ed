package etcdtest_test

import (
	"net"
	"net/url"
	"testing"

	"github.com/etcdkit/etcdkit/etcdtest"
)

// TestPortHeldWhileStopped checks that the kernel never hands a stopped
// server's port to anyone asking for a free one, so Restart finds it free.
func TestPortHeldWhileStopped(t *testing.T) {
	srv := etcdtest.Start(t)
	u, err := url.Parse(srv.Endpoints()[0])
	if err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	for range 2000 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		got := l.Addr().String()
		l.Close()
		if got == u.Host {
			t.Fatalf("the kernel handed out %s, the stopped server's address", got)
		}
	}
	srv.Restart(t)
	put(t, srv.RawClient(t), "/held", "v")
}
