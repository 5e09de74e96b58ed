package etcdkit_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/etcdkit/etcdkit"
	"github.com/etcdkit/etcdkit/etcdtest"
)

// exclusive is a primitive that admits one holder of a name at a time (a
// semaphore with a limit of one), for the tests every kind of lock shares.
type exclusive struct {
	kind string
	// take waits until c holds name, and returns how to let it go.
	take func(ctx context.Context, c *etcdkit.Client, name string) (func(context.Context) error, error)
	// keys is the prefix of the holders' and waiters' keys of name.
	keys func(name string) string
	// warm is set for a kind whose first take on a client sends a request
	// of its own (the semaphore stores its limit): the tests take and
	// release once first, so that their faults hit the queue's requests.
	warm bool
}

// semaphores keeps one Semaphore per client and name, so that a warm-up
// take leaves the limit agreed for the next ones.
var semaphores sync.Map // semKey -> *etcdkit.Semaphore

type semKey struct {
	c    *etcdkit.Client
	name string
}

func semaphoreOf(c *etcdkit.Client, name string) (*etcdkit.Semaphore, error) {
	if sem, ok := semaphores.Load(semKey{c, name}); ok {
		return sem.(*etcdkit.Semaphore), nil
	}
	sem, err := c.Semaphore(name, 1)
	if err != nil {
		return nil, err
	}
	got, _ := semaphores.LoadOrStore(semKey{c, name}, sem)
	return got.(*etcdkit.Semaphore), nil
}

func underName(name string) string { return name + "/" }

var exclusives = []exclusive{
	{"lock", func(ctx context.Context, c *etcdkit.Client, name string) (func(context.Context) error, error) {
		l, err := c.Lock(ctx, name)
		if err != nil {
			return nil, err
		}
		return l.Unlock, nil
	}, underName, false},
	{"semaphore", func(ctx context.Context, c *etcdkit.Client, name string) (func(context.Context) error, error) {
		sem, err := semaphoreOf(c, name)
		if err != nil {
			return nil, err
		}
		l, err := sem.Acquire(ctx)
		if err != nil {
			return nil, err
		}
		return l.Unlock, nil
	}, etcdkit.SemaphoreHolders, true},
	{"rwmutex", func(ctx context.Context, c *etcdkit.Client, name string) (func(context.Context) error, error) {
		m, err := c.RWMutex(name)
		if err != nil {
			return nil, err
		}
		l, err := m.Lock(ctx)
		if err != nil {
			return nil, err
		}
		return l.Unlock, nil
	}, etcdkit.RWMutexKeys, false},
	{"campaign", func(ctx context.Context, c *etcdkit.Client, name string) (func(context.Context) error, error) {
		ld, err := c.Campaign(ctx, name, "v")
		if err != nil {
			return nil, err
		}
		return ld.Resign, nil
	}, underName, false},
}

// giveUp makes client w fail to take name in a way that may leave its key
// behind, and returns once w's call has returned and every late request has
// landed.
type giveUp func(t *testing.T, x exclusive, f *etcdtest.Faults, w *etcdkit.Client, name string)

var giveUps = []struct {
	name string
	run  giveUp
}{
	{"join lands after the clean-up", func(t *testing.T, x exclusive, f *etcdtest.Faults, w *etcdkit.Client, name string) {
		f.Inject(etcdtest.RPCTxn, etcdtest.FailThenCommit, 1, 300*time.Millisecond)
		_, err := x.take(t.Context(), w, name)
		require.ErrorIs(t, err, etcdkit.ErrUnavailable)
		f.Wait()
	}},
	{"join commits as ctx ends, clean-up fails", func(t *testing.T, x exclusive, f *etcdtest.Faults, w *etcdkit.Client, name string) {
		f.Inject(etcdtest.RPCTxn, etcdtest.CommitThenTimeout, 1, 0)
		f.Inject(etcdtest.RPCTxn, etcdtest.FailBeforeSend, 1, 0)
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		_, err := x.take(ctx, w, name)
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.Equal(t, int64(2), f.Injected(), "both faults used")
	}},
	{"waiter gives up, clean-up fails", func(t *testing.T, x exclusive, f *etcdtest.Faults, w *etcdkit.Client, name string) {
		h := testServer.Client(t)
		release, err := x.take(t.Context(), h, name)
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() {
			_, err := x.take(ctx, w, name)
			done <- err
		}()
		lockWaitKeys(t, testServer.RawClient(t), x.keys(name), 2)
		f.Inject(etcdtest.RPCTxn, etcdtest.FailBeforeSend, 1, 0)
		cancel()
		select {
		case err := <-done:
			require.ErrorIs(t, err, context.Canceled)
		case <-time.After(20 * time.Second):
			t.Fatal("the waiter did not give up after its ctx was cancelled")
		}
		require.Equal(t, int64(1), f.Injected(), "the clean-up failed")
		require.NoError(t, release(t.Context()))
	}},
}

