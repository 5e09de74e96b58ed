package etcdtest

import (
	"context"

	"github.com/etcdkit/etcdkit"
)

// ConfigFromEnvOrRun is for programs that should work with or without an
// etcd at hand, such as demos and local tools: it returns
// [etcdkit.ConfigFromEnv] when ETCD_ENDPOINTS is set, and otherwise starts an
// embedded server (see [Run]) and returns a config for it. Call stop when
// done: it stops the embedded server, if one was started. It fails with
// ConfigFromEnv's error (a certificate that cannot be read) or Run's, and
// stop is nil then.
func ConfigFromEnvOrRun(opts ...Option) (cfg etcdkit.Config, stop func(), err error) {
	cfg, err = etcdkit.ConfigFromEnv()
	if err != nil {
		return cfg, nil, err
	}
	if len(cfg.Endpoints) > 0 {
		return cfg, func() {}, nil
	}
	srv, err := Run(opts...)
	if err != nil {
		return cfg, nil, err
	}
	embedded := srv.Config()
	cfg.Endpoints, cfg.TLS = embedded.Endpoints, embedded.TLS
	return cfg, func() { _ = srv.Close() }, nil
}

// Connect is [ConfigFromEnvOrRun] followed by [etcdkit.New]: a client of the
// etcd named by the environment, or of an embedded one. Call stop when done:
// it closes the client, then the embedded server if one was started. It
// fails with [ConfigFromEnvOrRun]'s error, or with New's (matching
// [etcdkit.ErrUnavailable] when no endpoint answers, [etcdkit.ErrAuthFailed]
// for wrong credentials), having stopped any server it started; stop is nil
// then.
func Connect(ctx context.Context, opts ...Option) (cli *etcdkit.Client, stop func(), err error) {
	cfg, stopServer, err := ConfigFromEnvOrRun(opts...)
	if err != nil {
		return nil, nil, err
	}
	cli, err = etcdkit.New(ctx, cfg)
	if err != nil {
		stopServer()
		return nil, nil, err
	}
	return cli, func() { _ = cli.Close(); stopServer() }, nil
}
