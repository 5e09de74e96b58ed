package etcdkit_test

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/etcdkit/etcdkit"
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
		sem := clients[i%len(clients)].Semaphore(lockName(t), limit)
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
		t.Error(err)
	}
	if p := peak.Load(); p > limit || p < 1 {
		t.Errorf("peak holders = %d, want 1..%d", p, limit)
	}
}

func TestSemaphoreTryAcquire(t *testing.T) {
	t.Parallel()
	srv := lockServer(t)
	cli, raw := srv.Client(t), srv.RawClient(t)
	sem := cli.Semaphore(lockName(t), 2)
	var held []*etcdkit.Lock
	for i := range 2 {
		h, err := sem.TryAcquire(t.Context())
		if err != nil {
			t.Fatalf("TryAcquire #%d of 2: %v", i+1, err)
		}
		held = append(held, h)
	}
	if held[1].Fence() <= held[0].Fence() {
		t.Errorf("fences %d, %d not increasing", held[0].Fence(), held[1].Fence())
	}
	if _, err := sem.TryAcquire(t.Context()); !errors.Is(err, etcdkit.ErrLocked) {
		t.Errorf("TryAcquire on a full semaphore = %v, want ErrLocked", err)
	}
	keys := lockKeysUnder(t, raw, lockName(t)+"/")
	if !slices.Equal(keys, []string{held[0].Key(), held[1].Key()}) {
		t.Errorf("keys = %q, want only the two holders'", keys)
	}
	// A waiter is admitted when a holder leaves.
	got := make(chan error, 1)
	go func() {
		h, err := sem.Acquire(t.Context())
		if err == nil {
			err = h.Unlock(t.Context())
		}
		got <- err
	}()
	lockWaitKeys(t, raw, lockName(t)+"/", 3)
	if err := held[0].Unlock(t.Context()); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-got:
		if err != nil {
			t.Errorf("Acquire after a release: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Acquire not granted after a holder released")
	}
	_ = held[1].Unlock(t.Context())
}

func TestSemaphoreBadLimit(t *testing.T) {
	t.Parallel()
	srv := lockServer(t)
	cli := srv.Client(t)
	for _, limit := range []int{0, -1} {
		if _, err := cli.Semaphore(lockName(t), limit).Acquire(t.Context()); !errors.Is(err, etcdkit.ErrInvalidArgument) {
			t.Errorf("Acquire with limit %d = %v, want ErrInvalidArgument", limit, err)
		}
	}
}

func TestSemaphoreLost(t *testing.T) {
	t.Parallel()
	srv := lockServer(t)
	cli, raw := srv.Client(t), srv.RawClient(t)
	h, err := cli.Semaphore(lockName(t), 1).Acquire(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	lost := h.Lost()
	lockRevokeLeaseOf(t, raw, h.Key())
	lockWaitClosed(t, lost, "Lost after revoking the lease")
	if err := h.Err(); !errors.Is(err, etcdkit.ErrLeaseExpired) {
		t.Errorf("Err = %v, want ErrLeaseExpired", err)
	}
}