// TestLockGivenUpLeavesNoKey checks "a waiter that gives up leaves no key
// behind" when the requests that join the queue or leave it have unknown
// outcomes: another client must get the lock while the one that gave up
// stays open, whether its session is idle or still holds another lock.
func TestLockGivenUpLeavesNoKey(t *testing.T) {
	t.Parallel()
	for _, x := range exclusives {
		for _, g := range giveUps {
			for _, busy := range []bool{false, true} {
				t.Run(fmt.Sprintf("%s/%s/busy=%v", x.kind, g.name, busy), func(t *testing.T) {
					t.Parallel()
					f := etcdtest.NewFaults()
					w, b := testServer.Client(t, etcdtest.WithFaults(f)), testServer.Client(t)
					name := lockName(t)
					if busy {
						// Another lock of w's keeps its session in use.
						other, err := w.Lock(t.Context(), name+"-other")
						require.NoError(t, err)
						t.Cleanup(func() { _ = other.Unlock(context.Background()) })
					}
					if x.warm {
						release, err := x.take(t.Context(), w, name)
						require.NoError(t, err, "warm-up take")
						require.NoError(t, release(t.Context()), "warm-up release")
					}
					g.run(t, x, f, w, name)

					ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
					defer cancel()
					release, err := x.take(ctx, b, name)
					require.NoError(t, err, "another client takes %s after the first gave up; keys: %q",
						x.kind, lockKeysUnder(t, testServer.RawClient(t), x.keys(name)))
					assert.NoError(t, release(t.Context()))
				})
			}
		}
	}
}

// TestWithLockReleasesOnPanic checks that a panicking fn (which net/http,
// for one, recovers) does not keep the lock: the panic goes on, the lock is
// released.
func TestWithLockReleasesOnPanic(t *testing.T) {
	t.Parallel()
	a, b := newClient(t), newClient(t)
	name := lockName(t)
	recovered := func() (r any) {
		defer func() { r = recover() }()
		_ = a.WithLock(t.Context(), name, func(context.Context) error { panic("fn panicked") })
		return nil
	}()
	require.Equal(t, "fn panicked", recovered, "WithLock lets fn's panic go on")
	l, err := b.TryLock(t.Context(), name)
	require.NoError(t, err, "TryLock after fn panicked")
	assert.NoError(t, l.Unlock(t.Context()))
}

// TestLockLostFreesName checks that a lock whose key someone else deleted
// no longer keeps its name on the shared session: the next Lock of that
// name reuses the session (the same lease, so the same key), and the lost
// lock's Unlock does not release the new one's name.
func TestLockLostFreesName(t *testing.T) {
	t.Parallel()
	cli, raw := newClient(t), testServer.RawClient(t)
	name := lockName(t)
	old, err := cli.Lock(t.Context(), name)
	require.NoError(t, err)
	lost := old.Lost()
	_, err = raw.Delete(t.Context(), old.Key())
	require.NoError(t, err)
	lockWaitClosed(t, lost, "Lost after the key was deleted")
	require.ErrorIs(t, old.Err(), etcdkit.ErrLeaseExpired)

	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	l, err := cli.Lock(ctx, name)
	require.NoError(t, err)
	assert.Equal(t, old.Key(), l.Key(), "the next lock of the name reuses the shared session")

	require.ErrorIs(t, old.Unlock(t.Context()), etcdkit.ErrLeaseExpired, "Unlock of the lost lock: the loss")
	_, err = cli.TryLock(t.Context(), name)
	assert.ErrorIs(t, err, etcdkit.ErrLocked, "TryLock while the new lock holds the name")
	assert.NoError(t, l.Unlock(t.Context()))
}

// TestUnlockDoesNotBlockErr checks that Err and Lost answer while an Unlock
// waits for the network.
func TestUnlockDoesNotBlockErr(t *testing.T) {
	t.Parallel()
	f := etcdtest.NewFaults()
	cli := testServer.Client(t, etcdtest.WithFaults(f))
	l, err := cli.Lock(t.Context(), lockName(t))
	require.NoError(t, err)

	f.Inject(etcdtest.RPCTxn, etcdtest.CommitThenTimeout, 1, 0)
	uctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	unlocked := make(chan error, 1)
	go func() { unlocked <- l.Unlock(uctx) }()
	lockWaitKeys(t, testServer.RawClient(t), lockName(t)+"/", 0) // the delete committed

	answered := make(chan error, 1)
	go func() { answered <- l.Err() }()
	select {
	case err := <-answered:
		assert.NoError(t, err, "Err while Unlock is under way")
	case <-unlocked:
		t.Fatal("Unlock returned before its ctx ended")
	case <-time.After(20 * time.Second):
		t.Fatal("Err did not answer while Unlock waited for the network")
	}
	cancel()
	if err := <-unlocked; err != nil {
		require.NoError(t, l.Unlock(t.Context()), "Unlock again after a failed one")
	}
	lockWaitClosed(t, l.Lost(), "Lost after Unlock")
	// Whether the deletion counts as the unlock's or as a loss depends on
	// whether the watch saw it before the failed Unlock returned.
	err = l.Err()
	assert.True(t, errors.Is(err, etcdkit.ErrClosed) || errors.Is(err, etcdkit.ErrLeaseExpired),
		"Err after Unlock = %v, want ErrClosed or ErrLeaseExpired", err)
}

