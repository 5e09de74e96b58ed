package etcdkit_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"

	"github.com/etcdkit/etcdkit"
	"github.com/etcdkit/etcdkit/etcdtest"
)

// kvServer returns the server a KV test talks to: the shared one.
func kvServer(t testing.TB) *etcdtest.Server {
	t.Helper()
	return testServer
}

func kvMustPut[T any](t testing.TB, kv *etcdkit.KV[T], key string, v T) int64 {
	t.Helper()
	rev, err := kv.Put(t.Context(), key, v)
	require.NoError(t, err, "Put(%q)", key)
	return rev
}

func TestKVGetPut(t *testing.T) {
	t.Parallel()
	srv := kvServer(t)
	kv := etcdkit.NewKV(srv.Client(t), testPrefix(t), etcdkit.JSON[map[string]int]())
	ctx := t.Context()

	_, err := kv.Get(ctx, "a")
	require.ErrorIs(t, err, etcdkit.ErrNotFound, "Get of a missing key")
	rev := kvMustPut(t, kv, "a", map[string]int{"x": 1})
	rev2 := kvMustPut(t, kv, "a", map[string]int{"x": 2})
	require.Greater(t, rev2, rev, "the second Put's revision")
	e, err := kv.Get(ctx, "a")
	require.NoError(t, err)
	want := etcdkit.Entry[map[string]int]{Key: "a", Value: map[string]int{"x": 2}, CreateRevision: rev, ModRevision: rev2, Version: 2}
	require.Equal(t, want, e, "Get")
	ok, err := kv.Delete(ctx, "a")
	require.NoError(t, err, "Delete of an existing key")
	require.True(t, ok, "Delete of an existing key")
	ok, err = kv.Delete(ctx, "a")
	require.NoError(t, err, "Delete of a missing key")
	require.False(t, ok, "Delete of a missing key")
}

func TestKVCreate(t *testing.T) {
	t.Parallel()
	srv := kvServer(t)
	kv := etcdkit.NewKV(srv.Client(t), testPrefix(t), etcdkit.String())
	ctx := t.Context()

	rev, err := kv.Create(ctx, "k", "first")
	require.NoError(t, err, "Create of a new key")
	_, err = kv.Create(ctx, "k", "second")
	require.ErrorIs(t, err, etcdkit.ErrExists, "Create of an existing key")
	e, err := kv.Get(ctx, "k")
	require.NoError(t, err, "Get after a failed Create")
	require.Equal(t, "first", e.Value, "after a failed Create, want the first value")
	require.Equal(t, rev, e.ModRevision, "after a failed Create, want the first revision")
}

func TestKVCompareAndSwap(t *testing.T) {
	t.Parallel()
	srv := kvServer(t)
	kv := etcdkit.NewKV(srv.Client(t), testPrefix(t), etcdkit.String())
	ctx := t.Context()

	rev1, err := kv.CompareAndSwap(ctx, "k", "v1", 0)
	require.NoError(t, err, "CompareAndSwap with revision 0 on a missing key")
	rev2, err := kv.CompareAndSwap(ctx, "k", "v2", rev1)
	require.NoError(t, err, "CompareAndSwap at the current revision")

	_, err = kv.CompareAndSwap(ctx, "k", "v3", rev1)
	require.ErrorIs(t, err, etcdkit.ErrConflict, "CompareAndSwap at a stale revision")
	cur, ok := etcdkit.CurrentEntry[string](err)
	require.True(t, ok, "the conflict has no current entry")
	require.Equal(t, "k", cur.Key, "the conflict's current entry")
	require.Equal(t, "v2", cur.Value, "the conflict's current entry")
	require.Equal(t, rev2, cur.ModRevision, "the conflict's current entry")

	_, err = kv.Delete(ctx, "k")
	require.NoError(t, err)
	_, err = kv.CompareAndSwap(ctx, "k", "v4", rev2)
	var ce *etcdkit.ConflictError
	require.ErrorAs(t, err, &ce, "CompareAndSwap on a deleted key")
	require.Nil(t, ce.Current, "CompareAndSwap on a deleted key: want no current entry")
	require.Equal(t, "k", ce.Key, "CompareAndSwap on a deleted key")
}

