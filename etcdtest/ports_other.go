//go:build !linux

package etcdtest

import (
	"fmt"
	"net"
)

// portHold is a loopback TCP port picked by the kernel. Outside Linux it is
// only reserved until etcd binds it: the port is found by listening on
// 127.0.0.1:0 and closing the listener at once, so in rare cases another
// program can take it before etcd does, or while a stopped member waits for
// [Server.Restart]. Start retries with new ports when that happens.
type portHold struct {
	port int
}

func holdPort() (*portHold, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("reserve a port: %w", err)
	}
	defer l.Close()
	return &portHold{port: l.Addr().(*net.TCPAddr).Port}, nil
}

func (h *portHold) release() {}
