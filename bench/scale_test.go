package bench_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/stretchr/testify/require"

	"github.com/etcdkit/etcdkit"
)

// The scaling series run one operation at growing sizes, named
// BenchmarkScaleX/keys=1k|10k|100k|1M/…/impl=raw|etcdkit, so that
// benchstat -col /impl compares the two at each size and the rows show how
// the cost grows. The largest sizes fill the server with a million keys and
// take minutes; they run only with ETCDKIT_BENCH_LARGE=1.

// largeEnv opts in to the largest sizes of the scaling series.
const largeEnv = "ETCDKIT_BENCH_LARGE"

// withLarge returns sizes, and large too when largeEnv is set.
func withLarge(sizes []int, large ...int) []int {
	if os.Getenv(largeEnv) == "1" {
		return append(sizes, large...)
	}
	return sizes
}

// sizeName spells n as the sub-benchmark names do: 1k, 10k, 1M.
func sizeName(n int) string {
	switch {
	case n >= 1_000_000 && n%1_000_000 == 0:
		return strconv.Itoa(n/1_000_000) + "M"
	case n >= 1_000 && n%1_000 == 0:
		return strconv.Itoa(n/1_000) + "k"
	}
	return strconv.Itoa(n)
}

// stores holds the prefixes filled so far, by their number of keys: each
// size is filled once per process, and the series share them, so that the
// server holds about 1.11 times the largest size a series has reached.
var stores = struct {
	sync.Mutex
	m map[int]string
}{m: map[int]string{}}

// filledPrefix returns a prefix holding n keys keyName(0..n-1), each with
// the 78 bytes of sampleBytes, filling it with PutMany on first use.
func filledPrefix(b *testing.B, n int) string {
	b.Helper()
	stores.Lock()
	defer stores.Unlock()
	if p, ok := stores.m[n]; ok {
		return p
	}
	c, _ := clients(b)
	p := newPrefix("scale-" + sizeName(n))
	kv := etcdkit.NewKV(c, p, etcdkit.Bytes())
	put, err := kv.PutMany(context.Background(), func(yield func(string, []byte) bool) {
		for i := range n {
			if !yield(keyName(i), sampleBytes) {
				return
			}
		}
	})
	require.NoError(b, err)
	require.Equal(b, n, put)
	stores.m[n] = p
	return p
}

// dataBytes is what n keys of filledPrefix(p, n) hold: keys as etcd stores
// them (prefix included) and values.
func dataBytes(prefix string, n int) int {
	total := 0
	for i := range n {
		total += len(prefix) + len(keyName(i)) + len(sampleBytes)
	}
	return total
}

// BenchmarkScaleKV runs Get and Put of one key, chosen at random among n,
// with 1 caller, while the store grows: a prefix of n keys, the smaller
// prefixes beside it. A Put overwrites an existing key, so the timing does
// not grow the store.
func BenchmarkScaleKV(b *testing.B) {
	c, rc := clients(b)
	ctx := context.Background()
	for _, n := range withLarge([]int{1_000, 10_000, 100_000}, 1_000_000) {
		b.Run("keys="+sizeName(n), func(b *testing.B) {
			prefix := filledPrefix(b, n)
			kv := etcdkit.NewKV(c, prefix, etcdkit.Bytes())
			rnd := rand.New(rand.NewPCG(uint64(n), 1))
			pick := func() string { return keyName(rnd.IntN(n)) }
			b.Run("op=get", func(b *testing.B) {
				pair(b, func() error {
					resp, err := rc.Get(ctx, prefix+pick())
					if err == nil && len(resp.Kvs) == 0 {
						return errNoValue
					}
					return err
				}, func() error {
					_, err := kv.Get(ctx, pick())
					return err
				})
			})
			val := string(sampleBytes)
			b.Run("op=put", func(b *testing.B) {
				pair(b, func() error {
					_, err := rc.Put(ctx, prefix+pick(), val)
					return err
				}, func() error {
					_, err := kv.Put(ctx, pick(), sampleBytes)
					return err
				})
			})
		})
	}
}

// pair runs rawOp and kitOp with one caller as impl=raw and impl=etcdkit,
// taking turns at running first.
func pair(b *testing.B, rawOp, kitOp func() error) {
	ops := []struct {
		name string
		op   func() error
	}{{"raw", rawOp}, {"etcdkit", kitOp}}
	if rawSecond(b.Name()) {
		ops[0], ops[1] = ops[1], ops[0]
	}
	for _, x := range ops {
		b.Run("impl="+x.name, func(b *testing.B) {
			runCallers(b, 1, func(int) (func() error, error) { return x.op, nil })
		})
	}
}

// scalePage is the page size of the raw paged reads: List's largest page.
const scalePage = 10_000

