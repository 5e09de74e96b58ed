package etcdkit_test

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/etcdkit/etcdkit"
	"github.com/etcdkit/etcdkit/etcdtest"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// changeLog records what OnEntryChange reports, as "key: old -> new".
type changeLog struct {
	mu  sync.Mutex
	log []string
}

func (c *changeLog) record(key string, old, new *etcdkit.Entry[string]) {
	s := func(e *etcdkit.Entry[string]) string {
		if e == nil {
			return "-"
		}
		return e.Value
	}
	c.mu.Lock()
	c.log = append(c.log, fmt.Sprintf("%s: %s -> %s", key, s(old), s(new)))
	c.mu.Unlock()
}

func (c *changeLog) get() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.log)
}

func TestMirror(t *testing.T) {
	t.Parallel()
	cli := newClient(t)
	kv := etcdkit.NewKV(cli, testPrefix(t), etcdkit.String())
	ctx := testCtx(t)
	// Start empty, also when the test runs again on the same server.
	_, err := cli.Raw().Delete(ctx, kv.Prefix(), clientv3.WithPrefix())
	require.NoError(t, err)
	kv.Put(ctx, "b", "1")
	kv.Put(ctx, "a", "1")
	var changes changeLog
	m, err := kv.Mirror(ctx, etcdkit.OnEntryChange(changes.record))
	require.NoError(t, err)
	defer m.Close()
	assert.Equal(t, []string{"a", "b"}, keys(m.List()), "List()")
	assert.Equal(t, 2, m.Len(), "Len()")
	rev, _ := kv.Put(ctx, "c", "1")
	kv.Put(ctx, "a", "2")
	kv.Delete(ctx, "b")
	last, _ := kv.Put(ctx, "c", "2")
	require.NoError(t, m.WaitForRevision(ctx, rev))
	c, ok := m.Get("c")
	assert.True(t, ok, "Get(c) after WaitForRevision(%d) found nothing", rev)
	assert.GreaterOrEqual(t, c.ModRevision, rev, "Get(c) after WaitForRevision(%d)", rev)
	require.NoError(t, m.WaitForRevision(ctx, last))
	_, ok = m.Get("b")
	assert.False(t, ok, "Get(b) found a deleted key")
	a, _ := m.Get("a")
	assert.Equal(t, "2", a.Value, "Get(a)")
	want := []string{"c: - -> 1", "a: 1 -> 2", "b: 1 -> -", "c: 1 -> 2"}
	assert.Equal(t, want, changes.get(), "changes")
	assert.GreaterOrEqual(t, m.Revision(), last, "Revision()")
}

// TestMirrorReadsWholeRevisions writes three keys in each of 200
// transactions while readers list the mirror: every List shows the three
// keys with one value (never half a transaction), and no reader sees the
// values go back.
func TestMirrorReadsWholeRevisions(t *testing.T) {
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
	const writes = 200
	var wg sync.WaitGroup
	var stop atomic.Bool
	for r := range 2 {
		// assert, not require: these are not the test's goroutine.
		wg.Go(func() {
			last, lists := -1, 0
			for !stop.Load() || lists == 0 {
				lists++
				got := m.List()
				if !assert.Len(t, got, len(names), "reader %d: List()", r) {
					return
				}
				v, _ := strconv.Atoi(got[0].Value)
				for _, e := range got[1:] {
					if !assert.Equal(t, got[0].Value, e.Value, "reader %d: List() = %v: half a transaction", r, got) {
						return
					}
				}
				if !assert.GreaterOrEqual(t, v, last, "reader %d: value went back", r) {
					return
				}
				last = v
				runtime.Gosched() // leave the writer some CPU
			}
		})
	}
	var rev int64
	for i := 1; i <= writes; i++ {
		rev = write(i)
	}
	assert.NoError(t, m.WaitForRevision(ctx, rev))
	stop.Store(true)
	wg.Wait()
	c, _ := m.Get("c")
	assert.Equal(t, strconv.Itoa(writes), c.Value, "Get(c) after the last write")
}

func keys(es []etcdkit.Entry[string]) []string {
	var ks []string
	for _, e := range es {
		ks = append(ks, e.Key)
	}
	return ks
}

// TestMirrorWaitForOtherRevision waits for a revision made by a write
// outside the mirror's prefix: no event will ever carry it.
func TestMirrorWaitForOtherRevision(t *testing.T) {
	t.Parallel()
	cli := newClient(t)
	kv := etcdkit.NewKV(cli, testPrefix(t)+"mine/", etcdkit.String())
	other := etcdkit.NewKV(cli, testPrefix(t)+"other/", etcdkit.String())
	ctx := testCtx(t)
	m, err := kv.Mirror(ctx)
	require.NoError(t, err)
	defer m.Close()
	rev, err := other.Put(ctx, "x", "1")
	require.NoError(t, err)
	require.NoError(t, m.WaitForRevision(ctx, rev))
	assert.GreaterOrEqual(t, m.Revision(), rev, "Revision() after WaitForRevision(%d)", rev)
}

