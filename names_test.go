package etcdkit_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/etcdkit/etcdkit"
)

// nestedCtx bounds a call that must not wait on a nested name's holder.
func nestedCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestLock_NestedNameDoesNotBlock checks that a lock named "a" does not
// queue behind the holder of a lock named "a/b", although the latter's key
// is under the former's prefix.
func TestLock_NestedNameDoesNotBlock(t *testing.T) {
	t.Parallel()
	holder, other := newClient(t), newClient(t)
	name := lockName(t)
	inner, err := holder.Lock(t.Context(), name+"/b")
	require.NoError(t, err)
	t.Cleanup(func() { _ = inner.Unlock(context.Background()) })

	t.Run("TryLock", func(t *testing.T) {
		l, err := other.TryLock(nestedCtx(t), name)
		require.NoError(t, err, "TryLock of the outer name while the nested one is held")
		assert.NoError(t, l.Unlock(t.Context()))
	})
	t.Run("Lock", func(t *testing.T) {
		l, err := other.Lock(nestedCtx(t), name)
		require.NoError(t, err, "Lock of the outer name while the nested one is held")
		assert.NoError(t, l.Unlock(t.Context()))
	})
	t.Run("Lock behind an outer holder", func(t *testing.T) {
		// A nested key created between the outer holder's and the
		// waiter's must not be waited on once the outer holder leaves.
		outer, err := holder.Lock(nestedCtx(t), name)
		require.NoError(t, err)
		nested2, err := other.Lock(nestedCtx(t), name+"/c")
		require.NoError(t, err)
		t.Cleanup(func() { _ = nested2.Unlock(context.Background()) })
		got := make(chan error, 1)
		go func() {
			l, err := other.Lock(nestedCtx(t), name)
			if err == nil {
				err = l.Unlock(t.Context())
			}
			got <- err
		}()
		lockWaitKeys(t, testServer.RawClient(t), name+"/", 4) // b, outer, c, the waiter
		require.NoError(t, outer.Unlock(t.Context()))
		select {
		case err := <-got:
			assert.NoError(t, err, "Lock after the outer holder left, nested ones still held")
		case <-time.After(20 * time.Second):
			require.FailNow(t, "Lock did not return after the outer holder left")
		}
	})
}

// TestElection_NestedNameIsNotTheLeader checks that the leader of an
// election named "a/b" is neither the leader of "a" nor in its way.
func TestElection_NestedNameIsNotTheLeader(t *testing.T) {
	t.Parallel()
	holder, other := newClient(t), newClient(t)
	name := lockName(t)
	inner, err := holder.Campaign(t.Context(), name+"/b", "inner")
	require.NoError(t, err)
	t.Cleanup(func() { _ = inner.Resign(context.Background()) })

	_, err = other.Leader(t.Context(), name)
	require.ErrorIs(t, err, etcdkit.ErrNoLeader, "Leader of the outer election")
	ld, err := other.Campaign(nestedCtx(t), name, "outer")
	require.NoError(t, err, "Campaign of the outer election while the nested one is led")
	leader, err := other.Leader(t.Context(), name)
	require.NoError(t, err)
	assert.Equal(t, "outer", leader)
	assert.NoError(t, ld.Resign(t.Context()))
}