// rawPages reads every key under prefix in pages of scalePage at one
// revision, as a raw client that pages by hand does, and calls fn with each.
func rawPages(ctx context.Context, rc *clientv3.Client, prefix string, fn func(*clientv3.GetResponse)) (int64, error) {
	start, end, rev := prefix, clientv3.GetPrefixRangeEnd(prefix), int64(0)
	for {
		resp, err := rc.Get(ctx, start, clientv3.WithRange(end), clientv3.WithLimit(scalePage), clientv3.WithRev(rev))
		if err != nil {
			return 0, err
		}
		rev = resp.Header.Revision
		fn(resp)
		if !resp.More || len(resp.Kvs) == 0 {
			return rev, nil
		}
		start = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
}

// BenchmarkScaleList reads n keys: KV.List with its default paging
// (impl=etcdkit), raw requests of scalePage keys at one revision
// (impl=raw-paged), and one raw RangeStream request (impl=raw-stream).
// None keeps what it read; B/op is what the reading allocates.
func BenchmarkScaleList(b *testing.B) {
	c, rc := clients(b)
	ctx := context.Background()
	for _, n := range withLarge([]int{10_000, 100_000}, 1_000_000) {
		b.Run("keys="+sizeName(n), func(b *testing.B) {
			prefix := filledPrefix(b, n)
			kv := etcdkit.NewKV(c, prefix, etcdkit.Bytes())
			check := func(got int) error {
				if got != n {
					return fmt.Errorf("read %d keys, want %d", got, n)
				}
				return nil
			}
			listImpls(b, func() error {
				got := 0
				_, err := rawPages(ctx, rc, prefix, func(resp *clientv3.GetResponse) { got += len(resp.Kvs) })
				if err != nil {
					return err
				}
				return check(got)
			}, func() error {
				got, err := rawStream(ctx, rc, prefix)
				if err != nil {
					return err
				}
				return check(got)
			}, func() error {
				got := 0
				for _, err := range kv.List(ctx) {
					if err != nil {
						return err
					}
					got++
				}
				return check(got)
			})
		})
	}
}

// listImpls runs the three ways to read a prefix as impl=raw-paged,
// impl=raw-stream and impl=etcdkit, taking turns at running first.
func listImpls(b *testing.B, paged, stream, kit func() error) {
	ops := []struct {
		name string
		op   func() error
	}{{"raw-paged", paged}, {"raw-stream", stream}, {"etcdkit", kit}}
	if rawSecond(b.Name()) {
		slices.Reverse(ops)
	}
	for _, x := range ops {
		b.Run("impl="+x.name, func(b *testing.B) {
			runCallers(b, 1, func(int) (func() error, error) { return x.op, nil })
		})
	}
}

// rawStream reads every key under prefix with one RangeStream request
// (etcd 3.7): the server sends the range in chunks it sizes itself and,
// without a limit, never counts the keys left, as every limited Range does.
func rawStream(ctx context.Context, rc *clientv3.Client, prefix string) (int, error) {
	ch, err := rc.GetStream(ctx, prefix, clientv3.WithPrefix())
	if err != nil {
		return 0, err
	}
	got := 0
	for resp := range ch {
		if err := resp.Err(); err != nil {
			return 0, err
		}
		got += len(resp.Kvs)
	}
	return got, nil
}

// BenchmarkScaleMirror starts a copy of n keys in memory: KV.Mirror
// (impl=etcdkit, its start-up: the listing and the watch), and a map of
// key to value built from raw pages of scalePage keys (impl=raw-paged). It
// reports the heap each holds once started (heap-B/key, and heap/data: the
// heap over the bytes of the keys and values).
func BenchmarkScaleMirror(b *testing.B) {
	c, rc := clients(b)
	ctx := context.Background()
	for _, n := range withLarge([]int{10_000, 100_000}, 1_000_000) {
		b.Run("keys="+sizeName(n), func(b *testing.B) {
			prefix := filledPrefix(b, n)
			kv := etcdkit.NewKV(c, prefix, etcdkit.Bytes())
			data := dataBytes(prefix, n)
			rawStart := func() (func(), error) {
				m := make(map[string][]byte)
				_, err := rawPages(ctx, rc, prefix, func(resp *clientv3.GetResponse) {
					for _, p := range resp.Kvs {
						m[string(p.Key)] = p.Value
					}
				})
				if err == nil && len(m) != n {
					err = fmt.Errorf("copied %d keys, want %d", len(m), n)
				}
				return func() { runtime.KeepAlive(m) }, err
			}
			kitStart := func() (func(), error) {
				m, err := kv.Mirror(ctx)
				if err != nil {
					return nil, err
				}
				if m.Len() != n {
					m.Close()
					return nil, fmt.Errorf("mirrored %d keys, want %d", m.Len(), n)
				}
				return m.Close, nil
			}
			starts := []struct {
				name  string
				start func() (func(), error)
			}{{"raw-paged", rawStart}, {"etcdkit", kitStart}}
			if rawSecond(b.Name()) {
				starts[0], starts[1] = starts[1], starts[0]
			}
			for _, x := range starts {
				b.Run("impl="+x.name, func(b *testing.B) { runStarts(b, n, data, x.start) })
			}
		})
	}
}

// runStarts times start b.N times and reports the heap what it started
// holds, measured outside the timing after a GC before and after.
func runStarts(b *testing.B, n, data int, start func() (stop func(), err error)) {
	b.ReportAllocs()
	var held uint64
	var ms runtime.MemStats
	for range b.N {
		b.StopTimer()
		settleHeap()
		runtime.ReadMemStats(&ms)
		before := ms.HeapAlloc
		b.StartTimer()
		stop, err := start()
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		settleHeap()
		runtime.ReadMemStats(&ms)
		held += ms.HeapAlloc - min(before, ms.HeapAlloc)
		stop()
		b.StartTimer()
	}
	perKey := float64(held) / float64(b.N) / float64(n)
	b.ReportMetric(perKey, "heap-B/key")
	b.ReportMetric(perKey*float64(n)/float64(data), "heap/data")
}

// settleHeap collects garbage twice: the buffers gRPC returns to its
// sync.Pools survive one collection in the pools' victim caches, so after
// one the heap still counts the last response's buffers, as much as 230
// bytes a key at 10k keys when the start-up allocates too little to
// trigger a collection of its own after its last page.
func settleHeap() {
	runtime.GC()
	runtime.GC()
}
