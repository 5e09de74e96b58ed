package etcdkit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/etcdkit/etcdkit/internal/retry"
)

// Lock is a held distributed lock: a key in etcd, attached to a lease that
// this client keeps alive. [Client.Lock], [Client.TryLock], [RWMutex] and
// [Semaphore] return one. It is safe for concurrent use.
//
// A lock named N is wire-compatible with concurrency.NewMutex(session, N) and
// "etcdctl lock N": its key is N + "/" + the lease ID in hex, waiters queue in
// the order their keys were created, and each excludes the others. Keys
// deeper under N + "/" belong to nested names and are not waited for.
//
// Holding a Lock is a claim, not a guarantee: if the process stalls for
// longer than the lease TTL, the lease expires and another holder may take
// the lock. Guard the writes the lock protects with [Lock.Held] in a
// transaction, or pass [Lock.Fence] to the resource being protected.
type Lock struct {
	c       *Client
	pool    *sessionPool
	s       *session
	regName string // the name registered on the session; "" for unique keys
	op      string // what acquired it, for errors
	name    string
	key     string
	fence   int64 // the key's create revision
	rev     int64 // a revision at which the key was known to be held

	mu         sync.Mutex
	released   bool // unlocked or abandoned: the handle holds nothing
	releasing  int  // Unlock calls under way: a deletion seen now may be theirs
	keyGone    bool // the key was seen deleted while an Unlock was under way
	unlockSent bool // an Unlock failed after its delete may have been sent
	detached   bool // the use of the session (and the name on it) was given back
	endErr     error
	lost       context.Context // made by the first Lost call
	lostCancel context.CancelCauseFunc
}

// Lock takes the lock called name, waiting until it is free or ctx ends. It
// fails with ctx's error if ctx ends first; with [ErrLeaseLost] if the
// client's lease behind the lock could not be refreshed in time while
// waiting, or [ErrLeaseExpired] if the server expired it; with
// [ErrInvalidTTL] for a [LockTTL] under one second, [ErrEmptyKey] for an
// empty name and [ErrClosed] after [Client.Close].
//
// A waiter that gives up leaves no key behind. When the request that would
// remove its key fails, or the one that made it has an unknown outcome, the
// key is removed in the background: the lease it is on is no longer used
// for new locks, and is revoked once the client's other locks on it are
// released.
//
// Two Lock calls on the same name from one client exclude each other like
// calls from different clients.
//
// Names do not overlap: a lock named "a" waits only for the keys of lock
// "a" (the children of "a/"), not for those of a lock named "a/b" below
// it; nor does a [Semaphore] or [RWMutex] of the same name share its keys.
// (concurrency.Mutex, by contrast, does queue "a" behind "a/b".) It fails
// with [ErrInvalidArgument] for a name with a NUL byte, which etcdkit
// keeps to separate the kinds' keys.
func (c *Client) Lock(ctx context.Context, name string, opts ...LockOption) (*Lock, error) {
	return c.observeHold(ctx, OpLock, name, func(ctx context.Context) (*Lock, error) {
		return c.lock(ctx, "lock", name, opts, false)
	})
}

// TryLock takes the lock called name if it is free, and fails at once with
// [ErrLocked] if another holder has it, leaving no key behind. Its other
// errors are those of [Client.Lock].
func (c *Client) TryLock(ctx context.Context, name string, opts ...LockOption) (*Lock, error) {
	return c.observeHold(ctx, OpLock, name, func(ctx context.Context) (*Lock, error) {
		return c.lock(ctx, "try lock", name, opts, true)
	})
}

// observeHold runs take, which takes a lock, a hold or a leadership on
// name, as the operation op, and tells of the wait when it succeeds.
func (c *Client) observeHold(ctx context.Context, op, name string, take func(context.Context) (*Lock, error)) (*Lock, error) {
	start := time.Now()
	ctx, o := c.opStart(ctx, op, name, "")
	l, err := take(ctx)
	if err != nil {
		o.end(0, err)
		return nil, err
	}
	n := Notice{Kind: NoticeLockAcquired, Prefix: name, Revision: l.fence, Duration: time.Since(start)}
	if op == OpCampaign {
		n = Notice{Kind: NoticeLeaderChanged, Prefix: name, Revision: l.fence, Value: 1}
	}
	c.notice(ctx, n)
	o.end(l.fence, nil)
	return l, nil
}

