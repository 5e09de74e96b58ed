package etcdkit

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"google.golang.org/grpc"

	"github.com/etcdkit/etcdkit/internal/endpoint"
)

// Defaults applied by [New] to the zero fields of a [Config].
const (
	DefaultEndpoint       = "127.0.0.1:2379"
	DefaultDialTimeout    = 5 * time.Second
	DefaultRequestTimeout = 5 * time.Second
	// DefaultMaxTxnOps is etcd's default --max-txn-ops.
	DefaultMaxTxnOps = 128
	// DefaultMaxRequestBytes is etcd's default --max-request-bytes (1.5 MiB).
	DefaultMaxRequestBytes = 1572864
)

// Config says how to reach etcd. The zero value is usable: it connects to
// $ETCD_ENDPOINTS, else [DefaultEndpoint], with the default timeouts.
//
// Config never prints its password: String and LogValue redact it.
type Config struct {
	// Endpoints are the etcd client URLs, e.g. "127.0.0.1:2379",
	// "https://etcd-0:2379" or "unix:///run/etcd.sock".
	// Default: $ETCD_ENDPOINTS (comma-separated), else [DefaultEndpoint].
	Endpoints []string

	// DialTimeout bounds how long New waits for an endpoint to answer.
	// Default: [DefaultDialTimeout].
	DialTimeout time.Duration

	// RequestTimeout bounds each unary call whose ctx has no deadline of its own.
	// A ctx that already has a deadline keeps it. A listing's stream (see
	// [KV.List]) that sends nothing for this long is given up, and the
	// listing reads on from the last entry it yielded.
	// Default: [DefaultRequestTimeout].
	RequestTimeout time.Duration

	// Username and Password authenticate with etcd's auth (RBAC). Both or neither.
	// The password is never printed.
	Username, Password string

	// TLS, when set, is used for every endpoint. Endpoints with an https:// or
	// unixs:// scheme and no TLS get a default TLS config that verifies the
	// server against the system roots. Default: nil (plain text).
	TLS *tls.Config

	// Namespace is a key prefix under which every key of this client lives, so
	// that several applications can share one cluster; the namespace is invisible
	// to the caller. Default: "" (the whole keyspace).
	Namespace string

	// Logger receives the client's own log lines and those of clientv3 for
	// this client. Every event an [Observer] is told of (a [Notice]) is
	// also logged at debug level, with the prefix it concerns (not the key)
	// and, for a failure, its error. Default: a logger that discards
	// everything.
	Logger *slog.Logger

	// MaxTxnOps is the server's --max-txn-ops: a transaction with more
	// operations in a branch is refused with [ErrTooManyOps] before it is
	// sent. Set it to the cluster's value if it was changed.
	// Default: [DefaultMaxTxnOps].
	MaxTxnOps int

	// MaxRequestBytes is the server's --max-request-bytes: a write over it is
	// refused with [ErrTooLarge] before it is sent. Set it to the cluster's
	// value if it was changed. Default: [DefaultMaxRequestBytes].
	MaxRequestBytes int

	// UnaryInterceptors and StreamInterceptors are added to clientv3's gRPC
	// connection, inside clientv3's own interceptors (which retry and refresh
	// auth tokens), in the order given: each sees every attempt of a call.
	// They are chained, never installed with grpc.WithUnaryInterceptor, which
	// would silently replace clientv3's retries. Default: none.
	UnaryInterceptors  []grpc.UnaryClientInterceptor
	StreamInterceptors []grpc.StreamClientInterceptor

	// Observer is told of every operation and of the events between them
	// (watch resumes, lease and lock losses, leader changes); package
	// etcdotel gives one that records OpenTelemetry spans and metrics.
	// When it is set, New puts a unary interceptor first among
	// UnaryInterceptors, which notes the member that answered each request
	// of an observed operation ([Operation.Server]).
	// Default: nil, which observes nothing and costs nothing.
	Observer Observer
}

// Environment variables read by [ConfigFromEnv].
const (
	EnvEndpoints = "ETCD_ENDPOINTS"
	EnvUsername  = "ETCD_USERNAME"
	EnvPassword  = "ETCD_PASSWORD"
	EnvCACert    = "ETCD_CACERT"
	EnvCert      = "ETCD_CERT"
	EnvKey       = "ETCD_KEY"
	EnvNamespace = "ETCD_NAMESPACE"
)

// ConfigFromEnv builds a Config from ETCD_ENDPOINTS (comma-separated),
// ETCD_USERNAME, ETCD_PASSWORD, ETCD_CACERT, ETCD_CERT, ETCD_KEY and
// ETCD_NAMESPACE. Unset variables leave their field at its default. It fails
// when a certificate file cannot be read or parsed, or when only one of
// ETCD_CERT and ETCD_KEY is set.
func ConfigFromEnv() (Config, error) {
	cfg := Config{
		Endpoints: splitEndpoints(os.Getenv(EnvEndpoints)),
		Username:  os.Getenv(EnvUsername),
		Password:  os.Getenv(EnvPassword),
		Namespace: os.Getenv(EnvNamespace),
	}
	tlsCfg, err := tlsFromFiles(os.Getenv(EnvCACert), os.Getenv(EnvCert), os.Getenv(EnvKey))
	if err != nil {
		return Config{}, err
	}
	cfg.TLS = tlsCfg
	return cfg, nil
}

