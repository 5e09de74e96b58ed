package etcdkit_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

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
	if err != nil {
		t.Fatalf("Put(%q): %v", key, err)
	}
	return rev
}

func TestKVGetPut(t *testing.T) {
	t.Parallel()
	srv := kvServer(t)
	kv := etcdkit.NewKV(srv.Client(t), testPrefix(t), etcdkit.JSON[map[string]int]())
	ctx := t.Context()

	if _, err := kv.Get(ctx, "a"); !errors.Is(err, etcdkit.ErrNotFound) {
		t.Fatalf("Get of a missing key: got %v, want ErrNotFound", err)
	}
	rev := kvMustPut(t, kv, "a", map[string]int{"x": 1})
	rev2 := kvMustPut(t, kv, "a", map[string]int{"x": 2})
	if rev2 <= rev {
		t.Fatalf("second Put returned revision %d, want > %d", rev2, rev)
	}
	e, err := kv.Get(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	want := etcdkit.Entry[map[string]int]{Key: "a", Value: map[string]int{"x": 2}, CreateRevision: rev, ModRevision: rev2, Version: 2}
	if fmt.Sprint(e) != fmt.Sprint(want) {
		t.Fatalf("Get = %+v, want %+v", e, want)
	}
	if ok, err := kv.Delete(ctx, "a"); err != nil || !ok {
		t.Fatalf("Delete of an existing key = %v, %v; want true, nil", ok, err)
	}
	if ok, err := kv.Delete(ctx, "a"); err != nil || ok {
		t.Fatalf("Delete of a missing key = %v, %v; want false, nil", ok, err)
	}
}

func TestKVCreate(t *testing.T) {
	t.Parallel()
	srv := kvServer(t)
	kv := etcdkit.NewKV(srv.Client(t), testPrefix(t), etcdkit.String())
	ctx := t.Context()

	rev, err := kv.Create(ctx, "k", "first")
	if err != nil {
		t.Fatalf("Create of a new key: %v", err)
	}
	if _, err := kv.Create(ctx, "k", "second"); !errors.Is(err, etcdkit.ErrExists) {
		t.Fatalf("Create of an existing key: got %v, want ErrExists", err)
	}
	e, err := kv.Get(ctx, "k")
	if err != nil || e.Value != "first" || e.ModRevision != rev {
		t.Fatalf("after a failed Create, Get = %+v, %v; want the first value at revision %d", e, err, rev)
	}
}

func TestKVCompareAndSwap(t *testing.T) {
	t.Parallel()
	srv := kvServer(t)
	kv := etcdkit.NewKV(srv.Client(t), testPrefix(t), etcdkit.String())
	ctx := t.Context()

	rev1, err := kv.CompareAndSwap(ctx, "k", "v1", 0)
	if err != nil {
		t.Fatalf("CompareAndSwap with revision 0 on a missing key: %v", err)
	}
	rev2, err := kv.CompareAndSwap(ctx, "k", "v2", rev1)
	if err != nil {
		t.Fatalf("CompareAndSwap at the current revision: %v", err)
	}

	_, err = kv.CompareAndSwap(ctx, "k", "v3", rev1)
	if !errors.Is(err, etcdkit.ErrConflict) {
		t.Fatalf("CompareAndSwap at a stale revision: got %v, want ErrConflict", err)
	}
	cur, ok := etcdkit.CurrentEntry[string](err)
	if !ok || cur.Value != "v2" || cur.ModRevision != rev2 || cur.Key != "k" {
		t.Fatalf("conflict's current entry = %+v, %v; want v2 at revision %d", cur, ok, rev2)
	}

	if _, err := kv.Delete(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	_, err = kv.CompareAndSwap(ctx, "k", "v4", rev2)
	var ce *etcdkit.ConflictError
	if !errors.As(err, &ce) || ce.Current != nil || ce.Key != "k" {
		t.Fatalf("CompareAndSwap on a deleted key: got %v, want a ConflictError with no current entry", err)
	}
}

func TestKVCompareAndSwapKeepsLease(t *testing.T) {
	t.Parallel()
	srv := kvServer(t)
	raw := srv.RawClient(t)
	kv := etcdkit.NewKV(srv.Client(t), testPrefix(t), etcdkit.String())
	ctx := t.Context()

	lease, err := raw.Grant(ctx, 60)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := raw.Put(ctx, kv.Prefix()+"k", "v1", clientv3.WithLease(lease.ID))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.CompareAndSwap(ctx, "k", "v2", resp.Header.Revision); err != nil {
		t.Fatal(err)
	}
	e, err := kv.Update(ctx, "k", func(s string) (string, error) { return s + "!", nil })
	if err != nil {
		t.Fatal(err)
	}
	if e.Lease != int64(lease.ID) {
		t.Fatalf("Update returned lease %d, want %d", e.Lease, lease.ID)
	}
	got, err := kv.Get(ctx, "k")
	if err != nil || got.Value != "v2!" || got.Lease != int64(lease.ID) {
		t.Fatalf("after swaps, Get = %+v, %v; want v2! with lease %d", got, err, lease.ID)
	}
}

func TestKVUpdateConcurrent(t *testing.T) {
	t.Parallel()
	srv := kvServer(t)
	kv := etcdkit.NewKV(srv.Client(t), testPrefix(t), etcdkit.JSON[int]())
	ctx := t.Context()
	kvMustPut(t, kv, "counter", 0)
	start, err := kv.Get(ctx, "counter")
	if err != nil {
		t.Fatal(err)
	}

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
		t.Errorf("Update: %v", err)
	}
	e, err := kv.Get(ctx, "counter")
	if err != nil {
		t.Fatal(err)
	}
	if e.Value != workers*increments || e.Version != start.Version+workers*increments {
		t.Fatalf("counter = %d at version %d, want %d at version %d", e.Value, e.Version, workers*increments, start.Version+workers*increments)
	}
}

func TestKVUpdateErrors(t *testing.T) {
	t.Parallel()
	srv := kvServer(t)
	kv := etcdkit.NewKV(srv.Client(t), testPrefix(t), etcdkit.JSON[int]())
	ctx := t.Context()

	called := false
	_, err := kv.Update(ctx, "missing", func(n int) (int, error) { called = true; return n, nil })
	if !errors.Is(err, etcdkit.ErrNotFound) || called {
		t.Fatalf("Update of a missing key: got %v (fn called: %v), want ErrNotFound without calling fn", err, called)
	}

	rev := kvMustPut(t, kv, "k", 1)
	errStop := errors.New("stop")
	_, err = kv.Update(ctx, "k", func(n int) (int, error) { return 0, errStop })
	if !errors.Is(err, errStop) {
		t.Fatalf("Update whose fn fails: got %v, want fn's error", err)
	}
	if e, _ := kv.Get(ctx, "k"); e.ModRevision != rev {
		t.Fatalf("a failed Update wrote: mod revision %d, want %d", e.ModRevision, rev)
	}

	// fn deletes the key on its first call: the swap conflicts and finds
	// the key gone.
	_, err = kv.Update(ctx, "k", func(n int) (int, error) {
		if _, err := kv.Delete(ctx, "k"); err != nil {
			return 0, err
		}
		return n + 1, nil
	})
	if !errors.Is(err, etcdkit.ErrNotFound) {
		t.Fatalf("Update of a key deleted meanwhile: got %v, want ErrNotFound", err)
	}
}

func TestKVCompareAndDelete(t *testing.T) {
	t.Parallel()
	srv := kvServer(t)
	kv := etcdkit.NewKV(srv.Client(t), testPrefix(t), etcdkit.String())
	ctx := t.Context()

	rev1 := kvMustPut(t, kv, "k", "v1")
	rev2 := kvMustPut(t, kv, "k", "v2")
	_, err := kv.CompareAndDelete(ctx, "k", rev1)
	if cur, ok := etcdkit.CurrentEntry[string](err); !errors.Is(err, etcdkit.ErrConflict) || !ok || cur.ModRevision != rev2 {
		t.Fatalf("CompareAndDelete at a stale revision: got %v (current %+v), want ErrConflict with revision %d", err, cur, rev2)
	}
	if _, err := kv.CompareAndDelete(ctx, "k", rev2); err != nil {
		t.Fatalf("CompareAndDelete at the current revision: %v", err)
	}
	if _, err := kv.Get(ctx, "k"); !errors.Is(err, etcdkit.ErrNotFound) {
		t.Fatalf("after CompareAndDelete, Get: got %v, want ErrNotFound", err)
	}
	if _, err := kv.CompareAndDelete(ctx, "k", rev2); !errors.Is(err, etcdkit.ErrConflict) {
		t.Fatalf("CompareAndDelete of a missing key: got %v, want ErrConflict", err)
	}
}

func TestKVDecodeError(t *testing.T) {
	t.Parallel()
	srv := kvServer(t)
	raw := srv.RawClient(t)
	kv := etcdkit.NewKV(srv.Client(t), testPrefix(t), etcdkit.JSON[int]())
	ctx := t.Context()

	kvMustPut(t, kv, "a", 1)
	if _, err := raw.Put(ctx, kv.Prefix()+"b", "{garbage"); err != nil {
		t.Fatal(err)
	}
	kvMustPut(t, kv, "c", 3)

	_, err := kv.Get(ctx, "b")
	var de *etcdkit.DecodeError
	if !errors.As(err, &de) || de.Key != "b" {
		t.Fatalf("Get of a value that does not decode: got %v, want a DecodeError for b", err)
	}
	if _, err := kv.Update(ctx, "b", func(n int) (int, error) { return n, nil }); !errors.As(err, &de) {
		t.Fatalf("Update of a value that does not decode: got %v, want a DecodeError", err)
	}

	var keys []string
	var decodeErrs int
	for e, err := range kv.List(ctx) {
		switch {
		case errors.As(err, &de):
			decodeErrs++
		case err != nil:
			t.Fatalf("List: %v", err)
		default:
			keys = append(keys, e.Key)
		}
	}
	if !slices.Equal(keys, []string{"a", "c"}) || decodeErrs != 1 {
		t.Fatalf("List yielded %v and %d decode errors, want [a c] and 1", keys, decodeErrs)
	}
}

func TestKVListOptions(t *testing.T) {
	t.Parallel()
	srv := kvServer(t)
	kv := etcdkit.NewKV(srv.Client(t), testPrefix(t), etcdkit.String())
	ctx := t.Context()
	// A key just past the prefix must never be listed.
	if _, err := srv.RawClient(t).Put(ctx, strings.TrimSuffix(kv.Prefix(), "/")+"0", "x"); err != nil {
		t.Fatal(err)
	}

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
				if err != nil {
					t.Fatalf("List: %v", err)
				}
				got = append(got, e.Key+"="+e.Value)
			}
			if s := strings.Join(got, " "); s != tt.want {
				t.Fatalf("List = %q, want %q", s, tt.want)
			}
		})
	}

	t.Run("keys only metadata", func(t *testing.T) {
		for e, err := range kv.List(ctx, etcdkit.WithKeysOnly(), etcdkit.WithRange("b", "c")) {
			if err != nil || e.ModRevision != revs[1] || e.CreateRevision != revs[1] || e.Version != 1 {
				t.Fatalf("keys-only entry = %+v, %v; want revisions %d and version 1", e, err, revs[1])
			}
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
		if n != 2 {
			t.Fatalf("loop ran %d times after break at 2", n)
		}
	})
	t.Run("bad page size", func(t *testing.T) {
		for _, err := range kv.List(ctx, etcdkit.WithPageSize(0)) {
			if !errors.Is(err, etcdkit.ErrInvalidArgument) {
				t.Fatalf("List with page size 0: got %v, want ErrInvalidArgument", err)
			}
		}
	})
	t.Run("count", func(t *testing.T) {
		if n, err := kv.Count(ctx); err != nil || n != 5 {
			t.Fatalf("Count = %d, %v; want 5", n, err)
		}
	})
}