// WithLock runs fn while holding the lock called name, and releases the lock
// when fn returns or panics (the panic then goes on). fn's ctx is cancelled
// the moment the lock is lost (see [Lock.Lost]), and then WithLock returns
// the loss ([Lock.Err]) if fn returned nil; [HeldLock] gets the lock from
// it, to fence writes. Its errors are those of [Client.Lock], fn's error,
// or the unlock's; a key that the unlock failed to delete is deleted in the
// background, as a waiter's is (see [Client.Lock]).
func (c *Client) WithLock(ctx context.Context, name string, fn func(ctx context.Context) error, opts ...LockOption) (err error) {
	l, err := c.Lock(ctx, name, opts...)
	if err != nil {
		return err
	}
	fctx, cancel := context.WithCancelCause(context.WithValue(ctx, heldLockKey{}, l))
	stop := context.AfterFunc(l.lostCtx(), func() { cancel(l.Err()) })
	// Deferred, so that a panicking fn (net/http recovers handler panics,
	// and the process goes on) does not keep the lock.
	defer func() {
		stop()
		cancel(nil)
		lostErr := l.Err()
		uerr := l.unlockOrLeave(context.WithoutCancel(ctx))
		switch {
		case err != nil:
		case lostErr != nil:
			err = lostErr
		default:
			err = uerr
		}
	}()
	return fn(fctx)
}

// HeldLock returns the lock [Client.WithLock] holds while it runs the fn
// that was given ctx (or a ctx derived from it), so that fn can fence its
// writes with [Lock.Held] or [Lock.Fence]. It returns false for any other
// ctx. With nested WithLock calls it returns the innermost lock.
func HeldLock(ctx context.Context) (*Lock, bool) {
	l, ok := ctx.Value(heldLockKey{}).(*Lock)
	return l, ok
}

// heldLockKey is the ctx key of the lock WithLock holds.
type heldLockKey struct{}

func (c *Client) lock(ctx context.Context, op, name string, opts []LockOption, try bool) (*Lock, error) {
	prefix := name + "/"
	l, resp, err := c.enqueue(ctx, opts, mutexSpec(op, name, ""))
	if err != nil {
		return nil, err
	}
	first := resp.Responses[1].GetResponseRange().Kvs
	if isFirst(first, l.fence) {
		return l, nil
	}
	if try {
		if !isChild(prefix, first[0].Key) {
			// A nested name's key came first: look past it.
			if first, err = l.firstChild(ctx, prefix); err != nil || isFirst(first, l.fence) {
				return l.claimOrAbandon(ctx, err)
			}
		}
		l.abandon(ctx)
		return nil, &opError{op: op, key: name, err: ErrLocked}
	}
	if err := l.waitTurn(ctx, prefix, true, l.verifyFirst(prefix)); err != nil {
		l.abandon(ctx)
		return nil, err
	}
	return l, nil
}

// claimOrAbandon returns l, or abandons it when err says its turn could not
// be checked.
func (l *Lock) claimOrAbandon(ctx context.Context, err error) (*Lock, error) {
	if err != nil {
		l.abandon(ctx)
		return nil, opErr(l.op, l.name, err)
	}
	return l, nil
}

// firstChild reads the first key by creation among the children of prefix,
// as a one-element slice (empty when there is none).
func (l *Lock) firstChild(ctx context.Context, prefix string) ([]*mvccpb.KeyValue, error) {
	kv, _, err := l.c.firstCandidate(ctx, prefix)
	if err != nil || kv == nil {
		return nil, err
	}
	return []*mvccpb.KeyValue{kv}, nil
}

// mutexSpec is the queue of a name whose holders take turns one at a
// time, as concurrency.Mutex and concurrency.Election queue: a key per
// session under name + "/", holding value, with a read of the first key
// by creation. That read also sees the keys of nested names ("a/b" under
// "a"): the holder checks its turn again among the children only (see
// isChild) before it waits.
func mutexSpec(op, name, value string) queueSpec {
	prefix := name + "/"
	return queueSpec{
		op: op, name: name, regName: name, value: value,
		key:    func(s *session) string { return prefix + leaseHex(s.id) },
		checks: []clientv3.Op{clientv3.OpGet(prefix, clientv3.WithFirstCreate()...)},
	}
}