func TestKVCompareAndSwapKeepsLease(t *testing.T) {
	t.Parallel()
	srv := kvServer(t)
	raw := srv.RawClient(t)
	kv := etcdkit.NewKV(srv.Client(t), testPrefix(t), etcdkit.String())
	ctx := t.Context()

	lease, err := raw.Grant(ctx, 60)
	require.NoError(t, err)
	resp, err := raw.Put(ctx, kv.Prefix()+"k", "v1", clientv3.WithLease(lease.ID))
	require.NoError(t, err)
	_, err = kv.CompareAndSwap(ctx, "k", "v2", resp.Header.Revision)
	require.NoError(t, err)
	e, err := kv.Update(ctx, "k", func(s string) (string, error) { return s + "!", nil })
	require.NoError(t, err)
	require.Equal(t, int64(lease.ID), e.Lease, "the lease Update returned")
	got, err := kv.Get(ctx, "k")
	require.NoError(t, err, "Get after swaps")
	require.Equal(t, "v2!", got.Value, "Get after swaps")
	require.Equal(t, int64(lease.ID), got.Lease, "Get after swaps: the lease")
}

func TestKVUpdateConcurrent(t *testing.T) {
	t.Parallel()
	srv := kvServer(t)
	kv := etcdkit.NewKV(srv.Client(t), testPrefix(t), etcdkit.JSON[int]())
	ctx := t.Context()
	kvMustPut(t, kv, "counter", 0)
	start, err := kv.Get(ctx, "counter")
	require.NoError(t, err)

	const workers, increments = 16, 50
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for range workers {
		wg.Go(func() {
			for range increments {
				if _, err := kv.Update(ctx, "counter", func(n int) (int, error) { return n + 1, nil }); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		assert.NoError(t, err, "Update")
	}
	e, err := kv.Get(ctx, "counter")
	require.NoError(t, err)
	require.Equal(t, workers*increments, e.Value, "counter")
	require.Equal(t, start.Version+workers*increments, e.Version, "counter's version")
}

func TestKVUpdateErrors(t *testing.T) {
	t.Parallel()
	srv := kvServer(t)
	kv := etcdkit.NewKV(srv.Client(t), testPrefix(t), etcdkit.JSON[int]())
	ctx := t.Context()

	called := false
	_, err := kv.Update(ctx, "missing", func(n int) (int, error) { called = true; return n, nil })
	require.ErrorIs(t, err, etcdkit.ErrNotFound, "Update of a missing key")
	require.False(t, called, "Update of a missing key called fn")

	rev := kvMustPut(t, kv, "k", 1)
	errStop := errors.New("stop")
	_, err = kv.Update(ctx, "k", func(n int) (int, error) { return 0, errStop })
	require.ErrorIs(t, err, errStop, "Update whose fn fails, want fn's error")
	e, _ := kv.Get(ctx, "k")
	require.Equal(t, rev, e.ModRevision, "a failed Update wrote: mod revision")

	// fn deletes the key on its first call: the swap conflicts and finds
	// the key gone.
	_, err = kv.Update(ctx, "k", func(n int) (int, error) {
		if _, err := kv.Delete(ctx, "k"); err != nil {
			return 0, err
		}
		return n + 1, nil
	})
	require.ErrorIs(t, err, etcdkit.ErrNotFound, "Update of a key deleted meanwhile")
}

func TestKVCompareAndDelete(t *testing.T) {
	t.Parallel()
	srv := kvServer(t)
	kv := etcdkit.NewKV(srv.Client(t), testPrefix(t), etcdkit.String())
	ctx := t.Context()

	rev1 := kvMustPut(t, kv, "k", "v1")
	rev2 := kvMustPut(t, kv, "k", "v2")
	_, err := kv.CompareAndDelete(ctx, "k", rev1)
	require.ErrorIs(t, err, etcdkit.ErrConflict, "CompareAndDelete at a stale revision")
	cur, ok := etcdkit.CurrentEntry[string](err)
	require.True(t, ok, "CompareAndDelete at a stale revision: no current entry")
	require.Equal(t, rev2, cur.ModRevision, "CompareAndDelete at a stale revision: the current entry")
	_, err = kv.CompareAndDelete(ctx, "k", rev2)
	require.NoError(t, err, "CompareAndDelete at the current revision")
	_, err = kv.Get(ctx, "k")
	require.ErrorIs(t, err, etcdkit.ErrNotFound, "Get after CompareAndDelete")
	_, err = kv.CompareAndDelete(ctx, "k", rev2)
	require.ErrorIs(t, err, etcdkit.ErrConflict, "CompareAndDelete of a missing key")
}

func TestKVDecodeError(t *testing.T) {
	t.Parallel()
	srv := kvServer(t)
	raw := srv.RawClient(t)
	kv := etcdkit.NewKV(srv.Client(t), testPrefix(t), etcdkit.JSON[int]())
	ctx := t.Context()

	kvMustPut(t, kv, "a", 1)
	_, err := raw.Put(ctx, kv.Prefix()+"b", "{garbage")
	require.NoError(t, err)
	kvMustPut(t, kv, "c", 3)

	_, err = kv.Get(ctx, "b")
	var de *etcdkit.DecodeError
	require.ErrorAs(t, err, &de, "Get of a value that does not decode")
	require.Equal(t, "b", de.Key, "the DecodeError's key")
	_, err = kv.Update(ctx, "b", func(n int) (int, error) { return n, nil })
	require.ErrorAs(t, err, &de, "Update of a value that does not decode")

	var keys []string
	var decodeErrs int
	for e, err := range kv.List(ctx) {
		if errors.As(err, &de) {
			decodeErrs++
			continue
		}
		require.NoError(t, err, "List")
		keys = append(keys, e.Key)
	}
	require.Equal(t, []string{"a", "c"}, keys, "keys List yielded")
	require.Equal(t, 1, decodeErrs, "decode errors List yielded")
}

func TestKVListOptions(t *testing.T) {
	t.Parallel()
	srv := kvServer(t)
	kv := etcdkit.NewKV(srv.Client(t), testPrefix(t), etcdkit.String())
	ctx := t.Context()
	// A key just past the prefix must never be listed.
	_, err := srv.RawClient(t).Put(ctx, strings.TrimSuffix(kv.Prefix(), "/")+"0", "x")
	require.NoError(t, err)

	var revs []int64
	for _, k := range []string{"a", "b", "c", "d", "e"} {
		revs = append(revs, kvMustPut(t, kv, k, "v"+k))
	}
	kvMustPut(t, kv, "a", "changed")

	tests := []struct {
		name string
		opts []etcdkit.ListOption
		want string
	}{
		{"all", nil, "a=changed b=vb c=vc d=vd e=ve"},
		{"small pages", []etcdkit.ListOption{etcdkit.WithPageSize(2)}, "a=changed b=vb c=vc d=vd e=ve"},
		{"range", []etcdkit.ListOption{etcdkit.WithRange("b", "d"), etcdkit.WithPageSize(1)}, "b=vb c=vc"},
		{"from", []etcdkit.ListOption{etcdkit.WithRange("d", "")}, "d=vd e=ve"},
		{"keys only", []etcdkit.ListOption{etcdkit.WithKeysOnly()}, "a= b= c= d= e="},
		{"at revision", []etcdkit.ListOption{etcdkit.WithRevision(revs[2])}, "a=va b=vb c=vc"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for e, err := range kv.List(ctx, tt.opts...) {
				require.NoError(t, err, "List")
				got = append(got, e.Key+"="+e.Value)
			}
			require.Equal(t, tt.want, strings.Join(got, " "), "List")
		})
	}

	t.Run("keys only metadata", func(t *testing.T) {
		for e, err := range kv.List(ctx, etcdkit.WithKeysOnly(), etcdkit.WithRange("b", "c")) {
			require.NoError(t, err)
			require.Equal(t, revs[1], e.ModRevision, "keys-only entry %+v", e)
			require.Equal(t, revs[1], e.CreateRevision, "keys-only entry %+v", e)
			require.Equal(t, int64(1), e.Version, "keys-only entry %+v", e)
		}
	})
	t.Run("break", func(t *testing.T) {
		n := 0
		for range kv.List(ctx, etcdkit.WithPageSize(1)) {
			n++
			if n == 2 {
				break
			}
		}
		require.Equal(t, 2, n, "times the loop ran, with a break at 2")
	})
	t.Run("bad page size", func(t *testing.T) {
		for _, err := range kv.List(ctx, etcdkit.WithPageSize(0)) {
			require.ErrorIs(t, err, etcdkit.ErrInvalidArgument, "List with page size 0")
		}
	})
	t.Run("count", func(t *testing.T) {
		n, err := kv.Count(ctx)
		require.NoError(t, err, "Count")
		require.Equal(t, int64(5), n, "Count")
	})
}

func TestKVListSnapshot(t *testing.T) {
	t.Parallel()
	srv := kvServer(t)
	kv := etcdkit.NewKV(srv.Client(t), testPrefix(t), etcdkit.String())
	requireSnapshotUnderWrites(t, srv.RawClient(t), kv, etcdkit.WithPageSize(100))
}

// requireSnapshotUnderWrites lists kv with opts while a writer changes
// and adds keys all over its prefix, and requires the listing to be one
// snapshot. After the first entry, the reader waits until the writer has
// written enough that a listing which is not one snapshot must show it.
func requireSnapshotUnderWrites(t *testing.T, raw *clientv3.Client, kv *etcdkit.KV[string], opts ...etcdkit.ListOption) {
	t.Helper()
	ctx := t.Context()
	const n = 10000
	kvPutKeys(t, raw, kv.Prefix(), n)

	stop := make(chan struct{})
	written := make(chan struct{})
	var writerErr error
	var wg sync.WaitGroup
	wg.Go(func() { writerErr = kvWriteAllOver(ctx, raw, kv.Prefix(), n, stop, written) })

	var got []etcdkit.Entry[string]
	var maxMod int64
	for e, err := range kv.List(ctx, opts...) {
		require.NoError(t, err, "List after %d entries", len(got))
		if len(got) == 0 {
			<-written
		}
		got = append(got, e)
		maxMod = max(maxMod, e.ModRevision)
	}
	close(stop)
	wg.Wait()
	require.NoError(t, writerErr, "writer")

	// The writer only puts, so the prefix at the highest mod revision listed
	// is the state of every later revision up to the snapshot's.
	requireListedAt(t, raw, kv.Prefix(), maxMod, got)
	latest, err := raw.Get(ctx, kv.Prefix(), clientv3.WithPrefix(), clientv3.WithCountOnly())
	require.NoError(t, err)
	require.Greater(t, latest.Count, int64(n), "keys now: the writer added none, so the test proved nothing")
}

// requireListedAt requires got to be, entry by entry and in key order,
// what prefix held at rev.
func requireListedAt(t *testing.T, raw *clientv3.Client, prefix string, rev int64, got []etcdkit.Entry[string]) {
	t.Helper()
	want, err := raw.Get(t.Context(), prefix, clientv3.WithPrefix(), clientv3.WithRev(rev))
	require.NoError(t, err)
	// Not require.Len: it would print thousands of entries.
	require.Equal(t, len(want.Kvs), len(got), "entries listed, against the snapshot at revision %d", rev)
	for i, e := range got {
		w := want.Kvs[i]
		if i > 0 {
			require.Greater(t, e.Key, got[i-1].Key, "entry %d: not in order or repeated", i)
		}
		require.Equal(t, string(w.Key), prefix+e.Key, "entry %d's key, against the snapshot", i)
		require.Equal(t, string(w.Value), e.Value, "entry %d (%s)'s value, against the snapshot", i, e.Key)
		require.Equal(t, w.ModRevision, e.ModRevision, "entry %d (%s)'s revision, against the snapshot", i, e.Key)
	}
}

func kvPutKeys(t testing.TB, raw *clientv3.Client, prefix string, n int) {
	t.Helper()
	var ops []clientv3.Op
	for i := range n {
		ops = append(ops, clientv3.OpPut(fmt.Sprintf("%sk%05d", prefix, i), "v0"))
		if len(ops) == 128 || i == n-1 {
			_, err := raw.Txn(t.Context()).Then(ops...).Commit()
			require.NoError(t, err)
			ops = ops[:0]
		}
	}
}

// kvWriteAllOver changes an existing key and adds a new one at both ends of
// the key range in turn, closing written after 200 writes, until stop.
func kvWriteAllOver(ctx context.Context, raw *clientv3.Client, prefix string, n int, stop, written chan struct{}) error {
	for i := range 100000 {
		select {
		case <-stop:
			return nil
		default:
		}
		idx := (i * 7919) % n
		if i%2 == 1 {
			idx = n - 1 - idx
		}
		key := fmt.Sprintf("%sk%05d", prefix, idx)
		if i%4 < 2 {
			key += "+new"
		}
		if _, err := raw.Put(ctx, key, fmt.Sprintf("v%d", i+1)); err != nil {
			return err
		}
		if i == 200 {
			close(written)
		}
	}
	return errors.New("stop never came")
}

func TestKVListCompacted(t *testing.T) {
	t.Parallel()
	srv := etcdtest.Start(t) // compacting the shared server would disturb other tests
	raw := srv.RawClient(t)
	kv := etcdkit.NewKV(srv.Client(t), testPrefix(t), etcdkit.String())
	ctx := t.Context()
	kvPutKeys(t, raw, kv.Prefix(), 10)

	var n int
	var err error
	for _, err = range kv.List(ctx, etcdkit.WithPageSize(3)) {
		if err != nil {
			break
		}
		n++
		if n == 1 {
			// Move past the snapshot and compact it away.
			rev := kvMustPut(t, kv, "k00000", "v1")
			srv.Compact(t, rev)
		}
	}
	var ce *etcdkit.CompactedError
	require.ErrorAs(t, err, &ce, "List across a compaction ended after %d entries", n)
	require.ErrorIs(t, err, etcdkit.ErrCompacted, "List across a compaction")
	require.Equal(t, 3, n, "entries List yielded before the error, want the first page")
	cur, err := raw.Get(ctx, "any")
	require.NoError(t, err)
	require.Equal(t, cur.Header.Revision, ce.Revision, "CompactedError.Revision, want the compaction point")
}

// kvCountingClient returns an etcdkit client whose every unary call to the
// server is counted in calls.
func kvCountingClient(t testing.TB, srv *etcdtest.Server) (*etcdkit.Client, *clientv3.Client, *atomic.Int64) {
	t.Helper()
	calls := new(atomic.Int64)
	count := func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		calls.Add(1)
		return invoker(ctx, method, req, reply, cc, opts...)
	}
	raw, err := clientv3.New(clientv3.Config{
		Endpoints:   srv.Endpoints(),
		DialOptions: []grpc.DialOption{grpc.WithUnaryInterceptor(count)},
		Logger:      zap.NewNop(),
	})
	require.NoError(t, err)
	t.Cleanup(func() { raw.Close() })
	c := etcdkit.Wrap(raw)
	t.Cleanup(func() { c.Close() })
	return c, raw, calls
}

func TestBadInputSendsNothing(t *testing.T) {
	t.Parallel()
	srv := etcdtest.Start(t) // its revision must move only with this test's writes
	c, raw, calls := kvCountingClient(t, srv)
	closed, _, closedCalls := kvCountingClient(t, srv)
	require.NoError(t, closed.Close())

	p := testPrefix(t)
	str := etcdkit.NewKV(c, p, etcdkit.String())
	root := etcdkit.NewKV(c, "", etcdkit.String())
	bin := etcdkit.NewKV(c, p, etcdkit.Bytes())
	noCodec := etcdkit.NewKV[string](c, p, nil)
	shut := etcdkit.NewKV(closed, p, etcdkit.String())
	cancelled, cancel := context.WithCancel(t.Context())
	cancel()
	ctx := t.Context()

	big := make([]byte, 1572864)
	half := make([]byte, 1572864/2+1)
	var tooMany []etcdkit.Op
	for i := range 129 {
		tooMany = append(tooMany, str.PutOp(fmt.Sprint(i), "v"))
	}
	update := func(s string) (string, error) { return s, nil }
	list := func(kv *etcdkit.KV[string], ctx context.Context) error {
		for _, err := range kv.List(ctx) {
			return err
		}
		return nil
	}
	atomically := func(c *etcdkit.Client, ctx context.Context) error {
		return c.Atomically(ctx, func(tx *etcdkit.Tx) error {
			str.In(tx).Put("k", "v")
			return nil
		})
	}
	first := func(_ any, err error) error { return err }

	tests := []struct {
		name string
		call func() error
		want error
	}{
		{"get empty key", func() error { return first(root.Get(ctx, "")) }, etcdkit.ErrEmptyKey},
		{"put empty key", func() error { return first(root.Put(ctx, "", "v")) }, etcdkit.ErrEmptyKey},
		{"create empty key", func() error { return first(root.Create(ctx, "", "v")) }, etcdkit.ErrEmptyKey},
		{"swap empty key", func() error { return first(root.CompareAndSwap(ctx, "", "v", 1)) }, etcdkit.ErrEmptyKey},
		{"update empty key", func() error { return first(root.Update(ctx, "", update)) }, etcdkit.ErrEmptyKey},
		{"delete empty key", func() error { return first(root.Delete(ctx, "")) }, etcdkit.ErrEmptyKey},
		{"txn empty key", func() error { return first(c.Txn(ctx).If(root.Missing("")).Commit()) }, etcdkit.ErrEmptyKey},
		{"txn empty op key", func() error { return first(c.Txn(ctx).Then(root.PutOp("", "v")).Commit()) }, etcdkit.ErrEmptyKey},
		{"tx empty key", func() error {
			return c.Atomically(ctx, func(tx *etcdkit.Tx) error { root.In(tx).Put("", "v"); return nil })
		}, etcdkit.ErrEmptyKey},
		{"put too large", func() error { return first(bin.Put(ctx, "k", big)) }, etcdkit.ErrTooLarge},
		{"create too large", func() error { return first(bin.Create(ctx, "k", big)) }, etcdkit.ErrTooLarge},
		{"swap too large", func() error { return first(bin.CompareAndSwap(ctx, "k", big, 0)) }, etcdkit.ErrTooLarge},
		{"txn too large", func() error {
			return first(c.Txn(ctx).Then(bin.PutOp("a", half), bin.PutOp("b", half)).Commit())
		}, etcdkit.ErrTooLarge},
		{"txn 129 ops", func() error { return first(c.Txn(ctx).Then(tooMany...).Commit()) }, etcdkit.ErrTooManyOps},
		{"txn 129 conditions", func() error {
			conds := make([]etcdkit.Cond, 129)
			for i := range conds {
				conds[i] = str.Exists(fmt.Sprint(i))
			}
			return first(c.Txn(ctx).If(conds...).Commit())
		}, etcdkit.ErrTooManyOps},
		{"txn duplicate key", func() error {
			return first(c.Txn(ctx).Then(str.PutOp("k", "1"), str.DeleteOp("k")).Commit())
		}, etcdkit.ErrDuplicateKey},
		{"txn zero op", func() error { return first(c.Txn(ctx).Then(etcdkit.Op{}).Commit()) }, etcdkit.ErrInvalidArgument},
		{"txn value that does not encode", func() error {
			bad := etcdkit.NewKV(c, p, etcdkit.JSON[any]())
			return first(c.Txn(ctx).If(bad.ValueIs("k", func() {})).Commit())
		}, etcdkit.ErrInvalidArgument},
		{"put value that does not encode", func() error {
			return first(etcdkit.NewKV(c, p, etcdkit.JSON[any]()).Put(ctx, "k", make(chan int)))
		}, etcdkit.ErrInvalidArgument},
		{"get nil codec", func() error { return first(noCodec.Get(ctx, "k")) }, etcdkit.ErrInvalidArgument},
		{"put nil codec", func() error { return first(noCodec.Put(ctx, "k", "v")) }, etcdkit.ErrInvalidArgument},
		{"list nil codec", func() error { return list(noCodec, ctx) }, etcdkit.ErrInvalidArgument},
		{"txn nil codec", func() error { return first(c.Txn(ctx).Then(noCodec.PutOp("k", "v")).Commit()) }, etcdkit.ErrInvalidArgument},
		{"get cancelled", func() error { return first(str.Get(cancelled, "k")) }, context.Canceled},
		{"put cancelled", func() error { return first(str.Put(cancelled, "k", "v")) }, context.Canceled},
		{"update cancelled", func() error { return first(str.Update(cancelled, "k", update)) }, context.Canceled},
		{"list cancelled", func() error { return list(str, cancelled) }, context.Canceled},
		{"count cancelled", func() error { return first(str.Count(cancelled)) }, context.Canceled},
		{"txn cancelled", func() error { return first(c.Txn(cancelled).Then(str.PutOp("k", "v")).Commit()) }, context.Canceled},
		{"atomically cancelled", func() error { return atomically(c, cancelled) }, context.Canceled},
		{"get closed", func() error { return first(shut.Get(ctx, "k")) }, etcdkit.ErrClosed},
		{"put closed", func() error { return first(shut.Put(ctx, "k", "v")) }, etcdkit.ErrClosed},
		{"delete closed", func() error { return first(shut.Delete(ctx, "k")) }, etcdkit.ErrClosed},
		{"list closed", func() error { return list(shut, ctx) }, etcdkit.ErrClosed},
		{"txn closed", func() error { return first(closed.Txn(ctx).Then(shut.PutOp("k", "v")).Commit()) }, etcdkit.ErrClosed},
		{"atomically closed", func() error { return atomically(closed, ctx) }, etcdkit.ErrClosed},
	}
	// revision takes the subtest's t: require must stop the goroutine
	// that runs the test it fails.
	revision := func(t *testing.T) int64 {
		t.Helper()
		resp, err := raw.Get(ctx, "any")
		require.NoError(t, err)
		return resp.Header.Revision
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rev := revision(t)
			before, closedBefore := calls.Load(), closedCalls.Load()
			err := tt.call()
			sent := calls.Load() - before + closedCalls.Load() - closedBefore
			assert.ErrorIs(t, err, tt.want)
			assert.Zero(t, sent, "requests sent, want none")
			assert.Equal(t, rev, revision(t), "the store's revision moved")
		})
	}

	// The counter does count: a valid call is one request.
	before := calls.Load()
	_, err := str.Get(ctx, "k")
	require.ErrorIs(t, err, etcdkit.ErrNotFound)
	require.Equal(t, int64(1), calls.Load()-before, "requests a Get sent: the counter is broken")
}