func TestMirrorLeavesOutUndecodable(t *testing.T) {
	t.Parallel()
	cli := newClient(t)
	prefix := testPrefix(t)
	kv := etcdkit.NewKV(cli, prefix, etcdkit.JSON[int]())
	ctx := testCtx(t)
	kv.Put(ctx, "a", 1)
	cli.Raw().Put(ctx, prefix+"b", "not json")
	m, err := kv.Mirror(ctx)
	require.NoError(t, err)
	defer m.Close()
	kv.Put(ctx, "c", 3)
	resp, err := cli.Raw().Put(ctx, prefix+"a", "also not json")
	require.NoError(t, err)
	require.NoError(t, m.WaitForRevision(ctx, resp.Header.Revision))
	var got []string
	for _, e := range m.List() {
		got = append(got, e.Key)
	}
	assert.Equal(t, []string{"c"}, got, "keys in the mirror: undecodable values are left out")
}

func TestMirrorEnds(t *testing.T) {
	t.Parallel()
	cli := newClient(t)
	kv := etcdkit.NewKV(cli, testPrefix(t), etcdkit.String())
	ctx := testCtx(t)
	m, err := kv.Mirror(ctx)
	require.NoError(t, err)
	m.Close()
	m.Close()
	waitClosed(t, m.Done(), time.Second, "Done after Close")
	assert.NoError(t, m.Err(), "Err() after Close")
	assert.ErrorIs(t, m.WaitForRevision(ctx, m.Revision()+1000), etcdkit.ErrClosed, "WaitForRevision on a closed mirror")
	m2, err := kv.Mirror(ctx)
	require.NoError(t, err)
	cli.Close()
	waitClosed(t, m2.Done(), time.Second, "Done after Client.Close")
	assert.ErrorIs(t, m2.Err(), etcdkit.ErrClosed, "Err() after Client.Close")
	_, err = kv.Mirror(ctx)
	assert.ErrorIs(t, err, etcdkit.ErrClosed, "Mirror after Client.Close")
}

// TestCompactionGap stops the member a Watcher, a Mirror and a Live are
// connected to, changes their keys and compacts the history on the rest of
// the cluster, then brings the member back. The revisions they need are
// gone: the Watcher ends with a CompactedError; the Mirror lists again,
// ends equal to a fresh listing and reports the difference; the Live reads
// its key again.
func TestCompactionGap(t *testing.T) {
	t.Parallel()
	g := newGapCluster(t)
	lagging, kv, ctx := g.lagging, g.kv, testCtx(t)
	var changes changeLog
	m, err := lagging.Mirror(ctx, etcdkit.OnEntryChange(changes.record))
	require.NoError(t, err)
	defer m.Close()
	live, err := lagging.Follow(ctx, "a")
	require.NoError(t, err)
	defer live.Close()
	w := lagging.Watch(ctx)
	defer w.Close()

	last := g.gap(t, func() (int64, error) {
		kv.Put(ctx, "a", "2")
		kv.Delete(ctx, "b")
		kv.Put(ctx, "d", "1")
		kv.Put(ctx, "e", "1") // comes and goes within the gap: not a difference
		kv.Delete(ctx, "e")
		return kv.Put(ctx, "a", "3")
	})

	for e := range w.Events() {
		assert.Fail(t, "the watcher delivered an event across a compacted gap", "%v %s", e.Type, e.Entry.Key)
	}
	assert.ErrorIs(t, w.Err(), etcdkit.ErrCompacted, "watcher Err()")

	require.NoError(t, m.WaitForRevision(ctx, last))
	want := listing(t, g.cl.Member(1).RawClient(t), g.prefix)
	var got []string
	for _, e := range m.List() {
		got = append(got, e.Key+"="+e.Value)
	}
	assert.Equal(t, want, got, "mirror after the gap, want a fresh listing")
	wantChanges := []string{"d: - -> 1", "a: 1 -> 3", "b: 1 -> -"} // in revision order, deletions last
	assert.Equal(t, wantChanges, changes.get(), "changes reported, want the difference")
	deadline := time.Now().Add(10 * time.Second)
	for live.Load() != "3" && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	assert.Equal(t, "3", live.Load(), "Live after the gap")
}

// gapCluster is a three-member cluster with the keys a, b and c set to "1"
// under a prefix of the test's: lagging reads through member 0, which a
// gap cuts off, and kv writes through member 1.
type gapCluster struct {
	cl          *etcdtest.Cluster
	prefix      string
	lagging, kv *etcdkit.KV[string]
}

