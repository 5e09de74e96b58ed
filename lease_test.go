package etcdkit_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/etcdkit/etcdkit"
	"github.com/etcdkit/etcdkit/etcdtest"
)

func clientv3LeaseID(l *etcdkit.Lease) clientv3.LeaseID { return clientv3.LeaseID(l.ID()) }

// waitClosed fails the test unless ch closes within limit: a liveness
// bound, generous enough never to be a timing assertion.
func waitClosed(t *testing.T, ch <-chan struct{}, limit time.Duration, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(limit):
		require.FailNow(t, fmt.Sprintf("%s: not closed within %v", what, limit))
	}
}

func TestGrantRejectsShortTTL(t *testing.T) {
	t.Parallel()
	cli := etcdtest.Start(t).Client(t)
	for _, ttl := range []time.Duration{0, -time.Second, 999 * time.Millisecond} {
		_, err := cli.Grant(t.Context(), ttl)
		assert.ErrorIs(t, err, etcdkit.ErrInvalidTTL, "Grant(%v)", ttl)
	}
}

func TestGrantReportsServerTTL(t *testing.T) {
	t.Parallel()
	cli := etcdtest.Start(t).Client(t)
	l, err := cli.Grant(t.Context(), 1500*time.Millisecond)
	require.NoError(t, err)
	ttl, err := cli.Raw().TimeToLive(t.Context(), clientv3LeaseID(l))
	require.NoError(t, err)
	assert.Equal(t, time.Duration(ttl.GrantedTTL)*time.Second, l.TTL(), "TTL(): want what the server granted")
	assert.GreaterOrEqual(t, l.TTL(), 2*time.Second, "TTL(): asked 1.5s, want it rounded up to 2s")
	assert.NoError(t, l.Err(), "Err() on a live lease")
}

func TestLeaseKeepAliveOutlivesTTL(t *testing.T) {
	t.Parallel()
	cli := etcdtest.Start(t).Client(t)
	kv := etcdkit.NewKV(cli, testPrefix(t), etcdkit.String())
	l, err := cli.Grant(t.Context(), 2*time.Second)
	require.NoError(t, err)
	_, err = kv.Put(t.Context(), "k", "v", etcdkit.WithLease(l))
	require.NoError(t, err)
	require.NoError(t, l.KeepAlive())
	require.NoError(t, l.KeepAlive(), "second KeepAlive")
	// A caller's ctx ending does not stop the keep-alive.
	select {
	case <-l.Done():
		require.FailNow(t, "lease ended while kept alive", "Err() = %v", l.Err())
	case <-time.After(3 * l.TTL()):
	}
	e, err := kv.Get(t.Context(), "k")
	require.NoError(t, err, "key of a kept-alive lease after 3×TTL")
	assert.Equal(t, l.ID(), e.Lease, "entry lease")
}

func TestLeaseRevoke(t *testing.T) {
	t.Parallel()
	cli := etcdtest.Start(t).Client(t)
	kv := etcdkit.NewKV(cli, testPrefix(t), etcdkit.String())
	l, err := cli.Grant(t.Context(), 10*time.Second)
	require.NoError(t, err)
	_, err = kv.Put(t.Context(), "k", "v", etcdkit.WithLease(l))
	require.NoError(t, err)
	require.NoError(t, l.KeepAlive())
	require.NoError(t, l.Revoke(t.Context()))
	waitClosed(t, l.Done(), time.Second, "Done after Revoke")
	assert.ErrorIs(t, l.Err(), etcdkit.ErrLeaseRevoked, "Err()")
	_, err = kv.Get(t.Context(), "k")
	assert.ErrorIs(t, err, etcdkit.ErrNotFound, "Get of a revoked lease's key")
	assert.NoError(t, l.Revoke(t.Context()), "second Revoke")
	assert.ErrorIs(t, l.KeepAlive(), etcdkit.ErrLeaseRevoked, "KeepAlive after Revoke")
}

func TestLeaseExpiresWithoutKeepAlive(t *testing.T) {
	t.Parallel()
	cli := etcdtest.Start(t).Client(t)
	l, err := cli.Grant(t.Context(), time.Second)
	require.NoError(t, err)
	waitClosed(t, l.Done(), 3*l.TTL(), "Done of a lease not kept alive")
	assert.ErrorIs(t, l.Err(), etcdkit.ErrLeaseLost, "Err()")
}

