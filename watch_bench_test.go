package etcdkit_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/etcdkit/etcdkit"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// BenchmarkWatchDelivery writes 1,000 changes (ten transactions of 100
// puts) to a watched prefix and waits until the watch has delivered them
// all, through a Watcher and through a raw clientv3 watch; an op is one
// round of 1,000.
func BenchmarkWatchDelivery(b *testing.B) {
	const txns, perTxn = 10, 100
	cli := newClient(b)
	prefix := testPrefix(b)
	kv := etcdkit.NewKV(cli, prefix, etcdkit.String())
	raw := cli.Raw()
	ctx := context.Background()
	write := func(b *testing.B) int64 {
		var rev int64
		for t := range txns {
			ops := make([]clientv3.Op, perTxn)
			for i := range ops {
				ops[i] = clientv3.OpPut(fmt.Sprintf("%sk%02d-%03d", prefix, t, i), "some value of moderate length")
			}
			resp, err := raw.Txn(ctx).Then(ops...).Commit()
			if err != nil {
				b.Fatal(err)
			}
			rev = resp.Header.Revision
		}
		return rev
	}
	b.Run("etcdkit", func(b *testing.B) {
		b.ReportAllocs()
		w := kv.Watch(ctx)
		defer w.Close()
		lastKey := fmt.Sprintf("k%02d-%03d", txns-1, perTxn-1)
		for b.Loop() {
			last := write(b)
			for e := range w.Events() {
				if e.Entry.ModRevision == last && e.Entry.Key == lastKey {
					break
				}
			}
		}
		b.ReportMetric(float64(txns*perTxn*b.N)/b.Elapsed().Seconds(), "events/s")
	})
	b.Run("raw", func(b *testing.B) {
		b.ReportAllocs()
		wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
		defer cancel()
		wch := raw.Watch(wctx, prefix, clientv3.WithPrefix())
		lastKey := fmt.Sprintf("%sk%02d-%03d", prefix, txns-1, perTxn-1)
		for b.Loop() {
			last := write(b)
		recv:
			for resp := range wch {
				for _, ev := range resp.Events {
					_ = string(ev.Kv.Value)
					if ev.Kv.ModRevision == last && string(ev.Kv.Key) == lastKey {
						break recv
					}
				}
			}
		}
		b.ReportMetric(float64(txns*perTxn*b.N)/b.Elapsed().Seconds(), "events/s")
	})
}

// BenchmarkRead compares reads from memory (Mirror.Get, Live.Load) with a
// linearizable Get, the read they replace.
func BenchmarkRead(b *testing.B) {
	cli := newClient(b)
	kv := etcdkit.NewKV(cli, testPrefix(b), etcdkit.String())
	ctx := context.Background()
	for i := range 100 {
		if _, err := kv.Put(ctx, fmt.Sprintf("k%03d", i), "value"); err != nil {
			b.Fatal(err)
		}
	}
	m, err := kv.Mirror(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	live, err := kv.Follow(ctx, "k042")
	if err != nil {
		b.Fatal(err)
	}
	defer live.Close()

	b.Run("raw-get", func(b *testing.B) {
		b.ReportAllocs()
		raw := cli.Raw()
		for b.Loop() {
			if _, err := raw.Get(ctx, kv.Prefix()+"k042"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("mirror-get", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, ok := m.Get("k042"); !ok {
				b.Fatal("missing")
			}
		}
	})
	b.Run("live-load", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if live.Load() != "value" {
				b.Fatal("wrong value")
			}
		}
	})
	b.Run("mirror-get-parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				m.Get("k042")
			}
		})
	})
}