// TestLockSessionCause checks that a lock whose session ends says why, with
// the session's own cause: a lease that could not be refreshed in time is
// ErrLeaseLost, not ErrLeaseExpired.
func TestLockSessionCause(t *testing.T) {
	t.Parallel()
	lostLease := fmt.Errorf("keep lease alive: %w", etcdkit.ErrLeaseLost)
	tests := []struct {
		cause error
		want  error
	}{
		{lostLease, etcdkit.ErrLeaseLost},
		{fmt.Errorf("keep lease alive: %w", etcdkit.ErrLeaseExpired), etcdkit.ErrLeaseExpired},
		{fmt.Errorf("keep lease alive: %w", etcdkit.ErrClosed), etcdkit.ErrClosed},
	}
	for _, tt := range tests {
		t.Run(tt.cause.Error(), func(t *testing.T) {
			t.Parallel()
			holder, waiter := newClient(t), newClient(t)
			name := lockName(t)
			l, err := holder.Lock(t.Context(), name)
			require.NoError(t, err)
			lost := l.Lost()
			done := make(chan error, 1)
			go func() {
				_, err := waiter.Lock(t.Context(), name)
				done <- err
			}()
			lockWaitKeys(t, testServer.RawClient(t), name+"/", 2)

			etcdkit.EndLockSessions(holder, tt.cause)
			etcdkit.EndLockSessions(waiter, tt.cause)
			lockWaitClosed(t, lost, "Lost after the session ended")
			assert.ErrorIs(t, l.Err(), tt.want, "Err of the held lock")
			select {
			case err := <-done:
				assert.ErrorIs(t, err, tt.want, "Lock that was waiting")
			case <-time.After(20 * time.Second):
				t.Fatal("the waiting Lock did not return after its session ended")
			}
			if !errors.Is(tt.want, etcdkit.ErrLeaseExpired) {
				assert.NotErrorIs(t, l.Err(), etcdkit.ErrLeaseExpired)
			}
		})
	}
}

// TestWithLockUnlockFails checks that WithLock, whose caller has no lock to
// unlock again, leaves no key behind when its unlock fails.
func TestWithLockUnlockFails(t *testing.T) {
	t.Parallel()
	for _, busy := range []bool{false, true} {
		t.Run(fmt.Sprintf("busy=%v", busy), func(t *testing.T) {
			t.Parallel()
			f := etcdtest.NewFaults()
			w, b := testServer.Client(t, etcdtest.WithFaults(f)), newClient(t)
			name := lockName(t)
			if busy {
				other, err := w.Lock(t.Context(), name+"-other")
				require.NoError(t, err)
				t.Cleanup(func() { _ = other.Unlock(context.Background()) })
			}
			err := w.WithLock(t.Context(), name, func(context.Context) error {
				f.Inject(etcdtest.RPCTxn, etcdtest.FailBeforeSend, 1, 0)
				return nil
			})
			require.ErrorIs(t, err, etcdkit.ErrUnavailable, "WithLock whose unlock failed")

			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
			defer cancel()
			l, err := b.Lock(ctx, name)
			require.NoError(t, err, "another client locks after the failed unlock")
			assert.NoError(t, l.Unlock(t.Context()))
		})
	}
}

// TestLockNamesDoNotNest checks what Client.Lock says of names: a lock
// named "a" and a lock named "a/b" are held at once, either way round.
func TestLockNamesDoNotNest(t *testing.T) {
	t.Parallel()
	a, b := newClient(t), newClient(t)
	name := lockName(t)
	inner, err := a.Lock(t.Context(), name+"/b")
	require.NoError(t, err)
	l, err := b.TryLock(t.Context(), name)
	require.NoError(t, err, "TryLock of the outer name while the inner one is held")
	require.NoError(t, l.Unlock(t.Context()))
	require.NoError(t, inner.Unlock(t.Context()))

	outer, err := a.Lock(t.Context(), name)
	require.NoError(t, err)
	l, err = b.TryLock(t.Context(), name+"/b")
	require.NoError(t, err, "TryLock of the inner name while the outer one is held")
	assert.NoError(t, l.Unlock(t.Context()))
	assert.NoError(t, outer.Unlock(t.Context()))
}
