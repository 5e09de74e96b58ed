package etcdkit_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"

	"github.com/etcdkit/etcdkit"
	"github.com/etcdkit/etcdkit/etcdtest"
)

const leaseKeepAliveMethod = "/etcdserverpb.Lease/LeaseKeepAlive"

// TestLeaseNotKeptAliveIsLostNotExpired: a lease nobody refreshes reaches
// its local deadline before the server expires it, so Done must say lost,
// not expired: a caller told "expired" may rely on its keys being gone.
func TestLeaseNotKeptAliveIsLostNotExpired(t *testing.T) {
	t.Parallel()
	cli := testServer.Client(t)
	kv := etcdkit.NewKV(cli, testPrefix(t), etcdkit.String())
	l, err := cli.Grant(t.Context(), 2*time.Second)
	require.NoError(t, err)
	_, err = kv.Put(t.Context(), "k", "v", etcdkit.WithLease(l))
	require.NoError(t, err)

	waitClosed(t, l.Done(), 3*l.TTL(), "Done of a lease not kept alive")
	_, getErr := kv.Get(t.Context(), "k")
	ended := l.Err()
	if errors.Is(ended, etcdkit.ErrLeaseExpired) {
		require.ErrorIs(t, getErr, etcdkit.ErrNotFound, "Err says expired, but the lease's key is still there")
	}
	require.ErrorIs(t, ended, etcdkit.ErrLeaseLost, "a lease nobody keeps alive ends lost")
	assert.NotErrorIs(t, ended, etcdkit.ErrLeaseExpired, "a lost lease must not claim to be expired")
	assert.NotErrorIs(t, etcdkit.ErrLeaseLost, etcdkit.ErrLeaseExpired)

	// Err never changes once Done is closed, not even once the server has
	// expired the lease.
	for i := 0; ; i++ {
		_, err := kv.Get(t.Context(), "k")
		if errors.Is(err, etcdkit.ErrNotFound) {
			break
		}
		require.NoError(t, err)
		require.Less(t, i, 100, "the server did not expire the lease within 10s")
		time.Sleep(100 * time.Millisecond)
	}
	assert.Same(t, ended, l.Err(), "Err changed after Done closed")
}

// TestLeaseExpiredMeansKeysGone: when Err says expired, the server has
// said so, and the lease's keys are gone.
func TestLeaseExpiredMeansKeysGone(t *testing.T) {
	t.Parallel()
	cli := testServer.Client(t)
	kv := etcdkit.NewKV(cli, testPrefix(t), etcdkit.String())
	l, err := cli.Grant(t.Context(), 5*time.Second)
	require.NoError(t, err)
	_, err = kv.Put(t.Context(), "k", "v", etcdkit.WithLease(l))
	require.NoError(t, err)
	require.NoError(t, l.KeepAlive())
	// Another client ends the lease: the next refresh hears it is unknown.
	_, err = testServer.RawClient(t).Revoke(t.Context(), clientv3LeaseID(l))
	require.NoError(t, err)

	waitClosed(t, l.Done(), 3*l.TTL(), "Done of a lease revoked elsewhere")
	require.ErrorIs(t, l.Err(), etcdkit.ErrLeaseExpired)
	_, err = kv.Get(t.Context(), "k")
	assert.ErrorIs(t, err, etcdkit.ErrNotFound, "key of an expired lease")
}

// countKeepAlives counts the keep-alive streams a client opens: one per
// refresh.
func countKeepAlives(n *atomic.Int64) grpc.StreamClientInterceptor {
	return func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		if method == leaseKeepAliveMethod {
			n.Add(1)
		}
		return streamer(ctx, desc, cc, method, opts...)
	}
}

// TestLeaseKeepAliveRefreshRate: about three refreshes per TTL, enough to
// survive two failures in a row, and no more.
func TestLeaseKeepAliveRefreshRate(t *testing.T) {
	t.Parallel()
	var refreshes atomic.Int64
	cli := testServer.Client(t, etcdtest.WithClientConfig(func(c *etcdkit.Config) {
		c.StreamInterceptors = append(c.StreamInterceptors, countKeepAlives(&refreshes))
	}))
	l, err := cli.Grant(t.Context(), 2*time.Second)
	require.NoError(t, err)
	require.NoError(t, l.KeepAlive())
	const ttls = 3
	select {
	case <-l.Done():
		t.Fatalf("lease ended while kept alive: %v", l.Err())
	case <-time.After(ttls * l.TTL()):
	}
	n := refreshes.Load()
	assert.LessOrEqual(t, n, int64(3*ttls+1), "refreshes in %d TTLs", ttls)
	assert.GreaterOrEqual(t, n, int64(ttls), "refreshes in %d TTLs", ttls)
}

// slowKeepAliveAnswers delays every keep-alive answer the client receives
// by d, as a slow or congested network would: the server renewed the lease
// when the request arrived, d before the client hears of it.
func slowKeepAliveAnswers(d time.Duration) grpc.StreamClientInterceptor {
	return func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		s, err := streamer(ctx, desc, cc, method, opts...)
		if err != nil || method != leaseKeepAliveMethod {
			return s, err
		}
		return &slowStream{ClientStream: s, delay: d}, nil
	}
}

type slowStream struct {
	grpc.ClientStream
	delay time.Duration
}

func (s *slowStream) RecvMsg(m any) error {
	if err := s.ClientStream.RecvMsg(m); err != nil {
		return err
	}
	t := time.NewTimer(s.delay)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-s.Context().Done():
		return s.Context().Err()
	}
}