func TestLeaseExpiredOnServer(t *testing.T) {
	t.Parallel()
	cli := etcdtest.Start(t).Client(t)
	l, err := cli.Grant(t.Context(), 5*time.Second)
	require.NoError(t, err)
	require.NoError(t, l.KeepAlive())
	// Someone else revokes it: to this holder, it is gone.
	_, err = cli.Raw().Revoke(t.Context(), clientv3LeaseID(l))
	require.NoError(t, err)
	waitClosed(t, l.Done(), 3*l.TTL(), "Done of a lease revoked elsewhere")
	assert.ErrorIs(t, l.Err(), etcdkit.ErrLeaseExpired, "Err()")
}

func TestLeaseKeepAliveUnreachable(t *testing.T) {
	t.Parallel()
	srv := etcdtest.Start(t)
	cli := srv.Client(t)
	l, err := cli.Grant(t.Context(), 2*time.Second)
	require.NoError(t, err)
	require.NoError(t, l.KeepAlive())
	time.Sleep(500 * time.Millisecond) // at least one refresh
	srv.Stop()
	stopped := time.Now()
	waitClosed(t, l.Done(), 3*l.TTL(), "Done with the server stopped")
	t.Logf("Done closed %v after the server stopped (TTL %v)", time.Since(stopped), l.TTL())
	// Nobody could ask the server: the lease is lost, not known to be expired.
	assert.ErrorIs(t, l.Err(), etcdkit.ErrLeaseLost, "Err()")
}

func TestClientCloseEndsLeases(t *testing.T) {
	t.Parallel()
	srv := etcdtest.Start(t)
	cli := srv.Client(t)
	other := srv.Client(t)
	kv := etcdkit.NewKV(other, t.Name()+"/", etcdkit.String())
	kept, err := cli.Grant(t.Context(), 30*time.Second)
	require.NoError(t, err)
	require.NoError(t, kept.KeepAlive())
	plain, err := cli.Grant(t.Context(), 30*time.Second)
	require.NoError(t, err)
	for key, l := range map[string]*etcdkit.Lease{"kept": kept, "plain": plain} {
		_, err := kv.Put(t.Context(), key, "v", etcdkit.WithLease(l))
		require.NoError(t, err)
	}
	require.NoError(t, cli.Close())
	for _, l := range []*etcdkit.Lease{kept, plain} {
		waitClosed(t, l.Done(), time.Second, "Done after Client.Close")
		assert.ErrorIs(t, l.Err(), etcdkit.ErrClosed, "Err()")
	}
	_, err = kv.Get(t.Context(), "kept")
	assert.ErrorIs(t, err, etcdkit.ErrNotFound, "key of a kept-alive lease after Close: want it revoked")
	_, err = kv.Get(t.Context(), "plain")
	assert.NoError(t, err, "key of a lease nobody kept alive after Close: want it left to its TTL")
	assert.Error(t, kept.KeepAlive(), "KeepAlive after Close succeeded")
	_, err = cli.Grant(context.Background(), time.Minute)
	assert.ErrorIs(t, err, etcdkit.ErrClosed, "Grant after Close")
}

func TestLeaseSurvivesRestart(t *testing.T) {
	t.Parallel()
	srv := etcdtest.Start(t)
	cli := srv.Client(t)
	kv := etcdkit.NewKV(cli, testPrefix(t), etcdkit.String())
	l, err := cli.Grant(t.Context(), 3*time.Second)
	require.NoError(t, err)
	require.NoError(t, l.KeepAlive())
	_, err = kv.Put(t.Context(), "k", "v", etcdkit.WithLease(l))
	require.NoError(t, err)
	srv.Restart(t)
	select {
	case <-l.Done():
		require.FailNow(t, "lease lost across a quick restart", "Err() = %v", l.Err())
	case <-time.After(2 * l.TTL()):
	}
	_, err = kv.Get(t.Context(), "k")
	assert.NoError(t, err, "key of a kept-alive lease after a restart and 2×TTL")
}
