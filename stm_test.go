package etcdkit_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/etcdkit/etcdkit"
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
		t.Errorf("transfer: %v", err)
	}

	total, moved := 0, 0
	for e, err := range accounts.List(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		if e.Value < 0 {
			t.Errorf("account %s = %d, below zero", e.Key, e.Value)
		}
		total += e.Value
		moved += int(e.Version) - 1
	}
	if total != n*initial {
		t.Fatalf("total = %d after the transfers, want %d", total, n*initial)
	}
	if moved == 0 {
		t.Fatal("no transfer wrote anything: the test proved nothing")
	}
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
			if err != nil {
				t.Fatal(err)
			}
			if calls != 2 {
				t.Fatalf("fn ran %d times, want 2: the conflict was not detected", calls)
			}
		})
	}
	b, err := kv.Get(ctx, "b")
	if err != nil || b.Value != 20 {
		t.Fatalf("b = %d, %v; want 20 (twice a's latest value)", b.Value, err)
	}
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
	if err != nil {
		t.Fatal(err)
	}
	if e, err := kv.Get(ctx, "new"); err != nil || e.Value != "y" {
		t.Fatalf("after commit, new = %+v, %v; want y", e, err)
	}
	if _, err := kv.Get(ctx, "old"); !errors.Is(err, etcdkit.ErrNotFound) {
		t.Fatalf("after commit, old: %v, want ErrNotFound", err)
	}
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
	if !errors.Is(err, errAbort) {
		t.Fatalf("Atomically: got %v, want fn's error", err)
	}
	if e, err := kv.Get(ctx, "k"); err != nil || e.ModRevision != rev {
		t.Fatalf("after an aborted transaction, k = %+v, %v; want unchanged at revision %d", e, err, rev)
	}
	if _, err := kv.Get(ctx, "other"); !errors.Is(err, etcdkit.ErrNotFound) {
		t.Fatalf("after an aborted transaction, other: %v, want ErrNotFound", err)
	}
}
