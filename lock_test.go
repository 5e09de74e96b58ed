package etcdkit_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

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
		t.Fatalf("%s: not closed after 20s", what)
	}
}

// lockKeysUnder returns the keys under prefix, oldest first.
func lockKeysUnder(t testing.TB, raw *clientv3.Client, prefix string) []string {
	t.Helper()
	resp, err := raw.Get(t.Context(), prefix, clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByCreateRevision, clientv3.SortAscend))
	if err != nil {
		t.Fatalf("get %q: %v", prefix, err)
	}
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
	t.Fatalf("want %d keys under %q, have %q", n, prefix, lockKeysUnder(t, raw, prefix))
}

// lockRevokeLeaseOf revokes, from outside, the lease behind key.
func lockRevokeLeaseOf(t testing.TB, raw *clientv3.Client, key string) {
	t.Helper()
	resp, err := raw.Get(t.Context(), key)
	if err != nil || len(resp.Kvs) == 0 {
		t.Fatalf("get %q: %v (found %d)", key, err, len(resp.Kvs))
	}
	if _, err := raw.Revoke(t.Context(), clientv3.LeaseID(resp.Kvs[0].Lease)); err != nil {
		t.Fatalf("revoke lease of %q: %v", key, err)
	}
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
		t.Error(err)
	}
	e, err := etcdkit.NewKV(srv.Client(t), "", etcdkit.String()).Get(t.Context(), counterKey)
	if err != nil {
		t.Fatalf("read counter: %v", err)
	}
	if want := strconv.Itoa(clients * workers * rounds); e.Value != want {
		t.Errorf("counter = %s, want %s: increments were lost, so two holders overlapped", e.Value, want)
	}
	if len(fences) != clients*workers*rounds {
		t.Errorf("recorded %d fences, want %d", len(fences), clients*workers*rounds)
	}
	for i := 1; i < len(fences); i++ {
		if fences[i] <= fences[i-1] {
			t.Fatalf("fence %d of holder %d is not above %d of the holder before", fences[i], i, fences[i-1])
		}
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
	if err != nil {
		t.Fatal(err)
	}
	lost := l.Lost()
	if err := l.Err(); err != nil {
		t.Fatalf("Err while held = %v, want nil", err)
	}
	res, err := cli.Txn(t.Context()).If(l.Held()).Then(data.PutOp("x", "1")).Commit()
	if err != nil || !res.Succeeded {
		t.Fatalf("guarded write while held: succeeded=%v, err=%v; want success", res.Succeeded, err)
	}

	lockRevokeLeaseOf(t, raw, l.Key())
	lockWaitClosed(t, lost, "Lost after revoking the lease")
	if err := l.Err(); !errors.Is(err, etcdkit.ErrLeaseExpired) {
		t.Errorf("Err = %v, want ErrLeaseExpired", err)
	}
	res, err = cli.Txn(t.Context()).If(l.Held()).Then(data.PutOp("x", "2")).Commit()
	if err != nil || res.Succeeded {
		t.Fatalf("guarded write after loss: succeeded=%v, err=%v; want refused", res.Succeeded, err)
	}
	if err := l.Unlock(t.Context()); err != nil {
		t.Errorf("Unlock after loss: %v", err)
	}
	// The session whose lease is gone is replaced, not reused.
	l2, err := cli.Lock(t.Context(), lockName(t))
	if err != nil {
		t.Fatalf("Lock after the lease was revoked: %v", err)
	}
	if l2.Key() == l.Key() {
		t.Errorf("new lock reused the revoked lease's key %q", l.Key())
	}
	if err := l2.Unlock(t.Context()); err != nil {
		t.Fatal(err)
	}
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
	if !errors.Is(err, context.Canceled) {
		t.Errorf("WithLock = %v, want fn's context.Canceled", err)
	}
	if !errors.Is(cause, etcdkit.ErrLeaseExpired) {
		t.Errorf("cause of fn's ctx = %v, want ErrLeaseExpired", cause)
	}
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
	if err != nil || !ran {
		t.Fatalf("WithLock = %v, ran = %v", err, ran)
	}
	if keys := lockKeysUnder(t, raw, lockName(t)+"/"); len(keys) != 0 {
		t.Errorf("keys after WithLock = %q, want none", keys)
	}
	wantErr := errors.New("fn failed")
	if err := cli.WithLock(t.Context(), lockName(t), func(context.Context) error { return wantErr }); !errors.Is(err, wantErr) {
		t.Errorf("WithLock = %v, want fn's error", err)
	}
}