func splitEndpoints(s string) []string {
	var eps []string
	for ep := range strings.SplitSeq(s, ",") {
		if ep = strings.TrimSpace(ep); ep != "" {
			eps = append(eps, ep)
		}
	}
	return eps
}

// tlsFromFiles returns nil when no file is named: plain text is then the default.
func tlsFromFiles(caFile, certFile, keyFile string) (*tls.Config, error) {
	if caFile == "" && certFile == "" && keyFile == "" {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("etcdkit: read %s: %w", EnvCACert, err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("etcdkit: %s %q holds no PEM certificate", EnvCACert, caFile)
		}
	}
	if (certFile == "") != (keyFile == "") {
		return nil, fmt.Errorf("etcdkit: %s and %s must be set together", EnvCert, EnvKey)
	}
	if certFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			// The error names files, never key material.
			return nil, fmt.Errorf("etcdkit: load client certificate %q: %w", certFile, err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// withDefaults fills every zero field; it is the one place defaults live.
func (cfg Config) withDefaults() Config {
	if len(cfg.Endpoints) == 0 {
		cfg.Endpoints = splitEndpoints(os.Getenv(EnvEndpoints))
	}
	if len(cfg.Endpoints) == 0 {
		cfg.Endpoints = []string{DefaultEndpoint}
	}
	if cfg.DialTimeout == 0 {
		cfg.DialTimeout = DefaultDialTimeout
	}
	if cfg.RequestTimeout == 0 {
		cfg.RequestTimeout = DefaultRequestTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxTxnOps == 0 {
		cfg.MaxTxnOps = DefaultMaxTxnOps
	}
	if cfg.MaxRequestBytes == 0 {
		cfg.MaxRequestBytes = DefaultMaxRequestBytes
	}
	return cfg
}

func (cfg Config) validate() error {
	var errs []error
	if cfg.DialTimeout < 0 {
		errs = append(errs, fmt.Errorf("DialTimeout %v is negative", cfg.DialTimeout))
	}
	if cfg.RequestTimeout < 0 {
		errs = append(errs, fmt.Errorf("RequestTimeout %v is negative", cfg.RequestTimeout))
	}
	if cfg.MaxTxnOps < 0 {
		errs = append(errs, fmt.Errorf("MaxTxnOps %d is negative", cfg.MaxTxnOps))
	}
	if cfg.MaxRequestBytes < 0 {
		errs = append(errs, fmt.Errorf("MaxRequestBytes %d is negative", cfg.MaxRequestBytes))
	}
	if (cfg.Username == "") != (cfg.Password == "") {
		errs = append(errs, errors.New("both Username and Password must be set, or neither"))
	}
	for _, ep := range cfg.Endpoints {
		if _, err := endpoint.Parse(ep); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("etcdkit: invalid config: %w", err)
	}
	return nil
}

const redacted = "[REDACTED]"

// String describes the config with its password redacted.
func (cfg Config) String() string {
	pw := ""
	if cfg.Password != "" {
		pw = redacted
	}
	return fmt.Sprintf("etcdkit.Config{Endpoints:%v DialTimeout:%v RequestTimeout:%v Username:%q Password:%q TLS:%t Namespace:%q}",
		cfg.Endpoints, cfg.DialTimeout, cfg.RequestTimeout, cfg.Username, pw, cfg.TLS != nil, cfg.Namespace)
}

// GoString is String, so that %#v redacts the password too.
func (cfg Config) GoString() string { return cfg.String() }

// LogValue makes slog print the config with its password redacted.
func (cfg Config) LogValue() slog.Value {
	attrs := []slog.Attr{
		slog.Any("endpoints", cfg.Endpoints),
		slog.Duration("dial_timeout", cfg.DialTimeout),
		slog.Duration("request_timeout", cfg.RequestTimeout),
		slog.String("username", cfg.Username),
		slog.Bool("tls", cfg.TLS != nil),
		slog.String("namespace", cfg.Namespace),
	}
	if cfg.Password != "" {
		attrs = append(attrs, slog.String("password", redacted))
	}
	return slog.GroupValue(attrs...)
}

// dialOptions chains the configured interceptors after clientv3's own, with
// the one that tells an Observer which member answered before them.
func (cfg Config) dialOptions() []grpc.DialOption {
	var opts []grpc.DialOption
	unary := cfg.UnaryInterceptors
	if cfg.Observer != nil {
		// First in the chain, so that it sees what the caller's see.
		unary = append([]grpc.UnaryClientInterceptor{observeServer}, unary...)
	}
	if len(unary) > 0 {
		opts = append(opts, grpc.WithChainUnaryInterceptor(unary...))
	}
	if len(cfg.StreamInterceptors) > 0 {
		opts = append(opts, grpc.WithChainStreamInterceptor(cfg.StreamInterceptors...))
	}
	return opts
}
