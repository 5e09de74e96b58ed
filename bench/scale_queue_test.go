package bench_test

import (
	"context"
	"fmt"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/stretchr/testify/require"

	"github.com/etcdkit/etcdkit"
)

// BenchmarkScaleQueue times Queue.Enqueue and Queue.TryDequeue on a queue
// holding n items, and the same with raw clientv3 the way etcd's own queue
// recipe does it (impl=raw): a put of a new key named by the time in a
// transaction that checks it is new, and a read of the first key then a
// delete of it if it did not change. Each timed op is paired with an
// untimed one that keeps the queue at n items: a dequeue after each
// enqueue, an enqueue after each dequeue. Before each run the store is
// compacted, so that the items dequeued by earlier runs are gone from the
// server's index too (see BENCHMARKS.md for what they cost until then).
func BenchmarkScaleQueue(b *testing.B) {
	c, rc := clients(b)
	ctx := context.Background()
	for _, n := range []int{1_000, 10_000, 100_000} {
		b.Run("items="+sizeName(n), func(b *testing.B) {
			prefix := newPrefix("scale-queue")
			q, err := etcdkit.NewQueue(c, prefix, etcdkit.Bytes())
			require.NoError(b, err)
			require.NoError(b, fillQueue(ctx, c, prefix, n))
			rawPrefix := newPrefix("scale-rawqueue")
			require.NoError(b, fillRawQueue(ctx, c, rawPrefix, n))
			kitEnq := func() (string, error) { return q.Enqueue(ctx, sampleBytes) }
			kitDeq := func() error {
				it, err := q.TryDequeue(ctx)
				if err == nil && len(it.Value) == 0 {
					return errNoValue
				}
				return err
			}
			rawEnq := func() (string, error) { return rawEnqueue(ctx, rc, rawPrefix) }
			rawDeq := func() error { return rawDequeue(ctx, rc, rawPrefix) }
			kitUndo := func(key string) error {
				_, err := rc.Delete(ctx, prefix+key)
				return err
			}
			rawUndo := func(key string) error {
				_, err := rc.Delete(ctx, key)
				return err
			}
			b.Run("op=enqueue", func(b *testing.B) {
				queuePair(b, rc, func(b *testing.B) { timedEnqueue(b, rawEnq, rawUndo) }, func(b *testing.B) { timedEnqueue(b, kitEnq, kitUndo) })
			})
			b.Run("op=dequeue", func(b *testing.B) {
				queuePair(b, rc, func(b *testing.B) { timedDequeue(b, rawDeq, rawEnq) }, func(b *testing.B) { timedDequeue(b, kitDeq, kitEnq) })
			})
		})
	}
}

// queuePair runs the two as impl=raw and impl=etcdkit, taking turns at
// running first, each after a compaction of the store.
func queuePair(b *testing.B, rc *clientv3.Client, rawRun, kitRun func(*testing.B)) {
	runs := []struct {
		name string
		run  func(*testing.B)
	}{{"raw", rawRun}, {"etcdkit", kitRun}}
	if rawSecond(b.Name()) {
		runs[0], runs[1] = runs[1], runs[0]
	}
	for _, x := range runs {
		b.Run("impl="+x.name, func(b *testing.B) {
			require.NoError(b, compactAll(context.Background(), rc))
			b.ReportAllocs()
			b.ResetTimer()
			x.run(b)
		})
	}
}

// compactAll compacts the store at its current revision.
func compactAll(ctx context.Context, rc *clientv3.Client) error {
	resp, err := rc.Get(ctx, "compact-probe")
	if err != nil {
		return err
	}
	_, err = rc.Compact(ctx, resp.Header.Revision, clientv3.WithCompactPhysical())
	return err
}

// timedEnqueue times enqueue, and deletes what it added outside the timing.
func timedEnqueue(b *testing.B, enqueue func() (string, error), undo func(string) error) {
	for range b.N {
		key, err := enqueue()
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if err := undo(key); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}

// timedDequeue times dequeue, and enqueues an item outside the timing.
func timedDequeue(b *testing.B, dequeue func() error, enqueue func() (string, error)) {
	for range b.N {
		if err := dequeue(); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if _, err := enqueue(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}

// fillQueue writes n items the way Queue.Enqueue lays them out: under
// items/, named by 20-digit sequence numbers, and the sequence's counter.
func fillQueue(ctx context.Context, c *etcdkit.Client, prefix string, n int) error {
	kv := etcdkit.NewKV(c, prefix, etcdkit.Bytes())
	if _, err := kv.PutMany(ctx, func(yield func(string, []byte) bool) {
		for i := 1; i <= n; i++ {
			if !yield(fmt.Sprintf("items/%020d", i), sampleBytes) {
				return
			}
		}
	}); err != nil {
		return err
	}
	_, err := kv.Put(ctx, "seq/", fmt.Appendf(nil, "%020d", n))
	return err
}

// fillRawQueue writes n items as rawEnqueue names them.
func fillRawQueue(ctx context.Context, c *etcdkit.Client, prefix string, n int) error {
	kv := etcdkit.NewKV(c, prefix, etcdkit.Bytes())
	base := time.Now().UnixNano()
	_, err := kv.PutMany(ctx, func(yield func(string, []byte) bool) {
		for i := range n {
			if !yield(strconv.FormatInt(base+int64(i), 10), sampleBytes) {
				return
			}
		}
	})
	return err
}

// rawSeq keeps the raw queue's keys new when two share a nanosecond.
var rawSeq atomic.Int64

// rawEnqueue adds an item as etcd's queue recipe does: a key named by the
// time, put only if it is new.
func rawEnqueue(ctx context.Context, rc *clientv3.Client, prefix string) (string, error) {
	for {
		key := prefix + strconv.FormatInt(time.Now().UnixNano()+rawSeq.Add(1), 10)
		resp, err := rc.Txn(ctx).
			If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
			Then(clientv3.OpPut(key, string(sampleBytes))).
			Commit()
		if err != nil || resp.Succeeded {
			return key, err
		}
	}
}

// rawDequeue takes the first item as etcd's queue recipe does: read the
// first key, delete it if it has not changed.
func rawDequeue(ctx context.Context, rc *clientv3.Client, prefix string) error {
	for {
		resp, err := rc.Get(ctx, prefix, append(clientv3.WithFirstKey(), clientv3.WithPrefix())...)
		if err != nil {
			return err
		}
		if len(resp.Kvs) == 0 {
			return errNoValue
		}
		first := resp.Kvs[0]
		del, err := rc.Txn(ctx).
			If(clientv3.Compare(clientv3.ModRevision(string(first.Key)), "=", first.ModRevision)).
			Then(clientv3.OpDelete(string(first.Key))).
			Commit()
		if err != nil || del.Succeeded {
			return err
		}
	}
}
