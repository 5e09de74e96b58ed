package etcdkit_test

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"

	"github.com/etcdkit/etcdkit"
	"github.com/etcdkit/etcdkit/etcdtest"
)

// TestMirrorLag holds a mirror behind its server: five writes outside the
// mirror's prefix land between its listing and the creation of its watch,
// whose header reports the server's revision. Nothing under the prefix
// changed, so no event moves the mirror on: it is 5 revisions behind what
// it knows of until a progress notification, which WaitForRevision asks
// for, says it is current. A server of its own, so that no other test's
// writes move the revisions.
func TestMirrorLag(t *testing.T) {
	t.Parallel()
	srv := etcdtest.Start(t)
	other := srv.RawClient(t)
	prefix := testPrefix(t)
	const outside = 5
	var armed atomic.Bool
	var wrote atomic.Int64
	// After the mirror's listing and before its watch: write elsewhere.
	writeAfterList := func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		err := invoker(ctx, method, req, reply, cc, opts...)
		if err == nil && method == "/etcdserverpb.KV/Range" && armed.CompareAndSwap(true, false) {
			for i := range outside {
				resp, err := other.Put(ctx, "elsewhere/"+strconv.Itoa(i), "x")
				if err != nil {
					return err
				}
				wrote.Store(resp.Header.Revision)
			}
		}
		return err
	}
	rec := &recorder{}
	cli := srv.Client(t, etcdtest.WithClientConfig(func(c *etcdkit.Config) {
		c.UnaryInterceptors = append(c.UnaryInterceptors, writeAfterList)
		c.Observer = rec
	}))
	kv := etcdkit.NewKV(cli, prefix, etcdkit.String())
	ctx := testCtx(t)
	_, err := kv.Put(ctx, "k", "1")
	require.NoError(t, err)

	armed.Store(true)
	m, err := kv.Mirror(ctx)
	require.NoError(t, err)
	defer m.Close()
	select {
	case <-m.Synced():
	default:
		assert.Fail(t, "Synced() not closed when Mirror returned")
	}
	require.Equal(t, wrote.Load()-outside, m.Revision(), "the mirror's revision: that of its listing")
	require.NoError(t, waitUntil(func() bool { return m.Lag() != 0 }), "Lag() once the watch is created")
	assert.Equal(t, int64(outside), m.Lag(), "Lag() with the writes elsewhere unconfirmed")

	require.NoError(t, m.WaitForRevision(ctx, wrote.Load()))
	assert.Zero(t, m.Lag(), "Lag() after a progress notification")
	rev, err := kv.Put(ctx, "k", "2")
	require.NoError(t, err)
	require.NoError(t, m.WaitForRevision(ctx, rev))
	assert.Zero(t, m.Lag(), "Lag() once a change is applied")

	// The Observer was told of the lag when it appeared and when it went,
	// and of nothing in between: a mirror that keeps up is not reported
	// on every batch.
	var lags []int64
	rec.mu.Lock()
	for _, n := range rec.notices {
		if n.Kind == etcdkit.NoticeMirrorLag {
			assert.Equal(t, prefix, n.Prefix, "the notice's prefix")
			lags = append(lags, n.Value)
		}
	}
	rec.mu.Unlock()
	assert.Equal(t, []int64{outside, 0}, lags, "NoticeMirrorLag values, in order")
}
