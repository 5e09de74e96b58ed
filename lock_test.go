package etcdkit_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/etcdkit/etcdkit"
	"github.com/etcdkit/etcdkit/etcdtest"
)

// lockServer returns the etcd server the lock tests use: the package's
// shared one.
func lockServer(t testing.TB) *etcdtest.Server {
	t.Helper()
	return testServer
}

var (
	lockNamesMu sync.Mutex
	lockNames   = map[testing.TB]string{}
	lockNameSeq int
)

// lockName returns a name unique to the test, and to this run of it.
func lockName(t testing.TB) string {
	lockNamesMu.Lock()
	defer lockNamesMu.Unlock()
	if n, ok := lockNames[t]; ok {
		return n
	}
	lockNameSeq++
	n := fmt.Sprintf("locktest/%s-%d-%d", t.Name(), time.Now().UnixNano(), lockNameSeq)
	lockNames[t] = n
	t.Cleanup(func() {
		lockNamesMu.Lock()
		delete(lockNames, t)
		lockNamesMu.Unlock()
	})
	return n
}

// lockWaitClosed fails the test unless ch is closed within a generous bound: a
// safety net against hanging, not a measure of speed.
func lockWaitClosed(t testing.TB, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(20 * time.Second):
		require.FailNow(t, what+": not closed after 20s")
	}
}

// lockKeysUnder returns the keys under prefix, oldest first.
func lockKeysUnder(t testing.TB, raw *clientv3.Client, prefix string) []string {
	t.Helper()
	resp, err := raw.Get(t.Context(), prefix, clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByCreateRevision, clientv3.SortAscend))
	require.NoError(t, err, "get %q", prefix)
	var keys []string
	for _, kv := range resp.Kvs {
		keys = append(keys, string(kv.Key))
	}
	return keys
}

