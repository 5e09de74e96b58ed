package etcdkit_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"

	"github.com/etcdkit/etcdkit"
	"github.com/etcdkit/etcdkit/etcdtest"
)

// startTimeout is the RequestTimeout of the clients cut off by a proxy:
// the bound within which a watch must be established or fail.
const startTimeout = 500 * time.Millisecond

// cutOffClient returns a client through a proxy, and a function that arms
// it: the proxy then blackholes both ways as soon as the next read (Range)
// has its answer, so what follows the read (a watch) never reaches etcd.
func cutOffClient(t *testing.T) (*etcdkit.Client, *etcdtest.Proxy, func()) {
	t.Helper()
	px := testServer.Proxy(t)
	var armed atomic.Bool
	cut := func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		err := invoker(ctx, method, req, reply, cc, opts...)
		if method == "/etcdserverpb.KV/Range" && armed.CompareAndSwap(true, false) {
			px.Blackhole(etcdtest.BothWays)
		}
		return err
	}
	cli := px.Client(t, etcdtest.WithClientConfig(func(c *etcdkit.Config) {
		c.RequestTimeout = startTimeout
		c.UnaryInterceptors = append(c.UnaryInterceptors, cut)
	}))
	return cli, px, func() { armed.Store(true) }
}

// TestStartUnreachable: a watch that cannot be established within the
// client's RequestTimeout says so, with an error matching ErrUnavailable,
// long before the caller's ctx ends; so does a Mirror or Live whose watch
// cannot start after the first read succeeded.
func TestStartUnreachable(t *testing.T) {
	t.Parallel()
	t.Run("Watch", func(t *testing.T) {
		t.Parallel()
		cli, px, _ := cutOffClient(t)
		kv := etcdkit.NewKV(cli, testPrefix(t), etcdkit.String())
		ctx, cancel := context.WithTimeout(t.Context(), 20*startTimeout)
		defer cancel()
		px.Blackhole(etcdtest.BothWays)
		w := kv.Watch(ctx)
		defer w.Close()
		require.NoError(t, ctx.Err(), "Watch returned only when the caller's ctx ended")
		_, open := <-w.Events()
		assert.False(t, open, "Events of a watch never established")
		assert.ErrorIs(t, w.Err(), etcdkit.ErrUnavailable)
	})
	t.Run("Mirror", func(t *testing.T) {
		t.Parallel()
		cli, _, arm := cutOffClient(t)
		kv := etcdkit.NewKV(cli, testPrefix(t), etcdkit.String())
		ctx, cancel := context.WithTimeout(t.Context(), 20*startTimeout)
		defer cancel()
		arm()
		m, err := kv.Mirror(ctx)
		if m != nil {
			m.Close()
		}
		require.NoError(t, ctx.Err(), "Mirror returned only when the caller's ctx ended")
		assert.ErrorIs(t, err, etcdkit.ErrUnavailable)
		assert.Nil(t, m, "a Mirror whose watch never started")
	})
	t.Run("Follow", func(t *testing.T) {
		t.Parallel()
		cli, _, arm := cutOffClient(t)
		kv := etcdkit.NewKV(cli, testPrefix(t), etcdkit.String())
		ctx, cancel := context.WithTimeout(t.Context(), 20*startTimeout)
		defer cancel()
		arm()
		l, err := kv.Follow(ctx, "config", etcdkit.WithDefault("none"))
		if l != nil {
			l.Close()
		}
		require.NoError(t, ctx.Err(), "Follow returned only when the caller's ctx ended")
		assert.ErrorIs(t, err, etcdkit.ErrUnavailable)
		assert.Nil(t, l, "a Live whose watch never started")
	})
}

// TestStartCtxEnds: when the caller's ctx ends before the watch is
// established, Mirror and Follow fail with ctx's error.
func TestStartCtxEnds(t *testing.T) {
	t.Parallel()
	cli, _, arm := cutOffClient(t)
	kv := etcdkit.NewKV(cli, testPrefix(t), etcdkit.String())
	ctx, cancel := context.WithTimeout(t.Context(), startTimeout/5)
	defer cancel()
	arm()
	_, err := kv.Follow(ctx, "config", etcdkit.WithDefault("none"))
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.NotErrorIs(t, err, etcdkit.ErrUnavailable)
}

// TestWatchSurvivesBlackhole: the start-up bound applies to the start
// only: a running watch cut off for longer than RequestTimeout keeps
// waiting, and delivers what changed once the network is back.
func TestWatchSurvivesBlackhole(t *testing.T) {
	t.Parallel()
	cli, px, _ := cutOffClient(t)
	prefix := testPrefix(t)
	kv := etcdkit.NewKV(cli, prefix, etcdkit.String())
	w := kv.Watch(testCtx(t))
	defer w.Close()
	require.NoError(t, w.Err(), "watch through a working proxy")
	l, err := kv.Follow(testCtx(t), "k", etcdkit.WithDefault("none"))
	require.NoError(t, err)
	defer l.Close()

	px.Blackhole(etcdtest.BothWays)
	direct := etcdkit.NewKV(newClient(t), prefix, etcdkit.String())
	rev, err := direct.Put(testCtx(t), "k", "during")
	require.NoError(t, err)
	time.Sleep(3 * startTimeout) // past the bound a start must keep
	px.Heal()

	e := recv(t, w.Events(), "event after the blackhole")
	assert.Equal(t, "during", e.Entry.Value)
	assert.Equal(t, rev, e.Entry.ModRevision)
	require.Eventually(t, func() bool { return l.Revision() == rev }, 10*time.Second, 10*time.Millisecond,
		"Live after the blackhole")
	assert.Equal(t, "during", l.Load())
	assert.NoError(t, l.Err())
}
