package etcdkit

import (
	"fmt"
	"time"
)

// DefaultLockTTL is the lease TTL behind locks, semaphores and elections when
// no [LockTTL] is given: if the holder's process dies, others wait at most
// this long for its lock. It is refreshed every third of it while alive.
const DefaultLockTTL = 10 * time.Second

// LockOption changes how a lock, semaphore or election campaign is held.
type LockOption interface {
	applyLock(*lockOptions)
}

type lockOptions struct {
	ttl time.Duration
}

type lockOptionFunc func(*lockOptions)

func (f lockOptionFunc) applyLock(o *lockOptions) { f(o) }

// LockTTL sets the TTL of the lease (the session) behind the lock: how long
// the lock outlives a holder that stopped refreshing it, for example because
// its process died. It is rounded up to whole seconds, as etcd counts TTLs in
// seconds. Under one second, the call fails with [ErrInvalidTTL]. Locks with
// the same TTL on one client share one lease. The default is [DefaultLockTTL].
func LockTTL(d time.Duration) LockOption {
	return lockOptionFunc(func(o *lockOptions) { o.ttl = d })
}

// lockTTL applies opts and returns the TTL in whole seconds.
func lockTTL(op, name string, opts []LockOption) (int64, error) {
	o := lockOptions{ttl: DefaultLockTTL}
	for _, opt := range opts {
		if opt != nil {
			opt.applyLock(&o)
		}
	}
	if o.ttl < time.Second {
		return 0, &opError{op: op, key: name, err: fmt.Errorf("%w: %v is under one second", ErrInvalidTTL, o.ttl)}
	}
	return int64((o.ttl + time.Second - 1) / time.Second), nil
}
