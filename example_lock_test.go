package etcdkit_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/etcdkit/etcdkit"
)

// A lock is held until Unlock; meanwhile TryLock fails at once.
func ExampleClient_Lock() {
	ctx := context.Background()
	cli := exampleClient()

	l, err := cli.Lock(ctx, "example/lock/report")
	if err != nil {
		fmt.Println(err)
		return
	}
	_, err = cli.TryLock(ctx, "example/lock/report")
	fmt.Println("second holder:", errors.Is(err, etcdkit.ErrLocked))

	if err := l.Unlock(ctx); err != nil {
		fmt.Println(err)
		return
	}
	l2, err := cli.TryLock(ctx, "example/lock/report")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("fence grows:", l2.Fence() > l.Fence())
	_ = l2.Unlock(ctx)
	// Output:
	// second holder: true
	// fence grows: true
}

// WithLock runs a function under the lock and releases it after. The
// function's ctx ends if the lock is lost while it runs.
func ExampleClient_WithLock() {
	ctx := context.Background()
	cli := exampleClient()

	err := cli.WithLock(ctx, "example/lock/nightly", func(ctx context.Context) error {
		fmt.Println("running the nightly job alone")
		return nil
	})
	fmt.Println("done:", err)
	// Output:
	// running the nightly job alone
	// done: <nil>
}

// Held guards a write with the lock: if the lock was lost (its lease
// expired during a long pause, and someone else took it), the write is not
// applied.
func ExampleLock_Held() {
	ctx := context.Background()
	cli := exampleClient()
	reports := etcdkit.NewKV(cli, "example/lock/data/", etcdkit.String())

	l, err := cli.Lock(ctx, "example/lock/guarded")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer l.Unlock(ctx)
	res, err := cli.Txn(ctx).If(l.Held()).Then(reports.PutOp("report", "done")).Commit()
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("written under the lock:", res.Succeeded)
	// Output:
	// written under the lock: true
}

// fn fences its write with the lock WithLock holds for it: the write is
// refused if the lock was lost meanwhile.
func ExampleHeldLock() {
	ctx := context.Background()
	cli := exampleClient()
	reports := etcdkit.NewKV(cli, "example/lock/heldlock/", etcdkit.String())

	err := cli.WithLock(ctx, "example/lock/heldlock-name", func(ctx context.Context) error {
		l, _ := etcdkit.HeldLock(ctx)
		res, err := cli.Txn(ctx).If(l.Held()).Then(reports.PutOp("report", "done")).Commit()
		if err != nil {
			return err
		}
		fmt.Println("written under the lock:", res.Succeeded)
		return nil
	})
	fmt.Println("WithLock:", err)
	_, held := etcdkit.HeldLock(ctx)
	fmt.Println("lock outside fn:", held)
	// Output:
	// written under the lock: true
	// WithLock: <nil>
	// lock outside fn: false
}

// A semaphore admits a limited number of holders at once.
func ExampleSemaphore() {
	ctx := context.Background()
	sem, err := exampleClient().Semaphore("example/lock/downloads", 2)
	if err != nil {
		fmt.Println(err)
		return
	}

	for range 2 {
		h, err := sem.Acquire(ctx)
		if err != nil {
			fmt.Println(err)
			return
		}
		defer h.Unlock(ctx)
	}
	_, err = sem.TryAcquire(ctx)
	fmt.Println("third holder:", errors.Is(err, etcdkit.ErrLocked))
	// Output:
	// third holder: true
}

// Readers share an RWMutex; a writer has it alone.
func ExampleRWMutex() {
	ctx := context.Background()
	m, err := exampleClient().RWMutex("example/lock/catalog")
	if err != nil {
		fmt.Println(err)
		return
	}

	var readers []*etcdkit.Lock
	for range 2 {
		r, err := m.TryRLock(ctx)
		if err != nil {
			fmt.Println(err)
			return
		}
		readers = append(readers, r)
	}
	fmt.Println("readers:", len(readers))
	_, err = m.TryLock(ctx)
	fmt.Println("writer while reading:", errors.Is(err, etcdkit.ErrLocked))
	for _, r := range readers {
		_ = r.Unlock(ctx)
	}

	w, err := m.TryLock(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("writer alone")
	_ = w.Unlock(ctx)
	// Output:
	// readers: 2
	// writer while reading: true
	// writer alone
}
