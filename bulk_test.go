package etcdkit_test

import (
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.etcd.io/etcd/server/v3/embed"

	"github.com/etcdkit/etcdkit"
	"github.com/etcdkit/etcdkit/etcdtest"
)

// pairs yields the entries of kvs in order, repeated keys included.
func pairs(kvs ...[2]string) iter.Seq2[string, string] {
	return func(yield func(string, string) bool) {
		for _, p := range kvs {
			if !yield(p[0], p[1]) {
				return
			}
		}
	}
}

// numbered yields n entries, key k%05d with value v%d.
func numbered(n int) iter.Seq2[string, string] {
	return func(yield func(string, string) bool) {
		for i := range n {
			if !yield(fmt.Sprintf("k%05d", i), fmt.Sprintf("v%d", i)) {
				return
			}
		}
	}
}

// listAll reads every key of kv into a map.
func listAll[T any](t *testing.T, kv *etcdkit.KV[T]) map[string]T {
	t.Helper()
	got := map[string]T{}
	for e, err := range kv.List(testCtx(t)) {
		require.NoError(t, err, "list")
		got[e.Key] = e.Value
	}
	return got
}

// smallTxnClient is a client of the shared server that sends at most ops
// operations per transaction.
func smallTxnClient(t *testing.T, ops int, fs ...*etcdtest.Faults) *etcdkit.Client {
	t.Helper()
	opts := []etcdtest.ClientOption{etcdtest.WithClientConfig(func(c *etcdkit.Config) { c.MaxTxnOps = ops })}
	for _, f := range fs {
		opts = append(opts, etcdtest.WithFaults(f))
	}
	return testServer.Client(t, opts...)
}

func TestKV_PutMany_Lands(t *testing.T) {
	t.Parallel()
	kv := etcdkit.NewKV(newClient(t), testPrefix(t), etcdkit.String())
	const total = 10_000
	n, err := kv.PutMany(testCtx(t), numbered(total))
	require.NoError(t, err)
	assert.Equal(t, total, n, "entries written")
	want := maps.Collect(numbered(total))
	assert.Equal(t, want, listAll(t, kv), "keys listed back")
}

func TestKV_PutMany_LastWins(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		maxOps  int
		entries [][2]string
	}{
		{"within a batch", 128, [][2]string{{"a", "1"}, {"b", "1"}, {"a", "2"}, {"a", "3"}, {"b", "2"}}},
		{"across batches", 2, [][2]string{{"a", "1"}, {"b", "1"}, {"c", "1"}, {"a", "2"}, {"d", "1"}, {"e", "1"}, {"a", "3"}, {"c", "2"}}},
		{"many in flight", 4, cycle(997, 7)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			kv := etcdkit.NewKV(smallTxnClient(t, tc.maxOps), testPrefix(t), etcdkit.String())
			n, err := kv.PutMany(testCtx(t), pairs(tc.entries...))
			require.NoError(t, err)
			assert.Equal(t, len(tc.entries), n, "entries written, repeated keys included")
			want := map[string]string{}
			for _, p := range tc.entries {
				want[p[0]] = p[1]
			}
			assert.Equal(t, want, listAll(t, kv), "each key holds its last value")
		})
	}
}

// cycle returns n entries over keys keys, each value its entry's index.
func cycle(n, keys int) [][2]string {
	out := make([][2]string, n)
	for i := range out {
		out[i] = [2]string{fmt.Sprintf("k%d", i%keys), fmt.Sprint(i)}
	}
	return out
}

