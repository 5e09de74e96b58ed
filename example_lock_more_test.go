package etcdkit_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/etcdkit/etcdkit"
)

// TryLock fails at once while another holder has the lock. Names do not
// nest: the lock "a/b" is not held by the holder of "a".
func ExampleClient_TryLock() {
	ctx := context.Background()
	cli := exampleClient()
	a, err := cli.TryLock(ctx, "example/trylock/a")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer a.Unlock(ctx)

	_, err = cli.TryLock(ctx, "example/trylock/a")
	fmt.Println("a again:", errors.Is(err, etcdkit.ErrLocked))
	ab, err := cli.TryLock(ctx, "example/trylock/a/b")
	fmt.Println("a/b:", err)
	if err == nil {
		_ = ab.Unlock(ctx)
	}
	// Output:
	// a again: true
	// a/b: <nil>
}

// LockTTL sets how long the lock outlives a holder that stopped
// refreshing it; etcd counts whole seconds, so less than one is refused.
func ExampleLockTTL() {
	ctx := context.Background()
	cli := exampleClient()
	l, err := cli.Lock(ctx, "example/lockttl", etcdkit.LockTTL(5*time.Second))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("held:", l.Err() == nil)
	_ = l.Unlock(ctx)

	_, err = cli.Lock(ctx, "example/lockttl", etcdkit.LockTTL(500*time.Millisecond))
	fmt.Println("half a second:", errors.Is(err, etcdkit.ErrInvalidTTL))
	// Output:
	// held: true
	// half a second: true
}

// Unlock releases the lock; once it returned nil, later calls do too.
func ExampleLock_Unlock() {
	ctx := context.Background()
	l, err := exampleClient().Lock(ctx, "example/unlock")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(l.Unlock(ctx))
	fmt.Println(l.Unlock(ctx))
	// Output:
	// <nil>
	// <nil>
}

// Unlock after the lock was lost returns the loss: what the lock guarded
// was not guarded to the end. Here someone deleted its key.
func ExampleLock_Unlock_lost() {
	ctx := context.Background()
	cli := exampleClient()
	l, err := cli.Lock(ctx, "example/unlock-lost")
	if err != nil {
		fmt.Println(err)
		return
	}
	lost := l.Lost()
	if _, err := cli.Raw().Delete(ctx, l.Key()); err != nil {
		fmt.Println(err)
		return
	}
	<-lost
	fmt.Println("Unlock:", errors.Is(l.Unlock(ctx), etcdkit.ErrLeaseExpired))
	fmt.Println("again:", l.Unlock(ctx))
	// Output:
	// Unlock: true
	// again: <nil>
}

// fencedStore accepts a write only with the highest fencing token it has
// seen: a holder that lost its lock cannot overwrite its successor's work.
type fencedStore struct{ highest int64 }

func (s *fencedStore) write(token int64) bool {
	if token < s.highest {
		return false
	}
	s.highest = token
	return true
}

// Fence grows with every holder, so a resource can refuse an older one.
func ExampleLock_Fence() {
	ctx := context.Background()
	cli := exampleClient()
	var store fencedStore
	old, err := cli.Lock(ctx, "example/fence")
	if err != nil {
		fmt.Println(err)
		return
	}
	_ = old.Unlock(ctx) // as if its lease had expired during a pause
	cur, err := cli.Lock(ctx, "example/fence")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer cur.Unlock(ctx)
	fmt.Println("new holder writes:", store.write(cur.Fence()))
	fmt.Println("old holder writes:", store.write(old.Fence()))
	// Output:
	// new holder writes: true
	// old holder writes: false
}

