package etcdkit_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/etcdkit/etcdkit"
)

func TestBarrier_HoldWaitRelease(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	key := testPrefix(t) + "gate"
	holder := etcdkit.NewBarrier(newClient(t), key)
	require.NoError(t, holder.Hold(ctx))
	assert.ErrorIs(t, holder.Hold(ctx), etcdkit.ErrExists, "second Hold")
	var released atomic.Bool
	var wg sync.WaitGroup
	for range 3 {
		b := etcdkit.NewBarrier(newClient(t), key)
		wg.Go(func() {
			assert.NoError(t, b.Wait(ctx), "Wait")
			assert.True(t, released.Load(), "a waiter passed the barrier before it was released")
		})
	}
	time.Sleep(200 * time.Millisecond) // the waiters block meanwhile
	released.Store(true)
	require.NoError(t, holder.Release(ctx))
	wg.Wait()
	assert.NoError(t, holder.Wait(ctx), "Wait on a released barrier")
}

func TestDoubleBarrier_EnterTogetherLeaveTogether(t *testing.T) {
	t.Parallel()
	const n = 5
	ctx := testCtx(t)
	key := testPrefix(t) + "step"
	var entered, left atomic.Int32
	var wg sync.WaitGroup
	for range n {
		b, err := etcdkit.NewDoubleBarrier(newClient(t), key, n)
		require.NoError(t, err)
		wg.Go(func() {
			entered.Add(1)
			if !assert.NoError(t, b.Enter(ctx), "Enter") {
				return
			}
			assert.EqualValues(t, n, entered.Load(), "participants in when Enter returned")
			left.Add(1)
			if !assert.NoError(t, b.Leave(ctx), "Leave") {
				return
			}
			assert.EqualValues(t, n, left.Load(), "participants out when Leave returned")
		})
	}
	wg.Wait()
	resp, err := testServer.RawClient(t).Get(ctx, key, clientv3.WithPrefix(), clientv3.WithCountOnly())
	if assert.NoError(t, err) {
		assert.Zero(t, resp.Count, "the barrier left keys behind")
	}
}

// TestDoubleBarrier_CrashedParticipant: one of five participants enters and
// dies before Leave. What it leaves behind is a key under a lease nobody
// refreshes; the others must get through Leave once that lease expires.
func TestDoubleBarrier_CrashedParticipant(t *testing.T) {
	t.Parallel()
	const n = 5
	ctx := testCtx(t)
	key := testPrefix(t) + "step"
	raw := testServer.RawClient(t)
	lease, err := raw.Grant(ctx, 2)
	require.NoError(t, err)
	_, err = raw.Put(ctx, fmt.Sprintf("%s/waiters/0/%x", key, lease.ID), "", clientv3.WithLease(lease.ID))
	require.NoError(t, err)
	var wg sync.WaitGroup
	for range n - 1 {
		b, err := etcdkit.NewDoubleBarrier(newClient(t), key, n, etcdkit.BarrierTTL(2*time.Second))
		require.NoError(t, err)
		wg.Go(func() {
			if !assert.NoError(t, b.Enter(ctx), "Enter") {
				return
			}
			assert.NoError(t, b.Leave(ctx), "Leave with a crashed participant")
		})
	}
	wg.Wait() // bounded by testCtx: a barrier blocked forever fails the test
}

// TestDoubleBarrier_FullRoundStartsNext: a participant that enters a full
// round starts the next one instead of failing, and the first round's
// Leave does not wait for it.
func TestDoubleBarrier_FullRoundStartsNext(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	key := testPrefix(t) + "step"
	one, err := etcdkit.NewDoubleBarrier(newClient(t), key, 1)
	require.NoError(t, err)
	require.NoError(t, one.Enter(ctx))
	next, err := etcdkit.NewDoubleBarrier(newClient(t), key, 1)
	require.NoError(t, err)
	require.NoError(t, next.Enter(ctx), "Enter once the round is full")
	require.NoError(t, one.Leave(ctx), "Leave while the next round is in")
	assert.ErrorIs(t, next.Enter(ctx), etcdkit.ErrExists, "Enter twice")
	require.NoError(t, next.Leave(ctx))
	resp, err := testServer.RawClient(t).Get(ctx, key, clientv3.WithPrefix(), clientv3.WithCountOnly())
	require.NoError(t, err)
	assert.Zero(t, resp.Count, "keys left behind by the barrier")
}

