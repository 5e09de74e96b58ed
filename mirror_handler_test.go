package etcdkit_test

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/etcdkit/etcdkit"
)

// batchLog records what a handler is given.
type batchLog struct {
	mu      sync.Mutex
	batches []etcdkit.MirrorBatch[string]
}

func (l *batchLog) record(b etcdkit.MirrorBatch[string]) {
	l.mu.Lock()
	l.batches = append(l.batches, b)
	l.mu.Unlock()
}

func (l *batchLog) get() []etcdkit.MirrorBatch[string] {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]etcdkit.MirrorBatch[string](nil), l.batches...)
}

// revision is that of the last batch recorded, 0 before any.
func (l *batchLog) revision() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.batches) == 0 {
		return 0
	}
	return l.batches[len(l.batches)-1].Revision
}

// waitRevision waits, for at most 10 seconds, until the log has a batch
// of rev or later.
func (l *batchLog) waitRevision(t *testing.T, rev int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for l.revision() < rev && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	require.GreaterOrEqual(t, l.revision(), rev, "the handler's last batch")
}

// fold applies batches to an empty map, checking that each change's Old
// is what the map held and that revisions only grow; it returns the map
// as key -> value.
func fold(t *testing.T, batches []etcdkit.MirrorBatch[string]) map[string]string {
	t.Helper()
	state := map[string]string{}
	var rev int64
	for i, b := range batches {
		if i == 0 {
			assert.Equal(t, etcdkit.BatchInitial, b.Kind, "the first batch")
		}
		assert.Greater(t, b.Revision, rev, "batch %d (%v) after revision %d", i, b.Kind, rev)
		for _, c := range b.Changes {
			assert.LessOrEqual(t, c.Revision, b.Revision, "change of %s in batch %d", c.Key, i)
			if b.Kind == etcdkit.BatchChanged {
				assert.Greater(t, c.Revision, rev, "change of %s in batch %d: from an earlier batch", c.Key, i)
			}
			if old, ok := state[c.Key]; b.Kind != etcdkit.BatchInitial && assert.Equal(t, ok, c.Old != nil, "Old of %s in batch %d", c.Key, i) && ok {
				assert.Equal(t, old, c.Old.Value, "Old of %s in batch %d", c.Key, i)
			}
			if c.New == nil {
				delete(state, c.Key)
			} else {
				state[c.Key] = c.New.Value
			}
		}
		rev = b.Revision
	}
	return state
}

// asMap is a snapshot's entries as key -> value.
func asMap(s *etcdkit.Snapshot[string]) map[string]string {
	m := map[string]string{}
	for e := range s.All() {
		m[e.Key] = e.Value
	}
	return m
}

// TestMirrorHandlerSlowDoesNotDelayOthers: while one handler is stuck in
// its first batch, another is given every revision, and reads go on. The
// stuck one's queue overflows: once it returns it is told it fell behind,
// with the difference that brings it to the mirror's state.
func TestMirrorHandlerSlowDoesNotDelayOthers(t *testing.T) {
	t.Parallel()
	kv := etcdkit.NewKV(newClient(t), testPrefix(t), etcdkit.String())
	ctx := testCtx(t)
	_, err := kv.Put(ctx, "k0", "0")
	require.NoError(t, err)
	m, err := kv.Mirror(ctx)
	require.NoError(t, err)
	defer m.Close()

	gate := make(chan struct{})
	var slowLog, fastLog batchLog
	stuck := make(chan struct{}, 100)
	slow := m.AddHandler(func(b etcdkit.MirrorBatch[string]) {
		slowLog.record(b)
		if b.Kind != etcdkit.BatchInitial {
			stuck <- struct{}{}
			<-gate
		}
	}, etcdkit.HandlerQueue(2))
	fast := m.AddHandler(fastLog.record)
	<-slow.Synced()
	<-fast.Synced()

	// One write at a time, each seen by the fast handler before the next:
	// the watch then delivers one revision per response, as a busy server
	// may not (it sends what has accumulated together), so the stuck
	// handler's queue of 2 surely overflows.
	const writes = 20
	var last int64
	for i := 1; i <= writes; i++ {
		last, err = kv.Put(ctx, "k"+strconv.Itoa(i%5), strconv.Itoa(i))
		require.NoError(t, err)
		fastLog.waitRevision(t, last)
	}
	changes := 0
	for _, b := range fastLog.get()[1:] {
		changes += len(b.Changes)
	}
	assert.Equal(t, writes, changes, "changes given to the fast handler while the other is stuck")
	assert.Len(t, stuck, 1, "calls of the stuck handler")
	_, ok := m.Get("k0")
	assert.True(t, ok, "Get while a handler is stuck")

	close(gate)
	slowLog.waitRevision(t, last)
	batches := slowLog.get()
	kinds := map[etcdkit.BatchKind]int{}
	for _, b := range batches {
		kinds[b.Kind]++
	}
	assert.Equal(t, 1, kinds[etcdkit.BatchFellBehind], "fell-behind batches given to the stuck handler: %v", kinds)
	assert.Less(t, len(batches), writes+1, "the stuck handler's batches: the dropped ones are not given")
	want := asMap(m.Snapshot())
	assert.Equal(t, want, fold(t, batches), "the stuck handler's batches, folded")
	assert.Equal(t, want, fold(t, fastLog.get()), "the fast handler's batches, folded")
}

