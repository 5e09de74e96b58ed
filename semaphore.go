package etcdkit

import (
	"context"
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Semaphore is a distributed counting semaphore: at most its limit of
// holders at once, admitted in the order they asked. Make one with
// [Client.Semaphore]; it is a light value, safe for concurrent use, and every
// Acquire returns a new hold as a [Lock], released with [Lock.Unlock].
//
// Each holder's key lives under name + "/"; a holder is admitted when fewer
// than limit keys were created before its own. Every party must use the
// same limit for the same name.
type Semaphore struct {
	c     *Client
	name  string
	limit int
	opts  []LockOption
}

// Semaphore returns the semaphore called name, admitting limit holders at a
// time. Holds use opts ([LockTTL]). Nothing is sent to etcd until a hold is
// taken; a limit under one, or errors in name or opts, are reported then.
func (c *Client) Semaphore(name string, limit int, opts ...LockOption) *Semaphore {
	return &Semaphore{c: c, name: name, limit: limit, opts: opts}
}

// Acquire takes a hold, waiting until fewer than the limit of holders were
// admitted before it. Its errors are those of [Client.Lock], and
// [ErrInvalidArgument] for a limit under one.
func (sem *Semaphore) Acquire(ctx context.Context) (*Lock, error) {
	return sem.c.observeHold(ctx, OpLock, sem.name, func(ctx context.Context) (*Lock, error) {
		return sem.take(ctx, "acquire", false)
	})
}

// TryAcquire takes a hold if one is free, and fails at once with [ErrLocked]
// otherwise, leaving no key behind.
func (sem *Semaphore) TryAcquire(ctx context.Context) (*Lock, error) {
	return sem.c.observeHold(ctx, OpLock, sem.name, func(ctx context.Context) (*Lock, error) {
		return sem.take(ctx, "try acquire", true)
	})
}

func (sem *Semaphore) take(ctx context.Context, op string, try bool) (*Lock, error) {
	if sem.limit < 1 {
		return nil, &opError{op: op, key: sem.name, err: fmt.Errorf("%w: semaphore limit %d is under one", ErrInvalidArgument, sem.limit)}
	}
	prefix := sem.name + "/"
	q := queueSpec{
		op: op, name: sem.name,
		key:    uniqueKey(prefix),
		checks: []clientv3.Op{clientv3.OpGet(prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())},
	}
	l, resp, err := sem.c.enqueue(ctx, sem.opts, q)
	if err != nil {
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
