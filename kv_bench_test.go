package etcdkit_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/etcdkit/etcdkit"
	"github.com/etcdkit/etcdkit/etcdtest"
)

// Each benchmark does one operation through etcdkit and the same work
// directly through clientv3, against the same embedded server, so that
// benchstat can compare BenchmarkX/etcdkit with BenchmarkX/raw. The ctx has
// no deadline in both: etcdkit then bounds each call by RequestTimeout, raw
// clientv3 does not bound it at all.

type benchEnv struct {
	kv     *etcdkit.KV[[]byte]
	c      *etcdkit.Client
	raw    *clientv3.Client
	prefix string
	val    []byte
}

// newBenchEnv connects both clients to a new embedded server, or to
// $ETCD_ENDPOINTS when set, so that the server's own allocations can be kept
// out of the figures by running it in another process.
func newBenchEnv(b *testing.B) benchEnv {
	b.Helper()
	var c *etcdkit.Client
	var raw *clientv3.Client
	if os.Getenv(etcdkit.EnvEndpoints) == "" {
		srv := etcdtest.Start(b)
		c, raw = srv.Client(b), srv.RawClient(b)
	} else {
		c, raw = externalClients(b)
	}
	prefix := fmt.Sprintf("bench/%d/", time.Now().UnixNano())
	return benchEnv{
		kv:     etcdkit.NewKV(c, prefix, etcdkit.Bytes()),
		c:      c,
		raw:    raw,
		prefix: prefix,
		val:    []byte(`{"name":"alice","email":"alice@example.com","age":42}`),
	}
}