// queueSpec says how to join the queue of holders of a name.
type queueSpec struct {
	op, name string
	regName  string                // registered on the session, "" if the key is unique anyway
	key      func(*session) string // the key for a session's lease
	value    string                // stored at the key
	checks   []clientv3.Op         // read after the put, in the same transaction
}

// enqueue creates the queue key in one transaction that also runs the
// checks, on a live session. A session whose lease turns out to be gone is
// replaced and the transaction retried.
func (c *Client) enqueue(ctx context.Context, opts []LockOption, q queueSpec) (*Lock, *clientv3.TxnResponse, error) {
	if err := checkName(q.op, q.name); err != nil {
		return nil, nil, err
	}
	if err := c.checkOpen(q.op, q.name); err != nil {
		return nil, nil, err
	}
	ttl, err := lockTTL(q.op, q.name, opts)
	if err != nil {
		return nil, nil, err
	}
	pool, err := c.sessions()
	if err != nil {
		return nil, nil, opErr(q.op, q.name, err)
	}
	for attempt := 0; ; attempt++ {
		s, err := pool.acquire(ctx, ttl, q.regName)
		if err != nil {
			return nil, nil, opErr(q.op, q.name, err)
		}
		key := q.key(s)
		resp, err := c.joinTxn(ctx, s, key, q)
		if err != nil {
			if isLeaseGone(err) && attempt < 2 {
				pool.release(s, q.regName)
				pool.discard(s)
				retriedIn(ctx)
				continue
			}
			// The put may have been applied though its answer was lost (a
			// cancelled ctx, a timeout), or may still be on its way and
			// land after any delete sent now: remove what it left at once,
			// and again in the background until it can no longer land.
			ours := clientv3.Compare(clientv3.LeaseValue(key), "=", s.id)
			if err := c.deleteIf(context.WithoutCancel(ctx), key, ours); err != nil {
				c.log.Warn("etcdkit: delete lock key after a failed request", "key", key, "error", err)
			}
			c.leaveBehind(pool, s, key, q.regName, ours, time.Now().Add(c.bounds.Timeout()))
			return nil, nil, opErr(q.op, q.name, err)
		}
		l := &Lock{c: c, pool: pool, s: s, regName: q.regName, op: q.op, name: q.name, key: key,
			fence: resp.Header.Revision, rev: resp.Header.Revision}
		if !resp.Succeeded {
			// Only a key left behind by a failed release of this same lease
			// can be there: it is ours, with its place in the queue.
			l.fence = resp.Responses[0].GetResponseRange().Kvs[0].CreateRevision
		}
		return l, resp, nil
	}
}

// deleteHeld is deleteIf that also says whether cond held, so the key was
// deleted. After Close it deletes nothing and returns true.
func (c *Client) deleteHeld(ctx context.Context, key string, cond clientv3.Cmp) (bool, error) {
	if c.closed.Load() {
		return true, nil // Close revokes the lease, and the key with it
	}
	dctx, cancel := c.bound(ctx)
	defer cancel()
	resp, err := c.raw.KV.Txn(dctx).If(cond).Then(clientv3.OpDelete(key)).Commit()
	if err != nil {
		return false, err
	}
	return resp.Succeeded, nil
}

// deleteIf deletes key if cond holds: the key is still the one a lock put.
// Clean-ups that must run even when the caller gave up pass
// context.WithoutCancel(ctx); the request timeout bounds it.
func (c *Client) deleteIf(ctx context.Context, key string, cond clientv3.Cmp) error {
	if c.closed.Load() {
		return nil // Close revokes the lease, and the key with it
	}
	dctx, cancel := c.bound(ctx)
	defer cancel()
	_, err := c.raw.KV.Txn(dctx).If(cond).Then(clientv3.OpDelete(key)).Commit()
	return err
}