// TestLock_KindsOfOneNameAreIndependent checks that a Lock, a Semaphore and
// an RWMutex of the same name do not share keys: each is taken while the
// others are held.
func TestLock_KindsOfOneNameAreIndependent(t *testing.T) {
	t.Parallel()
	a, b := newClient(t), newClient(t)
	name := lockName(t)
	l, err := a.Lock(t.Context(), name)
	require.NoError(t, err)
	sem := newSemaphore(t, a, name, 1)
	h, err := sem.TryAcquire(t.Context())
	require.NoError(t, err, "TryAcquire of a semaphore named as a held lock")
	w, err := newRWMutex(t, a, name).TryLock(t.Context())
	require.NoError(t, err, "write TryLock of an RWMutex named as a held lock and semaphore")

	// And the other way round: with the three held, another client's
	// TryLock of each is refused by its own kind only.
	_, err = b.TryLock(t.Context(), name)
	assert.ErrorIs(t, err, etcdkit.ErrLocked, "TryLock of the held lock")
	_, err = newSemaphore(t, b, name, 1).TryAcquire(t.Context())
	assert.ErrorIs(t, err, etcdkit.ErrLocked, "TryAcquire of the full semaphore")
	_, err = newRWMutex(t, b, name).TryRLock(t.Context())
	assert.ErrorIs(t, err, etcdkit.ErrLocked, "TryRLock of the write-held RWMutex")

	require.NoError(t, l.Unlock(t.Context()))
	l2, err := b.TryLock(t.Context(), name)
	require.NoError(t, err, "TryLock once the lock is free, the semaphore and RWMutex still held")
	for _, x := range []*etcdkit.Lock{l2, h, w} {
		assert.NoError(t, x.Unlock(t.Context()))
	}
}

// TestLock_NestedNameStillExcludesConcurrencyMutex checks that skipping
// nested names keeps the wire compatibility: concurrency.Mutex and Lock on
// one name exclude each other while a nested name's lock is held too.
func TestLock_NestedNameStillExcludesConcurrencyMutex(t *testing.T) {
	t.Parallel()
	cli, raw := newClient(t), testServer.RawClient(t)
	name := lockName(t)
	sess, err := concurrency.NewSession(raw, concurrency.WithTTL(10))
	require.NoError(t, err)
	t.Cleanup(func() { _ = sess.Close() })

	m := concurrency.NewMutex(sess, name)
	require.NoError(t, m.Lock(nestedCtx(t)))
	inner, err := cli.Lock(nestedCtx(t), name+"/b")
	require.NoError(t, err, "Lock of a nested name while concurrency.Mutex holds the outer one")
	t.Cleanup(func() { _ = inner.Unlock(context.Background()) })
	_, err = cli.TryLock(t.Context(), name)
	assert.ErrorIs(t, err, etcdkit.ErrLocked, "TryLock while concurrency.Mutex holds the name")

	require.NoError(t, m.Unlock(t.Context()))
	l, err := cli.TryLock(t.Context(), name)
	require.NoError(t, err, "TryLock once concurrency.Mutex let go, the nested lock still held")
	assert.ErrorIs(t, concurrency.NewMutex(sess, name).TryLock(t.Context()), concurrency.ErrLocked, "concurrency TryLock while we hold")
	assert.NoError(t, l.Unlock(t.Context()))
}

// TestLock_NamesWithNulAreRefused checks that the byte that separates the
// kinds' keys cannot appear in a name, so that no name reaches into
// another kind's keys.
func TestLock_NamesWithNulAreRefused(t *testing.T) {
	t.Parallel()
	cli := newClient(t)
	name := lockName(t) + "\x00semaphore"
	ctx := nestedCtx(t)
	calls := map[string]func() error{
		"Lock":    func() error { _, err := cli.Lock(ctx, name); return err },
		"TryLock": func() error { _, err := cli.TryLock(ctx, name); return err },
		"Campaign": func() error {
			_, err := cli.Campaign(ctx, name, "v")
			return err
		},
		"Leader":    func() error { _, err := cli.Leader(ctx, name); return err },
		"Semaphore": func() error { _, err := cli.Semaphore(name, 1); return err },
		"RWMutex":   func() error { _, err := cli.RWMutex(name); return err },
		"RunAsLeader": func() error {
			return cli.RunAsLeader(ctx, name, "v", func(context.Context, *etcdkit.Term) error { return nil })
		},
	}
	for what, call := range calls {
		assert.ErrorIs(t, call(), etcdkit.ErrInvalidArgument, what)
	}
}