func externalClients(b *testing.B) (*etcdkit.Client, *clientv3.Client) {
	b.Helper()
	cfg, err := etcdkit.ConfigFromEnv()
	if err != nil {
		b.Fatal(err)
	}
	c, err := etcdkit.New(b.Context(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	raw, err := clientv3.New(clientv3.Config{Endpoints: cfg.Endpoints, Logger: zap.NewNop()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { raw.Close() })
	return c, raw
}

func BenchmarkGet(b *testing.B) {
	env := newBenchEnv(b)
	ctx := context.Background()
	if _, err := env.kv.Put(ctx, "k", env.val); err != nil {
		b.Fatal(err)
	}
	b.Run("etcdkit", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			e, err := env.kv.Get(ctx, "k")
			if err != nil || len(e.Value) == 0 {
				b.Fatal(err)
			}
		}
	})
	b.Run("raw", func(b *testing.B) {
		b.ReportAllocs()
		key := env.prefix + "k"
		for b.Loop() {
			resp, err := env.raw.Get(ctx, key)
			if err != nil || len(resp.Kvs) == 0 {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkPut(b *testing.B) {
	env := newBenchEnv(b)
	ctx := context.Background()
	b.Run("etcdkit", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := env.kv.Put(ctx, "k", env.val); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("raw", func(b *testing.B) {
		b.ReportAllocs()
		key := env.prefix + "k"
		for b.Loop() {
			if _, err := env.raw.Put(ctx, key, string(env.val)); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkCreate(b *testing.B) {
	env := newBenchEnv(b)
	ctx := context.Background()
	i := 0 // shared by every run of the sub-benchmarks, so that each key is new
	b.Run("etcdkit", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			i++
			if _, err := env.kv.Create(ctx, "etcdkit/"+strconv.Itoa(i), env.val); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("raw", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			i++
			key := env.prefix + "raw/" + strconv.Itoa(i)
			resp, err := env.raw.Txn(ctx).
				If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
				Then(clientv3.OpPut(key, string(env.val))).
				Commit()
			if err != nil || !resp.Succeeded {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkCompareAndSwap(b *testing.B) {
	env := newBenchEnv(b)
	ctx := context.Background()
	b.Run("etcdkit", func(b *testing.B) {
		b.ReportAllocs()
		rev, err := env.kv.Put(ctx, "k", env.val)
		if err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if rev, err = env.kv.CompareAndSwap(ctx, "k", env.val, rev); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("raw", func(b *testing.B) {
		b.ReportAllocs()
		key := env.prefix + "k"
		put, err := env.raw.Put(ctx, key, string(env.val))
		if err != nil {
			b.Fatal(err)
		}
		rev := put.Header.Revision
		for b.Loop() {
			resp, err := env.raw.Txn(ctx).
				If(clientv3.Compare(clientv3.ModRevision(key), "=", rev)).
				Then(clientv3.OpPut(key, string(env.val), clientv3.WithIgnoreLease())).
				Else(clientv3.OpGet(key)).
				Commit()
			if err != nil || !resp.Succeeded {
				b.Fatal(err)
			}
			rev = resp.Header.Revision
		}
	})
}

func BenchmarkUpdate(b *testing.B) {
	env := newBenchEnv(b)
	ctx := context.Background()
	same := func(v []byte) ([]byte, error) { return v, nil }
	b.Run("etcdkit", func(b *testing.B) {
		b.ReportAllocs()
		if _, err := env.kv.Put(ctx, "k", env.val); err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if _, err := env.kv.Update(ctx, "k", same); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("raw", func(b *testing.B) {
		b.ReportAllocs()
		key := env.prefix + "k"
		for b.Loop() {
			get, err := env.raw.Get(ctx, key)
			if err != nil || len(get.Kvs) == 0 {
				b.Fatal(err)
			}
			v, _ := same(get.Kvs[0].Value)
			resp, err := env.raw.Txn(ctx).
				If(clientv3.Compare(clientv3.ModRevision(key), "=", get.Kvs[0].ModRevision)).
				Then(clientv3.OpPut(key, string(v), clientv3.WithIgnoreLease())).
				Else(clientv3.OpGet(key)).
				Commit()
			if err != nil || !resp.Succeeded {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkTxn(b *testing.B) {
	env := newBenchEnv(b)
	ctx := context.Background()
	if _, err := env.kv.Put(ctx, "a", env.val); err != nil {
		b.Fatal(err)
	}
	b.Run("etcdkit", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			res, err := env.c.Txn(ctx).
				If(env.kv.Exists("a")).
				Then(env.kv.PutOp("b", env.val), env.kv.GetOp("a")).
				Commit()
			if err != nil || !res.Succeeded {
				b.Fatal(err)
			}
			if e, err := env.kv.FromResult(res, "a"); err != nil || len(e.Value) == 0 {
				b.Fatal(err)
			}
		}
	})
	b.Run("raw", func(b *testing.B) {
		b.ReportAllocs()
		a, bk := env.prefix+"a", env.prefix+"b"
		for b.Loop() {
			resp, err := env.raw.Txn(ctx).
				If(clientv3.Compare(clientv3.CreateRevision(a), ">", 0)).
				Then(clientv3.OpPut(bk, string(env.val)), clientv3.OpGet(a)).
				Commit()
			if err != nil || !resp.Succeeded {
				b.Fatal(err)
			}
			if kvs := resp.Responses[1].GetResponseRange().Kvs; len(kvs) == 0 || len(kvs[0].Value) == 0 {
				b.Fatal("no value")
			}
		}
	})
}

func BenchmarkList(b *testing.B) {
	env := newBenchEnv(b)
	ctx := context.Background()
	const n = 1000
	kvPutKeys(b, env.raw, env.prefix, n)
	b.Run("etcdkit", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			count := 0
			for _, err := range env.kv.List(ctx) {
				if err != nil {
					b.Fatal(err)
				}
				count++
			}
			if count != n {
				b.Fatalf("listed %d keys, want %d", count, n)
			}
		}
	})
	b.Run("raw", func(b *testing.B) {
		b.ReportAllocs()
		end := clientv3.GetPrefixRangeEnd(env.prefix)
		for b.Loop() {
			count, start, rev := 0, env.prefix, int64(0)
			for {
				resp, err := env.raw.Get(ctx, start, clientv3.WithRange(end), clientv3.WithLimit(etcdkit.DefaultPageSize), clientv3.WithRev(rev))
				if err != nil {
					b.Fatal(err)
				}
				if rev == 0 {
					rev = resp.Header.Revision
				}
				count += len(resp.Kvs)
				if !resp.More {
					break
				}
				start = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
			}
			if count != n {
				b.Fatalf("listed %d keys, want %d", count, n)
			}
		}
	})
}