func TestKVListSnapshot(t *testing.T) {
	t.Parallel()
	srv := kvServer(t)
	raw := srv.RawClient(t)
	kv := etcdkit.NewKV(srv.Client(t), testPrefix(t), etcdkit.String())
	ctx := t.Context()

	const n = 10000
	kvPutKeys(t, raw, kv.Prefix(), n)

	// The writer changes and adds keys all over the prefix while the list
	// is read. After the first entry, the reader waits until it has written
	// enough that a listing which is not one snapshot must show it.
	stop := make(chan struct{})
	written := make(chan struct{})
	var writerErr error
	var wg sync.WaitGroup
	wg.Go(func() { writerErr = kvWriteAllOver(ctx, raw, kv.Prefix(), n, stop, written) })

	var got []etcdkit.Entry[string]
	var maxMod int64
	for e, err := range kv.List(ctx, etcdkit.WithPageSize(100)) {
		if err != nil {
			t.Fatalf("List after %d entries: %v", len(got), err)
		}
		if len(got) == 0 {
			<-written
		}
		got = append(got, e)
		maxMod = max(maxMod, e.ModRevision)
	}
	close(stop)
	wg.Wait()
	if writerErr != nil {
		t.Fatalf("writer: %v", writerErr)
	}

	// The writer only puts, so the prefix at the highest mod revision listed
	// is the state of every later revision up to the snapshot's.
	want, err := raw.Get(ctx, kv.Prefix(), clientv3.WithPrefix(), clientv3.WithRev(maxMod))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want.Kvs) {
		t.Fatalf("List returned %d entries, the snapshot at revision %d has %d", len(got), maxMod, len(want.Kvs))
	}
	for i, e := range got {
		w := want.Kvs[i]
		if i > 0 && e.Key <= got[i-1].Key {
			t.Fatalf("entry %d: key %q after %q: not in order or repeated", i, e.Key, got[i-1].Key)
		}
		if kv.Prefix()+e.Key != string(w.Key) || e.Value != string(w.Value) || e.ModRevision != w.ModRevision {
			t.Fatalf("entry %d = %s=%s@%d, the snapshot has %s=%s@%d", i, e.Key, e.Value, e.ModRevision, w.Key, w.Value, w.ModRevision)
		}
	}
	latest, err := raw.Get(ctx, kv.Prefix(), clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	if latest.Count <= int64(n) {
		t.Fatalf("the writer added no key (%d keys now): the test proved nothing", latest.Count)
	}
}

