package bench_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/stretchr/testify/require"

	"github.com/etcdkit/etcdkit"
)

// Each benchmark does one operation through etcdkit and the same work
// directly through clientv3, including encoding and decoding the value by
// hand. The ctx has no deadline on either side: etcdkit then bounds each call
// by Config.RequestTimeout, raw clientv3 leaves it unbounded.

var errNoValue = errors.New("no value")

func BenchmarkGet(b *testing.B) { byCodec(b, benchGet[[]byte], benchGet[user]) }

func benchGet[T any](b *testing.B, cc codecCase[T]) {
	c, rc := clients(b)
	ctx := context.Background()
	kv := etcdkit.NewKV(c, newPrefix("get"), cc.codec)
	_, err := kv.Put(ctx, "k", cc.val)
	require.NoError(b, err)
	key := kv.Prefix() + "k"
	get := func(ctx context.Context) error {
		resp, err := rc.Get(ctx, key)
		if err != nil {
			return err
		}
		if len(resp.Kvs) == 0 {
			return errNoValue
		}
		v, err := cc.decode(resp.Kvs[0].Value)
		if err != nil || !cc.ok(v) {
			return fmt.Errorf("decode: %v", err)
		}
		return nil
	}
	compare(b, func(int) (func() error, error) {
		return func() error { return get(ctx) }, nil
	}, func(int) (func() error, error) {
		return func() error {
			e, err := kv.Get(ctx, "k")
			if err == nil && !cc.ok(e.Value) {
				return errNoValue
			}
			return err
		}, nil
	}, rawTimeout(func(ctx context.Context, _ int) error { return get(ctx) }))
}

// rawTimeout is the raw operation op with a context.WithTimeout of
// etcdkit's default RequestTimeout per call, as impl=raw-timeout: the same
// bound etcdkit puts on a call whose ctx has no deadline, paid for the plain
// way. A deadline also makes gRPC send it to the server, which then sets a
// timer of its own for the request.
func rawTimeout(op func(ctx context.Context, w int) error) namedWorker {
	return namedWorker{name: "raw-timeout", w: func(w int) (func() error, error) {
		return func() error {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			return op(ctx, w)
		}, nil
	}}
}

func BenchmarkPut(b *testing.B) { byCodec(b, benchPut[[]byte], benchPut[user]) }

func benchPut[T any](b *testing.B, cc codecCase[T]) {
	c, rc := clients(b)
	ctx := context.Background()
	kv := etcdkit.NewKV(c, newPrefix("put"), cc.codec)
	compare(b, func(w int) (func() error, error) {
		key := kv.Prefix() + "raw" + strconv.Itoa(w)
		return func() error {
			data, err := cc.encode(cc.val)
			if err != nil {
				return err
			}
			_, err = rc.Put(ctx, key, string(data))
			return err
		}, nil
	}, func(w int) (func() error, error) {
		key := "kit" + strconv.Itoa(w)
		return func() error {
			_, err := kv.Put(ctx, key, cc.val)
			return err
		}, nil
	})
}

// createSeq makes every created key new, across all runs of the benchmark.
var createSeq atomic.Int64

func BenchmarkCreate(b *testing.B) { byCodec(b, benchCreate[[]byte], benchCreate[user]) }

func benchCreate[T any](b *testing.B, cc codecCase[T]) {
	c, rc := clients(b)
	ctx := context.Background()
	kv := etcdkit.NewKV(c, newPrefix("create"), cc.codec)
	rawPrefix := kv.Prefix() + "raw/"
	compare(b, func(int) (func() error, error) {
		return func() error {
			key := rawPrefix + strconv.FormatInt(createSeq.Add(1), 10)
			data, err := cc.encode(cc.val)
			if err != nil {
				return err
			}
			resp, err := rc.Txn(ctx).
				If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
				Then(clientv3.OpPut(key, string(data))).
				Commit()
			if err == nil && !resp.Succeeded {
				return fmt.Errorf("create %s: exists", key)
			}
			return err
		}, nil
	}, func(int) (func() error, error) {
		return func() error {
			_, err := kv.Create(ctx, "kit/"+strconv.FormatInt(createSeq.Add(1), 10), cc.val)
			return err
		}, nil
	})
}

func BenchmarkCompareAndSwap(b *testing.B) {
	byCodec(b, benchCompareAndSwap[[]byte], benchCompareAndSwap[user])
}

