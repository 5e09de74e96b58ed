package etcdkit

import (
	"context"
	"strconv"
	"sync/atomic"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// RWMutex is a distributed reader/writer lock: any number of readers hold it
// together, a writer holds it alone. Holders queue in the order they asked,
// so a waiting writer is not starved by readers who come after it. Make one
// with [Client.RWMutex]; it is a light value, safe for concurrent use, and
// every call takes a new hold returned as a [Lock].
//
// A reader's key lives under name + "\x00rwmutex/read/", a writer's under
// name + "\x00rwmutex/write/", ordered by create revision. The NUL byte
// keeps them apart from the keys of a [Lock], an election or a [Semaphore]
// of any name, and from those of another RWMutex whose name starts with
// this one's (names may not contain it).
type RWMutex struct {
	c    *Client
	name string
	opts []LockOption
}

// RWMutex returns the reader/writer lock called name. Holds of it use opts
// ([LockTTL]). Nothing is sent to etcd until a lock is taken. Its arguments
// are checked here, not on each later call: it fails with [ErrEmptyKey] for
// an empty name, [ErrInvalidArgument] for a name with a NUL byte, and
// [ErrInvalidTTL] for a [LockTTL] under one second.
func (c *Client) RWMutex(name string, opts ...LockOption) (*RWMutex, error) {
	if err := checkLockArgs("new rwmutex", name, opts); err != nil {
		return nil, err
	}
	return &RWMutex{c: c, name: name, opts: opts}, nil
}

// checkLockArgs checks a name and lock options for a constructor.
func checkLockArgs(op, name string, opts []LockOption) error {
	if err := checkName(op, name); err != nil {
		return err
	}
	_, err := lockTTL(op, name, opts)
	return err
}

// RLock takes a read hold, waiting while a writer holds the lock or waits
// for it with an earlier place in the queue. Release it with [Lock.Unlock].
// Its [Lock.Fence] is not exclusive (other read holds are held at the same
// time): see [Lock.Fence] for what it is good for.
// Its errors are those of [Client.Lock].
func (m *RWMutex) RLock(ctx context.Context) (*Lock, error) {
	return m.take(ctx, "read lock", false, false)
}

// TryRLock takes a read hold if no writer holds or awaits the lock, and
// fails at once with [ErrLocked] otherwise, leaving no key behind.
func (m *RWMutex) TryRLock(ctx context.Context) (*Lock, error) {
	return m.take(ctx, "try read lock", false, true)
}

// Lock takes the write hold, waiting until no reader or writer holds the
// lock or waits ahead of it. Release it with [Lock.Unlock]. Its errors are
// those of [Client.Lock].
func (m *RWMutex) Lock(ctx context.Context) (*Lock, error) {
	return m.take(ctx, "write lock", true, false)
}

// TryLock takes the write hold if the lock is free, and fails at once with
// [ErrLocked] otherwise, leaving no key behind.
func (m *RWMutex) TryLock(ctx context.Context) (*Lock, error) {
	return m.take(ctx, "try write lock", true, true)
}

func (m *RWMutex) take(ctx context.Context, op string, write, try bool) (*Lock, error) {
	return m.c.observeHold(ctx, OpLock, m.name, func(ctx context.Context) (*Lock, error) {
		return m.takeHold(ctx, op, write, try)
	})
}

func (m *RWMutex) takeHold(ctx context.Context, op string, write, try bool) (*Lock, error) {
	base := m.name + kindSep + "rwmutex/"
	dir, blockers := base+"read/", base+"write/"
	if write {
		dir, blockers = base+"write/", base
	}
	q := queueSpec{
		op: op, name: m.name,
		key:    uniqueKey(dir),
		checks: []clientv3.Op{clientv3.OpGet(blockers, clientv3.WithFirstCreate()...)},
	}
	l, resp, err := m.c.enqueue(ctx, m.opts, q)
	if err != nil {
		return nil, err
	}
	first := resp.Responses[1].GetResponseRange().Kvs
	if len(first) == 0 || first[0].CreateRevision >= l.fence {
		return l, nil
	}
	if try {
		l.abandon(ctx)
		return nil, &opError{op: op, key: m.name, err: ErrLocked}
	}
	if err := l.waitTurn(ctx, blockers, false, l.verifyKey); err != nil {
		l.abandon(ctx)
		return nil, err
	}
	return l, nil
}

// verifyKey checks that l's key still exists, so that a hold is never
// claimed on a key that vanished while waiting.
func (l *Lock) verifyKey(ctx context.Context) error {
	gctx, cancel := l.c.bound(ctx)
	resp, err := l.c.raw.KV.Get(gctx, l.key)
	cancel()
	if err != nil {
		return err
	}
	if len(resp.Kvs) == 0 || resp.Kvs[0].CreateRevision != l.fence {
		return l.lostErr(ErrLeaseExpired, "the key vanished while waiting")
	}
	l.rev = resp.Header.Revision
	return nil
}

// keySeq makes keys unique among the holds of one lease.
var keySeq atomic.Uint64

// uniqueKey returns a key under dir made of the lease ID and a sequence
// number, for locks that one lease may hold several times.
func uniqueKey(dir string) func(*session) string {
	return func(s *session) string {
		return dir + leaseHex(s.id) + "-" + strconv.FormatUint(keySeq.Add(1), 16)
	}
}
