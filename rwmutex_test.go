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
)

func TestRWMutexReadersShareWriterExcludes(t *testing.T) {
	t.Parallel()
	srv := lockServer(t)
	a, b, raw := srv.Client(t), srv.Client(t), srv.RawClient(t)
	name := lockName(t)
	ma, mb := newRWMutex(t, a, name), newRWMutex(t, b, name)

	// Many readers at once, from both clients.
	var readers []*etcdkit.Lock
	for i := range 6 {
		m := ma
		if i%2 == 1 {
			m = mb
		}
		r, err := m.TryRLock(t.Context())
		require.NoError(t, err, "read lock #%d while only readers hold", i+1)
		readers = append(readers, r)
	}
	_, err := mb.TryLock(t.Context())
	assert.ErrorIs(t, err, etcdkit.ErrLocked, "write TryLock while readers hold")
	assert.Len(t, lockKeysUnder(t, raw, etcdkit.RWMutexKeys(name)), len(readers), "keys after a failed write TryLock: want the readers'")

	// A writer waits for all readers; readers coming after it wait for it.
	wrote := make(chan *etcdkit.Lock, 1)
	go func() {
		w, err := mb.Lock(t.Context())
		if !assert.NoError(t, err) {
			close(wrote)
			return
		}
		wrote <- w
	}()
	lockWaitKeys(t, raw, etcdkit.RWMutexKeys(name), len(readers)+1)
	_, err = ma.TryRLock(t.Context())
	assert.ErrorIs(t, err, etcdkit.ErrLocked, "read TryLock with a writer waiting")
	for i, r := range readers {
		select {
		case <-wrote:
			require.FailNow(t, fmt.Sprintf("writer got the lock with %d readers still holding", len(readers)-i))
		default:
		}
		require.NoError(t, r.Unlock(t.Context()))
	}
	var w *etcdkit.Lock
	select {
	case w = <-wrote:
	case <-time.After(20 * time.Second):
		require.FailNow(t, "writer not granted after the readers left")
	}
	require.NotNil(t, w, "writer's Lock failed")
	_, err = ma.TryRLock(t.Context())
	assert.ErrorIs(t, err, etcdkit.ErrLocked, "read TryLock while a writer holds")
	_, err = ma.TryLock(t.Context())
	assert.ErrorIs(t, err, etcdkit.ErrLocked, "write TryLock while a writer holds")
	require.NoError(t, w.Unlock(t.Context()))
	assert.Empty(t, lockKeysUnder(t, raw, etcdkit.RWMutexKeys(name)), "keys after all unlocked")
}

func TestRWMutexStress(t *testing.T) {
	t.Parallel()
	srv := lockServer(t)
	name := lockName(t)
	var readers, writers, maxReaders atomic.Int32
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 2 {
		m := newRWMutex(t, srv.Client(t), name)
		for j := range 4 {
			write := j == 0
			wg.Go(func() {
				for range 5 {
					if err := rwRound(t, m, write, &readers, &writers, &maxReaders); err != nil {
						errs <- fmt.Errorf("client %d worker %d: %w", i, j, err)
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
}

// rwRound takes a read or write hold and checks who else holds.
func rwRound(t *testing.T, m *etcdkit.RWMutex, write bool, readers, writers, maxReaders *atomic.Int32) error {
	if write {
		w, err := m.Lock(t.Context())
		if err != nil {
			return err
		}
		if n := writers.Add(1); n != 1 || readers.Load() != 0 {
			return fmt.Errorf("writer holds with %d writers and %d readers", n, readers.Load())
		}
		time.Sleep(time.Millisecond)
		writers.Add(-1)
		return w.Unlock(t.Context())
	}
	r, err := m.RLock(t.Context())
	if err != nil {
		return err
	}
	n := readers.Add(1)
	for p := maxReaders.Load(); n > p && !maxReaders.CompareAndSwap(p, n); p = maxReaders.Load() {
	}
	if writers.Load() != 0 {
		return fmt.Errorf("reader holds with a writer")
	}
	time.Sleep(time.Millisecond)
	readers.Add(-1)
	return r.Unlock(t.Context())
}

// newRWMutex is Client.RWMutex for valid arguments.
func newRWMutex(tb testing.TB, c *etcdkit.Client, name string, opts ...etcdkit.LockOption) *etcdkit.RWMutex {
	tb.Helper()
	m, err := c.RWMutex(name, opts...)
	require.NoError(tb, err, "RWMutex(%q)", name)
	return m
}

// TestRWMutex_ReadFencesAreNotExclusive shows what a read hold's fence is:
// two read holds are held at once, each with a fence of its own, and a
// writer that comes after them gets a fence above both.
func TestRWMutex_ReadFencesAreNotExclusive(t *testing.T) {
	t.Parallel()
	a, b := newClient(t), newClient(t)
	name := lockName(t)
	r1, err := newRWMutex(t, a, name).RLock(t.Context())
	require.NoError(t, err)
	r2, err := newRWMutex(t, b, name).RLock(t.Context())
	require.NoError(t, err)
	assert.Greater(t, r2.Fence(), r1.Fence(), "fences of two read holds")
	res, err := a.Txn(t.Context()).If(r1.Held(), r2.Held()).Commit()
	require.NoError(t, err)
	assert.True(t, res.Succeeded, "both read holds held at one revision")

	got := make(chan *etcdkit.Lock, 1)
	writer := newRWMutex(t, b, name)
	go func() {
		w, err := writer.Lock(t.Context())
		assert.NoError(t, err, "write Lock")
		got <- w
	}()
	lockWaitKeys(t, testServer.RawClient(t), etcdkit.RWMutexKeys(name), 3)
	require.NoError(t, r1.Unlock(t.Context()))
	require.NoError(t, r2.Unlock(t.Context()))
	select {
	case w := <-got:
		require.NotNil(t, w)
		assert.Greater(t, w.Fence(), r2.Fence(), "the writer's fence after the read holds")
		assert.NoError(t, w.Unlock(t.Context()))
	case <-time.After(20 * time.Second):
		require.FailNow(t, "the writer was not granted after the readers left")
	}
}