// benchCompareAndSwap gives each caller its own key, so that no swap
// conflicts and every one writes.
func benchCompareAndSwap[T any](b *testing.B, cc codecCase[T]) {
	c, rc := clients(b)
	ctx := context.Background()
	kv := etcdkit.NewKV(c, newPrefix("cas"), cc.codec)
	compare(b, func(w int) (func() error, error) {
		key := kv.Prefix() + "raw" + strconv.Itoa(w)
		data, err := cc.encode(cc.val)
		if err != nil {
			return nil, err
		}
		put, err := rc.Put(ctx, key, string(data))
		if err != nil {
			return nil, err
		}
		rev := put.Header.Revision
		return func() error {
			data, err := cc.encode(cc.val)
			if err != nil {
				return err
			}
			resp, err := rc.Txn(ctx).
				If(clientv3.Compare(clientv3.ModRevision(key), "=", rev)).
				Then(clientv3.OpPut(key, string(data), clientv3.WithIgnoreLease())).
				Else(clientv3.OpGet(key)).
				Commit()
			if err != nil {
				return err
			}
			if !resp.Succeeded {
				return fmt.Errorf("swap %s: conflict", key)
			}
			rev = resp.Header.Revision
			return nil
		}, nil
	}, func(w int) (func() error, error) {
		key := "kit" + strconv.Itoa(w)
		rev, err := kv.Put(ctx, key, cc.val)
		if err != nil {
			return nil, err
		}
		return func() error {
			rev, err = kv.CompareAndSwap(ctx, key, cc.val, rev)
			return err
		}, nil
	})
}

func BenchmarkUpdate(b *testing.B) { byCodec(b, benchUpdate[[]byte], benchUpdate[user]) }

// benchUpdate gives each caller its own key: an update is a read and a
// swap, with no conflict.
func benchUpdate[T any](b *testing.B, cc codecCase[T]) {
	c, rc := clients(b)
	ctx := context.Background()
	kv := etcdkit.NewKV(c, newPrefix("update"), cc.codec)
	same := func(v T) (T, error) { return v, nil }
	update := func(ctx context.Context, key string) error {
		get, err := rc.Get(ctx, key)
		if err != nil {
			return err
		}
		if len(get.Kvs) == 0 {
			return errNoValue
		}
		cur, err := cc.decode(get.Kvs[0].Value)
		if err != nil {
			return err
		}
		next, err := same(cur)
		if err != nil {
			return err
		}
		data, err := cc.encode(next)
		if err != nil {
			return err
		}
		resp, err := rc.Txn(ctx).
			If(clientv3.Compare(clientv3.ModRevision(key), "=", get.Kvs[0].ModRevision)).
			Then(clientv3.OpPut(key, string(data), clientv3.WithIgnoreLease())).
			Else(clientv3.OpGet(key)).
			Commit()
		if err == nil && !resp.Succeeded {
			return fmt.Errorf("update %s: conflict", key)
		}
		return err
	}
	rawKeys := func(w int) (string, error) {
		_, err := kv.Put(ctx, "raw"+strconv.Itoa(w), cc.val)
		return kv.Prefix() + "raw" + strconv.Itoa(w), err
	}
	compare(b, func(w int) (func() error, error) {
		key, err := rawKeys(w)
		if err != nil {
			return nil, err
		}
		return func() error { return update(ctx, key) }, nil
	}, func(w int) (func() error, error) {
		key := "kit" + strconv.Itoa(w)
		if _, err := kv.Put(ctx, key, cc.val); err != nil {
			return nil, err
		}
		return func() error {
			_, err := kv.Update(ctx, key, same)
			return err
		}, nil
	}, namedWorker{name: "raw-timeout", w: func(w int) (func() error, error) {
		key, err := rawKeys(w)
		if err != nil {
			return nil, err
		}
		return func() error {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			return update(ctx, key)
		}, nil
	}})
}

func BenchmarkTxn(b *testing.B) { byCodec(b, benchTxn[[]byte], benchTxn[user]) }

