package bench_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/stretchr/testify/require"

	"github.com/etcdkit/etcdkit"
)

// BenchmarkScaleFollow follows n keys of one prefix: with one KV.Follow per
// key (impl=etcdkit), one raw clientv3 Watch per key (impl=raw), and one
// KV.Mirror of the prefix (impl=mirror), the shared watch. An op is one
// delivery: a Put of one of the keys, chosen at random, until the handle
// following it has applied it. Each reports, per key followed, the watch
// create requests the client sent (watches/key: each is a watcher on the
// server), the watch streams it opened, the heap held and the goroutines
// running and their stacks (stack-B/key: the runtime's stack memory, which
// heap-B/key leaves out); all measured once the handles have started.
func BenchmarkScaleFollow(b *testing.B) {
	for _, n := range []int{10, 100, 1_000} {
		b.Run("keys="+sizeName(n), func(b *testing.B) {
			kc, kcount, rc, rcount := countedClients(b)
			prefix := newPrefix("scale-follow")
			kv := etcdkit.NewKV(kc, prefix, etcdkit.Bytes())
			ctx := context.Background()
			put, err := kv.PutMany(ctx, func(yield func(string, []byte) bool) {
				for i := range n {
					if !yield(keyName(i), []byte("start")) {
						return
					}
				}
			})
			require.NoError(b, err)
			require.Equal(b, n, put)
			impls := []followImpl{
				{"raw", rcount, n, func(seen chan<- string) (func(), error) { return rawFollow(ctx, rc, prefix, n, seen) }},
				{"etcdkit", kcount, n, func(seen chan<- string) (func(), error) { return kitFollow(ctx, kv, n, seen) }},
				{"mirror", kcount, 1, func(seen chan<- string) (func(), error) { return kitMirror(ctx, kv, seen) }},
			}
			if rawSecond(b.Name()) {
				impls[0], impls[1] = impls[1], impls[0]
			}
			for _, x := range impls {
				b.Run("impl="+x.name, func(b *testing.B) { runFollow(b, kv, n, x) })
			}
		})
	}
}

// followImpl starts following n keys; each handle sends every value it
// applies to seen.
type followImpl struct {
	name    string
	count   *rpcCounter
	watches int // the watch create requests it sends for n keys
	start   func(seen chan<- string) (stop func(), err error)
}

// putSeq makes every value a delivery benchmark writes new.
var putSeq atomic.Int64

func runFollow(b *testing.B, kv *etcdkit.KV[[]byte], n int, x followImpl) {
	ctx := context.Background()
	seen := make(chan string, 1024)
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	heap, stack, goroutines, before := ms.HeapAlloc, ms.StackInuse, runtime.NumGoroutine(), x.count.read()
	stop, err := x.start(seen)
	require.NoError(b, err)
	defer stop()
	// A handle may create its watch after it returns: wait for them all,
	// so that the heap and the counts include every watch.
	for deadline := time.Now().Add(5 * time.Second); x.count.read().minus(before).watchCreates < int64(x.watches); {
		if time.Now().After(deadline) {
			b.Fatalf("%d watches created, want %d", x.count.read().minus(before).watchCreates, x.watches)
		}
		time.Sleep(10 * time.Millisecond)
	}
	runtime.GC()
	runtime.ReadMemStats(&ms)
	d := x.count.read().minus(before)
	heldHeap, heldGoroutines := float64(ms.HeapAlloc)-float64(heap), runtime.NumGoroutine()-goroutines
	heldStack := float64(ms.StackInuse) - float64(stack)
	rnd := rand.New(rand.NewPCG(uint64(n), 2))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		val := "v" + strconv.FormatInt(putSeq.Add(1), 10)
		if _, err := kv.Put(ctx, keyName(rnd.IntN(n)), []byte(val)); err != nil {
			b.Fatal(err)
		}
		if err := awaitValue(seen, val); err != nil {
			b.Fatal(err)
		}
	}
	// After the timing: ResetTimer deletes metrics reported before it.
	perKey := func(v float64) float64 { return v / float64(n) }
	b.ReportMetric(perKey(heldHeap), "heap-B/key")
	b.ReportMetric(perKey(heldStack), "stack-B/key")
	b.ReportMetric(perKey(float64(heldGoroutines)), "goroutines/key")
	b.ReportMetric(perKey(float64(d.watchCreates)), "watches/key")
	b.ReportMetric(float64(d.streams), "streams")
}

// awaitValue waits until val comes out of seen, dropping what comes before.
func awaitValue(seen <-chan string, val string) error {
	t := time.NewTimer(10 * time.Second)
	defer t.Stop()
	for {
		select {
		case v := <-seen:
			if v == val {
				return nil
			}
		case <-t.C:
			return fmt.Errorf("value %s not delivered in 10s", val)
		}
	}
}

// kitFollow follows each key with KV.Follow.
func kitFollow(ctx context.Context, kv *etcdkit.KV[[]byte], n int, seen chan<- string) (func(), error) {
	lives := make([]*etcdkit.Live[[]byte], 0, n)
	stop := func() {
		for _, l := range lives {
			l.Close()
		}
	}
	onChange := etcdkit.OnChange(func(_, v []byte) { seen <- string(v) })
	for i := range n {
		l, err := kv.Follow(ctx, keyName(i), onChange)
		if err != nil {
			stop()
			return nil, err
		}
		lives = append(lives, l)
	}
	return stop, nil
}

// kitMirror follows the prefix with one KV.Mirror.
func kitMirror(ctx context.Context, kv *etcdkit.KV[[]byte], seen chan<- string) (func(), error) {
	m, err := kv.Mirror(ctx, etcdkit.OnEntryChange(func(_ string, _, e *etcdkit.Entry[[]byte]) {
		if e != nil {
			seen <- string(e.Value)
		}
	}))
	if err != nil {
		return nil, err
	}
	return m.Close, nil
}

// rawFollow follows each key as a hand-written Follow would with clientv3:
// a Get, then a Watch from the next revision, and a goroutine keeping the
// latest value.
func rawFollow(ctx context.Context, rc *clientv3.Client, prefix string, n int, seen chan<- string) (func(), error) {
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{}, n)
	started := 0
	stop := func() {
		cancel()
		for range started {
			<-done
		}
	}
	for i := range n {
		key := prefix + keyName(i)
		resp, err := rc.Get(wctx, key)
		if err != nil {
			stop()
			return nil, err
		}
		var cur atomic.Pointer[[]byte]
		if len(resp.Kvs) > 0 {
			cur.Store(&resp.Kvs[0].Value)
		}
		wch := rc.Watch(wctx, key, clientv3.WithRev(resp.Header.Revision+1))
		started++
		go func() {
			defer func() { done <- struct{}{} }()
			for wr := range wch {
				for _, ev := range wr.Events {
					cur.Store(&ev.Kv.Value)
					seen <- string(ev.Kv.Value)
				}
			}
		}()
	}
	return stop, nil
}
