// Package endpoint parses etcd client URLs the way clientv3 does, and dials
// them itself to explain why one does not answer.
package endpoint

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync"
	"syscall"
)

// Endpoint is a parsed etcd client URL, interpreted the way clientv3 does.
type Endpoint struct {
	raw     string
	network string // "tcp" or "unix"
	addr    string
	scheme  string // "", "http", "https", "unix", "unixs"
}

// Parse parses an etcd client URL: host:port, http(s)://host:port or
// unix(s)://path. Its errors name the endpoint.
func Parse(ep string) (Endpoint, error) {
	e := Endpoint{raw: ep, network: "tcp"}
	switch {
	case ep == "":
		return e, errors.New("empty endpoint")
	case strings.HasPrefix(ep, "unix:") || strings.HasPrefix(ep, "unixs:"):
		scheme, rest, _ := strings.Cut(ep, ":")
		e.scheme, e.network = scheme, "unix"
		e.addr = strings.TrimPrefix(rest, "//")
	case strings.Contains(ep, "://"):
		u, err := url.Parse(ep)
		if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			return e, fmt.Errorf("endpoint %q: want host:port, http(s)://host:port or unix(s)://path", ep)
		}
		e.scheme, e.addr = u.Scheme, u.Host
	default:
		e.addr = ep
	}
	if e.addr == "" {
		return e, fmt.Errorf("endpoint %q has no address", ep)
	}
	return e, nil
}

// Addr returns the endpoint's address: host:port, or a unix socket's path.
func (e Endpoint) Addr() string { return e.addr }

// usesTLS reports whether clientv3 will speak TLS to this endpoint.
func (e Endpoint) usesTLS(cfg *tls.Config) bool {
	switch e.scheme {
	case "https", "unixs":
		return true
	case "http":
		return false
	}
	return cfg != nil
}

// Probe dials the endpoint itself so that a failure can be explained: refused,
// timed out, no such host, TLS mismatch. gRPC would only say "deadline exceeded".
func (e Endpoint) Probe(ctx context.Context, tlsCfg *tls.Config) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, e.network, e.addr)
	if err != nil {
		return explainDial(err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	if e.usesTLS(tlsCfg) {
		return e.probeTLS(ctx, conn, tlsCfg)
	}
	if err := probePlain(conn); err != nil {
		if e.speaksTLS(ctx) {
			return errors.New("the server requires TLS but no TLS config was given")
		}
		return err
	}
	return nil
}

// speaksTLS reports whether the endpoint completes a TLS handshake, whatever
// its certificate: a server that hangs up on plain text may just want TLS.
func (e Endpoint) speaksTLS(ctx context.Context) bool {
	var d net.Dialer
	conn, err := d.DialContext(ctx, e.network, e.addr)
	if err != nil {
		return false
	}
	defer conn.Close()
	// Only the handshake's success is used; nothing is sent over it.
	tc := tls.Client(conn, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}) //nolint:gosec // diagnosis only
	return tc.HandshakeContext(ctx) == nil
}

func (e Endpoint) probeTLS(ctx context.Context, conn net.Conn, cfg *tls.Config) error {
	if cfg == nil {
		cfg = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	cfg = cfg.Clone()
	// etcd serves gRPC and HTTP on one TLS port and tells them apart by ALPN.
	cfg.NextProtos = []string{"h2"}
	if cfg.ServerName == "" {
		host, _, err := net.SplitHostPort(e.addr)
		if err != nil {
			host = e.addr
		}
		cfg.ServerName = host
	}
	tc := tls.Client(conn, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		if isTimeout(err) {
			return errors.New("TLS handshake timed out (is the server speaking TLS?)")
		}
		return fmt.Errorf("TLS handshake failed: %w", err)
	}
	// With TLS 1.3 a server rejects the client's certificate only after the
	// client's side of the handshake is done: the first read tells.
	if err := probePlain(tc); err != nil {
		var alert tls.AlertError
		if errors.As(err, &alert) || strings.Contains(err.Error(), "remote error") {
			return fmt.Errorf("the server refused the client certificate: %w", err)
		}
		return err
	}
	return nil
}

// http2Preface is what a gRPC client sends first on a plain-text connection.
var http2Preface = []byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")

// probePlain sends the HTTP/2 preface and reads the first bytes back: a TLS
// server answers with a TLS record (or hangs up), an etcd server with a frame.
func probePlain(conn net.Conn) error {
	if _, err := conn.Write(http2Preface); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	buf := make([]byte, 3)
	n, err := conn.Read(buf)
	if n >= 3 && (buf[0] == 0x15 || buf[0] == 0x16) && buf[1] == 0x03 {
		return errors.New("the server requires TLS but no TLS config was given")
	}
	if n >= 3 && bytes.HasPrefix(buf, []byte("HTT")) {
		return errors.New("the server speaks HTTP/1, not gRPC: is this an etcd client URL?")
	}
	if err != nil && n == 0 {
		var alert tls.AlertError
		if errors.As(err, &alert) || strings.Contains(err.Error(), "remote error") {
			return err
		}
		if isTimeout(err) {
			return errors.New("no answer to the gRPC handshake (timed out)")
		}
		return errors.New("the server closed the connection during the gRPC handshake (does it require TLS?)")
	}
	return nil
}

func explainDial(err error) error {
	var dnsErr *net.DNSError
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return errors.New("connection refused (nothing listens there)")
	case errors.Is(err, syscall.ENOENT):
		return errors.New("no such socket file")
	case errors.As(err, &dnsErr):
		return fmt.Errorf("cannot resolve host: %w", err)
	case isTimeout(err):
		return errors.New("dial timed out")
	}
	return err
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, errTimeout) || (errors.As(err, &ne) && ne.Timeout())
}

var errTimeout = errors.New("timeout")

// Error names one endpoint and why it failed.
type Error struct {
	Endpoint string
	Err      error
}

func (e *Error) Error() string { return e.Endpoint + ": " + e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// ProbeAll probes every endpoint at once, and returns those that answer and,
// in the same order as endpoints, an [*Error] for each that does not.
// Every endpoint must have parsed.
func ProbeAll(ctx context.Context, endpoints []string, tlsCfg *tls.Config) (reachable []string, failed []error) {
	errs := make([]error, len(endpoints))
	var wg sync.WaitGroup
	for i, raw := range endpoints {
		wg.Go(func() {
			ep, _ := Parse(raw) // validated already
			if err := ep.Probe(ctx, tlsCfg); err != nil {
				errs[i] = &Error{Endpoint: raw, Err: err}
			}
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			failed = append(failed, err)
		} else {
			reachable = append(reachable, endpoints[i])
		}
	}
	return reachable, failed
}
