package etcdkit_test

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/etcdkit/etcdkit"
	"github.com/etcdkit/etcdkit/etcdtest"
)

func TestSemaphoreLimit(t *testing.T) {
	t.Parallel()
	srv := lockServer(t)
	const limit, contenders, rounds = 3, 10, 3
	clients := []*etcdkit.Client{srv.Client(t), srv.Client(t)}
	var holders, peak atomic.Int32
	var wg sync.WaitGroup
	errs := make(chan error, contenders)
	for i := range contenders {
		sem := newSemaphore(t, clients[i%len(clients)], lockName(t), limit)
		wg.Go(func() {
			for range rounds {
				h, err := sem.Acquire(t.Context())
				if err != nil {
					errs <- err
					return
				}
				n := holders.Add(1)
				for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
				}
				if n > limit {
					errs <- fmt.Errorf("%d holders at once, limit %d", n, limit)
				}
				time.Sleep(time.Millisecond) // let others pile up
				holders.Add(-1)
				if err := h.Unlock(t.Context()); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		assert.NoError(t, err)
	}
	assert.GreaterOrEqual(t, peak.Load(), int32(1), "peak holders")
	assert.LessOrEqual(t, peak.Load(), int32(limit), "peak holders")
}

func TestSemaphoreTryAcquire(t *testing.T) {
	t.Parallel()
	srv := lockServer(t)
	cli, raw := srv.Client(t), srv.RawClient(t)
	sem := newSemaphore(t, cli, lockName(t), 2)
	var held []*etcdkit.Lock
	for i := range 2 {
		h, err := sem.TryAcquire(t.Context())
		require.NoError(t, err, "TryAcquire #%d of 2", i+1)
		held = append(held, h)
	}
	assert.Greater(t, held[1].Fence(), held[0].Fence(), "fences not increasing")
	_, err := sem.TryAcquire(t.Context())
	assert.ErrorIs(t, err, etcdkit.ErrLocked, "TryAcquire on a full semaphore")
	assert.Equal(t, []string{held[0].Key(), held[1].Key()}, lockKeysUnder(t, raw, etcdkit.SemaphoreHolders(lockName(t))), "keys: want only the two holders'")
	// A waiter is admitted when a holder leaves.
	got := make(chan error, 1)
	go func() {
		h, err := sem.Acquire(t.Context())
		if err == nil {
			err = h.Unlock(t.Context())
		}
		got <- err
	}()
	lockWaitKeys(t, raw, etcdkit.SemaphoreHolders(lockName(t)), 3)
	require.NoError(t, held[0].Unlock(t.Context()))
	select {
	case err := <-got:
		assert.NoError(t, err, "Acquire after a release")
	case <-time.After(20 * time.Second):
		require.FailNow(t, "Acquire not granted after a holder released")
	}
	_ = held[1].Unlock(t.Context())
}

func TestSemaphoreBadLimit(t *testing.T) {
	t.Parallel()
	srv := lockServer(t)
	cli := srv.Client(t)
	for _, limit := range []int{0, -1} {
		sem, err := cli.Semaphore(lockName(t), limit)
		assert.ErrorIs(t, err, etcdkit.ErrInvalidArgument, "Semaphore with limit %d", limit)
		assert.Nil(t, sem, "Semaphore with limit %d", limit)
	}
}

func TestSemaphoreLost(t *testing.T) {
	t.Parallel()
	srv := lockServer(t)
	cli, raw := srv.Client(t), srv.RawClient(t)
	h, err := newSemaphore(t, cli, lockName(t), 1).Acquire(t.Context())
	require.NoError(t, err)
	lost := h.Lost()
	lockRevokeLeaseOf(t, raw, h.Key())
	lockWaitClosed(t, lost, "Lost after revoking the lease")
	assert.ErrorIs(t, h.Err(), etcdkit.ErrLeaseExpired)
}

// newSemaphore is Client.Semaphore for valid arguments.
func newSemaphore(tb testing.TB, c *etcdkit.Client, name string, limit int, opts ...etcdkit.LockOption) *etcdkit.Semaphore {
	tb.Helper()
	sem, err := c.Semaphore(name, limit, opts...)
	require.NoError(tb, err, "Semaphore(%q, %d)", name, limit)
	return sem
}

// TestSemaphore_StoredLimit checks that the first party's limit is stored
// with the semaphore and that a party with another limit is refused, with
// both numbers named, and leaves no key behind.
func TestSemaphore_StoredLimit(t *testing.T) {
	t.Parallel()
	a, b, raw := newClient(t), newClient(t), testServer.RawClient(t)
	name := lockName(t)
	h, err := newSemaphore(t, a, name, 2).Acquire(t.Context())
	require.NoError(t, err)
	resp, err := raw.Get(t.Context(), etcdkit.SemaphoreLimitKey(name))
	require.NoError(t, err)
	require.Len(t, resp.Kvs, 1, "the limit key after the first Acquire")
	assert.Equal(t, "2", string(resp.Kvs[0].Value), "stored limit")

	other := newSemaphore(t, b, name, 3)
	_, err = other.Acquire(t.Context())
	require.ErrorIs(t, err, etcdkit.ErrInvalidArgument, "Acquire with limit 3 of a semaphore stored with 2")
	assert.Contains(t, err.Error(), "3")
	assert.Contains(t, err.Error(), "limit 2")
	_, err = other.TryAcquire(t.Context())
	assert.ErrorIs(t, err, etcdkit.ErrInvalidArgument, "TryAcquire with limit 3")
	assert.Equal(t, []string{h.Key()}, lockKeysUnder(t, raw, etcdkit.SemaphoreHolders(name)), "keys: want only the holder's")

	h2, err := newSemaphore(t, b, name, 2).Acquire(t.Context())
	require.NoError(t, err, "Acquire with the stored limit")
	assert.NoError(t, h2.Unlock(t.Context()))
	assert.NoError(t, h.Unlock(t.Context()))
}

// TestSemaphore_StoredLimitChanged checks that a Semaphore that agreed
// with the stored limit notices when it was changed since.
func TestSemaphore_StoredLimitChanged(t *testing.T) {
	t.Parallel()
	cli, raw := newClient(t), testServer.RawClient(t)
	name := lockName(t)
	sem := newSemaphore(t, cli, name, 2)
	h, err := sem.Acquire(t.Context())
	require.NoError(t, err)
	require.NoError(t, h.Unlock(t.Context()))
	_, err = raw.Put(t.Context(), etcdkit.SemaphoreLimitKey(name), "5")
	require.NoError(t, err)
	_, err = sem.Acquire(t.Context())
	require.ErrorIs(t, err, etcdkit.ErrInvalidArgument, "Acquire after the stored limit changed to 5")
	assert.Contains(t, err.Error(), "limit 5")
	assert.Empty(t, lockKeysUnder(t, raw, etcdkit.SemaphoreHolders(name)), "keys after the refused Acquire")
}

// TestSemaphore_StoredLimitAmbiguous checks that a store of the limit that
// committed but failed is settled by reading it back: the party whose
// limit it stored is admitted, another is refused.
func TestSemaphore_StoredLimitAmbiguous(t *testing.T) {
	t.Parallel()
	for _, outcome := range []etcdtest.Outcome{etcdtest.CommitThenFail, etcdtest.FailThenCommit} {
		t.Run(outcome.String(), func(t *testing.T) {
			t.Parallel()
			f := etcdtest.NewFaults()
			cli, raw := testServer.Client(t, etcdtest.WithFaults(f)), testServer.RawClient(t)
			name := lockName(t)
			f.Inject(etcdtest.RPCTxn, outcome, 1, 200*time.Millisecond)
			h, err := newSemaphore(t, cli, name, 2).Acquire(t.Context())
			require.NoError(t, err, "Acquire whose limit store had an unknown outcome")
			require.Equal(t, int64(1), f.Injected(), "the fault was used")
			f.Wait()
			resp, err := raw.Get(t.Context(), etcdkit.SemaphoreLimitKey(name))
			require.NoError(t, err)
			require.Len(t, resp.Kvs, 1)
			assert.Equal(t, "2", string(resp.Kvs[0].Value), "stored limit")
			_, err = newSemaphore(t, newClient(t), name, 4).TryAcquire(t.Context())
			assert.ErrorIs(t, err, etcdkit.ErrInvalidArgument, "TryAcquire with another limit")
			assert.NoError(t, h.Unlock(t.Context()))
		})
	}
}
