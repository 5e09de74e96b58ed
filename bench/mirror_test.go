package bench_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/etcdkit/etcdkit"
)

// BenchmarkMirrorGetHandler is Mirror.Get while another client changes the
// mirrored keys, with no handler (handler=none) and with a handler that
// sleeps a second per change (handler=slow): each handler has its own
// goroutine and queue, so the two should not differ.
func BenchmarkMirrorGetHandler(b *testing.B) {
	c, _ := clients(b)
	ctx := context.Background()
	kv := etcdkit.NewKV(c, newPrefix("handler"), etcdkit.String())
	for i := range 100 {
		_, err := kv.Put(ctx, keyName(i), "v")
		require.NoError(b, err)
	}
	for _, handler := range []string{"none", "slow"} {
		for _, n := range callerCounts {
			b.Run(fmt.Sprintf("handler=%s/callers=%d/impl=etcdkit", handler, n), func(b *testing.B) {
				m, err := kv.Mirror(ctx)
				require.NoError(b, err)
				defer func() {
					b.StopTimer() // Close waits for the slow handler's second
					m.Close()
				}()
				if handler == "slow" {
					h := m.AddHandler(func(batch etcdkit.MirrorBatch[string]) {
						if batch.Kind != etcdkit.BatchInitial {
							time.Sleep(time.Duration(len(batch.Changes)) * time.Second)
						}
					})
					<-h.Synced()
				}
				stop := changeKeys(kv)
				defer stop()
				key := keyName(42)
				runCallers(b, n, func(int) (func() error, error) {
					return func() error {
						if _, ok := m.Get(key); !ok {
							return errNoValue
						}
						return nil
					}, nil
				})
			})
		}
	}
}

// changeKeys puts kv's keys over and over, a few milliseconds apart,
// until the returned function is called.
func changeKeys(kv *etcdkit.KV[string]) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ctx.Err() == nil; i++ {
			kv.Put(ctx, keyName(i%100), fmt.Sprint(i))
			select {
			case <-ctx.Done():
			case <-time.After(2 * time.Millisecond):
			}
		}
	})
	return func() {
		cancel()
		wg.Wait()
	}
}