// benchTxn commits "if a exists, put b and read a" and decodes what it read;
// each caller has its own a and b.
func benchTxn[T any](b *testing.B, cc codecCase[T]) {
	c, rc := clients(b)
	ctx := context.Background()
	kv := etcdkit.NewKV(c, newPrefix("txn"), cc.codec)
	compare(b, func(w int) (func() error, error) {
		a, bk := "rawa"+strconv.Itoa(w), kv.Prefix()+"rawb"+strconv.Itoa(w)
		if _, err := kv.Put(ctx, a, cc.val); err != nil {
			return nil, err
		}
		a = kv.Prefix() + a
		return func() error {
			data, err := cc.encode(cc.val)
			if err != nil {
				return err
			}
			resp, err := rc.Txn(ctx).
				If(clientv3.Compare(clientv3.CreateRevision(a), ">", 0)).
				Then(clientv3.OpPut(bk, string(data)), clientv3.OpGet(a)).
				Commit()
			if err != nil {
				return err
			}
			kvs := resp.Responses[1].GetResponseRange().GetKvs()
			if !resp.Succeeded || len(kvs) == 0 {
				return errNoValue
			}
			v, err := cc.decode(kvs[0].Value)
			if err == nil && !cc.ok(v) {
				return errNoValue
			}
			return err
		}, nil
	}, func(w int) (func() error, error) {
		a, bk := "kita"+strconv.Itoa(w), "kitb"+strconv.Itoa(w)
		if _, err := kv.Put(ctx, a, cc.val); err != nil {
			return nil, err
		}
		return func() error {
			res, err := c.Txn(ctx).
				If(kv.Exists(a)).
				Then(kv.PutOp(bk, cc.val), kv.GetOp(a)).
				Commit()
			if err != nil {
				return err
			}
			if !res.Succeeded {
				return errNoValue
			}
			e, err := kv.FromResult(res, a)
			if err == nil && !cc.ok(e.Value) {
				return errNoValue
			}
			return err
		}, nil
	})
}

// listKeys is how many keys BenchmarkList reads.
const listKeys = 10_000

// BenchmarkList reads 10,000 keys and decodes every value: through
// KV.List with its default page size (impl=etcdkit), in ONE raw range
// request (impl=raw), with raw requests of the same page size at one
// revision (impl=raw-paged), the work List actually does, and through
// KV.List with one page of 10,000 (impl=etcdkit-onepage).
func BenchmarkList(b *testing.B) { byCodec(b, benchList[[]byte], benchList[user]) }

func benchList[T any](b *testing.B, cc codecCase[T]) {
	c, rc := clients(b)
	ctx := context.Background()
	kv := etcdkit.NewKV(c, newPrefix("list"), cc.codec)
	data, err := cc.encode(cc.val)
	require.NoError(b, err)
	require.NoError(b, putRaw(ctx, rc, kv.Prefix(), listKeys, data))
	prefix, end := kv.Prefix(), clientv3.GetPrefixRangeEnd(kv.Prefix())
	decodeAll := func(resp *clientv3.GetResponse) (int, error) {
		for _, p := range resp.Kvs {
			v, err := cc.decode(p.Value)
			if err != nil || !cc.ok(v) {
				return 0, errNoValue
			}
		}
		return len(resp.Kvs), nil
	}
	check := func(n int) error {
		if n != listKeys {
			return fmt.Errorf("listed %d keys, want %d", n, listKeys)
		}
		return nil
	}
	b.Run("callers=1", func(b *testing.B) {
		b.Run("impl=raw", func(b *testing.B) {
			runCallers(b, 1, func(int) (func() error, error) {
				return func() error {
					resp, err := rc.Get(ctx, prefix, clientv3.WithRange(end))
					if err != nil {
						return err
					}
					n, err := decodeAll(resp)
					if err != nil {
						return err
					}
					return check(n)
				}, nil
			})
		})
		b.Run("impl=etcdkit", func(b *testing.B) {
			runCallers(b, 1, func(int) (func() error, error) {
				return func() error {
					n := 0
					for _, err := range kv.List(ctx) {
						if err != nil {
							return err
						}
						n++
					}
					return check(n)
				}, nil
			})
		})
		b.Run("impl=etcdkit-onepage", func(b *testing.B) {
			runCallers(b, 1, func(int) (func() error, error) {
				return func() error {
					n := 0
					for _, err := range kv.List(ctx, etcdkit.WithPageSize(listKeys)) {
						if err != nil {
							return err
						}
						n++
					}
					return check(n)
				}, nil
			})
		})
		b.Run("impl=raw-paged", func(b *testing.B) {
			runCallers(b, 1, func(int) (func() error, error) {
				return func() error {
					n, start, rev := 0, prefix, int64(0)
					for {
						resp, err := rc.Get(ctx, start, clientv3.WithRange(end),
							clientv3.WithLimit(etcdkit.DefaultPageSize), clientv3.WithRev(rev))
						if err != nil {
							return err
						}
						rev = resp.Header.Revision
						got, err := decodeAll(resp)
						if err != nil {
							return err
						}
						n += got
						if !resp.More {
							return check(n)
						}
						start = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
					}
				}, nil
			})
		})
	})
}
