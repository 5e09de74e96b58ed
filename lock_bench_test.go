package etcdkit_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/etcdkit/etcdkit"
	"github.com/etcdkit/etcdkit/etcdtest"
)

// The lock benchmarks take and release a lock through etcdkit and through
// clientv3's concurrency package on a session made beforehand, against the
// same server in the same run, so that benchstat can compare
// BenchmarkX/etcdkit with BenchmarkX/raw.

type lockBenchEnv struct {
	c      *etcdkit.Client
	raw    *clientv3.Client
	prefix string
}

// newLockBenchEnv connects both clients to a new embedded server.
func newLockBenchEnv(b *testing.B) lockBenchEnv {
	b.Helper()
	srv := etcdtest.Start(b)
	return lockBenchEnv{c: srv.Client(b), raw: srv.RawClient(b), prefix: fmt.Sprintf("bench/%d/", time.Now().UnixNano())}
}

func BenchmarkLockUnlock(b *testing.B) {
	env := newLockBenchEnv(b)
	ctx := context.Background()
	name := env.prefix + "lock"
	b.Run("etcdkit", func(b *testing.B) {
		b.ReportAllocs()
		l, err := env.c.Lock(ctx, name) // makes the session
		if err != nil {
			b.Fatal(err)
		}
		_ = l.Unlock(ctx)
		for b.Loop() {
			l, err := env.c.Lock(ctx, name)
			if err != nil {
				b.Fatal(err)
			}
			if err := l.Unlock(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("raw", func(b *testing.B) {
		b.ReportAllocs()
		sess, err := concurrency.NewSession(env.raw, concurrency.WithTTL(10))
		if err != nil {
			b.Fatal(err)
		}
		defer sess.Close()
		for b.Loop() {
			m := concurrency.NewMutex(sess, name)
			if err := m.Lock(ctx); err != nil {
				b.Fatal(err)
			}
			if err := m.Unlock(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
	// concurrency.Mutex's Unlock deletes the key unconditionally; etcdkit's
	// deletes it only if it is still the lock's, in a transaction. This is
	// the same safety in raw clientv3, to tell its cost from etcdkit's own.
	b.Run("raw-guarded", func(b *testing.B) {
		b.ReportAllocs()
		sess, err := concurrency.NewSession(env.raw, concurrency.WithTTL(10))
		if err != nil {
			b.Fatal(err)
		}
		defer sess.Close()
		for b.Loop() {
			m := concurrency.NewMutex(sess, name)
			if err := m.Lock(ctx); err != nil {
				b.Fatal(err)
			}
			if _, err := env.raw.Txn(ctx).If(m.IsOwner()).Then(clientv3.OpDelete(m.Key())).Commit(); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkCampaignResign(b *testing.B) {
	env := newLockBenchEnv(b)
	ctx := context.Background()
	name := env.prefix + "election"
	b.Run("etcdkit", func(b *testing.B) {
		b.ReportAllocs()
		ld, err := env.c.Campaign(ctx, name, "v") // makes the session
		if err != nil {
			b.Fatal(err)
		}
		_ = ld.Resign(ctx)
		for b.Loop() {
			ld, err := env.c.Campaign(ctx, name, "v")
			if err != nil {
				b.Fatal(err)
			}
			if err := ld.Resign(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("raw", func(b *testing.B) {
		b.ReportAllocs()
		sess, err := concurrency.NewSession(env.raw, concurrency.WithTTL(10))
		if err != nil {
			b.Fatal(err)
		}
		defer sess.Close()
		for b.Loop() {
			e := concurrency.NewElection(sess, name)
			if err := e.Campaign(ctx, "v"); err != nil {
				b.Fatal(err)
			}
			if err := e.Resign(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
}