// kvPutKeys writes keys prefix+"k00000" … with values "v0", in transactions
// of 128 puts.
func kvPutKeys(t testing.TB, raw *clientv3.Client, prefix string, n int) {
	t.Helper()
	var ops []clientv3.Op
	for i := range n {
		ops = append(ops, clientv3.OpPut(fmt.Sprintf("%sk%05d", prefix, i), "v0"))
		if len(ops) == 128 || i == n-1 {
			if _, err := raw.Txn(t.Context()).Then(ops...).Commit(); err != nil {
				t.Fatal(err)
			}
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
	if !errors.As(err, &ce) || !errors.Is(err, etcdkit.ErrCompacted) {
		t.Fatalf("List across a compaction ended after %d entries with %v, want a CompactedError", n, err)
	}
	if n != 3 {
		t.Fatalf("List yielded %d entries before the error, want the first page of 3", n)
	}
	cur, err := raw.Get(ctx, "any")
	if err != nil {
		t.Fatal(err)
	}
	if ce.Revision != cur.Header.Revision {
		t.Fatalf("CompactedError.Revision = %d, want the compaction point %d", ce.Revision, cur.Header.Revision)
	}
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
	if err != nil {
		t.Fatal(err)
	}
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
	if err := closed.Close(); err != nil {
		t.Fatal(err)
	}

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
	revision := func() int64 {
		t.Helper()
		resp, err := raw.Get(ctx, "any")
		if err != nil {
			t.Fatal(err)
		}
		return resp.Header.Revision
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rev := revision()
			before, closedBefore := calls.Load(), closedCalls.Load()
			err := tt.call()
			sent := calls.Load() - before + closedCalls.Load() - closedBefore
			if !errors.Is(err, tt.want) {
				t.Errorf("got %v, want %v", err, tt.want)
			}
			if sent != 0 {
				t.Errorf("%d requests were sent, want none", sent)
			}
			if now := revision(); now != rev {
				t.Errorf("the store moved from revision %d to %d", rev, now)
			}
		})
	}

	// The counter does count: a valid call is one request.
	before := calls.Load()
	if _, err := str.Get(ctx, "k"); !errors.Is(err, etcdkit.ErrNotFound) {
		t.Fatal(err)
	}
	if sent := calls.Load() - before; sent != 1 {
		t.Fatalf("a Get sent %d requests, want 1: the counter is broken", sent)
	}
}