// TestDoubleBarrier_RoundsApart: with n=2, A and B enter, A leaves while B
// has not. C, entering next, belongs to a new round: it must wait for a
// second participant of that round (D), not pass with B of the round
// before.
func TestDoubleBarrier_RoundsApart(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	key := testPrefix(t) + "step"
	participant := func() *etcdkit.DoubleBarrier {
		b, err := etcdkit.NewDoubleBarrier(newClient(t), key, 2)
		require.NoError(t, err)
		return b
	}
	a, b, c, d := participant(), participant(), participant(), participant()

	var wg sync.WaitGroup
	wg.Go(func() { assert.NoError(t, a.Enter(ctx), "A enters") })
	require.NoError(t, b.Enter(ctx), "B enters")
	wg.Wait()
	aLeft := make(chan error, 1)
	go func() { aLeft <- a.Leave(ctx) }()

	short, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	require.ErrorIs(t, c.Enter(short), context.DeadlineExceeded,
		"C passed Enter alone in its round, counting B of the round before")

	wg.Go(func() { assert.NoError(t, c.Enter(ctx), "C enters with D") })
	require.NoError(t, d.Enter(ctx), "D enters with C")
	wg.Wait()

	require.NoError(t, b.Leave(ctx), "B leaves")
	require.NoError(t, <-aLeft, "A leaves once B has")
	wg.Go(func() { assert.NoError(t, c.Leave(ctx), "C leaves") })
	require.NoError(t, d.Leave(ctx), "D leaves")
	wg.Wait()
	resp, err := testServer.RawClient(t).Get(ctx, key, clientv3.WithPrefix(), clientv3.WithCountOnly())
	require.NoError(t, err)
	assert.Zero(t, resp.Count, "keys left behind by the barrier")
}

// TestDoubleBarrier_PlaceLostWhileWaiting: a participant whose key goes
// (its lease ended) while it waits for its round fails with
// ErrLeaseExpired rather than waiting for a round it is no longer in.
func TestDoubleBarrier_PlaceLostWhileWaiting(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	key := testPrefix(t) + "step"
	raw := testServer.RawClient(t)
	b, err := etcdkit.NewDoubleBarrier(newClient(t), key, 2)
	require.NoError(t, err)
	entered := make(chan error, 1)
	go func() { entered <- b.Enter(ctx) }()

	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := raw.Delete(ctx, key+"/waiters/", clientv3.WithPrefix())
		require.NoError(t, err)
		if resp.Deleted > 0 {
			break
		}
		require.True(t, time.Now().Before(deadline), "the participant never joined")
		time.Sleep(10 * time.Millisecond)
	}
	assert.ErrorIs(t, <-entered, etcdkit.ErrLeaseExpired)
}

// TestBarrier_LeaseAndReleaseUnheld: a barrier held under a lease is lowered
// when the lease ends, and releasing a barrier nobody holds does nothing.
func TestBarrier_LeaseAndReleaseUnheld(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	cli := newClient(t)
	gate := etcdkit.NewBarrier(cli, testPrefix(t)+"gate")
	require.NoError(t, gate.Release(ctx), "Release of a barrier nobody holds")
	require.NoError(t, gate.Wait(ctx), "Wait on a barrier nobody holds")

	lease, err := cli.Grant(ctx, 2*time.Second)
	require.NoError(t, err)
	require.NoError(t, gate.Hold(ctx, etcdkit.WithLease(lease)))
	waited := make(chan error, 1)
	go func() { waited <- gate.Wait(ctx) }()
	require.NoError(t, lease.Revoke(ctx), "the holder's lease ends")
	assert.NoError(t, <-waited, "Wait once the holder's lease ended")
}