func TestKV_PutMany_Invalid(t *testing.T) {
	t.Parallel()
	cfg := testServer.Config()
	cfg.MaxRequestBytes = 1024
	cli, err := etcdkit.New(testCtx(t), cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = cli.Close() })
	prefix := testPrefix(t)
	kv := etcdkit.NewKV(cli, prefix, etcdkit.String())

	t.Run("too large", func(t *testing.T) {
		n, err := kv.PutMany(testCtx(t), pairs([2]string{"small", "x"}, [2]string{"big", strings.Repeat("x", 2048)}))
		require.ErrorIs(t, err, etcdkit.ErrTooLarge)
		assert.ErrorContains(t, err, prefix+"big", "the error names the key")
		assert.Zero(t, n, "entries written")
		_, err = kv.Get(testCtx(t), "small")
		assert.ErrorIs(t, err, etcdkit.ErrNotFound, "entries read since the last transaction are not written")
	})
	t.Run("empty key", func(t *testing.T) {
		root := etcdkit.NewKV(cli, "", etcdkit.String())
		n, err := root.PutMany(testCtx(t), pairs([2]string{prefix + "before-empty", "x"}, [2]string{"", "x"}))
		require.ErrorIs(t, err, etcdkit.ErrEmptyKey)
		assert.Zero(t, n, "entries written")
		_, err = kv.Get(testCtx(t), "before-empty")
		assert.ErrorIs(t, err, etcdkit.ErrNotFound, "entries read since the last transaction are not written")
	})
	t.Run("encode error", func(t *testing.T) {
		jkv := etcdkit.NewKV(cli, prefix, etcdkit.JSON[any]())
		entries := func(yield func(string, any) bool) { _ = yield("ok", 1) && yield("chan", make(chan int)) }
		n, err := jkv.PutMany(testCtx(t), entries)
		require.ErrorIs(t, err, etcdkit.ErrInvalidArgument)
		var ute *json.UnsupportedTypeError
		assert.ErrorAs(t, err, &ute, "the codec's error is wrapped")
		assert.ErrorContains(t, err, prefix+"chan", "the error names the key")
		assert.Zero(t, n, "entries written")
	})
	t.Run("nil sequence", func(t *testing.T) {
		_, err := kv.PutMany(testCtx(t), nil)
		assert.ErrorIs(t, err, etcdkit.ErrInvalidArgument)
	})
}

func TestKV_PutMany_ContextCancelled(t *testing.T) {
	t.Parallel()
	kv := etcdkit.NewKV(smallTxnClient(t, 10), testPrefix(t), etcdkit.String())
	ctx, cancel := context.WithCancel(testCtx(t))
	defer cancel()
	const total, cancelAt = 1000, 300
	entries := func(yield func(string, string) bool) {
		for k, v := range numbered(total) {
			if k == fmt.Sprintf("k%05d", cancelAt) {
				cancel()
			}
			if !yield(k, v) {
				return
			}
		}
	}
	n, err := kv.PutMany(ctx, entries)
	require.ErrorIs(t, err, context.Canceled)
	assert.LessOrEqual(t, n, cancelAt, "entries written before the cancel")
	got := listAll(t, kv)
	assert.GreaterOrEqual(t, len(got), n, "every entry counted is there")
	assert.Less(t, len(got), total, "no transaction is sent after the cancel")
}

// The doc's promise: entries in a transaction whose outcome is unknown are
// not counted though they may have been written.
func TestKV_PutMany_Ambiguous(t *testing.T) {
	t.Parallel()
	f := etcdtest.NewFaults()
	kv := etcdkit.NewKV(smallTxnClient(t, 10, f), testPrefix(t), etcdkit.String())
	f.Inject(etcdtest.RPCTxn, etcdtest.CommitThenFail, 1, 0)
	n, err := kv.PutMany(testCtx(t), numbered(10))
	require.ErrorIs(t, err, etcdkit.ErrUnavailable)
	assert.Zero(t, n, "the batch whose outcome is unknown is not counted")
	assert.Equal(t, maps.Collect(numbered(10)), listAll(t, kv), "yet its keys were written")
}

