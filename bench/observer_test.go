package bench_test

import (
	"context"
	clientv3 "go.etcd.io/etcd/client/v3"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/etcdkit/etcdkit"
)

// The Observer benchmarks run Get and Put as impl=raw (clientv3), as
// impl=etcdkit (no Observer) and as impl=noop (an Observer that does
// nothing): the cost of observing, apart from what an Observer itself does.

// noopObserver observes nothing.
type noopObserver struct{}

func (noopObserver) OperationStart(ctx context.Context, _ etcdkit.Operation) context.Context {
	return ctx
}
func (noopObserver) OperationEnd(context.Context, etcdkit.Operation) {}
func (noopObserver) Notice(context.Context, etcdkit.Notice)          {}

// observedClient returns a client of the benchmarks' server with a no-op
// Observer, closed when b ends.
func observedClient(b *testing.B) *etcdkit.Client {
	b.Helper()
	clients(b)
	cfg := kitCfg
	cfg.Observer = noopObserver{}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := etcdkit.New(ctx, cfg)
	require.NoError(b, err)
	b.Cleanup(func() { _ = c.Close() })
	return c
}

func BenchmarkObserverGet(b *testing.B) {
	c, rc := clients(b)
	ctx := context.Background()
	kv := etcdkit.NewKV(c, newPrefix("observer-get"), etcdkit.Bytes())
	_, err := kv.Put(ctx, "k", []byte("value"))
	require.NoError(b, err)
	observed := etcdkit.NewKV(observedClient(b), kv.Prefix(), etcdkit.Bytes())
	compare(b, rawGetWorker(ctx, rc, kv.Prefix()+"k"), getWorker(ctx, kv),
		namedWorker{"noop", getWorker(ctx, observed)})
}

func BenchmarkObserverPut(b *testing.B) {
	c, rc := clients(b)
	ctx := context.Background()
	kv := etcdkit.NewKV(c, newPrefix("observer-put"), etcdkit.Bytes())
	observed := etcdkit.NewKV(observedClient(b), kv.Prefix(), etcdkit.Bytes())
	compare(b, rawPutWorker(ctx, rc, kv.Prefix()), putWorker(ctx, kv, "kit"),
		namedWorker{"noop", putWorker(ctx, observed, "noop")})
}

// getWorker reads the key "k" of kv; rawGetWorker reads key through
// clientv3 and fails if it is missing.
func getWorker(ctx context.Context, kv *etcdkit.KV[[]byte]) worker {
	return func(int) (func() error, error) {
		return func() error { _, err := kv.Get(ctx, "k"); return err }, nil
	}
}

func rawGetWorker(ctx context.Context, rc *clientv3.Client, key string) worker {
	return func(int) (func() error, error) {
		return func() error {
			resp, err := rc.Get(ctx, key)
			if err == nil && len(resp.Kvs) == 0 {
				return errNoValue
			}
			return err
		}, nil
	}
}

// observedValue is what the observer benchmarks put.
var observedValue = []byte("value")

// putWorker puts under a key of its own per goroutine, named after name;
// rawPutWorker does the same through clientv3 under prefix.
func putWorker(ctx context.Context, kv *etcdkit.KV[[]byte], name string) worker {
	return func(w int) (func() error, error) {
		key := name + strconv.Itoa(w)
		return func() error { _, err := kv.Put(ctx, key, observedValue); return err }, nil
	}
}

func rawPutWorker(ctx context.Context, rc *clientv3.Client, prefix string) worker {
	return func(w int) (func() error, error) {
		key := prefix + "raw" + strconv.Itoa(w)
		return func() error { _, err := rc.Put(ctx, key, string(observedValue)); return err }, nil
	}
}