func TestKVNamespace(t *testing.T) {
	t.Parallel()
	cfg := testServer.Config()
	cfg.Namespace = "tenant-a/"
	c, err := etcdkit.New(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	raw := testServer.RawClient(t)
	kv := etcdkit.NewKV(c, testPrefix(t), etcdkit.String())
	ctx := t.Context()

	kvMustPut(t, kv, "a", "1")
	res, err := c.Txn(ctx).If(kv.Exists("a")).Then(kv.PutOp("b", "2"), kv.GetOp("a")).Commit()
	if err != nil || !res.Succeeded {
		t.Fatalf("Txn: %v, %v", res.Succeeded, err)
	}
	if e, err := kv.FromResult(res, "a"); err != nil || e.Key != "a" || e.Value != "1" {
		t.Fatalf("FromResult(a) = %+v, %v; want a=1", e, err)
	}
	err = c.Atomically(ctx, func(tx *etcdkit.Tx) error {
		v, err := kv.In(tx).Get("b")
		kv.In(tx).Put("c", v+"3")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for e, err := range kv.List(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, e.Key+"="+e.Value)
	}
	if s := strings.Join(got, " "); s != "a=1 b=2 c=23" {
		t.Fatalf("List = %q, want %q", s, "a=1 b=2 c=23")
	}
	resp, err := raw.Get(ctx, "tenant-a/"+kv.Prefix(), clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil || resp.Count != 3 {
		t.Fatalf("keys under the namespace: %d, %v; want 3", resp.Count, err)
	}
}
