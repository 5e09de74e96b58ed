package etcdkit_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/etcdkit/etcdkit"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// takenSnapshot is a snapshot and what it listed when it was taken.
type takenSnapshot struct {
	snap *etcdkit.Snapshot[string]
	rev  int64
	list []etcdkit.Entry[string]
}

// TestSnapshotWholeTransactions takes snapshots while another client makes
// 200 transactions that each write three keys: every snapshot shows whole
// transactions, and none changes afterwards.
func TestSnapshotWholeTransactions(t *testing.T) {
	t.Parallel()
	kv := etcdkit.NewKV(newClient(t), testPrefix(t), etcdkit.String())
	writer := newClient(t)
	wkv := etcdkit.NewKV(writer, testPrefix(t), etcdkit.String())
	ctx := testCtx(t)
	names := []string{"a", "b", "c"}
	write := txnWriter(t, ctx, writer, wkv, names)
	write(0)
	m, err := kv.Mirror(ctx)
	require.NoError(t, err)
	defer m.Close()

	const writes, keep = 200, 500
	var taken []takenSnapshot
	var stop atomic.Bool
	var wg sync.WaitGroup
	wg.Go(func() { // assert, not require: not the test's goroutine
		for i := 0; i < 100_000 && (!stop.Load() || i == 0); i++ {
			s := m.Snapshot()
			list := s.List()
			if !assert.Len(t, list, len(names), "List() at revision %d", s.Revision()) {
				return
			}
			for _, k := range names {
				e, ok := s.Get(k)
				assert.True(t, ok, "Get(%s) at revision %d", k, s.Revision())
				assert.Equal(t, list[0].ModRevision, e.ModRevision, "Get(%s) at revision %d: half a transaction", k, s.Revision())
			}
			assert.LessOrEqual(t, list[0].ModRevision, s.Revision(), "entry newer than the snapshot")
			if len(taken) < keep && (len(taken) == 0 || taken[len(taken)-1].rev != s.Revision()) {
				taken = append(taken, takenSnapshot{snap: s, rev: s.Revision(), list: list})
			}
			runtime.Gosched() // leave the writer some CPU
		}
	})
	var rev int64
	for i := 1; i <= writes; i++ {
		rev = write(i)
	}
	require.NoError(t, m.WaitForRevision(ctx, rev))
	stop.Store(true)
	wg.Wait()

	revs := map[int64]bool{}
	for _, ts := range taken {
		revs[ts.rev] = true
		assert.Equal(t, ts.rev, ts.snap.Revision(), "Revision() changed")
		assert.Equal(t, ts.list, ts.snap.List(), "List() at revision %d changed", ts.rev)
		assert.Equal(t, ts.list, slices.Collect(ts.snap.All()), "All() at revision %d", ts.rev)
		assert.Equal(t, len(ts.list), ts.snap.Len(), "Len() at revision %d", ts.rev)
	}
	t.Logf("%d snapshots at %d revisions", len(taken), len(revs))
	last := m.Snapshot()
	assert.GreaterOrEqual(t, last.Revision(), rev)
	c, _ := last.Get("c")
	assert.Equal(t, strconv.Itoa(writes), c.Value)
}

// TestSnapshotBytesAreCopied: a Bytes value from a Snapshot is the
// caller's, as from the Mirror.
func TestSnapshotBytesAreCopied(t *testing.T) {
	t.Parallel()
	kv := etcdkit.NewKV(newClient(t), testPrefix(t), etcdkit.Bytes())
	ctx := testCtx(t)
	_, err := kv.Put(ctx, "k", []byte("abc"))
	require.NoError(t, err)
	m, err := kv.Mirror(ctx, etcdkit.WithIndex("all", func(etcdkit.Entry[[]byte]) []string { return []string{"x"} }))
	require.NoError(t, err)
	defer m.Close()
	s := m.Snapshot()
	e, _ := s.Get("k")
	e.Value[0] = 'X'
	s.List()[0].Value[0] = 'X'
	for e := range s.All() {
		e.Value[0] = 'X'
	}
	s.ByIndex("all", "x")[0].Value[0] = 'X'
	got, _ := s.Get("k")
	assert.Equal(t, "abc", string(got.Value))
}

// colors is the test index: the comma-separated words of a value, given
// as they come, repeats included.
func colors(e etcdkit.Entry[string]) []string {
	if e.Value == "" {
		return nil
	}
	return strings.Split(e.Value, ",")
}

