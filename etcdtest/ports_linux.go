package etcdtest

import (
	"fmt"
	"syscall"
)

// portHold keeps a loopback TCP port for one member for as long as the
// member exists, whether or not etcd is listening on it.
//
// It is a socket bound to 127.0.0.1:0 with SO_REUSEADDR that never listens.
// While it is bound, Linux never hands the port out again: not to another
// bind to port 0 (so parallel tests and parallel test processes cannot pick
// it) and not as the local port of an outgoing connection. Because it does
// not listen, etcd's own listener (Go sets SO_REUSEADDR on listeners) can
// bind the same port, and bind it again after a restart: the address
// survives [Server.Restart] without a window in which someone else could
// take it. Connections only ever reach etcd's listener.
type portHold struct {
	fd   int
	port int
}

func holdPort() (*portHold, error) {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("reserve a port: %w", err)
	}
	h := &portHold{fd: fd}
	if err := h.bind(); err != nil {
		syscall.Close(fd)
		return nil, fmt.Errorf("reserve a port: %w", err)
	}
	return h, nil
}

func (h *portHold) bind() error {
	if err := syscall.SetsockoptInt(h.fd, syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1); err != nil {
		return err
	}
	if err := syscall.Bind(h.fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		return err
	}
	sa, err := syscall.Getsockname(h.fd)
	if err != nil {
		return err
	}
	sa4, ok := sa.(*syscall.SockaddrInet4)
	if !ok {
		return fmt.Errorf("unexpected socket address %T", sa)
	}
	h.port = sa4.Port
	return nil
}

// release gives the port back. Safe to call twice.
func (h *portHold) release() {
	if h.fd >= 0 {
		syscall.Close(h.fd)
		h.fd = -1
	}
}
