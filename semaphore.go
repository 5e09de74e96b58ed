package etcdkit

import (
	"context"
	"fmt"
	"strconv"
	"sync/atomic"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Semaphore is a distributed counting semaphore: at most its limit of
// holders at once, admitted in the order they asked. Make one with
// [Client.Semaphore]; it is a light value, safe for concurrent use, and every
// Acquire returns a new hold as a [Lock], released with [Lock.Unlock].
//
// Each holder's key lives under name + "\x00semaphore/holders/"; a holder
// is admitted when fewer than limit keys were created before its own. The
// NUL byte keeps them apart from the keys of a [Lock], an election or an
// [RWMutex] of any name, and from those of another semaphore whose name
// starts with this one's (names may not contain it).
//
// The limit is stored with the semaphore, at name + "\x00semaphore/limit",
// by the first Acquire of any party (the first one to store it wins), and
// stays there: every party's Acquire checks its own limit against it, so
// two parties with different limits cannot both hold the semaphore. To
// change the limit, delete that key while nobody holds the semaphore.
type Semaphore struct {
	c      *Client
	name   string
	limit  int
	opts   []LockOption
	agreed atomic.Bool // the stored limit was found equal to limit
}

// Semaphore returns the semaphore called name, admitting limit holders at a
// time. Holds use opts ([LockTTL]). Nothing is sent to etcd until a hold is
// taken. Its arguments are checked here, not on each later call: it fails
// with [ErrEmptyKey] for an empty name, [ErrInvalidArgument] for a limit
// under one or a name with a NUL byte, and [ErrInvalidTTL] for a [LockTTL]
// under one second.
func (c *Client) Semaphore(name string, limit int, opts ...LockOption) (*Semaphore, error) {
	if err := checkLockArgs("new semaphore", name, opts); err != nil {
		return nil, err
	}
	if limit < 1 {
		return nil, &opError{op: "new semaphore", key: name, err: fmt.Errorf("%w: semaphore limit %d is under one", ErrInvalidArgument, limit)}
	}
	return &Semaphore{c: c, name: name, limit: limit, opts: opts}, nil
}

// Acquire takes a hold, waiting until fewer than the limit of holders were
// admitted before it. It fails with [ErrInvalidArgument], naming both
// limits, when the limit stored with the semaphore (see [Semaphore]) is not
// this one's; its other errors are those of [Client.Lock].
func (sem *Semaphore) Acquire(ctx context.Context) (*Lock, error) {
	return sem.c.observeHold(ctx, OpLock, sem.name, func(ctx context.Context) (*Lock, error) {
		return sem.take(ctx, "acquire", false)
	})
}

// TryAcquire takes a hold if one is free, and fails at once with [ErrLocked]
// otherwise, leaving no key behind. Its other errors are those of
// [Semaphore.Acquire].
func (sem *Semaphore) TryAcquire(ctx context.Context) (*Lock, error) {
	return sem.c.observeHold(ctx, OpLock, sem.name, func(ctx context.Context) (*Lock, error) {
		return sem.take(ctx, "try acquire", true)
	})
}

// holders is the prefix of the holders' keys; limitKey holds the limit.
func (sem *Semaphore) holders() string  { return sem.name + kindSep + "semaphore/holders/" }
func (sem *Semaphore) limitKey() string { return sem.name + kindSep + "semaphore/limit" }

func (sem *Semaphore) take(ctx context.Context, op string, try bool) (*Lock, error) {
	if !sem.agreed.Load() {
		if err := sem.agree(ctx, op); err != nil {
			return nil, err
		}
	}
	prefix := sem.holders()
	q := queueSpec{
		op: op, name: sem.name,
		key: uniqueKey(prefix),
		checks: []clientv3.Op{
			clientv3.OpGet(prefix, clientv3.WithPrefix(), clientv3.WithCountOnly()),
			clientv3.OpGet(sem.limitKey()),
		},
	}
	l, resp, err := sem.c.enqueue(ctx, sem.opts, q)
	if err != nil {
		return nil, err
	}
	// The limit was changed since this Semaphore agreed with it: the hold
	// would not be counted against the same limit as the others'.
	if err := sem.compare(op, resp.Responses[2].GetResponseRange().Kvs); err != nil {
		sem.agreed.Store(false)
		l.abandon(ctx)
		return nil, err
	}
	// The count includes the new key, the newest of all.
	if resp.Succeeded && resp.Responses[1].GetResponseRange().Count <= int64(sem.limit) {
		return l, nil
	}
	if try {
		l.abandon(ctx)
		return nil, &opError{op: op, key: sem.name, err: ErrLocked}
	}
	if err := sem.wait(ctx, l, prefix); err != nil {
		l.abandon(ctx)
		return nil, err
	}
	return l, nil
}

// maxAgreeAttempts bounds the attempts to store the limit: each one that
// fails without an answer is followed by a read that settles it.
const maxAgreeAttempts = 3

// agree stores the limit if none is stored yet, and checks it against the
// stored one otherwise. A store whose outcome is unknown (it may have
// committed, or may still) is settled by reading the key again: whatever is
// there decides, and nothing is taken while it cannot be read.
func (sem *Semaphore) agree(ctx context.Context, op string) error {
	key, want := sem.limitKey(), strconv.Itoa(sem.limit)
	var err error
	for range maxAgreeAttempts {
		var kvs []*mvccpb.KeyValue
		if kvs, err = sem.storeLimit(ctx, key, want); err != nil {
			if kvs, err = sem.readLimit(ctx, key); err != nil {
				return opErr(op, sem.name, err)
			}
			if len(kvs) == 0 {
				retriedIn(ctx)
				continue // the store did not commit (yet): try again
			}
		}
		if err := sem.compare(op, kvs); err != nil {
			return err
		}
		sem.agreed.Store(true)
		return nil
	}
	return opErr(op, sem.name, err)
}

// storeLimit creates key with want unless it exists, and returns the key
// as it is then.
func (sem *Semaphore) storeLimit(ctx context.Context, key, want string) ([]*mvccpb.KeyValue, error) {
	tctx, cancel := sem.c.bound(ctx)
	defer cancel()
	resp, err := sem.c.raw.KV.Txn(tctx).
		If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, want)).Else(clientv3.OpGet(key)).Commit()
	if err != nil {
		return nil, err
	}
	if resp.Succeeded {
		return []*mvccpb.KeyValue{{Key: []byte(key), Value: []byte(want)}}, nil
	}
	return resp.Responses[0].GetResponseRange().Kvs, nil
}

