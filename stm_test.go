package etcdkit_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/etcdkit/etcdkit"
	"github.com/etcdkit/etcdkit/etcdtest"
)

func TestAtomicallyBank(t *testing.T) {
	t.Parallel()
	srv := kvServer(t)
	c := srv.Client(t)
	accounts := etcdkit.NewKV(c, testPrefix(t), etcdkit.JSON[int]())
	ctx := t.Context()

	const n, initial = 10, 100
	for i := range n {
		kvMustPut(t, accounts, fmt.Sprint(i), initial)
	}
	transfer := func(from, to string, amount int) error {
		return c.Atomically(ctx, func(tx *etcdkit.Tx) error {
			acc := accounts.In(tx)
			a, err := acc.Get(from)
			if err != nil {
				return err
			}
			b, err := acc.Get(to)
			if err != nil {
				return err
			}
			if a < amount {
				return nil // not enough money: move nothing
			}
			acc.Put(from, a-amount)
			acc.Put(to, b+amount)
			return nil
		})
	}

	const workers, transfers = 8, 25
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 1))
			for range transfers {
				from := r.IntN(n)
				to := (from + 1 + r.IntN(n-1)) % n
				if err := transfer(fmt.Sprint(from), fmt.Sprint(to), 1+r.IntN(50)); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		assert.NoError(t, err, "transfer")
	}

	total, moved := 0, 0
	for e, err := range accounts.List(ctx) {
		require.NoError(t, err)
		assert.GreaterOrEqual(t, e.Value, 0, "account %s below zero", e.Key)
		total += e.Value
		moved += int(e.Version) - 1
	}
	require.Equal(t, n*initial, total, "total after the transfers")
	require.NotZero(t, moved, "no transfer wrote anything: the test proved nothing")
}

func TestAtomicallyRetriesOnConflict(t *testing.T) {
	t.Parallel()
	srv := kvServer(t)
	c := srv.Client(t)
	kv := etcdkit.NewKV(c, testPrefix(t), etcdkit.JSON[int]())
	ctx := t.Context()
	kvMustPut(t, kv, "a", 1)
	kvMustPut(t, kv, "b", 0)

	for _, tt := range []struct {
		name    string
		changed string // the key changed behind the transaction's back
	}{
		{"read key changed", "a"},
		{"written key changed", "b"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			calls := 0
			err := c.Atomically(ctx, func(tx *etcdkit.Tx) error {
				calls++
				a, err := kv.In(tx).Get("a")
				if err != nil {
					return err
				}
				if calls == 1 {
					if _, err := kv.Put(ctx, tt.changed, 10); err != nil {
						return err
					}
				}
				kv.In(tx).Put("b", a*2)
				return nil
			})
			require.NoError(t, err)
			require.Equal(t, 2, calls, "times fn ran: the conflict was not detected")
		})
	}
	b, err := kv.Get(ctx, "b")
	require.NoError(t, err)
	require.Equal(t, 20, b.Value, "b, want twice a's latest value")
}

func TestAtomicallyReadsOwnWrites(t *testing.T) {
	t.Parallel()
	srv := kvServer(t)
	c := srv.Client(t)
	kv := etcdkit.NewKV(c, testPrefix(t), etcdkit.String())
	ctx := t.Context()
	kvMustPut(t, kv, "old", "x")

	err := c.Atomically(ctx, func(tx *etcdkit.Tx) error {
		h := kv.In(tx)
		if _, err := h.Get("new"); !errors.Is(err, etcdkit.ErrNotFound) {
			return fmt.Errorf("Get(new) before Put: %v, want ErrNotFound", err)
		}
		h.Put("new", "y")
		if v, err := h.Get("new"); err != nil || v != "y" {
			return fmt.Errorf("Get(new) after Put = %q, %v; want y", v, err)
		}
		h.Delete("old")
		if _, err := h.Get("old"); !errors.Is(err, etcdkit.ErrNotFound) {
			return fmt.Errorf("Get(old) after Delete: %v, want ErrNotFound", err)
		}
		return nil
	})
	require.NoError(t, err)
	e, err := kv.Get(ctx, "new")
	require.NoError(t, err, "after commit, new")
	require.Equal(t, "y", e.Value, "after commit, new")
	_, err = kv.Get(ctx, "old")
	require.ErrorIs(t, err, etcdkit.ErrNotFound, "after commit, old")
}