func TestKVNamespace(t *testing.T) {
	t.Parallel()
	cfg := testServer.Config()
	cfg.Namespace = "tenant-a/"
	c, err := etcdkit.New(t.Context(), cfg)
	require.NoError(t, err)
	defer c.Close()
	raw := testServer.RawClient(t)
	kv := etcdkit.NewKV(c, testPrefix(t), etcdkit.String())
	ctx := t.Context()

	kvMustPut(t, kv, "a", "1")
	res, err := c.Txn(ctx).If(kv.Exists("a")).Then(kv.PutOp("b", "2"), kv.GetOp("a")).Commit()
	require.NoError(t, err, "Txn")
	require.True(t, res.Succeeded, "Txn")
	e, err := kv.FromResult(res, "a")
	require.NoError(t, err, "FromResult(a)")
	require.Equal(t, "a", e.Key, "FromResult(a)")
	require.Equal(t, "1", e.Value, "FromResult(a)")
	err = c.Atomically(ctx, func(tx *etcdkit.Tx) error {
		v, err := kv.In(tx).Get("b")
		kv.In(tx).Put("c", v+"3")
		return err
	})
	require.NoError(t, err)
	var got []string
	for e, err := range kv.List(ctx) {
		require.NoError(t, err)
		got = append(got, e.Key+"="+e.Value)
	}
	require.Equal(t, "a=1 b=2 c=23", strings.Join(got, " "), "List")
	resp, err := raw.Get(ctx, "tenant-a/"+kv.Prefix(), clientv3.WithPrefix(), clientv3.WithCountOnly())
	require.NoError(t, err, "keys under the namespace")
	require.Equal(t, int64(3), resp.Count, "keys under the namespace")
}
