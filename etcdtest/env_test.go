package etcdtest_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/etcdkit/etcdkit"
	"github.com/etcdkit/etcdkit/etcdtest"
)

func TestConnect(t *testing.T) {
	t.Run("embedded when ETCD_ENDPOINTS is unset", func(t *testing.T) {
		t.Setenv(etcdkit.EnvEndpoints, "")
		cli, stop, err := etcdtest.Connect(t.Context())
		require.NoError(t, err)
		defer stop()
		_, err = etcdkit.NewKV(cli, "env/", etcdkit.String()).Put(t.Context(), "k", "v")
		require.NoError(t, err, "put through the embedded server")
	})
	t.Run("the environment's etcd when set", func(t *testing.T) {
		srv := etcdtest.Start(t)
		t.Setenv(etcdkit.EnvEndpoints, srv.Endpoints()[0])
		cfg, stop, err := etcdtest.ConfigFromEnvOrRun()
		require.NoError(t, err)
		defer stop()
		require.Equal(t, []string{srv.Endpoints()[0]}, cfg.Endpoints, "Endpoints: want the environment's")
		cli, stopCli, err := etcdtest.Connect(t.Context())
		require.NoError(t, err)
		defer stopCli()
		_, err = etcdkit.NewKV(cli, "env/", etcdkit.String()).Put(t.Context(), "k", "v")
		require.NoError(t, err)
		resp, err := srv.RawClient(t).Get(t.Context(), "env/k")
		if assert.NoError(t, err) {
			assert.Len(t, resp.Kvs, 1, "the write did not reach the environment's server")
		}
	})
}
