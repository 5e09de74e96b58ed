package etcdkit_test

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/etcdkit/etcdkit"
)

func TestBarrier_HoldWaitRelease(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	key := testPrefix(t) + "gate"
	holder := etcdkit.NewBarrier(newClient(t), key)
	if err := holder.Hold(ctx); err != nil {
		t.Fatal(err)
	}
	if err := holder.Hold(ctx); !errors.Is(err, etcdkit.ErrExists) {
		t.Errorf("second Hold: err = %v, want ErrExists", err)
	}
	var released atomic.Bool
	var wg sync.WaitGroup
	for range 3 {
		b := etcdkit.NewBarrier(newClient(t), key)
		wg.Go(func() {
			if err := b.Wait(ctx); err != nil {
				t.Errorf("Wait: %v", err)
			}
			if !released.Load() {
				t.Error("a waiter passed the barrier before it was released")
			}
		})
	}
	time.Sleep(200 * time.Millisecond) // the waiters block meanwhile
	released.Store(true)
	if err := holder.Release(ctx); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if err := holder.Wait(ctx); err != nil {
		t.Errorf("Wait on a released barrier: %v", err)
	}
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
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			entered.Add(1)
			if err := b.Enter(ctx); err != nil {
				t.Errorf("Enter: %v", err)
				return
			}
			if got := entered.Load(); got != n {
				t.Errorf("passed Enter with %d of %d participants in", got, n)
			}
			left.Add(1)
			if err := b.Leave(ctx); err != nil {
				t.Errorf("Leave: %v", err)
				return
			}
			if got := left.Load(); got != n {
				t.Errorf("passed Leave with %d of %d participants out", got, n)
			}
		})
	}
	wg.Wait()
	resp, err := testServer.RawClient(t).Get(ctx, key, clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil || resp.Count != 0 {
		t.Errorf("the barrier left %d keys behind (%v)", resp.Count, err)
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
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Put(ctx, fmt.Sprintf("%s/waiters/%x", key, lease.ID), "", clientv3.WithLease(lease.ID)); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range n - 1 {
		b, err := etcdkit.NewDoubleBarrier(newClient(t), key, n, etcdkit.BarrierTTL(2*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			if err := b.Enter(ctx); err != nil {
				t.Errorf("Enter: %v", err)
				return
			}
			if err := b.Leave(ctx); err != nil {
				t.Errorf("Leave with a crashed participant: %v", err)
			}
		})
	}
	wg.Wait() // bounded by testCtx: a barrier blocked forever fails the test
}

func TestDoubleBarrier_Full(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	key := testPrefix(t) + "step"
	one, _ := etcdkit.NewDoubleBarrier(newClient(t), key, 1)
	if err := one.Enter(ctx); err != nil {
		t.Fatal(err)
	}
	extra, _ := etcdkit.NewDoubleBarrier(newClient(t), key, 1)
	if err := extra.Enter(ctx); !errors.Is(err, etcdkit.ErrLocked) {
		t.Errorf("Enter into a full barrier: err = %v, want ErrLocked", err)
	}
	if err := one.Leave(ctx); err != nil {
		t.Fatal(err)
	}
}
