package etcdtest_test

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/etcdkit/etcdkit"
	"github.com/etcdkit/etcdkit/etcdtest"
)

// TestRunProxy: a proxy made without a testing.TB, in front of a config's
// endpoints (URLs or bare host:port), reaches the server, cuts it off on
// Blackhole, and stops on Close.
func TestRunProxy(t *testing.T) {
	srv := etcdtest.Start(t)
	for _, tc := range []struct {
		name string
		cfg  func() etcdkit.Config
	}{
		{"URL endpoints", srv.Config},
		{"host:port endpoints", func() etcdkit.Config {
			cfg := srv.Config()
			cfg.Endpoints = []string{strings.TrimPrefix(cfg.Endpoints[0], "http://")}
			return cfg
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := etcdtest.RunProxy(tc.cfg())
			require.NoError(t, err)
			defer p.Close()
			assert.NotEqual(t, srv.Endpoints(), p.Endpoints(), "clients go through the proxy")
			cli, err := etcdkit.New(ctx(t), p.Config())
			require.NoError(t, err)
			defer cli.Close()
			kv := etcdkit.NewKV(cli, "run-proxy/", etcdkit.String())
			_, err = kv.Put(ctx(t), "k", "v")
			require.NoError(t, err, "the proxy forwards")
			p.Blackhole(etcdtest.BothWays)
			_, err = kv.Get(shortCtx(t), "k")
			assert.ErrorIs(t, err, context.DeadlineExceeded, "a blackhole holds the request")
			p.Heal()
			_, err = kv.Get(ctx(t), "k")
			assert.NoError(t, err, "healed")
		})
	}
	_, err := etcdtest.RunProxy(etcdkit.Config{})
	assert.Error(t, err, "no endpoints")
	_, err = etcdtest.RunProxy(etcdkit.Config{Endpoints: []string{"unix:///tmp/etcd.sock"}})
	assert.Error(t, err, "not a TCP endpoint")
}