// TestMirrorHandlerWholeTransactions: each batch holds whole transactions,
// in revision order, for a handler added before the writes and one added
// while they run; folding either's batches gives the mirror.
func TestMirrorHandlerWholeTransactions(t *testing.T) {
	t.Parallel()
	cli := newClient(t)
	kv := etcdkit.NewKV(cli, testPrefix(t), etcdkit.String())
	ctx := testCtx(t)
	names := []string{"a", "b", "c"}
	write := txnWriter(t, ctx, cli, kv, names)
	write(0)
	m, err := kv.Mirror(ctx)
	require.NoError(t, err)
	defer m.Close()
	var before, during batchLog
	m.AddHandler(before.record)
	const writes = 60
	var last int64
	for i := 1; i <= writes; i++ {
		if i == writes/2 {
			m.AddHandler(during.record)
		}
		last = write(i)
	}
	before.waitRevision(t, last)
	during.waitRevision(t, last)
	want := asMap(m.Snapshot())
	for name, l := range map[string]*batchLog{"before": &before, "during": &during} {
		batches := l.get()
		assert.Equal(t, want, fold(t, batches), "handler added %s the writes, folded", name)
		assert.Len(t, batches[0].Changes, len(names), "handler added %s the writes: its initial batch", name)
		assert.True(t, batches[0].Kind.Resync(), "the initial batch is a resync")
		for _, b := range batches[1:] {
			assert.False(t, b.Kind.Resync(), "batch at %d", b.Revision)
			perRev := map[int64]int{}
			for _, c := range b.Changes {
				perRev[c.Revision]++
			}
			for rev, n := range perRev {
				assert.Equal(t, len(names), n, "changes of revision %d in the batch at %d: half a transaction", rev, b.Revision)
			}
		}
	}
}

// TestMirrorHandlerRemove: a removed handler is given nothing more, and
// the others go on.
func TestMirrorHandlerRemove(t *testing.T) {
	t.Parallel()
	kv := etcdkit.NewKV(newClient(t), testPrefix(t), etcdkit.String())
	ctx := testCtx(t)
	m, err := kv.Mirror(ctx)
	require.NoError(t, err)
	defer m.Close()
	var removed, kept batchLog
	h := m.AddHandler(removed.record)
	m.AddHandler(kept.record)
	rev, err := kv.Put(ctx, "k", "1")
	require.NoError(t, err)
	removed.waitRevision(t, rev)
	h.Remove()
	h.Remove()
	select {
	case <-h.Done():
	case <-time.After(10 * time.Second):
		require.Fail(t, "Done not closed after Remove")
	}
	n := len(removed.get())
	rev, err = kv.Put(ctx, "k", "2")
	require.NoError(t, err)
	kept.waitRevision(t, rev)
	assert.Len(t, removed.get(), n, "batches given after Remove")
}

// TestMirrorHandlerRemovesItself: Remove called from the handler ends it.
func TestMirrorHandlerRemovesItself(t *testing.T) {
	t.Parallel()
	kv := etcdkit.NewKV(newClient(t), testPrefix(t), etcdkit.String())
	ctx := testCtx(t)
	m, err := kv.Mirror(ctx)
	require.NoError(t, err)
	defer m.Close()
	var l batchLog
	var h *etcdkit.MirrorHandler
	ready := make(chan struct{})
	h = m.AddHandler(func(b etcdkit.MirrorBatch[string]) {
		l.record(b)
		<-ready
		h.Remove()
	})
	close(ready)
	select {
	case <-h.Done():
	case <-time.After(10 * time.Second):
		require.Fail(t, "Done not closed after the handler removed itself")
	}
	rev, err := kv.Put(ctx, "k", "1")
	require.NoError(t, err)
	require.NoError(t, m.WaitForRevision(ctx, rev))
	assert.Len(t, l.get(), 1, "batches: the initial one only")
}

// TestMirrorHandlerEndsWithMirror: Close ends the handlers' goroutines
// (the package's leak check sees any left), and a handler added after it
// is never called.
func TestMirrorHandlerEndsWithMirror(t *testing.T) {
	t.Parallel()
	kv := etcdkit.NewKV(newClient(t), testPrefix(t), etcdkit.String())
	ctx := testCtx(t)
	m, err := kv.Mirror(ctx)
	require.NoError(t, err)
	var l batchLog
	h := m.AddHandler(l.record)
	<-h.Synced()
	m.Close()
	<-h.Done()
	late := m.AddHandler(func(etcdkit.MirrorBatch[string]) { assert.Fail(t, "a handler added after Close was called") })
	<-late.Done()
}

