package etcdtest_test

import (
	"testing"

	"github.com/etcdkit/etcdkit"
	"github.com/etcdkit/etcdkit/etcdtest"
)

func TestConnect(t *testing.T) {
	t.Run("embedded when ETCD_ENDPOINTS is unset", func(t *testing.T) {
		t.Setenv(etcdkit.EnvEndpoints, "")
		cli, stop, err := etcdtest.Connect(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		defer stop()
		if _, err := etcdkit.NewKV(cli, "env/", etcdkit.String()).Put(t.Context(), "k", "v"); err != nil {
			t.Fatalf("put through the embedded server: %v", err)
		}
	})
	t.Run("the environment's etcd when set", func(t *testing.T) {
		srv := etcdtest.Start(t)
		t.Setenv(etcdkit.EnvEndpoints, srv.Endpoints()[0])
		cfg, stop, err := etcdtest.ConfigFromEnvOrRun()
		if err != nil {
			t.Fatal(err)
		}
		defer stop()
		if len(cfg.Endpoints) != 1 || cfg.Endpoints[0] != srv.Endpoints()[0] {
			t.Fatalf("Endpoints = %v, want the environment's %v", cfg.Endpoints, srv.Endpoints())
		}
		cli, stopCli, err := etcdtest.Connect(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		defer stopCli()
		if _, err := etcdkit.NewKV(cli, "env/", etcdkit.String()).Put(t.Context(), "k", "v"); err != nil {
			t.Fatal(err)
		}
		resp, err := srv.RawClient(t).Get(t.Context(), "env/k")
		if err != nil || len(resp.Kvs) != 1 {
			t.Errorf("the write did not reach the environment's server: %v, %v", resp, err)
		}
	})
}