// scanIndex is what ByIndex must answer: List filtered by fn, per value.
func scanIndex(list []etcdkit.Entry[string], fn func(etcdkit.Entry[string]) []string) map[string][]etcdkit.Entry[string] {
	out := map[string][]etcdkit.Entry[string]{}
	for _, e := range list {
		seen := map[string]bool{}
		for _, v := range fn(e) {
			if !seen[v] {
				seen[v] = true
				out[v] = append(out[v], e)
			}
		}
	}
	return out
}

// TestIndexAgreesWithScan runs a random workload of puts, deletes and
// transactions, and at every revision a snapshot shows, checks that each
// index answers what a scan of the snapshot filtered by its function does.
func TestIndexAgreesWithScan(t *testing.T) {
	t.Parallel()
	cli := newClient(t)
	kv := etcdkit.NewKV(cli, testPrefix(t), etcdkit.String())
	// 3,000 writes one after another: a loaded machine needs more than
	// testCtx's 30 seconds.
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	_, err := cli.Raw().Delete(ctx, kv.Prefix(), clientv3.WithPrefix())
	require.NoError(t, err)
	first := func(e etcdkit.Entry[string]) []string { return colors(e)[:min(1, len(colors(e)))] }

	// Enough keys for a value to be held by more than 64 of them, and a
	// second half that deletes more than it puts, so that buckets grow
	// past the size where they become sets and shrink back.
	const nkeys = 300
	words := []string{"red", "green", "blue"}
	value := func(r *rand.Rand) string {
		n := r.IntN(4)
		vs := make([]string, n)
		for i := range vs {
			vs[i] = words[r.IntN(len(words))]
		}
		return strings.Join(vs, ",")
	}
	seenValues := slices.Clone(words)
	check := func(s *etcdkit.Snapshot[string]) bool {
		list := s.List()
		ok := true
		for name, fn := range map[string]func(etcdkit.Entry[string]) []string{"colors": colors, "first": first} {
			scan := scanIndex(list, fn)
			for _, v := range seenValues {
				ok = assert.Equal(t, scan[v], s.ByIndex(name, v), "ByIndex(%q, %q) at revision %d", name, v, s.Revision()) && ok
			}
		}
		return ok
	}

	// OnEntryChange runs after each revision is published and holds back
	// the next one while it runs: a snapshot taken there is at the
	// revision just applied, so every revision gets checked.
	var mirror atomic.Pointer[etcdkit.Mirror[string]]
	checked := map[int64]bool{}
	failed := false
	onChange := func(string, *etcdkit.Entry[string], *etcdkit.Entry[string]) {
		m := mirror.Load()
		if m == nil || failed {
			return
		}
		s := m.Snapshot()
		if !checked[s.Revision()] {
			checked[s.Revision()] = true
			failed = !check(s)
		}
	}
	m, err := kv.Mirror(ctx, etcdkit.WithIndex("colors", colors), etcdkit.WithIndex("first", first),
		etcdkit.OnEntryChange(onChange))
	require.NoError(t, err)
	defer m.Close()
	mirror.Store(m)
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(1, seed))
	const ops = 3000
	var rev int64
	largest := 0
	for op := range ops {
		key := "k" + strconv.Itoa(r.IntN(nkeys))
		deletes := 1 // in 5
		if op >= ops/2 {
			deletes = 3
		}
		switch n := r.IntN(5); {
		case n < deletes:
			var res etcdkit.TxnResult
			res, err = cli.Txn(ctx).Then(kv.DeleteOp(key)).Commit()
			rev = res.Revision
		case n == deletes:
			var tx []etcdkit.Op
			for _, n := range r.Perm(nkeys)[:1+r.IntN(4)] { // distinct keys: etcd refuses repeats
				k := "k" + strconv.Itoa(n)
				if r.IntN(5) < deletes {
					tx = append(tx, kv.DeleteOp(k))
				} else {
					tx = append(tx, kv.PutOp(k, value(r)))
				}
			}
			var res etcdkit.TxnResult
			res, err = cli.Txn(ctx).Then(tx...).Commit()
			rev = res.Revision
		default:
			rev, err = kv.Put(ctx, key, value(r))
		}
		require.NoError(t, err)
		largest = max(largest, len(m.ByIndex("first", "red")))
	}
	require.NoError(t, m.WaitForRevision(ctx, rev))
	m.Close() // waits for the callback: checked is the test's again
	assert.True(t, check(m.Snapshot()), "at the last revision")
	assert.Nil(t, m.ByIndex("no such index", "red"), "ByIndex with an unknown name")
	assert.Nil(t, m.ByIndex("colors", "no such value"), "ByIndex with an unknown value")
	assert.Equal(t, scanIndex(m.List(), colors)["red"], m.ByIndex("colors", "red"), "Mirror.ByIndex")
	t.Logf("checked %d of %d revisions; index value red had up to %d keys, %d at the end",
		len(checked), ops, largest, len(m.ByIndex("first", "red")))
}