func TestLockOldHolderFencedOut(t *testing.T) {
	t.Parallel()
	srv := lockServer(t)
	a, b, raw := srv.Client(t), srv.Client(t), srv.RawClient(t)
	name := lockName(t)
	data := etcdkit.NewKV(a, name+"-data/", etcdkit.String())
	la, err := a.Lock(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	// A stalls; its lease expires (revoked here) and B takes the lock.
	lockRevokeLeaseOf(t, raw, la.Key())
	lb, err := b.Lock(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	if lb.Fence() <= la.Fence() {
		t.Errorf("new holder's fence %d is not above the old one's %d", lb.Fence(), la.Fence())
	}
	res, err := a.Txn(t.Context()).If(la.Held()).Then(data.PutOp("x", "from A")).Commit()
	if err != nil || res.Succeeded {
		t.Errorf("old holder's fenced write: succeeded=%v, err=%v; want refused", res.Succeeded, err)
	}
	res, err = b.Txn(t.Context()).If(lb.Held()).Then(data.PutOp("x", "from B")).Commit()
	if err != nil || !res.Succeeded {
		t.Errorf("new holder's fenced write: succeeded=%v, err=%v; want success", res.Succeeded, err)
	}
	// The old holder's Unlock must not release the new holder's lock.
	if err := la.Unlock(t.Context()); err != nil {
		t.Errorf("old holder's Unlock: %v", err)
	}
	if keys := lockKeysUnder(t, raw, name+"/"); !slices.Equal(keys, []string{lb.Key()}) {
		t.Errorf("keys after the old holder's Unlock = %q, want the new holder's %q", keys, lb.Key())
	}
	if _, err := b.TryLock(t.Context(), name); !errors.Is(err, etcdkit.ErrLocked) {
		t.Errorf("TryLock while B holds = %v, want ErrLocked", err)
	}
}

func TestTryLock(t *testing.T) {
	t.Parallel()
	srv := lockServer(t)
	a, b, raw := srv.Client(t), srv.Client(t), srv.RawClient(t)
	name := lockName(t)
	la, err := a.TryLock(t.Context(), name)
	if err != nil {
		t.Fatalf("TryLock on a free lock: %v", err)
	}
	for _, cli := range []*etcdkit.Client{b, a} {
		if _, err := cli.TryLock(t.Context(), name); !errors.Is(err, etcdkit.ErrLocked) {
			t.Errorf("TryLock on a held lock = %v, want ErrLocked", err)
		}
	}
	if keys := lockKeysUnder(t, raw, name+"/"); !slices.Equal(keys, []string{la.Key()}) {
		t.Errorf("keys after failed TryLocks = %q, want only the holder's %q", keys, la.Key())
	}
	if err := la.Unlock(t.Context()); err != nil {
		t.Fatal(err)
	}
	lb, err := b.TryLock(t.Context(), name)
	if err != nil {
		t.Fatalf("TryLock after Unlock: %v", err)
	}
	_ = lb.Unlock(t.Context())
}

func TestLockTwiceFromOneClient(t *testing.T) {
	t.Parallel()
	srv := lockServer(t)
	cli, raw := srv.Client(t), srv.RawClient(t)
	name := lockName(t)
	l1, err := cli.Lock(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan *etcdkit.Lock, 1)
	go func() {
		l2, err := cli.Lock(t.Context(), name)
		if err != nil {
			t.Error(err)
			close(got)
			return
		}
		got <- l2
	}()
	lockWaitKeys(t, raw, name+"/", 2) // the second waits, with its own key
	// A TryLock from the same client must not disturb the waiter's key.
	if _, err := cli.TryLock(t.Context(), name); !errors.Is(err, etcdkit.ErrLocked) {
		t.Errorf("TryLock = %v, want ErrLocked", err)
	}
	select {
	case <-got:
		t.Fatal("second Lock returned while the first holds the lock")
	default:
	}
	if keys := lockKeysUnder(t, raw, name+"/"); len(keys) != 2 || keys[0] != l1.Key() {
		t.Fatalf("keys = %q, want the holder's %q and one waiter", keys, l1.Key())
	}
	if err := l1.Unlock(t.Context()); err != nil {
		t.Fatal(err)
	}
	var l2 *etcdkit.Lock
	select {
	case l2 = <-got:
	case <-time.After(20 * time.Second):
		t.Fatal("second Lock not granted after Unlock")
	}
	if l2 == nil {
		t.FailNow()
	}
	if l2.Key() == l1.Key() {
		t.Errorf("both locks used key %q: they need separate sessions", l1.Key())
	}
	if l2.Fence() <= l1.Fence() {
		t.Errorf("fence %d not above %d", l2.Fence(), l1.Fence())
	}
	_ = l2.Unlock(t.Context())
}

func TestUnlockTwice(t *testing.T) {
	t.Parallel()
	srv := lockServer(t)
	cli, raw := srv.Client(t), srv.RawClient(t)
	l, err := cli.Lock(t.Context(), lockName(t))
	if err != nil {
		t.Fatal(err)
	}
	lost := l.Lost()
	for i := range 2 {
		if err := l.Unlock(t.Context()); err != nil {
			t.Errorf("Unlock #%d: %v", i+1, err)
		}
	}
	lockWaitClosed(t, lost, "Lost after Unlock")
	if err := l.Err(); !errors.Is(err, etcdkit.ErrClosed) {
		t.Errorf("Err after Unlock = %v, want ErrClosed", err)
	}
	if keys := lockKeysUnder(t, raw, lockName(t)+"/"); len(keys) != 0 {
		t.Errorf("keys after Unlock = %q, want none", keys)
	}
}

func TestLockWaitCancelled(t *testing.T) {
	t.Parallel()
	srv := lockServer(t)
	a, b, raw := srv.Client(t), srv.Client(t), srv.RawClient(t)
	name := lockName(t)
	la, err := a.Lock(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
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
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Lock = %v, want context.Canceled", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Lock did not return after its ctx was cancelled")
	}
	if keys := lockKeysUnder(t, raw, name+"/"); !slices.Equal(keys, []string{la.Key()}) {
		t.Errorf("keys after the waiter gave up = %q, want only the holder's", keys)
	}
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
			if _, err := cli.Lock(t.Context(), tt.lock, tt.opts...); !errors.Is(err, tt.want) {
				t.Errorf("Lock = %v, want %v", err, tt.want)
			}
			if _, err := cli.Campaign(t.Context(), tt.lock, "v", tt.opts...); !errors.Is(err, tt.want) {
				t.Errorf("Campaign = %v, want %v", err, tt.want)
			}
		})
	}
	l, err := cli.Lock(t.Context(), lockName(t), etcdkit.LockTTL(1500*time.Millisecond))
	if err != nil {
		t.Fatalf("Lock with a 1.5s TTL: %v", err)
	}
	_ = l.Unlock(t.Context())
}

