package etcdtest_test

import (
	"net"
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/etcdkit/etcdkit/etcdtest"
)

// TestPortHeldWhileStopped checks that the kernel never hands a stopped
// server's port to anyone asking for a free one, so Restart finds it free.
func TestPortHeldWhileStopped(t *testing.T) {
	srv := etcdtest.Start(t)
	u, err := url.Parse(srv.Endpoints()[0])
	require.NoError(t, err)
	srv.Stop()
	for range 2000 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		got := l.Addr().String()
		l.Close()
		require.NotEqual(t, u.Host, got, "the kernel handed out the stopped server's address")
	}
	srv.Restart(t)
	put(t, srv.RawClient(t), "/held", "v")
}