func (sem *Semaphore) readLimit(ctx context.Context, key string) ([]*mvccpb.KeyValue, error) {
	gctx, cancel := sem.c.bound(ctx)
	defer cancel()
	resp, err := sem.c.raw.KV.Get(gctx, key)
	if err != nil {
		return nil, err
	}
	return resp.Kvs, nil
}

// compare checks the stored limit (the key read, if any) against sem's.
func (sem *Semaphore) compare(op string, kvs []*mvccpb.KeyValue) error {
	if len(kvs) == 0 {
		return &opError{op: op, key: sem.name, err: fmt.Errorf("%w: the semaphore's stored limit was deleted while in use; acquire again to store %d", ErrInvalidArgument, sem.limit)}
	}
	if stored := string(kvs[0].Value); stored != strconv.Itoa(sem.limit) {
		return &opError{op: op, key: sem.name, err: fmt.Errorf("%w: semaphore limit %d differs from the limit %s stored by the first party", ErrInvalidArgument, sem.limit, stored)}
	}
	return nil
}

// wait waits until fewer than the limit of keys under prefix were created
// before l's, then checks that l's key is still there.
func (sem *Semaphore) wait(ctx context.Context, l *Lock, prefix string) error {
	wctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stop := context.AfterFunc(l.s.ctx, func() { cancel(l.s.err()) })
	defer stop()
	if err := sem.waitCount(wctx, prefix, l.fence-1); err != nil {
		return l.waitErr(ctx, wctx, err)
	}
	if err := l.verifyKey(wctx); err != nil {
		return l.waitErr(ctx, wctx, err)
	}
	return nil
}

// waitCount counts the keys under prefix created up to maxRev, and while
// they are limit or more, waits for a deletion under prefix and counts again.
func (sem *Semaphore) waitCount(ctx context.Context, prefix string, maxRev int64) error {
	c := sem.c
	count := func() (int64, int64, error) {
		gctx, cancel := c.bound(ctx)
		// etcd counts before it filters by revision, so the keys are read
		// (names only, at most limit of them) and counted here.
		resp, err := c.raw.KV.Get(gctx, prefix, clientv3.WithPrefix(), clientv3.WithKeysOnly(),
			clientv3.WithMaxCreateRev(maxRev), clientv3.WithLimit(int64(sem.limit)),
			clientv3.WithSort(clientv3.SortByCreateRevision, clientv3.SortAscend))
		cancel()
		if err != nil {
			return 0, 0, err
		}
		return int64(len(resp.Kvs)), resp.Header.Revision, nil
	}
	n, rev, err := count()
	if err != nil || n < int64(sem.limit) {
		return err
	}
	wctx, wcancel := context.WithCancel(ctx)
	defer wcancel()
	wch := c.raw.Watcher.Watch(wctx, prefix, clientv3.WithPrefix(), clientv3.WithRev(rev+1), clientv3.WithFilterPut())
	for wr := range wch {
		if err := wr.Err(); err != nil && wr.CompactRevision == 0 {
			return err
		}
		if len(wr.Events) == 0 && wr.CompactRevision == 0 {
			continue
		}
		if n, _, err = count(); err != nil || n < int64(sem.limit) {
			return err
		}
		if wr.CompactRevision != 0 {
			// The watch ended; start over from a fresh count.
			return sem.waitCount(ctx, prefix, maxRev)
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := c.checkOpen("watch", prefix); err != nil {
		return err
	}
	return fmt.Errorf("%w: watch ended", ErrUnavailable)
}