func TestLockClientClose(t *testing.T) {
	t.Parallel()
	srv := lockServer(t)
	a, err := etcdkit.New(t.Context(), srv.Config())
	if err != nil {
		t.Fatal(err)
	}
	b := srv.Client(t)
	name := lockName(t)
	la, err := a.Lock(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	lost := la.Lost()
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	lockWaitClosed(t, lost, "Lost after Client.Close")
	if err := la.Err(); !errors.Is(err, etcdkit.ErrClosed) {
		t.Errorf("Err after Close = %v, want ErrClosed", err)
	}
	// Close revoked the lease, so the lock is free at once.
	lb, err := b.TryLock(t.Context(), name)
	if err != nil {
		t.Fatalf("TryLock after the holder's client closed: %v", err)
	}
	_ = lb.Unlock(t.Context())
	if err := la.Unlock(t.Context()); err != nil {
		t.Errorf("Unlock after Close: %v", err)
	}
	if _, err := a.Lock(t.Context(), name); !errors.Is(err, etcdkit.ErrClosed) {
		t.Errorf("Lock after Close = %v, want ErrClosed", err)
	}
}

func TestLockWireCompatible(t *testing.T) {
	t.Parallel()
	srv := lockServer(t)
	cli, raw := srv.Client(t), srv.RawClient(t)
	name := lockName(t)
	sess, err := concurrency.NewSession(raw, concurrency.WithTTL(10))
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()

	t.Run("ours excludes concurrency.Mutex", func(t *testing.T) {
		l, err := cli.Lock(t.Context(), name)
		if err != nil {
			t.Fatal(err)
		}
		if err := concurrency.NewMutex(sess, name).TryLock(t.Context()); !errors.Is(err, concurrency.ErrLocked) {
			t.Errorf("concurrency TryLock while we hold = %v, want ErrLocked", err)
		}
		if err := l.Unlock(t.Context()); err != nil {
			t.Fatal(err)
		}
		m := concurrency.NewMutex(sess, name)
		if err := m.TryLock(t.Context()); err != nil {
			t.Fatalf("concurrency TryLock after our Unlock: %v", err)
		}
		_ = m.Unlock(t.Context())
	})
	t.Run("concurrency.Mutex excludes ours", func(t *testing.T) {
		m := concurrency.NewMutex(sess, name)
		if err := m.Lock(t.Context()); err != nil {
			t.Fatal(err)
		}
		if _, err := cli.TryLock(t.Context(), name); !errors.Is(err, etcdkit.ErrLocked) {
			t.Errorf("TryLock while concurrency.Mutex holds = %v, want ErrLocked", err)
		}
		got := make(chan error, 1)
		go func() {
			l, err := cli.Lock(t.Context(), name)
			if err == nil {
				err = l.Unlock(t.Context())
			}
			got <- err
		}()
		lockWaitKeys(t, raw, name+"/", 2)
		if err := m.Unlock(t.Context()); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-got:
			if err != nil {
				t.Errorf("Lock after concurrency.Mutex unlocked: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("Lock not granted after concurrency.Mutex unlocked")
		}
	})
	t.Run("same key", func(t *testing.T) {
		l, err := cli.Lock(t.Context(), name)
		if err != nil {
			t.Fatal(err)
		}
		defer l.Unlock(t.Context())
		resp, err := raw.Get(t.Context(), l.Key())
		if err != nil || len(resp.Kvs) != 1 {
			t.Fatalf("get %q: %v", l.Key(), err)
		}
		if want := fmt.Sprintf("%s/%x", name, resp.Kvs[0].Lease); l.Key() != want {
			t.Errorf("key = %q, want concurrency's %q", l.Key(), want)
		}
		if l.Fence() != resp.Kvs[0].CreateRevision {
			t.Errorf("fence = %d, want the key's create revision %d", l.Fence(), resp.Kvs[0].CreateRevision)
		}
	})
}

func TestLockLostWhenClusterUnreachable(t *testing.T) {
	t.Parallel()
	srv := etcdtest.Start(t) // its own server: this test stops it
	cli := srv.Client(t)
	l, err := cli.Lock(t.Context(), lockName(t), etcdkit.LockTTL(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	lost := l.Lost()
	srv.Stop()
	// Without answers to its keep-alives, the client must give the lease up
	// for lost before its TTL passes, and say the lock is lost: the server
	// may still hold the lease, so the loss is not an expiry.
	lockWaitClosed(t, lost, "Lost with the cluster unreachable")
	if err := l.Err(); !errors.Is(err, etcdkit.ErrLeaseLost) || errors.Is(err, etcdkit.ErrLeaseExpired) {
		t.Errorf("Err = %v, want ErrLeaseLost", err)
	}
	srv.Restart(t)
	// The next lock gets a new lease rather than the one given up for lost.
	l2, err := cli.Lock(t.Context(), lockName(t), etcdkit.LockTTL(2*time.Second))
	if err != nil {
		t.Fatalf("Lock after the cluster came back: %v", err)
	}
	if l2.Key() == l.Key() {
		t.Errorf("new lock reused the lost lease's key %q", l.Key())
	}
	_ = l2.Unlock(t.Context())
}
