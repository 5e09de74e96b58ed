package etcdkit_test

import (
	"context"
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/etcdkit/etcdkit"
	"github.com/etcdkit/etcdkit/etcdtest"
)

// TestUnlockAfterLoss_EveryKind checks that the release of every kind of
// hold returns the loss when the hold was lost before it, and nil when
// called again.
func TestUnlockAfterLoss_EveryKind(t *testing.T) {
	t.Parallel()
	kinds := []struct {
		name string
		take func(t *testing.T, c *etcdkit.Client, name string) (*etcdkit.Lock, func(context.Context) error)
	}{
		{"lock", func(t *testing.T, c *etcdkit.Client, name string) (*etcdkit.Lock, func(context.Context) error) {
			l, err := c.Lock(t.Context(), name)
			require.NoError(t, err)
			return l, l.Unlock
		}},
		{"semaphore", func(t *testing.T, c *etcdkit.Client, name string) (*etcdkit.Lock, func(context.Context) error) {
			l, err := newSemaphore(t, c, name, 2).Acquire(t.Context())
			require.NoError(t, err)
			return l, l.Unlock
		}},
		{"read hold", func(t *testing.T, c *etcdkit.Client, name string) (*etcdkit.Lock, func(context.Context) error) {
			l, err := newRWMutex(t, c, name).RLock(t.Context())
			require.NoError(t, err)
			return l, l.Unlock
		}},
		{"write hold", func(t *testing.T, c *etcdkit.Client, name string) (*etcdkit.Lock, func(context.Context) error) {
			l, err := newRWMutex(t, c, name).Lock(t.Context())
			require.NoError(t, err)
			return l, l.Unlock
		}},
		{"leadership", func(t *testing.T, c *etcdkit.Client, name string) (*etcdkit.Lock, func(context.Context) error) {
			ld, err := c.Campaign(t.Context(), name, "v")
			require.NoError(t, err)
			return etcdkit.LockOf(ld), ld.Resign
		}},
	}
	for _, k := range kinds {
		for _, watched := range []bool{false, true} {
			t.Run(k.name+map[bool]string{false: "/unwatched", true: "/watched"}[watched], func(t *testing.T) {
				t.Parallel()
				cli, raw := newClient(t), testServer.RawClient(t)
				l, release := k.take(t, cli, lockName(t))
				if watched {
					lost := l.Lost()
					lockRevokeLeaseOf(t, raw, l.Key())
					lockWaitClosed(t, lost, "Lost after revoking the lease")
				} else {
					// Nobody watches the key: the release itself finds it gone.
					_, err := raw.Delete(t.Context(), l.Key())
					require.NoError(t, err)
				}
				assert.ErrorIs(t, release(t.Context()), etcdkit.ErrLeaseExpired, "release after the loss")
				assert.NoError(t, release(t.Context()), "second release")
				assert.ErrorIs(t, l.Err(), etcdkit.ErrLeaseExpired, "Err after the release")
			})
		}
	}
}

// TestUnlockNotLost checks that a hold released while held returns nil, and
// Err then says it was unlocked, not lost.
func TestUnlockNotLost(t *testing.T) {
	t.Parallel()
	l, err := newClient(t).Lock(t.Context(), lockName(t))
	require.NoError(t, err)
	require.NoError(t, l.Unlock(t.Context()))
	assert.ErrorIs(t, l.Err(), etcdkit.ErrClosed, "Err after Unlock")
	assert.NotErrorIs(t, l.Err(), etcdkit.ErrLeaseExpired, "Err after Unlock")
}

// TestLockErrStartsNothing checks that Err neither starts the watch that
// Lost starts nor a goroutine per call. Not parallel, so that fewer other
// goroutines come and go meanwhile.
func TestLockErrStartsNothing(t *testing.T) {
	l, err := newClient(t).Lock(t.Context(), lockName(t))
	require.NoError(t, err)
	t.Cleanup(func() { _ = l.Unlock(context.Background()) })
	before := runtime.NumGoroutine()
	for range 1000 {
		require.NoError(t, l.Err())
	}
	assert.False(t, etcdkit.LockWatched(l), "Err started the watch on the key")
	// Other goroutines (the lease's keep-alive, gRPC's) may come and go
	// meanwhile; one per call would be a thousand.
	assert.Less(t, runtime.NumGoroutine()-before, 100, "goroutines started by 1000 Err calls")
}

// TestUnlockRetriedAfterUnknownOutcome: an Unlock whose delete committed but
// whose answer was lost returns an error; the retry then finds the key gone.
// That is the first call's delete, not a loss: the retry returns nil, and
// Err says the lock was unlocked.
func TestUnlockRetriedAfterUnknownOutcome(t *testing.T) {
	t.Parallel()
	f := etcdtest.NewFaults()
	cli := testServer.Client(t, etcdtest.WithFaults(f))
	l, err := cli.Lock(t.Context(), lockName(t))
	require.NoError(t, err)
	f.Inject(etcdtest.RPCTxn, etcdtest.CommitThenFail, 1, 0)
	require.Error(t, l.Unlock(t.Context()), "the Unlock whose answer was lost")
	resp, err := testServer.RawClient(t).Get(t.Context(), l.Key())
	require.NoError(t, err)
	require.Zero(t, resp.Count, "the first Unlock's delete committed")
	assert.NoError(t, l.Unlock(t.Context()), "the retried Unlock: the key is gone by its own hand")
	assert.ErrorIs(t, l.Err(), etcdkit.ErrClosed, "Err after the retried Unlock")
	assert.NotErrorIs(t, l.Err(), etcdkit.ErrLeaseExpired, "Err after the retried Unlock")
}