// leaveBehind gives up on a key of s that may still be on the server (its
// delete failed) or may yet land there (its put had an unknown outcome):
// s is retired, so that its lease is revoked once its other users are done,
// and a background sweep deletes the key while cond holds. name stays
// registered on s until the key is known to be gone. One use of s ends.
func (c *Client) leaveBehind(p *sessionPool, s *session, key, name string, cond clientv3.Cmp, lateUntil time.Time) {
	p.retire(s)
	p.release(s, "")
	if !c.closed.Load() {
		c.goBackground(func() { c.sweep(p, s, key, name, cond, lateUntil) })
	}
}

// maxSweeps bounds the deletes a sweep sends: with its backoff, over a
// minute and a half of trying.
const maxSweeps = 100

// sweep deletes key while cond holds, with backoff, until a delete succeeds
// at or after lateUntil: a request its caller gave up on lands, if ever,
// within about the request timeout, and revoking the retired lease covers
// one that is later still. It stops early when s ends (its lease, and the
// key with it, is gone or going) or the client closes (which revokes it).
func (c *Client) sweep(p *sessionPool, s *session, key, name string, cond clientv3.Cmp, lateUntil time.Time) {
	backoff := retry.Backoff{Start: 50 * time.Millisecond, Max: time.Second}
	for range maxSweeps {
		err := c.deleteIf(c.ctx, key, cond)
		if err == nil && !time.Now().Before(lateUntil) {
			p.forget(s, name)
			return
		}
		t := time.NewTimer(backoff.Next())
		select {
		case <-c.ctx.Done():
		case <-s.ctx.Done():
		case <-t.C:
			continue
		}
		t.Stop()
		return
	}
	c.log.Warn("etcdkit: gave up deleting a lock key; its lease ends it when the client's other locks are released", "key", key)
}

// joinTxn puts key unless it exists (then reads it), and runs the checks.
func (c *Client) joinTxn(ctx context.Context, s *session, key string, q queueSpec) (*clientv3.TxnResponse, error) {
	then := make([]clientv3.Op, 0, 1+len(q.checks))
	then = append(then, clientv3.OpPut(key, q.value, clientv3.WithLease(s.id)))
	then = append(then, q.checks...)
	els := make([]clientv3.Op, 0, 1+len(q.checks))
	els = append(els, clientv3.OpGet(key))
	els = append(els, q.checks...)
	tctx, cancel := c.bound(ctx)
	defer cancel()
	return c.raw.KV.Txn(tctx).
		If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(then...).Else(els...).Commit()
}

// isFirst reports whether the first key by creation is the one created at
// fence (or there is none, which only a racing expiry can cause).
func isFirst(first []*mvccpb.KeyValue, fence int64) bool {
	return len(first) == 0 || first[0].CreateRevision == fence
}

// waitTurn waits until no key under prefix (with children, no child of
// prefix) was created before l's, then checks with verify that l still
// holds its place. It gives up when ctx ends or the session behind l ends.
func (l *Lock) waitTurn(ctx context.Context, prefix string, children bool, verify func(context.Context) error) error {
	wctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stop := context.AfterFunc(l.s.ctx, func() { cancel(l.s.err()) })
	defer stop()
	if err := l.c.waitDeletes(wctx, prefix, l.fence-1, children); err != nil {
		return l.waitErr(ctx, wctx, err)
	}
	if err := verify(wctx); err != nil {
		return l.waitErr(ctx, wctx, err)
	}
	return nil
}

// waitErr explains why waiting failed: the caller's ctx, the session, or etcd.
func (l *Lock) waitErr(ctx, wctx context.Context, err error) error {
	switch {
	case ctx.Err() != nil:
		// Whatever failed first, the caller gave up: say so, so that
		// errors.Is(err, context.Canceled) holds.
		return opErr(l.op, l.name, ctx.Err())
	case wctx.Err() != nil:
		return l.sessionErr(l.op, l.name)
	}
	return opErr(l.op, l.name, err)
}

// verifyFirst returns a check that l's key is now the first child of
// prefix, so that a lock is never claimed on a key that vanished.
func (l *Lock) verifyFirst(prefix string) func(context.Context) error {
	return func(ctx context.Context) error {
		kv, rev, err := l.c.firstCandidate(ctx, prefix)
		if err != nil {
			return err
		}
		if kv == nil || string(kv.Key) != l.key || kv.CreateRevision != l.fence {
			return l.lostErr(ErrLeaseExpired, "the key vanished while waiting")
		}
		l.rev = rev
		return nil
	}
}