// A read hold's token is not exclusive: read holds share the lock, each
// with its own token. It orders them against write holds instead: a
// writer after them has a higher token.
func ExampleLock_Fence_read() {
	ctx := context.Background()
	m, err := exampleClient().RWMutex("example/fence-read")
	if err != nil {
		fmt.Println(err)
		return
	}
	r1, err := m.RLock(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	r2, err := m.RLock(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("both read:", r1.Err() == nil && r2.Err() == nil, r1.Fence() != r2.Fence())
	_ = r1.Unlock(ctx)
	_ = r2.Unlock(ctx)
	w, err := m.Lock(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer w.Unlock(ctx)
	fmt.Println("writer after them:", w.Fence() > max(r1.Fence(), r2.Fence()))
	// Output:
	// both read: true true
	// writer after them: true
}

// Key is the lock's key: the name, "/", and the lease ID in hex, as
// etcdctl lock makes it.
func ExampleLock_Key() {
	ctx := context.Background()
	l, err := exampleClient().Lock(ctx, "example/lockkey")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer l.Unlock(ctx)
	fmt.Println(strings.HasPrefix(l.Key(), "example/lockkey/"))
	// Output: true
}

// Lost closes when the lock is no longer held, for whatever reason; Err
// says which.
func ExampleLock_Lost() {
	ctx := context.Background()
	l, err := exampleClient().Lock(ctx, "example/lost")
	if err != nil {
		fmt.Println(err)
		return
	}
	select {
	case <-l.Lost():
		fmt.Println("lost")
	default:
		fmt.Println("held")
	}
	_ = l.Unlock(ctx)
	<-l.Lost()
	fmt.Println("after Unlock:", errors.Is(l.Err(), etcdkit.ErrClosed))
	// Output:
	// held
	// after Unlock: true
}

// Err is nil while the lock is held, then says why it is not.
func ExampleLock_Err() {
	ctx := context.Background()
	l, err := exampleClient().Lock(ctx, "example/lockerr")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(l.Err())
	_ = l.Unlock(ctx)
	fmt.Println(errors.Is(l.Err(), etcdkit.ErrClosed))
	// Output:
	// <nil>
	// true
}

// RWMutex checks its arguments when it is made, not on each hold.
func ExampleClient_RWMutex() {
	cli := exampleClient()
	_, err := cli.RWMutex("")
	fmt.Println(errors.Is(err, etcdkit.ErrEmptyKey))
	_, err = cli.RWMutex("example/rwmutex/bad", etcdkit.LockTTL(time.Millisecond))
	fmt.Println(errors.Is(err, etcdkit.ErrInvalidTTL))
	m, err := cli.RWMutex("example/rwmutex/catalog")
	fmt.Println(m != nil, err)
	// Output:
	// true
	// true
	// true <nil>
}

// waitForKeys waits until n keys exist under prefix, as a waiting holder
// shows itself, for examples that need a waiter in place.
func waitForKeys(ctx context.Context, prefix string, n int64) {
	for range 500 {
		resp, err := exampleClient().Raw().Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
		if err == nil && resp.Count >= n {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	panic("no waiter under " + prefix)
}

// Lock waits until readers and writers ahead of it are gone.
func ExampleRWMutex_Lock() {
	ctx := context.Background()
	m, err := exampleClient().RWMutex("example/rwmutex/lock")
	if err != nil {
		fmt.Println(err)
		return
	}
	r, err := m.RLock(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	writer := make(chan *etcdkit.Lock)
	go func() {
		w, err := m.Lock(ctx)
		if err != nil {
			fmt.Println(err)
		}
		writer <- w
	}()
	waitForKeys(ctx, "example/rwmutex/lock\x00rwmutex/write/", 1)
	fmt.Println("reader done")
	_ = r.Unlock(ctx)
	w := <-writer
	if w == nil {
		return
	}
	fmt.Println("writer holds:", w.Err() == nil)
	_ = w.Unlock(ctx)
	// Output:
	// reader done
	// writer holds: true
}

// RLock shares the lock with other readers, but queues behind a waiting
// writer, so that readers cannot starve it.
func ExampleRWMutex_RLock() {
	ctx := context.Background()
	m, err := exampleClient().RWMutex("example/rwmutex/rlock")
	if err != nil {
		fmt.Println(err)
		return
	}
	r, err := m.RLock(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	writer := make(chan *etcdkit.Lock)
	go func() {
		w, err := m.Lock(ctx)
		if err != nil {
			fmt.Println(err)
		}
		writer <- w
	}()
	waitForKeys(ctx, "example/rwmutex/rlock\x00rwmutex/write/", 1)
	_, err = m.TryRLock(ctx)
	fmt.Println("new reader behind the writer:", errors.Is(err, etcdkit.ErrLocked))
	_ = r.Unlock(ctx)
	if w := <-writer; w != nil {
		_ = w.Unlock(ctx)
	}
	r, err = m.RLock(ctx)
	fmt.Println("after the writer:", err)
	_ = r.Unlock(ctx)
	// Output:
	// new reader behind the writer: true
	// after the writer: <nil>
}

// TryLock takes the write hold only if nobody holds the lock.
func ExampleRWMutex_TryLock() {
	ctx := context.Background()
	m, err := exampleClient().RWMutex("example/rwmutex/trylock")
	if err != nil {
		fmt.Println(err)
		return
	}
	w, err := m.TryLock(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	_, err = m.TryLock(ctx)
	fmt.Println("second writer:", errors.Is(err, etcdkit.ErrLocked))
	_ = w.Unlock(ctx)
	// Output: second writer: true
}

// TryRLock takes a read hold unless a writer holds or awaits the lock.
func ExampleRWMutex_TryRLock() {
	ctx := context.Background()
	m, err := exampleClient().RWMutex("example/rwmutex/tryrlock")
	if err != nil {
		fmt.Println(err)
		return
	}
	w, err := m.TryLock(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	_, err = m.TryRLock(ctx)
	fmt.Println("reader while writing:", errors.Is(err, etcdkit.ErrLocked))
	_ = w.Unlock(ctx)
	r, err := m.TryRLock(ctx)
	fmt.Println("reader after:", err)
	_ = r.Unlock(ctx)
	// Output:
	// reader while writing: true
	// reader after: <nil>
}

// Semaphore checks its arguments when it is made: a limit under one is
// refused.
func ExampleClient_Semaphore() {
	cli := exampleClient()
	_, err := cli.Semaphore("example/semaphore/none", 0)
	fmt.Println(errors.Is(err, etcdkit.ErrInvalidArgument))
	sem, err := cli.Semaphore("example/semaphore/workers", 3)
	fmt.Println(sem != nil, err)
	// Output:
	// true
	// true <nil>
}

// The first Acquire stores the limit with the semaphore; a party with
// another limit is refused rather than admitted beside it.
func ExampleSemaphore_Acquire() {
	ctx := context.Background()
	cli := exampleClient()
	two, _ := cli.Semaphore("example/semaphore/acquire", 2)
	three, _ := cli.Semaphore("example/semaphore/acquire", 3)
	h, err := two.Acquire(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer h.Unlock(ctx)
	_, err = three.Acquire(ctx)
	fmt.Println("limit 3 where 2 is stored:", errors.Is(err, etcdkit.ErrInvalidArgument))
	// Output: limit 3 where 2 is stored: true
}

// TryAcquire takes a hold if one is free, and fails at once otherwise.
func ExampleSemaphore_TryAcquire() {
	ctx := context.Background()
	sem, err := exampleClient().Semaphore("example/semaphore/tryacquire", 1)
	if err != nil {
		fmt.Println(err)
		return
	}
	h, err := sem.TryAcquire(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	_, err = sem.TryAcquire(ctx)
	fmt.Println("second:", errors.Is(err, etcdkit.ErrLocked))
	_ = h.Unlock(ctx)
	h, err = sem.TryAcquire(ctx)
	fmt.Println("after release:", err)
	_ = h.Unlock(ctx)
	// Output:
	// second: true
	// after release: <nil>
}
