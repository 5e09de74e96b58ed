package etcdtest_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/etcdkit/etcdkit"
	"github.com/etcdkit/etcdkit/etcdtest"
)

// shortCtx is a ctx for a call expected to get no answer.
func shortCtx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	t.Cleanup(cancel)
	return c
}

func TestProxyBlackhole(t *testing.T) {
	srv := etcdtest.Start(t)
	direct := etcdkit.NewKV(srv.Client(t), "blackhole/", etcdkit.String())
	tests := []struct {
		name      string
		dir       etcdtest.Direction
		committed bool // while the blackhole lasts
	}{
		{"both ways", etcdtest.BothWays, false},
		{"to server", etcdtest.ToServer, false},
		{"to client", etcdtest.ToClient, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := srv.Proxy(t)
			kv := etcdkit.NewKV(p.Client(t), "blackhole/", etcdkit.String())
			key := tt.name
			_, err := kv.Put(t.Context(), key+"/before", "v")
			require.NoError(t, err)

			p.Blackhole(tt.dir)
			_, err = kv.Put(shortCtx(t), key, "v")
			require.ErrorIs(t, err, context.DeadlineExceeded)
			_, err = direct.Get(t.Context(), key)
			if tt.committed {
				assert.NoError(t, err, "the server applied the write whose answer was held")
			} else {
				assert.ErrorIs(t, err, etcdkit.ErrNotFound, "the server saw a write that was held")
			}

			p.Heal()
			_, err = kv.Put(t.Context(), key+"/after", "v")
			require.NoError(t, err)
			e, err := kv.Get(t.Context(), key+"/before")
			require.NoError(t, err)
			assert.Equal(t, "v", e.Value)
		})
	}
}

func TestProxyPartitionHealsByItself(t *testing.T) {
	srv := etcdtest.Start(t)
	p := srv.Proxy(t)
	kv := etcdkit.NewKV(p.Client(t), "partition/", etcdkit.String())
	_, err := kv.Put(t.Context(), "warm", "v")
	require.NoError(t, err)

	p.Partition(etcdtest.BothWays, 500*time.Millisecond)
	_, err = kv.Get(shortCtx(t), "warm")
	require.ErrorIs(t, err, context.DeadlineExceeded, "a read during the partition")

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	_, err = kv.Put(ctx, "k", "v") // held, then delivered when the partition heals
	require.NoError(t, err)
}

func TestProxyCutsOnlyItsClients(t *testing.T) {
	cl := etcdtest.StartCluster(t, 3)
	p := cl.Proxy(t)
	require.Len(t, p.Endpoints(), 3)
	cut := etcdkit.NewKV(p.Client(t), "cut/", etcdkit.String())
	direct := etcdkit.NewKV(cl.Client(t), "cut/", etcdkit.String())
	_, err := cut.Put(t.Context(), "k", "1")
	require.NoError(t, err)

	p.Blackhole(etcdtest.BothWays)
	_, err = cut.Get(shortCtx(t), "k")
	require.ErrorIs(t, err, context.DeadlineExceeded, "every member is behind the blackhole")
	_, err = direct.Put(t.Context(), "k", "2")
	require.NoError(t, err, "a client not behind the proxy")

	p.Heal()
	e, err := cut.Get(t.Context(), "k")
	require.NoError(t, err)
	assert.Equal(t, "2", e.Value)
}

func TestProxyDropReconnects(t *testing.T) {
	srv := etcdtest.Start(t)
	p := srv.Proxy(t)
	kv := etcdkit.NewKV(p.Client(t), "drop/", etcdkit.String())
	_, err := kv.Put(t.Context(), "k", "v")
	require.NoError(t, err)
	for i := range 3 {
		p.Drop()
		// A read is retried by clientv3 over the new connection (a write
		// cut off this way fails: its outcome is unknown).
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		_, err := kv.Get(ctx, "k")
		cancel()
		require.NoError(t, err, "get after drop %d", i)
	}
}