// lockWaitKeys waits until there are n keys under prefix.
func lockWaitKeys(t testing.TB, raw *clientv3.Client, prefix string, n int) {
	t.Helper()
	for range 2000 {
		if len(lockKeysUnder(t, raw, prefix)) == n {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	require.FailNow(t, fmt.Sprintf("want %d keys under %q, have %q", n, prefix, lockKeysUnder(t, raw, prefix)))
}

// lockRevokeLeaseOf revokes, from outside, the lease behind key.
func lockRevokeLeaseOf(t testing.TB, raw *clientv3.Client, key string) {
	t.Helper()
	resp, err := raw.Get(t.Context(), key)
	require.NoError(t, err, "get %q", key)
	require.NotEmpty(t, resp.Kvs, "get %q", key)
	_, err = raw.Revoke(t.Context(), clientv3.LeaseID(resp.Kvs[0].Lease))
	require.NoError(t, err, "revoke lease of %q", key)
}

// lockStressRounds is how often each goroutine takes the lock in
// TestLockMutualExclusion: 50, or 10 with -short.
func lockStressRounds() int {
	if testing.Short() {
		return 10
	}
	return 50
}

func TestLockMutualExclusion(t *testing.T) {
	t.Parallel()
	srv := lockServer(t)
	name := lockName(t)
	const clients, workers = 8, 4
	rounds := lockStressRounds()
	counterKey := name + "-counter"

	var (
		holders atomic.Int32
		mu      sync.Mutex
		fences  []int64
		wg      sync.WaitGroup
	)
	errs := make(chan error, clients*workers)
	for range clients {
		cli := srv.Client(t)
		counter := etcdkit.NewKV(cli, "", etcdkit.String())
		for range workers {
			wg.Go(func() {
				for range rounds {
					if err := lockIncrement(t.Context(), cli, counter, name, counterKey, &holders, &mu, &fences); err != nil {
						errs <- err
						return
					}
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		assert.NoError(t, err)
	}
	e, err := etcdkit.NewKV(srv.Client(t), "", etcdkit.String()).Get(t.Context(), counterKey)
	require.NoError(t, err, "read counter")
	assert.Equal(t, strconv.Itoa(clients*workers*rounds), e.Value, "counter: increments were lost, so two holders overlapped")
	assert.Len(t, fences, clients*workers*rounds, "recorded fences")
	for i := 1; i < len(fences); i++ {
		require.Greater(t, fences[i], fences[i-1], "fence of holder %d is not above the holder before's", i)
	}
}

// lockIncrement takes the lock, checks it is the only holder, and adds
// one to the counter with a plain read and write.
func lockIncrement(ctx context.Context, cli *etcdkit.Client, counter *etcdkit.KV[string], name, key string,
	holders *atomic.Int32, mu *sync.Mutex, fences *[]int64) error {
	l, err := cli.Lock(ctx, name)
	if err != nil {
		return fmt.Errorf("lock: %w", err)
	}
	if n := holders.Add(1); n != 1 {
		return fmt.Errorf("%d holders at once", n)
	}
	mu.Lock()
	*fences = append(*fences, l.Fence())
	mu.Unlock()
	n := 0
	e, err := counter.Get(ctx, key)
	switch {
	case errors.Is(err, etcdkit.ErrNotFound):
	case err != nil:
		return fmt.Errorf("get counter: %w", err)
	default:
		if n, err = strconv.Atoi(e.Value); err != nil {
			return err
		}
	}
	if _, err := counter.Put(ctx, key, strconv.Itoa(n+1)); err != nil {
		return fmt.Errorf("put counter: %w", err)
	}
	holders.Add(-1)
	return l.Unlock(ctx)
}

func TestLockLostWhenLeaseRevoked(t *testing.T) {
	t.Parallel()
	srv := lockServer(t)
	cli, raw := srv.Client(t), srv.RawClient(t)
	data := etcdkit.NewKV(cli, lockName(t)+"-data/", etcdkit.String())
	l, err := cli.Lock(t.Context(), lockName(t))
	require.NoError(t, err)
	lost := l.Lost()
	require.NoError(t, l.Err(), "Err while held")
	res, err := cli.Txn(t.Context()).If(l.Held()).Then(data.PutOp("x", "1")).Commit()
	require.NoError(t, err, "guarded write while held")
	require.True(t, res.Succeeded, "guarded write while held: want success")

	lockRevokeLeaseOf(t, raw, l.Key())
	lockWaitClosed(t, lost, "Lost after revoking the lease")
	assert.ErrorIs(t, l.Err(), etcdkit.ErrLeaseExpired)
	res, err = cli.Txn(t.Context()).If(l.Held()).Then(data.PutOp("x", "2")).Commit()
	require.NoError(t, err, "guarded write after loss")
	require.False(t, res.Succeeded, "guarded write after loss: want refused")
	assert.ErrorIs(t, l.Unlock(t.Context()), etcdkit.ErrLeaseExpired, "Unlock after loss: the loss")
	assert.NoError(t, l.Unlock(t.Context()), "second Unlock after loss")
	assert.ErrorIs(t, l.Err(), etcdkit.ErrLeaseExpired, "Err after Unlock of a lost lock")
	// The session whose lease is gone is replaced, not reused.
	l2, err := cli.Lock(t.Context(), lockName(t))
	require.NoError(t, err, "Lock after the lease was revoked")
	assert.NotEqual(t, l.Key(), l2.Key(), "new lock reused the revoked lease's key")
	require.NoError(t, l2.Unlock(t.Context()))
}

func TestWithLockCancelsOnLoss(t *testing.T) {
	t.Parallel()
	srv := lockServer(t)
	cli, raw := srv.Client(t), srv.RawClient(t)
	var cause error
	err := cli.WithLock(t.Context(), lockName(t), func(ctx context.Context) error {
		keys := lockKeysUnder(t, raw, lockName(t)+"/")
		if len(keys) != 1 {
			return fmt.Errorf("keys while held = %q, want one", keys)
		}
		l, ok := etcdkit.HeldLock(ctx)
		if !ok || l.Key() != keys[0] {
			return fmt.Errorf("HeldLock(fn's ctx) = %v, %v; want the lock at %q", l, ok, keys[0])
		}
		lockRevokeLeaseOf(t, raw, keys[0])
		lockWaitClosed(t, ctx.Done(), "fn's ctx after the lock was lost")
		cause = context.Cause(ctx)
		data := etcdkit.NewKV(cli, lockName(t)+"-data/", etcdkit.String())
		res, err := cli.Txn(context.WithoutCancel(ctx)).If(l.Held()).Then(data.PutOp("k", "v")).Commit()
		if err != nil || res.Succeeded {
			return fmt.Errorf("write fenced by the lost lock: succeeded %v, err %v; want refused", res.Succeeded, err)
		}
		return ctx.Err()
	})
	assert.ErrorIs(t, err, context.Canceled, "WithLock: want fn's context.Canceled")
	assert.ErrorIs(t, cause, etcdkit.ErrLeaseExpired, "cause of fn's ctx")
}

func TestWithLockReleases(t *testing.T) {
	t.Parallel()
	srv := lockServer(t)
	cli, raw := srv.Client(t), srv.RawClient(t)
	ran := false
	err := cli.WithLock(t.Context(), lockName(t), func(ctx context.Context) error {
		ran = true
		if keys := lockKeysUnder(t, raw, lockName(t)+"/"); len(keys) != 1 {
			return fmt.Errorf("keys while held = %q, want one", keys)
		}
		return nil
	})
	require.NoError(t, err, "WithLock")
	require.True(t, ran, "WithLock did not run fn")
	assert.Empty(t, lockKeysUnder(t, raw, lockName(t)+"/"), "keys after WithLock")
	wantErr := errors.New("fn failed")
	err = cli.WithLock(t.Context(), lockName(t), func(context.Context) error { return wantErr })
	assert.ErrorIs(t, err, wantErr, "WithLock: want fn's error")
}

func TestLockOldHolderFencedOut(t *testing.T) {
	t.Parallel()
	srv := lockServer(t)
	a, b, raw := srv.Client(t), srv.Client(t), srv.RawClient(t)
	name := lockName(t)
	data := etcdkit.NewKV(a, name+"-data/", etcdkit.String())
	la, err := a.Lock(t.Context(), name)
	require.NoError(t, err)
	// A stalls; its lease expires (revoked here) and B takes the lock.
	lockRevokeLeaseOf(t, raw, la.Key())
	lb, err := b.Lock(t.Context(), name)
	require.NoError(t, err)
	assert.Greater(t, lb.Fence(), la.Fence(), "new holder's fence is not above the old one's")
	res, err := a.Txn(t.Context()).If(la.Held()).Then(data.PutOp("x", "from A")).Commit()
	if assert.NoError(t, err, "old holder's fenced write") {
		assert.False(t, res.Succeeded, "old holder's fenced write: want refused")
	}
	res, err = b.Txn(t.Context()).If(lb.Held()).Then(data.PutOp("x", "from B")).Commit()
	if assert.NoError(t, err, "new holder's fenced write") {
		assert.True(t, res.Succeeded, "new holder's fenced write: want success")
	}
	// The old holder's Unlock must not release the new holder's lock.
	// It reports the loss, found when its delete finds the key gone (no
	// Lost or Err was asked for before).
	assert.ErrorIs(t, la.Unlock(t.Context()), etcdkit.ErrLeaseExpired, "old holder's Unlock")
	assert.Equal(t, []string{lb.Key()}, lockKeysUnder(t, raw, name+"/"), "keys after the old holder's Unlock: want the new holder's")
	_, err = b.TryLock(t.Context(), name)
	assert.ErrorIs(t, err, etcdkit.ErrLocked, "TryLock while B holds")
}

func TestTryLock(t *testing.T) {
	t.Parallel()
	srv := lockServer(t)
	a, b, raw := srv.Client(t), srv.Client(t), srv.RawClient(t)
	name := lockName(t)
	la, err := a.TryLock(t.Context(), name)
	require.NoError(t, err, "TryLock on a free lock")
	for _, cli := range []*etcdkit.Client{b, a} {
		_, err := cli.TryLock(t.Context(), name)
		assert.ErrorIs(t, err, etcdkit.ErrLocked, "TryLock on a held lock")
	}
	assert.Equal(t, []string{la.Key()}, lockKeysUnder(t, raw, name+"/"), "keys after failed TryLocks: want only the holder's")
	require.NoError(t, la.Unlock(t.Context()))
	lb, err := b.TryLock(t.Context(), name)
	require.NoError(t, err, "TryLock after Unlock")
	_ = lb.Unlock(t.Context())
}

func TestLockTwiceFromOneClient(t *testing.T) {
	t.Parallel()
	srv := lockServer(t)
	cli, raw := srv.Client(t), srv.RawClient(t)
	name := lockName(t)
	l1, err := cli.Lock(t.Context(), name)
	require.NoError(t, err)
	got := make(chan *etcdkit.Lock, 1)
	go func() {
		l2, err := cli.Lock(t.Context(), name)
		if !assert.NoError(t, err) {
			close(got)
			return
		}
		got <- l2
	}()
	lockWaitKeys(t, raw, name+"/", 2) // the second waits, with its own key
	// A TryLock from the same client must not disturb the waiter's key.
	_, err = cli.TryLock(t.Context(), name)
	assert.ErrorIs(t, err, etcdkit.ErrLocked, "TryLock")
	select {
	case <-got:
		require.FailNow(t, "second Lock returned while the first holds the lock")
	default:
	}
	keys := lockKeysUnder(t, raw, name+"/")
	require.Len(t, keys, 2, "keys: want the holder's and one waiter")
	require.Equal(t, l1.Key(), keys[0], "keys: want the holder's first")
	require.NoError(t, l1.Unlock(t.Context()))
	var l2 *etcdkit.Lock
	select {
	case l2 = <-got:
	case <-time.After(20 * time.Second):
		require.FailNow(t, "second Lock not granted after Unlock")
	}
	require.NotNil(t, l2, "second Lock failed")
	assert.NotEqual(t, l1.Key(), l2.Key(), "both locks used one key: they need separate sessions")
	assert.Greater(t, l2.Fence(), l1.Fence(), "second fence not above the first")
	_ = l2.Unlock(t.Context())
}

func TestUnlockTwice(t *testing.T) {
	t.Parallel()
	srv := lockServer(t)
	cli, raw := srv.Client(t), srv.RawClient(t)
	l, err := cli.Lock(t.Context(), lockName(t))
	require.NoError(t, err)
	lost := l.Lost()
	for i := range 2 {
		assert.NoError(t, l.Unlock(t.Context()), "Unlock #%d", i+1)
	}
	lockWaitClosed(t, lost, "Lost after Unlock")
	assert.ErrorIs(t, l.Err(), etcdkit.ErrClosed, "Err after Unlock")
	assert.Empty(t, lockKeysUnder(t, raw, lockName(t)+"/"), "keys after Unlock")
}

func TestLockWaitCancelled(t *testing.T) {
	t.Parallel()
	srv := lockServer(t)
	a, b, raw := srv.Client(t), srv.Client(t), srv.RawClient(t)
	name := lockName(t)
	la, err := a.Lock(t.Context(), name)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, err := b.Lock(ctx, name)
		done <- err
	}()
	lockWaitKeys(t, raw, name+"/", 2)
	cancel()
	select {
	case err := <-done:
		assert.ErrorIs(t, err, context.Canceled, "Lock")
	case <-time.After(20 * time.Second):
		require.FailNow(t, "Lock did not return after its ctx was cancelled")
	}
	assert.Equal(t, []string{la.Key()}, lockKeysUnder(t, raw, name+"/"), "keys after the waiter gave up: want only the holder's")
}

func TestLockBadArguments(t *testing.T) {
	t.Parallel()
	srv := lockServer(t)
	cli := srv.Client(t)
	tests := []struct {
		name string
		lock string
		opts []etcdkit.LockOption
		want error
	}{
		{"ttl under a second", "x", []etcdkit.LockOption{etcdkit.LockTTL(500 * time.Millisecond)}, etcdkit.ErrInvalidTTL},
		{"zero ttl", "x", []etcdkit.LockOption{etcdkit.LockTTL(0)}, etcdkit.ErrInvalidTTL},
		{"empty name", "", nil, etcdkit.ErrEmptyKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := cli.Lock(t.Context(), tt.lock, tt.opts...)
			assert.ErrorIs(t, err, tt.want, "Lock")
			_, err = cli.Campaign(t.Context(), tt.lock, "v", tt.opts...)
			assert.ErrorIs(t, err, tt.want, "Campaign")
		})
	}
	l, err := cli.Lock(t.Context(), lockName(t), etcdkit.LockTTL(1500*time.Millisecond))
	require.NoError(t, err, "Lock with a 1.5s TTL")
	_ = l.Unlock(t.Context())
}

func TestLockClientClose(t *testing.T) {
	t.Parallel()
	srv := lockServer(t)
	a, err := etcdkit.New(t.Context(), srv.Config())
	require.NoError(t, err)
	b := srv.Client(t)
	name := lockName(t)
	la, err := a.Lock(t.Context(), name)
	require.NoError(t, err)
	lost := la.Lost()
	require.NoError(t, a.Close())
	lockWaitClosed(t, lost, "Lost after Client.Close")
	assert.ErrorIs(t, la.Err(), etcdkit.ErrClosed, "Err after Close")
	// Close revoked the lease, so the lock is free at once.
	lb, err := b.TryLock(t.Context(), name)
	require.NoError(t, err, "TryLock after the holder's client closed")
	_ = lb.Unlock(t.Context())
	assert.NoError(t, la.Unlock(t.Context()), "Unlock after Close")
	_, err = a.Lock(t.Context(), name)
	assert.ErrorIs(t, err, etcdkit.ErrClosed, "Lock after Close")
}

func TestLockWireCompatible(t *testing.T) {
	t.Parallel()
	srv := lockServer(t)
	cli, raw := srv.Client(t), srv.RawClient(t)
	name := lockName(t)
	sess, err := concurrency.NewSession(raw, concurrency.WithTTL(10))
	require.NoError(t, err)
	defer sess.Close()

	t.Run("ours excludes concurrency.Mutex", func(t *testing.T) {
		l, err := cli.Lock(t.Context(), name)
		require.NoError(t, err)
		err = concurrency.NewMutex(sess, name).TryLock(t.Context())
		assert.ErrorIs(t, err, concurrency.ErrLocked, "concurrency TryLock while we hold")
		require.NoError(t, l.Unlock(t.Context()))
		m := concurrency.NewMutex(sess, name)
		require.NoError(t, m.TryLock(t.Context()), "concurrency TryLock after our Unlock")
		_ = m.Unlock(t.Context())
	})
	t.Run("concurrency.Mutex excludes ours", func(t *testing.T) {
		m := concurrency.NewMutex(sess, name)
		require.NoError(t, m.Lock(t.Context()))
		_, err := cli.TryLock(t.Context(), name)
		assert.ErrorIs(t, err, etcdkit.ErrLocked, "TryLock while concurrency.Mutex holds")
		got := make(chan error, 1)
		go func() {
			l, err := cli.Lock(t.Context(), name)
			if err == nil {
				err = l.Unlock(t.Context())
			}
			got <- err
		}()
		lockWaitKeys(t, raw, name+"/", 2)
		require.NoError(t, m.Unlock(t.Context()))
		select {
		case err := <-got:
			assert.NoError(t, err, "Lock after concurrency.Mutex unlocked")
		case <-time.After(20 * time.Second):
			require.FailNow(t, "Lock not granted after concurrency.Mutex unlocked")
		}
	})
	t.Run("same key", func(t *testing.T) {
		l, err := cli.Lock(t.Context(), name)
		require.NoError(t, err)
		defer l.Unlock(t.Context())
		resp, err := raw.Get(t.Context(), l.Key())
		require.NoError(t, err, "get %q", l.Key())
		require.Len(t, resp.Kvs, 1, "get %q", l.Key())
		assert.Equal(t, fmt.Sprintf("%s/%x", name, resp.Kvs[0].Lease), l.Key(), "key: want concurrency's")
		assert.Equal(t, resp.Kvs[0].CreateRevision, l.Fence(), "fence: want the key's create revision")
	})
}

func TestLockLostWhenClusterUnreachable(t *testing.T) {
	t.Parallel()
	srv := etcdtest.Start(t) // its own server: this test stops it
	cli := srv.Client(t)
	l, err := cli.Lock(t.Context(), lockName(t), etcdkit.LockTTL(2*time.Second))
	require.NoError(t, err)
	lost := l.Lost()
	srv.Stop()
	// Without answers to its keep-alives, the client must give the lease up
	// for lost before its TTL passes, and say the lock is lost: the server
	// may still hold the lease, so the loss is not an expiry.
	lockWaitClosed(t, lost, "Lost with the cluster unreachable")
	assert.ErrorIs(t, l.Err(), etcdkit.ErrLeaseLost)
	assert.NotErrorIs(t, l.Err(), etcdkit.ErrLeaseExpired, "a lease given up for lost is not an expiry")
	srv.Restart(t)
	// The next lock gets a new lease rather than the one given up for lost.
	l2, err := cli.Lock(t.Context(), lockName(t), etcdkit.LockTTL(2*time.Second))
	require.NoError(t, err, "Lock after the cluster came back")
	assert.NotEqual(t, l.Key(), l2.Key(), "new lock reused the lost lease's key")
	_ = l2.Unlock(t.Context())
}
