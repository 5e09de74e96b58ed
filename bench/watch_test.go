package bench_test

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/stretchr/testify/require"

	"github.com/etcdkit/etcdkit"
)

// BenchmarkWatchDelivery writes 1,000 changes (ten transactions of 100
// puts) to a watched prefix and waits until the watch has delivered and
// decoded them all, through a Watcher and through a raw clientv3 watch; an
// op is one round of 1,000 events.
func BenchmarkWatchDelivery(b *testing.B) {
	byCodec(b, benchWatch[[]byte], benchWatch[user])
}

func benchWatch[T any](b *testing.B, cc codecCase[T]) {
	const txns, perTxn = 10, 100
	c, rc := clients(b)
	ctx := context.Background()
	kv := etcdkit.NewKV(c, newPrefix("watch"), cc.codec)
	data, err := cc.encode(cc.val)
	require.NoError(b, err)
	write := func() (int64, error) {
		var rev int64
		for t := range txns {
			ops := make([]clientv3.Op, perTxn)
			for i := range ops {
				ops[i] = clientv3.OpPut(fmt.Sprintf("%sk%02d-%03d", kv.Prefix(), t, i), string(data))
			}
			resp, err := rc.Txn(ctx).Then(ops...).Commit()
			if err != nil {
				return 0, err
			}
			rev = resp.Header.Revision
		}
		return rev, nil
	}
	lastKey := fmt.Sprintf("k%02d-%03d", txns-1, perTxn-1)
	events := func(b *testing.B) { b.ReportMetric(float64(txns*perTxn*b.N)/b.Elapsed().Seconds(), "events/s") }
	b.Run("callers=1", func(b *testing.B) {
		b.Run("impl=raw", func(b *testing.B) {
			wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
			defer cancel()
			wch := rc.Watch(wctx, kv.Prefix(), clientv3.WithPrefix())
			full := kv.Prefix() + lastKey
			runCallers(b, 1, func(int) (func() error, error) {
				return func() error {
					last, err := write()
					if err != nil {
						return err
					}
					for resp := range wch {
						if err := resp.Err(); err != nil {
							return err
						}
						for _, ev := range resp.Events {
							if _, err := cc.decode(ev.Kv.Value); err != nil {
								return err
							}
							if ev.Kv.ModRevision == last && string(ev.Kv.Key) == full {
								return nil
							}
						}
					}
					return fmt.Errorf("watch ended")
				}, nil
			})
			events(b)
		})
		b.Run("impl=etcdkit", func(b *testing.B) {
			w := kv.Watch(ctx)
			defer w.Close()
			runCallers(b, 1, func(int) (func() error, error) {
				return func() error {
					last, err := write()
					if err != nil {
						return err
					}
					for e := range w.Events() {
						if e.Entry.ModRevision == last && e.Entry.Key == lastKey {
							return nil
						}
					}
					return fmt.Errorf("watch ended: %v", w.Err())
				}, nil
			})
			events(b)
		})
	})
}

// BenchmarkRead compares the reads that serve from memory, Mirror.Get
// (impl=mirror) and Live.Load (impl=live), with the linearizable Get they
// replace (impl=raw, decoded by hand).
func BenchmarkRead(b *testing.B) { byCodec(b, benchRead[[]byte], benchRead[user]) }

func benchRead[T any](b *testing.B, cc codecCase[T]) {
	c, rc := clients(b)
	ctx := context.Background()
	kv := etcdkit.NewKV(c, newPrefix("read"), cc.codec)
	data, err := cc.encode(cc.val)
	require.NoError(b, err)
	require.NoError(b, putRaw(ctx, rc, kv.Prefix(), 100, data))
	m, err := kv.Mirror(ctx)
	require.NoError(b, err)
	defer m.Close()
	key := keyName(42)
	live, err := kv.Follow(ctx, key)
	require.NoError(b, err)
	defer live.Close()
	full := kv.Prefix() + key
	for _, n := range callerCounts {
		b.Run(fmt.Sprintf("callers=%d", n), func(b *testing.B) {
			b.Run("impl=raw", func(b *testing.B) {
				runCallers(b, n, func(int) (func() error, error) {
					return func() error {
						resp, err := rc.Get(ctx, full)
						if err != nil {
							return err
						}
						if len(resp.Kvs) == 0 {
							return errNoValue
						}
						_, err = cc.decode(resp.Kvs[0].Value)
						return err
					}, nil
				})
			})
			b.Run("impl=mirror", func(b *testing.B) {
				runCallers(b, n, func(int) (func() error, error) {
					return func() error {
						if e, ok := m.Get(key); !ok || !cc.ok(e.Value) {
							return errNoValue
						}
						return nil
					}, nil
				})
			})
			b.Run("impl=live", func(b *testing.B) {
				runCallers(b, n, func(int) (func() error, error) {
					return func() error {
						if !cc.ok(live.Load()) {
							return errNoValue
						}
						return nil
					}, nil
				})
			})
		})
	}
}

// mirrorKeys is how many keys BenchmarkMirrorMemory mirrors.
const mirrorKeys = 100_000

// mirrorData caches the 100,000 keys per value size: writing them takes
// longer than mirroring them.
var mirrorData sync.Map // value size -> prefix

// BenchmarkMirrorMemory mirrors 100,000 keys and reports the heap the
// Mirror holds (heap-B/key) against the bytes of the keys and values
// in etcd (data-B/key) and their quotient (heap/data). Keys are counted
// whole (prefix included), as etcd stores them. Values are JSON-like bytes
// of the size in the name.
func BenchmarkMirrorMemory(b *testing.B) {
	for _, size := range []int{64, 256, 1024} {
		b.Run(fmt.Sprintf("value=%dB/callers=1/impl=etcdkit", size), func(b *testing.B) { benchMirrorMemory(b, size) })
	}
}

func benchMirrorMemory(b *testing.B, size int) {
	c, rc := clients(b)
	ctx := context.Background()
	val := make([]byte, size)
	for i := range val {
		val[i] = 'a' + byte(i%26)
	}
	p, ok := mirrorData.Load(size)
	if !ok {
		p = newPrefix(fmt.Sprintf("mirror%d", size))
		require.NoError(b, putRaw(ctx, rc, p.(string), mirrorKeys, val))
		mirrorData.Store(size, p)
	}
	prefix := p.(string)
	kv := etcdkit.NewKV(c, prefix, etcdkit.Bytes())
	data := float64(mirrorKeys * (len(prefix) + len(keyName(0)) + size))
	var heap float64
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		before := heapInUse()
		m, err := kv.Mirror(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if m.Len() != mirrorKeys {
			b.Fatalf("mirror has %d keys, want %d", m.Len(), mirrorKeys)
		}
		heap += float64(heapInUse() - before)
		runtime.KeepAlive(m)
		m.Close()
	}
	heap /= float64(b.N)
	b.ReportMetric(heap/mirrorKeys, "heap-B/key")
	b.ReportMetric(data/mirrorKeys, "data-B/key")
	b.ReportMetric(heap/data, "heap/data")
}

// heapInUse returns the bytes of live heap objects after a full collection.
func heapInUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}