// TestLiveLoadWithRevision reads value and revision while another client
// writes: each pair read is one write's value and its revision.
func TestLiveLoadWithRevision(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	kv := etcdkit.NewKV(newClient(t), testPrefix(t), etcdkit.String())
	wkv := etcdkit.NewKV(newClient(t), testPrefix(t), etcdkit.String())
	first, err := wkv.Put(ctx, "k", "0")
	require.NoError(t, err)
	l, err := kv.Follow(ctx, "k")
	require.NoError(t, err)
	defer l.Close()
	type read struct {
		v   string
		rev int64
	}
	var reads []read
	var stop atomic.Bool
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; i < 1_000_000 && !stop.Load(); i++ {
			v, rev := l.LoadWithRevision()
			if len(reads) == 0 || reads[len(reads)-1].rev != rev {
				reads = append(reads, read{v, rev})
			}
			runtime.Gosched()
		}
	})
	written := map[int64]string{first: "0"}
	var rev int64
	for i := 1; i <= 100; i++ {
		rev, err = wkv.Put(ctx, "k", strconv.Itoa(i))
		require.NoError(t, err)
		written[rev] = strconv.Itoa(i)
	}
	require.Eventually(t, func() bool { return l.Revision() == rev }, 10*time.Second, time.Millisecond)
	stop.Store(true)
	wg.Wait()
	require.NotEmpty(t, reads)
	for _, r := range reads {
		assert.Equal(t, written[r.rev], r.v, "value read with revision %d", r.rev)
	}
	v, got := l.LoadWithRevision()
	assert.Equal(t, "100", v)
	assert.Equal(t, rev, got)
}

// loadKeys puts n keys "k<i>" under prefix with value "v<i mod n/10>", so
// that each value is held by 10 keys, unless they are there already.
func loadKeys(b *testing.B, cli *etcdkit.Client, prefix string, n int) {
	ctx := testCtx(b)
	resp, err := cli.Raw().Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
	require.NoError(b, err)
	if resp.Count == int64(n) {
		return
	}
	const perTxn = 128
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for start := w * perTxn; start < n; start += 4 * perTxn {
				var ops []clientv3.Op
				for i := start; i < min(start+perTxn, n); i++ {
					ops = append(ops, clientv3.OpPut(fmt.Sprintf("%sk%06d", prefix, i), fmt.Sprintf("v%05d", i%(n/10))))
				}
				_, err := cli.Raw().Txn(ctx).Then(ops...).Commit()
				if !assert.NoError(b, err) {
					return
				}
			}
		})
	}
	wg.Wait()
}

var snapshotSink *etcdkit.Snapshot[string]

// BenchmarkMirrorSnapshot is what taking a snapshot costs.
func BenchmarkMirrorSnapshot(b *testing.B) {
	kv := etcdkit.NewKV(newClient(b), testPrefix(b), etcdkit.String())
	_, err := kv.Put(testCtx(b), "k", "v")
	require.NoError(b, err)
	m, err := kv.Mirror(testCtx(b))
	require.NoError(b, err)
	defer m.Close()
	b.ReportAllocs()
	for b.Loop() {
		snapshotSink = m.Snapshot()
	}
}

// heapInUse returns the live heap after a collection.
func heapInUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// BenchmarkMirrorByIndex looks up one index value held by 10 of 100,000
// entries (impl=index), against a filter of every entry (impl=scan), and
// reports the heap the index takes per entry: the growth of
// the heap when AddIndex builds it on a running mirror, which reads
// nothing from the server, so that the server's own allocations do not
// blur the figure as they would between starting two mirrors.
func BenchmarkMirrorByIndex(b *testing.B) {
	const n = 100_000
	cli := newClient(b)
	kv := etcdkit.NewKV(cli, testPrefix(b), etcdkit.String())
	loadKeys(b, cli, kv.Prefix(), n)
	ctx := testCtx(b)

	base := heapInUse()
	m, err := kv.Mirror(ctx)
	require.NoError(b, err)
	defer m.Close()
	mirrorHeap := heapInUse() - base
	base = heapInUse()
	require.NoError(b, m.AddIndex("value", func(e etcdkit.Entry[string]) []string { return []string{e.Value} }))
	indexHeap := heapInUse() - base
	require.Equal(b, n, m.Len())

	require.Len(b, m.ByIndex("value", "v00042"), 10)
	values := make([]string, n/10)
	for i := range values {
		values[i] = fmt.Sprintf("v%05d", i)
	}
	lookups := map[string]func(value string) []etcdkit.Entry[string]{
		"index": func(v string) []etcdkit.Entry[string] { return m.ByIndex("value", v) },
		// The same answer without an index: a filter of every entry.
		"scan": func(v string) []etcdkit.Entry[string] {
			var es []etcdkit.Entry[string]
			for e := range m.Snapshot().All() {
				if e.Value == v {
					es = append(es, e)
				}
			}
			return es
		},
	}
	for _, impl := range []string{"index", "scan"} {
		b.Run("impl="+impl, func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				i++
				if len(lookups[impl](values[i%len(values)])) != 10 {
					b.Fatal("did not find 10 entries")
				}
			}
			b.ReportMetric(float64(indexHeap)/n, "index-B/entry")
			b.ReportMetric(float64(mirrorHeap)/n, "mirror-B/entry")
		})
	}
}

