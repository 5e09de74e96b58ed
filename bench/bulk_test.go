package bench_test

import (
	"context"
	"sync"
	"syscall"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/etcdkit/etcdkit"
)

// bulkKeys is how many keys each load of BenchmarkPutMany writes.
const bulkKeys = 10_000

// BenchmarkPutMany loads bulkKeys keys, each a fresh prefix, with KV.PutMany
// (impl=etcdkit), with 32 goroutines of raw clientv3 Puts (impl=raw-32) and
// with raw Puts one after another (impl=raw-serial); keys/s compares them.
// The store grows with every load, so etcdkit runs last, on the biggest one:
// -count repeats each of the three before the next starts.
func BenchmarkPutMany(b *testing.B) {
	c, rc := clients(b)
	ctx := context.Background()
	val := string(sampleBytes)
	loads := []namedLoad{
		{"raw-32", func(prefix string) error { return rawPuts(ctx, rc, prefix, val, 32) }},
		{"raw-serial", func(prefix string) error { return rawPuts(ctx, rc, prefix, val, 1) }},
		{"etcdkit", func(prefix string) error {
			kv := etcdkit.NewKV(c, prefix, etcdkit.Bytes())
			_, err := kv.PutMany(ctx, func(yield func(string, []byte) bool) {
				for i := range bulkKeys {
					if !yield(keyName(i), sampleBytes) {
						return
					}
				}
			})
			return err
		}},
	}
	for _, x := range loads {
		b.Run("impl="+x.name, func(b *testing.B) {
			b.ReportAllocs()
			cpu := processCPU()
			for range b.N {
				if err := x.load(newPrefix("putmany")); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(bulkKeys*b.N)/b.Elapsed().Seconds(), "keys/s")
			// The client's own CPU time, which a loaded machine does not
			// inflate the way it does the wall time.
			b.ReportMetric(float64(processCPU()-cpu)/float64(bulkKeys*b.N), "cpu-ns/key")
		})
	}
}

// processCPU returns the CPU time this process has used, user and system,
// in nanoseconds: with an external server, the client's alone.
func processCPU() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

type namedLoad struct {
	name string
	load func(prefix string) error
}

// rawPuts writes bulkKeys keys with plain Puts from callers goroutines.
func rawPuts(ctx context.Context, rc *clientv3.Client, prefix, val string, callers int) error {
	var wg sync.WaitGroup
	errs := make([]error, callers)
	for w := range callers {
		wg.Go(func() {
			for i := w; i < bulkKeys; i += callers {
				if _, err := rc.Put(ctx, prefix+keyName(i), val); err != nil {
					errs[w] = err
					return
				}
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