// TestMirrorAddIndexWhileWriting adds an index while another client
// changes the keys: every snapshot taken after AddIndex returned answers
// as a scan of its own entries does, and one taken before has no index.
func TestMirrorAddIndexWhileWriting(t *testing.T) {
	t.Parallel()
	cli := newClient(t)
	kv := etcdkit.NewKV(cli, testPrefix(t), etcdkit.String())
	ctx := testCtx(t)
	const nkeys, values = 200, 5
	for i := range nkeys {
		_, err := kv.Put(ctx, "k"+strconv.Itoa(i), strconv.Itoa(i%values))
		require.NoError(t, err)
	}
	m, err := kv.Mirror(ctx)
	require.NoError(t, err)
	defer m.Close()
	start := m.Revision()

	wctx, stop := context.WithCancel(ctx)
	defer stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	defer stop()
	wg.Go(func() {
		for i := 0; i < 2000 && wctx.Err() == nil; i++ {
			k := "k" + strconv.Itoa(i*7%nkeys)
			if i%4 == 0 {
				kv.Delete(wctx, k)
			} else {
				kv.Put(wctx, k, strconv.Itoa(i%values))
			}
		}
	})
	require.NoError(t, waitUntil(func() bool { return m.Revision() > start+20 }), "the writes reach the mirror")
	before := m.Snapshot()
	byValue := func(e etcdkit.Entry[string]) []string { return []string{e.Value} }
	require.NoError(t, m.AddIndex("value", byValue))
	assert.Nil(t, before.ByIndex("value", "0"), "a snapshot taken before AddIndex")
	checked := map[int64]bool{}
	for i := 0; i < 200 && len(checked) < 20; i++ {
		s := m.Snapshot()
		if checked[s.Revision()] {
			time.Sleep(5 * time.Millisecond)
			continue
		}
		checked[s.Revision()] = true
		scan := scanIndex(s.List(), byValue)
		for v := range values {
			assert.Equal(t, scan[strconv.Itoa(v)], s.ByIndex("value", strconv.Itoa(v)), "ByIndex(%d) at revision %d", v, s.Revision())
		}
	}
	assert.GreaterOrEqual(t, len(checked), 2, "revisions checked")

	tagged := func(e etcdkit.Entry[string]) []string { return []string{"v" + e.Value} }
	require.NoError(t, m.AddIndex("value", tagged))
	s := m.Snapshot()
	assert.Nil(t, s.ByIndex("value", "0"), "a value of the replaced function")
	assert.Equal(t, scanIndex(s.List(), tagged)["v0"], s.ByIndex("value", "v0"), "the index that replaced it")
	assert.ErrorIs(t, m.AddIndex("nil", nil), etcdkit.ErrInvalidArgument, "AddIndex with no function")
}

// waitUntil polls cond for at most 10 seconds.
func waitUntil(cond func() bool) error {
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			return context.DeadlineExceeded
		}
		time.Sleep(5 * time.Millisecond)
	}
	return nil
}

// TestResyncInRevisionOrder: after a compaction gap, the difference is
// reported in the order the changes were made, deletions (whose revision
// is gone) last, both to OnEntryChange and to a handler, whose batch says
// it is a compaction resync.
func TestResyncInRevisionOrder(t *testing.T) {
	t.Parallel()
	g := newGapCluster(t)
	lagging, kv, ctx := g.lagging, g.kv, testCtx(t)
	var changes changeLog
	m, err := lagging.Mirror(ctx, etcdkit.OnEntryChange(changes.record))
	require.NoError(t, err)
	defer m.Close()
	var batches batchLog
	<-m.AddHandler(batches.record).Synced()

	last := g.gap(t, func() (int64, error) {
		// Key order would be a, b, c, d.
		_, err := kv.Put(ctx, "c", "2")
		require.NoError(t, err)
		_, err = kv.Delete(ctx, "b")
		require.NoError(t, err)
		_, err = kv.Put(ctx, "a", "2")
		require.NoError(t, err)
		_, err = kv.Put(ctx, "d", "2")
		require.NoError(t, err)
		return kv.Put(ctx, "e", "2")
	})

	require.NoError(t, m.WaitForRevision(ctx, last))
	want := []string{"c: 1 -> 2", "a: 1 -> 2", "d: - -> 2", "e: - -> 2", "b: 1 -> -"}
	assert.Equal(t, want, changes.get(), "OnEntryChange after the gap")
	batches.waitRevision(t, last)
	got := batches.get()
	resync := got[len(got)-1]
	assert.Equal(t, etcdkit.BatchCompacted, resync.Kind, "the handler's last batch")
	var keys []string
	for _, c := range resync.Changes {
		keys = append(keys, c.Key)
	}
	assert.Equal(t, []string{"c", "a", "d", "e", "b"}, keys, "the handler's compaction batch")
	assert.Equal(t, asMap(m.Snapshot()), fold(t, got), "the handler's batches, folded")
}