// waitDeletes waits until no key under prefix (with children, no child of
// prefix) has a create revision up to maxRev, watching the deletion of the
// newest such key each time (so each waiter wakes only when its
// predecessor goes).
func (c *Client) waitDeletes(ctx context.Context, prefix string, maxRev int64, children bool) error {
	opts := append(clientv3.WithLastCreate(), clientv3.WithMaxCreateRev(maxRev))
	for {
		gctx, cancel := c.bound(ctx)
		resp, err := c.raw.KV.Get(gctx, prefix, opts...)
		cancel()
		if err != nil {
			return err
		}
		kvs := resp.Kvs
		if children && len(kvs) > 0 && !isChild(prefix, kvs[0].Key) {
			// A nested name's key: read them all (names only) and skip those.
			if kvs, err = c.childrenOf(ctx, prefix, clientv3.SortDescend, clientv3.WithMaxCreateRev(maxRev), clientv3.WithKeysOnly()); err != nil {
				return err
			}
		}
		if len(kvs) == 0 {
			return nil
		}
		if err := c.waitDelete(ctx, string(kvs[0].Key), resp.Header.Revision); err != nil {
			return err
		}
	}
}

// isChild reports whether key is a child of prefix, as the keys of a lock
// or election named N are children of N + "/" (N + "/" + a lease ID): the
// keys of a nested name ("a/b" under "a") are not.
func isChild(prefix string, key []byte) bool {
	return len(key) > len(prefix) && !bytes.ContainsRune(key[len(prefix):], '/')
}

// childrenOf reads the children of prefix in order of creation (ascending
// or descending), skipping the keys of nested names. Nested names are
// rare: this slower read is only made when one's key is seen.
func (c *Client) childrenOf(ctx context.Context, prefix string, order clientv3.SortOrder, opts ...clientv3.OpOption) ([]*mvccpb.KeyValue, error) {
	gctx, cancel := c.bound(ctx)
	defer cancel()
	opts = append(opts, clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByCreateRevision, order))
	resp, err := c.raw.KV.Get(gctx, prefix, opts...)
	if err != nil {
		return nil, err
	}
	kvs := resp.Kvs[:0]
	for _, kv := range resp.Kvs {
		if isChild(prefix, kv.Key) {
			kvs = append(kvs, kv)
		}
	}
	return kvs, nil
}