func newGapCluster(t *testing.T) gapCluster {
	t.Helper()
	cl := etcdtest.StartCluster(t, 3)
	prefix := testPrefix(t)
	g := gapCluster{cl: cl, prefix: prefix,
		lagging: etcdkit.NewKV(cl.Member(0).Client(t), prefix, etcdkit.String()),
		kv:      etcdkit.NewKV(cl.Member(1).Client(t), prefix, etcdkit.String())}
	for _, k := range []string{"a", "b", "c"} {
		_, err := g.kv.Put(testCtx(t), k, "1")
		require.NoError(t, err)
	}
	return g
}

// gap stops member 0, makes the changes of write on the rest of the
// cluster, compacts the history up to the revision write's last change
// returns, and brings member 0 back: what member 0's clients watched
// meanwhile is gone. It returns that revision.
func (g gapCluster) gap(t *testing.T, write func() (int64, error)) int64 {
	t.Helper()
	g.cl.StopMember(0)
	g.cl.WaitLeader(t)
	last, err := write()
	require.NoError(t, err, "the gap's last change")
	g.cl.Member(1).Compact(t, last)
	g.cl.RestartMember(0)
	return last
}

// listing reads the keys under prefix as "key=value", sorted.
func listing(t *testing.T, raw *clientv3.Client, prefix string) []string {
	t.Helper()
	resp, err := raw.Get(testCtx(t), prefix, clientv3.WithPrefix())
	require.NoError(t, err)
	var out []string
	for _, kv := range resp.Kvs {
		out = append(out, string(kv.Key[len(prefix):])+"="+string(kv.Value))
	}
	return out
}

func TestMirrorAndLiveSurviveRestart(t *testing.T) {
	t.Parallel()
	srv := etcdtest.Start(t)
	kv := etcdkit.NewKV(srv.Client(t), testPrefix(t), etcdkit.String())
	ctx := testCtx(t)
	kv.Put(ctx, "a", "1")
	m, err := kv.Mirror(ctx)
	require.NoError(t, err)
	defer m.Close()
	live, err := kv.Follow(ctx, "a")
	require.NoError(t, err)
	defer live.Close()
	for i := range 3 {
		srv.Restart(t)
		rev, err := kv.Put(ctx, "a", fmt.Sprint(i+2))
		require.NoError(t, err)
		require.NoError(t, m.WaitForRevision(ctx, rev))
		e, _ := m.Get("a")
		assert.Equal(t, rev, e.ModRevision, "restart %d: the mirror's revision of a", i+1)
		deadline := time.Now().Add(10 * time.Second)
		for live.Revision() != rev && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		assert.Equal(t, rev, live.Revision(), "restart %d: Live's revision", i+1)
		assert.Equal(t, fmt.Sprint(i+2), live.Load(), "restart %d: Live's value", i+1)
	}
	assert.NoError(t, m.Err(), "mirror Err() after restarts")
	assert.NoError(t, live.Err(), "live Err() after restarts")
}

// TestCloseWhileStarting closes a client while watchers, mirrors, lives and
// leases are being started on it: each either fails with ErrClosed or ends,
// and Close returns with nothing left running (TestMain checks).
func TestCloseWhileStarting(t *testing.T) {
	t.Parallel()
	cli := newClient(t)
	kv := etcdkit.NewKV(cli, testPrefix(t), etcdkit.String())
	ctx := testCtx(t)
	kv.Put(ctx, "a", "1")
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range 8 {
		// assert, not require: these are not the test's goroutine.
		wg.Go(func() {
			<-start
			for range 20 {
				switch i % 4 {
				case 0:
					w := kv.Watch(ctx)
					for range w.Events() {
					}
					if w.Err() != nil {
						assert.ErrorIs(t, w.Err(), etcdkit.ErrClosed, "watch")
					}
				case 1:
					if m, err := kv.Mirror(ctx); err == nil {
						<-m.Done()
					} else {
						assert.ErrorIs(t, err, etcdkit.ErrClosed, "mirror")
					}
				case 2:
					if l, err := kv.Follow(ctx, "a"); err == nil {
						<-l.Done()
					} else {
						assert.ErrorIs(t, err, etcdkit.ErrClosed, "follow")
					}
				case 3:
					if l, err := cli.Grant(ctx, time.Minute); err == nil {
						l.KeepAlive()
						<-l.Done()
					} else {
						assert.ErrorIs(t, err, etcdkit.ErrClosed, "grant")
					}
				}
			}
		})
	}
	close(start)
	time.Sleep(20 * time.Millisecond)
	assert.NoError(t, cli.Close())
	wg.Wait()
}

// txnWriter returns a function that sets every one of names in kv to i, in
// one transaction through cli, and returns its revision.
func txnWriter(t *testing.T, ctx context.Context, cli *etcdkit.Client, kv *etcdkit.KV[string], names []string) func(i int) int64 {
	return func(i int) int64 {
		ops := make([]etcdkit.Op, 0, len(names))
		for _, k := range names {
			ops = append(ops, kv.PutOp(k, strconv.Itoa(i)))
		}
		res, err := cli.Txn(ctx).Then(ops...).Commit()
		require.NoError(t, err)
		return res.Revision
	}
}