func TestAtomicallyAbort(t *testing.T) {
	t.Parallel()
	srv := kvServer(t)
	c := srv.Client(t)
	kv := etcdkit.NewKV(c, testPrefix(t), etcdkit.String())
	ctx := t.Context()
	rev := kvMustPut(t, kv, "k", "v")

	errAbort := errors.New("abort")
	err := c.Atomically(ctx, func(tx *etcdkit.Tx) error {
		kv.In(tx).Put("k", "changed")
		kv.In(tx).Put("other", "new")
		return errAbort
	})
	require.ErrorIs(t, err, errAbort, "Atomically, want fn's error")
	e, err := kv.Get(ctx, "k")
	require.NoError(t, err, "after an aborted transaction, k")
	require.Equal(t, rev, e.ModRevision, "after an aborted transaction, k = %+v, want unchanged", e)
	_, err = kv.Get(ctx, "other")
	require.ErrorIs(t, err, etcdkit.ErrNotFound, "after an aborted transaction, other")
}

// TestAtomicallyFailsOnSwallowedReadError checks that a read that got no
// answer fails the transaction even when fn ignores its error: fn's writes
// were decided without knowing what the key held.
func TestAtomicallyFailsOnSwallowedReadError(t *testing.T) {
	t.Parallel()
	f := etcdtest.NewFaults()
	c := testServer.Client(t, etcdtest.WithFaults(f), etcdtest.WithClientConfig(func(cfg *etcdkit.Config) {
		cfg.RequestTimeout = 300 * time.Millisecond // so the failing read gives up soon
	}))
	kv := etcdkit.NewKV(c, testPrefix(t), etcdkit.String())
	kvMustPut(t, kv, "k", "v")

	var readErr error
	calls := 0
	// No deadline on ctx: RequestTimeout bounds the read clientv3 retries.
	err := c.Atomically(t.Context(), func(tx *etcdkit.Tx) error {
		calls++
		h := kv.In(tx)
		f.Inject(etcdtest.RPCRange, etcdtest.FailBeforeSend, 1_000_000, 0)
		_, readErr = h.Get("k")
		f.Clear()
		h.Put("other", "written anyway") // the read's error ignored
		return nil
	})
	require.Error(t, readErr, "the injected faults did not make the read fail")
	require.ErrorIs(t, err, readErr, "Atomically must return the read error fn swallowed")
	assert.Equal(t, 1, calls)
	_, err = kv.Get(testCtx(t), "other")
	assert.ErrorIs(t, err, etcdkit.ErrNotFound, "a write decided without the read was committed")
}

// TestAtomicallyGuardsReadsThatFound checks that a key fn read counts at the
// commit whatever the read found: a key that was missing must still be
// missing, and a value that did not decode must be unchanged.
func TestAtomicallyGuardsReadsThatFound(t *testing.T) {
	t.Parallel()
	c := newClient(t)
	prefix := testPrefix(t)
	kv := etcdkit.NewKV(c, prefix, etcdkit.String())
	ctx := testCtx(t)
	_, err := c.Raw().Put(ctx, prefix+"undecodable", "\xff")
	require.NoError(t, err)

	for _, tc := range []struct {
		name, key string
		first     func(error) bool // whether the first attempt's read failed as it should
	}{
		{name: "missing", key: "missing", first: func(err error) bool { return errors.Is(err, etcdkit.ErrNotFound) }},
		{name: "undecodable", key: "undecodable", first: func(err error) bool {
			var de *etcdkit.DecodeError
			return errors.As(err, &de)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var errs []error
			err := c.Atomically(ctx, func(tx *etcdkit.Tx) error {
				h := kv.In(tx)
				_, err := h.Get(tc.key)
				errs = append(errs, err)
				if len(errs) == 1 {
					// Changed after the read, before the commit.
					_, err := c.Raw().Put(ctx, prefix+tc.key, "changed")
					require.NoError(t, err)
				}
				h.Put("other-"+tc.name, "decided on the read")
				return nil
			})
			require.NoError(t, err)
			require.Len(t, errs, 2, "the change to the key read was not detected")
			assert.True(t, tc.first(errs[0]), "first read: %v", errs[0])
			assert.NoError(t, errs[1], "the second attempt reads the new value")
		})
	}
}