// waitDelete waits until key is deleted after revision rev. A compacted watch
// returns nil: the caller reads again.
func (c *Client) waitDelete(ctx context.Context, key string, rev int64) error {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for wr := range c.rawWatch(wctx, key, clientv3.WithRev(rev+1), clientv3.WithFilterPut()) {
		if wr.CompactRevision != 0 {
			return nil
		}
		if err := wr.Err(); err != nil {
			return err
		}
		if len(wr.Events) > 0 {
			return nil
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := c.checkOpen("watch", key); err != nil {
		return err
	}
	return fmt.Errorf("%w: watch ended", ErrUnavailable)
}

// abandon deletes the key of a lock that was not taken, and releases its
// session. It runs even when ctx was cancelled, bounded by the request
// timeout. If the delete fails, the key is left to the background clean-up.
func (l *Lock) abandon(ctx context.Context) {
	if err := l.c.deleteIf(context.WithoutCancel(ctx), l.key, l.held()); err != nil {
		l.c.log.Warn("etcdkit: delete abandoned lock key", "key", l.key, "error", err)
		l.leave(&opError{op: l.op, key: l.name, err: ErrClosed})
		return
	}
	l.mu.Lock()
	l.finish(&opError{op: l.op, key: l.name, err: ErrClosed})
	l.mu.Unlock()
	l.detach()
}

// unlockOrLeave unlocks l for a caller that keeps no handle to try again
// with: if the unlock fails, the key is left to the background clean-up.
func (l *Lock) unlockOrLeave(ctx context.Context) error {
	err := l.Unlock(ctx)
	if err != nil {
		l.leave(&opError{op: "hold lock", key: l.key, err: fmt.Errorf("%w: unlock failed", ErrClosed)})
	}
	return err
}

// leave ends l without knowing whether its key is gone: unless it is known
// to be, the session is retired and the key swept (see Client.leaveBehind).
func (l *Lock) leave(endErr error) {
	l.mu.Lock()
	if !l.released {
		l.finish(endErr)
	}
	detached, gone := l.detached, l.keyGone
	l.detached = true
	l.mu.Unlock()
	switch {
	case detached: // the key was seen deleted, and the session given back
	case gone:
		l.pool.release(l.s, l.regName)
	default:
		l.c.leaveBehind(l.pool, l.s, l.key, l.regName, l.held(), time.Time{})
	}
}

// finish marks l released with err as the reason. l.mu is held.
func (l *Lock) finish(err error) {
	l.released = true
	l.endErr = err
	if l.lostCancel != nil {
		l.lostCancel(err)
	}
}

// detach gives back l's use of its session, and its name on it, once: the
// key is known to be gone.
func (l *Lock) detach() {
	l.mu.Lock()
	done := l.detached
	l.detached = true
	l.mu.Unlock()
	if !done {
		l.pool.release(l.s, l.regName)
	}
}

// Fence returns the lock's fencing token: the create revision of its key. It
// grows with every new holder of the name, so a resource that remembers the
// highest token it saw can refuse a write from an older holder.
//
// The token of a read hold ([RWMutex.RLock]) is not exclusive: read holds
// are held together, each with a token of its own, so it is no writer's
// fencing token and must not guard a write. It orders the hold against
// write holds: every write hold with a lower token ended before the read
// hold was granted, and every one with a higher token is granted only
// after it ends. A resource that remembers the highest write token it saw
// can refuse a read hold's token below it: a read hold that was lost while
// a writer took over.
func (l *Lock) Fence() int64 { return l.fence }

// Key returns the lock's key in etcd (relative to the client's namespace).
func (l *Lock) Key() string { return l.key }

// Held returns the transaction condition "this lock is still held": its
// key exists with the create revision it had when taken. Guard the writes the
// lock protects with it, so that a holder that lost the lock (its lease
// expired during a pause) cannot write after another holder took over:
//
//	res, err := c.Txn(ctx).If(l.Held()).Then(ops...).Commit()
func (l *Lock) Held() Cond { return Cond{cmp: l.held()} }

// held is the comparison "this lock is still held": its key exists with the
// create revision it had when taken.
func (l *Lock) held() clientv3.Cmp {
	return clientv3.Compare(clientv3.CreateRevision(l.key), "=", l.fence)
}

// Unlock releases the lock. It deletes the key only if it is still this
// lock's (a transaction on its create revision), so it never releases a lock
// that another holder took after this one was lost.
//
// If the lock was lost before Unlock (see [Lock.Lost]), what it protected
// was not protected to the end, and Unlock says so: it releases what is
// left and returns the loss, the error [Lock.Err] reports ([ErrLeaseLost]
// or [ErrLeaseExpired]), or [ErrLeaseExpired] when Unlock itself finds the
// key gone (unless an earlier Unlock failed with an unknown outcome: the
// key gone is then taken as that one's doing). After a loss nothing is
// held: do not call it again for that.
//
// Any other error means the delete failed and the lock may still be held:
// call Unlock again, or rely on [Client.Close], which revokes the lease.
// Once Unlock returned nil or a loss, later calls return nil. After
// [Client.Close], it returns nil: Close released the lock.
func (l *Lock) Unlock(ctx context.Context) error {
	return l.release(ctx, OpUnlock)
}

// release is Unlock, observed as the operation op.
func (l *Lock) release(ctx context.Context, op string) error {
	ctx, o := l.c.opStart(ctx, op, l.name, "")
	err := l.unlock(ctx)
	o.end(0, err)
	return err
}

func (l *Lock) unlock(ctx context.Context) error {
	l.mu.Lock()
	if l.released {
		l.mu.Unlock()
		return nil
	}
	// l.mu is not held across the request, so that Err and Lost answer
	// meanwhile; releasing tells monitor that a deletion it sees may be
	// this one, not a loss.
	l.releasing++
	l.mu.Unlock()
	deleted, err := l.c.deleteHeld(ctx, l.key, l.held())
	l.mu.Lock()
	l.releasing--
	// After Close, the lease and with it the key are gone already; a key
	// seen deleted is gone whatever the request's answer was.
	if err != nil && !l.keyGone && !l.c.closed.Load() {
		l.unlockSent = true
		l.mu.Unlock()
		return opErr("unlock", l.key, err)
	}
	// A key gone after an Unlock that may have deleted it is no loss.
	loss := l.lossBeforeUnlock(err == nil && !deleted && !l.unlockSent)
	if !l.released {
		var end error = &opError{op: "hold lock", key: l.key, err: fmt.Errorf("%w: unlocked", ErrClosed)}
		if loss != nil {
			end = loss // Err goes on saying why the lock was not held to the end
		}
		l.finish(end)
	}
	l.mu.Unlock()
	l.detach()
	return loss
}

// lossBeforeUnlock is the loss Unlock reports, nil if the lock was held
// until Unlock; notFound says the key was no longer this lock's when Unlock
// tried to delete it. l.mu is held.
func (l *Lock) lossBeforeUnlock(notFound bool) error {
	if l.c.closed.Load() {
		return nil
	}
	if err := l.knownLoss(); err != nil && !errors.Is(err, ErrClosed) {
		return err
	}
	if notFound {
		return l.lostErr(ErrLeaseExpired, "the key was gone before Unlock")
	}
	return nil
}

// knownLoss is why the lock is no longer held as far as known without a
// request, nil while it is. l.mu is held.
func (l *Lock) knownLoss() error {
	switch {
	case l.lost != nil && l.lost.Err() != nil:
		return context.Cause(l.lost)
	case l.released:
		return l.endErr
	case l.c.ctx.Err() != nil:
		return &opError{op: "hold lock", key: l.key, err: ErrClosed}
	case l.s.dead():
		return l.sessionErr("hold lock", l.key)
	}
	return nil
}

// Lost returns a channel that is closed when the lock is no longer held: its
// lease could not be refreshed in time, expired or was revoked, its key was
// deleted by someone else, the client was closed, or [Lock.Unlock] released
// it. [Lock.Err] says which. A revoked lease or deleted key is noticed at
// once (a watch on the key), an unreachable cluster within the lease TTL.
func (l *Lock) Lost() <-chan struct{} { return l.lostCtx().Done() }

// Err returns nil while the lock is held, and once it is not why:
// [ErrLeaseLost] if the lease could not be refreshed in time (the server
// may still hold it for a while), [ErrLeaseExpired] if the server confirmed
// the lease gone or the key was deleted, [ErrClosed] after Unlock or
// [Client.Close]. After [Lock.Lost] is closed it returns the same error.
//
// Err sends nothing and starts nothing: it reports what the lock's
// lease keep-alive knows, and, once [Lock.Lost] was called (which starts a
// watch on the key), a deletion of the key by someone else.
func (l *Lock) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.knownLoss()
}

// lostCtx returns a context that ends when the lock is lost, starting the
// watch that notices it on first use: locks that never ask cost no watch.
func (l *Lock) lostCtx() context.Context {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.lost != nil {
		return l.lost
	}
	l.lost, l.lostCancel = context.WithCancelCause(context.Background())
	switch {
	case l.released:
		l.lostCancel(l.endErr)
	case l.c.ctx.Err() != nil:
		l.lostCancel(&opError{op: "hold lock", key: l.key, err: ErrClosed})
	default:
		l.c.goBackground(l.monitor)
	}
	return l.lost
}

// monitor ends l.lost when the client closes, the session ends, or the key
// is deleted.
func (l *Lock) monitor() {
	stopC := context.AfterFunc(l.c.ctx, func() {
		l.lostCancel(&opError{op: "hold lock", key: l.key, err: ErrClosed})
	})
	defer stopC()
	stopS := context.AfterFunc(l.s.ctx, func() { l.lose(l.sessionErr("hold lock", l.key)) })
	defer stopS()
	rev := l.rev
	backoff := retry.Backoff{Start: 50 * time.Millisecond, Max: time.Second}
	for l.lost.Err() == nil {
		gone, next, err := l.c.watchKey(l.lost, l.key, l.fence, rev, false)
		if gone {
			l.keyDeleted()
			return
		}
		if err == nil {
			backoff.Reset()
		}
		rev = max(rev, next)
		backoff.Sleep(l.lost)
	}
}

// keyDeleted reports the loss of a key that was seen deleted, unless an
// Unlock under way may have deleted it, and gives back the session's name:
// the key is gone, so the next lock of the name may use the session again.
func (l *Lock) keyDeleted() {
	l.mu.Lock()
	if l.releasing > 0 || l.released {
		l.keyGone = true // Unlock reports it, as an unlock
		l.mu.Unlock()
		return
	}
	l.lose(l.lostErr(ErrLeaseExpired, "the key was deleted"))
	l.mu.Unlock()
	l.detach()
}

// lose ends l.lost with err and, unless it had ended already (the lock
// released) or the client closed, tells of the loss.
func (l *Lock) lose(err error) {
	l.lostCancel(err)
	if context.Cause(l.lost) == err && !errors.Is(err, ErrClosed) {
		l.c.notice(l.c.ctx, Notice{Kind: NoticeLockLost, Prefix: l.name, Revision: l.fence, Err: err})
	}
}

// watchKey watches key from after rev until it is deleted, or with
// anyPut also until it is written again (a term never writes its key after
// creating it), or until the watch breaks; then it reads the key again to
// tell whether it is still the one created at fence (and, with anyPut, not
// written since), and returns the revision read. ended says the key is no
// longer the one created at fence.
func (c *Client) watchKey(ctx context.Context, key string, fence, rev int64, anyPut bool) (ended bool, next int64, err error) {
	opts := []clientv3.OpOption{clientv3.WithRev(rev + 1)}
	if !anyPut {
		opts = append(opts, clientv3.WithFilterPut())
	}
	wctx, cancel := context.WithCancel(ctx)
	for wr := range c.rawWatch(wctx, key, opts...) {
		if len(wr.Events) > 0 {
			cancel()
			return true, 0, nil
		}
		if wr.Err() != nil {
			break
		}
	}
	cancel()
	if ctx.Err() != nil {
		return false, rev, ctx.Err()
	}
	gctx, gcancel := c.bound(ctx)
	resp, err := c.raw.KV.Get(gctx, key)
	gcancel()
	if err != nil {
		return false, rev, err
	}
	if len(resp.Kvs) == 0 || resp.Kvs[0].CreateRevision != fence || (anyPut && resp.Kvs[0].ModRevision != fence) {
		return true, 0, nil
	}
	return false, resp.Header.Revision, nil
}

// sessionErr is the error of a lock (or a wait for one) whose session
// ended: the session's own cause, which says whether the lease could not be
// refreshed in time (ErrLeaseLost), is gone (ErrLeaseExpired), or the client
// closed (ErrClosed).
func (l *Lock) sessionErr(op, key string) error {
	cause := l.s.err()
	switch {
	case errors.Is(cause, ErrClosed):
		return &opError{op: op, key: key, err: ErrClosed}
	case errors.Is(cause, ErrLeaseLost), errors.Is(cause, ErrLeaseExpired):
		return &opError{op: op, key: key, err: cause}
	}
	return &opError{op: op, key: key, err: fmt.Errorf("%w: the lease ended: %v", ErrLeaseExpired, cause)}
}

// lostErr is the error of a lock that is no longer held.
func (l *Lock) lostErr(sentinel error, why string) error {
	return &opError{op: "hold lock", key: l.key, err: fmt.Errorf("%w: %s", sentinel, why)}
}

// kindSep starts the part of a key that says which kind of primitive it
// belongs to ([Semaphore], [RWMutex]). Names may not contain it, so the
// keys of one kind and name are never under another's: a NUL byte, as no
// one names a lock with it.
const kindSep = "\x00"

// checkName checks the name of a lock, election, reader/writer lock or
// semaphore: [ErrEmptyKey] if it is empty, [ErrInvalidArgument] if it
// contains a NUL byte (see kindSep).
func checkName(op, name string) error {
	switch {
	case name == "":
		return &opError{op: op, err: ErrEmptyKey}
	case strings.Contains(name, kindSep):
		return &opError{op: op, key: name, err: fmt.Errorf("%w: the name contains a NUL byte", ErrInvalidArgument)}
	}
	return nil
}

// leaseHex formats a lease ID as concurrency.Mutex does (%x).
func leaseHex(id clientv3.LeaseID) string { return strconv.FormatInt(int64(id), 16) }