// TestLeaseLostBeforeServerExpiry cuts a holder off from the server and
// checks the order of two events: the holder is told its lease (or lock)
// is lost before another client sees the server delete its key. The
// deadline must count from when refreshes were sent: with slow answers, a
// deadline counted from their arrival comes after the server's expiry.
func TestLeaseLostBeforeServerExpiry(t *testing.T) {
	t.Parallel()
	const rounds = 2
	for _, kind := range []string{"lease", "lock"} {
		for _, delay := range []time.Duration{0, 1200 * time.Millisecond} {
			for round := range rounds {
				t.Run(fmt.Sprintf("%s/answers_delayed_%v/%d", kind, delay, round), func(t *testing.T) {
					t.Parallel()
					lostBeforeExpiry(t, kind, delay)
				})
			}
		}
	}
}

// lostBeforeExpiry runs one round of TestLeaseLostBeforeServerExpiry.
func lostBeforeExpiry(t *testing.T, kind string, delay time.Duration) {
	const ttl = 5 * time.Second
	raw := testServer.RawClient(t)
	px := testServer.Proxy(t)
	var opts []etcdtest.ClientOption
	if delay > 0 {
		opts = append(opts, etcdtest.WithClientConfig(func(c *etcdkit.Config) {
			c.StreamInterceptors = append(c.StreamInterceptors, slowKeepAliveAnswers(delay))
		}))
	}
	holder := px.Client(t, opts...)

	var key string
	var lost <-chan struct{}
	var why func() error
	switch kind {
	case "lease":
		l, err := holder.Grant(t.Context(), ttl)
		require.NoError(t, err)
		require.NoError(t, l.KeepAlive())
		key = testPrefix(t) + "k"
		_, err = raw.Put(t.Context(), key, "v", clientv3.WithLease(clientv3LeaseID(l)))
		require.NoError(t, err)
		lost, why = l.Done(), l.Err
	case "lock":
		l, err := holder.Lock(t.Context(), lockName(t), etcdkit.LockTTL(ttl))
		require.NoError(t, err)
		key, lost, why = l.Key(), l.Lost(), l.Err
	}
	resp, err := raw.Get(t.Context(), key)
	require.NoError(t, err)
	require.Len(t, resp.Kvs, 1, "the holder's key")
	wctx, cancel := context.WithTimeout(t.Context(), 4*ttl)
	defer cancel()
	deletes := raw.Watch(wctx, key, clientv3.WithRev(resp.Header.Revision+1), clientv3.WithFilterPut())

	time.Sleep(ttl / 2) // a refresh or two, slow ones with a delay
	px.Blackhole(etcdtest.BothWays)
	require.True(t, waitDelete(deletes), "the server did not delete the key within 4 TTLs of the partition")
	select {
	case <-lost:
	default:
		t.Fatal("the server expired the lease before the holder was told it was lost")
	}
	if kind == "lease" {
		assert.ErrorIs(t, why(), etcdkit.ErrLeaseLost, "a lease that could not be refreshed")
	} else {
		assert.Error(t, why(), "a lock whose lease could not be refreshed")
	}
}

// waitDelete reports whether a delete event arrives before the watch ends.
func waitDelete(ch clientv3.WatchChan) bool {
	for wr := range ch {
		for _, ev := range wr.Events {
			if ev.Type == clientv3.EventTypeDelete {
				return true
			}
		}
	}
	return false
}

// TestLeaseRevokeAfterLoss: a lost lease may still hold keys on the
// server; Revoke deletes them, and Err stays what Done closed with.
func TestLeaseRevokeAfterLoss(t *testing.T) {
	t.Parallel()
	cli := testServer.Client(t)
	kv := etcdkit.NewKV(cli, testPrefix(t), etcdkit.String())
	l, err := cli.Grant(t.Context(), 2*time.Second)
	require.NoError(t, err)
	_, err = kv.Put(t.Context(), "k", "v", etcdkit.WithLease(l))
	require.NoError(t, err)
	waitClosed(t, l.Done(), 3*l.TTL(), "Done of a lease not kept alive")
	require.ErrorIs(t, l.Err(), etcdkit.ErrLeaseLost)

	require.NoError(t, l.Revoke(t.Context()))
	_, err = kv.Get(t.Context(), "k")
	assert.ErrorIs(t, err, etcdkit.ErrNotFound, "key of a lost lease after Revoke")
	assert.ErrorIs(t, l.Err(), etcdkit.ErrLeaseLost, "Err after Revoke of a lost lease")
}

// TestLeaseRevokeUnreachable: Revoke stops the refreshes even when it
// cannot reach the server, so the lease ends lost at its deadline.
func TestLeaseRevokeUnreachable(t *testing.T) {
	t.Parallel()
	px := testServer.Proxy(t)
	cli := px.Client(t)
	l, err := cli.Grant(t.Context(), 2*time.Second)
	require.NoError(t, err)
	require.NoError(t, l.KeepAlive())
	px.Blackhole(etcdtest.BothWays)
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	require.Error(t, l.Revoke(ctx), "Revoke with the server cut off")
	px.Heal() // refreshes would get through now, if any were still sent
	waitClosed(t, l.Done(), 3*l.TTL(), "Done after a failed Revoke")
	assert.ErrorIs(t, l.Err(), etcdkit.ErrLeaseLost)
}