// The doc's promise: no new transaction is sent after the first error.
func TestKV_PutMany_StopsAfterError(t *testing.T) {
	t.Parallel()
	f := etcdtest.NewFaults()
	kv := etcdkit.NewKV(smallTxnClient(t, 10, f), testPrefix(t), etcdkit.String())
	f.Inject(etcdtest.RPCTxn, etcdtest.FailBeforeSend, 1, 0)
	const total = 1000
	n, err := kv.PutMany(testCtx(t), numbered(total))
	require.ErrorIs(t, err, etcdkit.ErrUnavailable)
	got := listAll(t, kv)
	assert.Equal(t, n, len(got), "with no unknown outcome, the count is what was written")
	assert.Less(t, n, total/2, "transactions stopped after the failure")
}

func TestKV_PutMany_WithLease(t *testing.T) {
	t.Parallel()
	cli := newClient(t)
	lease, err := cli.Grant(testCtx(t), time.Minute)
	require.NoError(t, err)
	t.Cleanup(func() { _ = lease.Revoke(context.Background()) })
	kv := etcdkit.NewKV(cli, testPrefix(t), etcdkit.String())
	const total = 300
	n, err := kv.PutMany(testCtx(t), numbered(total), etcdkit.WithLease(lease))
	require.NoError(t, err)
	require.Equal(t, total, n)
	seen := 0
	for e, err := range kv.List(testCtx(t)) {
		require.NoError(t, err)
		assert.Equal(t, lease.ID(), e.Lease, "lease of %s", e.Key)
		seen++
	}
	assert.Equal(t, total, seen, "keys listed")
	require.NoError(t, lease.Revoke(testCtx(t)))
	c, err := kv.Count(testCtx(t))
	require.NoError(t, err)
	assert.Zero(t, c, "keys left after revoking their lease")
}

func TestKV_PutMany_LoweredMaxTxnOps(t *testing.T) {
	t.Parallel()
	const maxOps = 5
	srv := etcdtest.Start(t, etcdtest.WithEmbedConfig(func(c *embed.Config) { c.MaxTxnOps = maxOps }))
	cli := srv.Client(t, etcdtest.WithClientConfig(func(c *etcdkit.Config) { c.MaxTxnOps = maxOps }))
	kv := etcdkit.NewKV(cli, testPrefix(t), etcdkit.String())
	const total = 23
	n, err := kv.PutMany(testCtx(t), numbered(total))
	require.NoError(t, err, "no transaction over the server's limit")
	assert.Equal(t, total, n)
	assert.Equal(t, maps.Collect(numbered(total)), listAll(t, kv))
}

func TestKV_DeleteMany(t *testing.T) {
	t.Parallel()
	kv := etcdkit.NewKV(smallTxnClient(t, 8), testPrefix(t), etcdkit.String())
	const total = 100
	_, err := kv.PutMany(testCtx(t), numbered(total))
	require.NoError(t, err)
	_, err = kv.Put(testCtx(t), "keep", "x")
	require.NoError(t, err)
	keys := func(yield func(string) bool) {
		for k := range numbered(total) {
			// Each key twice, in and across batches, and a missing one.
			for _, key := range []string{k, k, "missing-" + k} {
				if !yield(key) {
					return
				}
			}
		}
		for k := range numbered(total) {
			if !yield(k) {
				return
			}
		}
	}
	n, err := kv.DeleteMany(testCtx(t), keys)
	require.NoError(t, err)
	assert.Equal(t, total, n, "keys that existed and were deleted, each once")
	assert.Equal(t, map[string]string{"keep": "x"}, listAll(t, kv), "keys left")

	root := etcdkit.NewKV(newClient(t), "", etcdkit.String())
	n, err = root.DeleteMany(testCtx(t), func(yield func(string) bool) { _ = yield(kv.Prefix()+"keep") && yield("") })
	require.ErrorIs(t, err, etcdkit.ErrEmptyKey)
	assert.Zero(t, n)
	assert.Len(t, listAll(t, kv), 1, "keys read since the last transaction are not deleted")
}
