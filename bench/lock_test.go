package bench_test

import (
	"context"
	"strconv"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/stretchr/testify/require"
)

// The lock benchmarks take and release a lock, and win and give up an
// election, through etcdkit and through clientv3's concurrency package.
// Every caller uses its own name, so that callers do not wait for one
// another; both sides share one session (lease) among all callers, made
// before the timing starts.

func BenchmarkLockUnlock(b *testing.B) {
	c, rc := clients(b)
	ctx := context.Background()
	prefix := newPrefix("lock")
	sess, err := concurrency.NewSession(rc, concurrency.WithTTL(30))
	require.NoError(b, err)
	defer sess.Close()
	// Make the client's shared session before the timing starts.
	l, err := c.Lock(ctx, prefix+"warm")
	require.NoError(b, err)
	require.NoError(b, l.Unlock(ctx))
	compare(b, func(w int) (func() error, error) {
		name := prefix + "raw" + strconv.Itoa(w)
		return func() error {
			m := concurrency.NewMutex(sess, name)
			if err := m.Lock(ctx); err != nil {
				return err
			}
			return m.Unlock(ctx)
		}, nil
	}, func(w int) (func() error, error) {
		name := prefix + "kit" + strconv.Itoa(w)
		return func() error {
			l, err := c.Lock(ctx, name)
			if err != nil {
				return err
			}
			return l.Unlock(ctx)
		}, nil
	}, namedWorker{name: "raw-guarded", w: func(w int) (func() error, error) {
		// concurrency.Mutex's Unlock deletes the key unconditionally;
		// etcdkit's deletes it only if it is still the lock's. This is that
		// same safety in raw clientv3, to tell its cost from etcdkit's own.
		name := prefix + "guarded" + strconv.Itoa(w)
		return func() error {
			m := concurrency.NewMutex(sess, name)
			if err := m.Lock(ctx); err != nil {
				return err
			}
			_, err := rc.Txn(ctx).If(m.IsOwner()).Then(clientv3.OpDelete(m.Key())).Commit()
			return err
		}, nil
	}})
}

func BenchmarkCampaignResign(b *testing.B) {
	c, rc := clients(b)
	ctx := context.Background()
	prefix := newPrefix("election")
	sess, err := concurrency.NewSession(rc, concurrency.WithTTL(30))
	require.NoError(b, err)
	defer sess.Close()
	ld, err := c.Campaign(ctx, prefix+"warm", "v")
	require.NoError(b, err)
	require.NoError(b, ld.Resign(ctx))
	compare(b, func(w int) (func() error, error) {
		name := prefix + "raw" + strconv.Itoa(w)
		return func() error {
			e := concurrency.NewElection(sess, name)
			if err := e.Campaign(ctx, "v"); err != nil {
				return err
			}
			return e.Resign(ctx)
		}, nil
	}, func(w int) (func() error, error) {
		name := prefix + "kit" + strconv.Itoa(w)
		return func() error {
			ld, err := c.Campaign(ctx, name, "v")
			if err != nil {
				return err
			}
			return ld.Resign(ctx)
		}, nil
	})
}