// TestSnapshotDoesNotAllocate: taking a snapshot copies nothing, and a
// ByIndex of a string index allocates only the slice it returns.
// Not parallel: AllocsPerRun counts every goroutine's allocations, and
// truncates their mean, so the server's own few stay below one a run.
func TestSnapshotDoesNotAllocate(t *testing.T) {
	kv := etcdkit.NewKV(newClient(t), testPrefix(t), etcdkit.String())
	ctx := testCtx(t)
	_, err := kv.Put(ctx, "k", "v")
	require.NoError(t, err)
	m, err := kv.Mirror(ctx, etcdkit.WithIndex("value", func(e etcdkit.Entry[string]) []string { return []string{e.Value} }))
	require.NoError(t, err)
	defer m.Close()
	assert.Zero(t, testing.AllocsPerRun(1000, func() { snapshotSink = m.Snapshot() }), "Snapshot()")
	assert.Equal(t, 1.0, testing.AllocsPerRun(1000, func() { m.ByIndex("value", "v") }), "ByIndex()")
	l, err := kv.Follow(ctx, "k")
	require.NoError(t, err)
	defer l.Close()
	assert.Zero(t, testing.AllocsPerRun(1000, func() { stringSink, _ = l.LoadWithRevision() }), "LoadWithRevision()")
}

var stringSink string

// TestWithIndexSameName: a second WithIndex with a name already given
// replaces the first.
func TestWithIndexSameName(t *testing.T) {
	t.Parallel()
	kv := etcdkit.NewKV(newClient(t), testPrefix(t), etcdkit.String())
	ctx := testCtx(t)
	_, err := kv.Put(ctx, "k", "1")
	require.NoError(t, err)
	m, err := kv.Mirror(ctx,
		etcdkit.WithIndex("v", func(e etcdkit.Entry[string]) []string { return []string{e.Value} }),
		etcdkit.WithIndex("v", func(e etcdkit.Entry[string]) []string { return []string{"x" + e.Value} }))
	require.NoError(t, err)
	defer m.Close()
	assert.Nil(t, m.ByIndex("v", "1"), "the first function's value")
	assert.Equal(t, []string{"k"}, keys(m.ByIndex("v", "x1")), "the second function's value")
}

// TestIndexAfterCompactionGap: when the mirror lists its keys again after
// a compaction, its index is built again from that listing, and a snapshot
// from before the gap keeps its own answers.
func TestIndexAfterCompactionGap(t *testing.T) {
	t.Parallel()
	g := newGapCluster(t)
	lagging, kv, ctx := g.lagging, g.kv, testCtx(t)
	byValue := func(e etcdkit.Entry[string]) []string { return []string{e.Value} }
	m, err := lagging.Mirror(ctx, etcdkit.WithIndex("value", byValue))
	require.NoError(t, err)
	defer m.Close()
	before := m.Snapshot()

	last := g.gap(t, func() (int64, error) {
		kv.Put(ctx, "a", "2")
		kv.Delete(ctx, "b")
		kv.Put(ctx, "d", "1")
		return kv.Put(ctx, "a", "3")
	})

	require.NoError(t, m.WaitForRevision(ctx, last))
	assert.Equal(t, []string{"c", "d"}, keys(m.ByIndex("value", "1")), `ByIndex("value", "1") after the gap`)
	assert.Equal(t, []string{"a"}, keys(m.ByIndex("value", "3")), `ByIndex("value", "3") after the gap`)
	assert.Nil(t, m.ByIndex("value", "2"), `ByIndex("value", "2"): a value only the gap held`)
	assert.Equal(t, []string{"a", "b", "c"}, keys(before.ByIndex("value", "1")), "the snapshot from before the gap")
}
