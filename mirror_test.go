package etcdkit_test

import (
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

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
	if _, err := cli.Raw().Delete(ctx, kv.Prefix(), clientv3.WithPrefix()); err != nil {
		t.Fatal(err)
	}
	kv.Put(ctx, "b", "1")
	kv.Put(ctx, "a", "1")
	var changes changeLog
	m, err := kv.Mirror(ctx, etcdkit.OnEntryChange(changes.record))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if got := keys(m.List()); !slices.Equal(got, []string{"a", "b"}) || m.Len() != 2 {
		t.Errorf("List() = %v, Len() = %d, want [a b]", got, m.Len())
	}
	rev, _ := kv.Put(ctx, "c", "1")
	kv.Put(ctx, "a", "2")
	kv.Delete(ctx, "b")
	last, _ := kv.Put(ctx, "c", "2")
	if err := m.WaitForRevision(ctx, rev); err != nil {
		t.Fatal(err)
	}
	if e, ok := m.Get("c"); !ok || e.ModRevision < rev {
		t.Errorf("Get(c) after WaitForRevision(%d) = %+v, %v", rev, e, ok)
	}
	if err := m.WaitForRevision(ctx, last); err != nil {
		t.Fatal(err)
	}
	if _, ok := m.Get("b"); ok {
		t.Error("Get(b) found a deleted key")
	}
	if e, _ := m.Get("a"); e.Value != "2" {
		t.Errorf("Get(a) = %q, want 2", e.Value)
	}
	want := []string{"c: - -> 1", "a: 1 -> 2", "b: 1 -> -", "c: 1 -> 2"}
	if got := changes.get(); !slices.Equal(got, want) {
		t.Errorf("changes = %q, want %q", got, want)
	}
	if m.Revision() < last {
		t.Errorf("Revision() = %d, want >= %d", m.Revision(), last)
	}
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
	write := func(i int) int64 {
		var ops []etcdkit.Op
		for _, k := range names {
			ops = append(ops, kv.PutOp(k, strconv.Itoa(i)))
		}
		res, err := cli.Txn(ctx).Then(ops...).Commit()
		if err != nil {
			t.Fatal(err)
		}
		return res.Revision
	}
	write(0)
	m, err := kv.Mirror(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	const writes = 200
	var wg sync.WaitGroup
	var stop atomic.Bool
	for r := range 2 {
		wg.Go(func() {
			last, lists := -1, 0
			for !stop.Load() || lists == 0 {
				lists++
				got := m.List()
				if len(got) != len(names) {
					t.Errorf("reader %d: List() has %d entries, want %d", r, len(got), len(names))
					return
				}
				v, _ := strconv.Atoi(got[0].Value)
				for _, e := range got[1:] {
					if e.Value != got[0].Value {
						t.Errorf("reader %d: List() = %v: half a transaction", r, got)
						return
					}
				}
				if v < last {
					t.Errorf("reader %d: value went back from %d to %d", r, last, v)
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
	if err := m.WaitForRevision(ctx, rev); err != nil {
		t.Error(err)
	}
	stop.Store(true)
	wg.Wait()
	if e, _ := m.Get("c"); e.Value != strconv.Itoa(writes) {
		t.Errorf("Get(c) after the last write = %q, want %d", e.Value, writes)
	}
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
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	rev, err := other.Put(ctx, "x", "1")
	if err != nil {
		t.Fatal(err)
	}
	if err := m.WaitForRevision(ctx, rev); err != nil {
		t.Fatal(err)
	}
	if m.Revision() < rev {
		t.Errorf("Revision() = %d after WaitForRevision(%d)", m.Revision(), rev)
	}
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
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	kv.Put(ctx, "c", 3)
	resp, err := cli.Raw().Put(ctx, prefix+"a", "also not json")
	if err != nil {
		t.Fatal(err)
	}
	if err := m.WaitForRevision(ctx, resp.Header.Revision); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range m.List() {
		got = append(got, e.Key)
	}
	if !slices.Equal(got, []string{"c"}) {
		t.Errorf("mirror holds %v, want only [c]: undecodable values are left out", got)
	}
}

func TestMirrorEnds(t *testing.T) {
	t.Parallel()
	cli := newClient(t)
	kv := etcdkit.NewKV(cli, testPrefix(t), etcdkit.String())
	ctx := testCtx(t)
	m, err := kv.Mirror(ctx)
	if err != nil {
		t.Fatal(err)
	}
	m.Close()
	m.Close()
	waitClosed(t, m.Done(), time.Second, "Done after Close")
	if m.Err() != nil {
		t.Errorf("Err() after Close = %v", m.Err())
	}
	if err := m.WaitForRevision(ctx, m.Revision()+1000); !errors.Is(err, etcdkit.ErrClosed) {
		t.Errorf("WaitForRevision on a closed mirror = %v, want ErrClosed", err)
	}
	m2, err := kv.Mirror(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cli.Close()
	waitClosed(t, m2.Done(), time.Second, "Done after Client.Close")
	if !errors.Is(m2.Err(), etcdkit.ErrClosed) {
		t.Errorf("Err() after Client.Close = %v, want ErrClosed", m2.Err())
	}
	if _, err := kv.Mirror(ctx); !errors.Is(err, etcdkit.ErrClosed) {
		t.Errorf("Mirror after Client.Close = %v, want ErrClosed", err)
	}
}

// TestCompactionGap stops the member a Watcher, a Mirror and a Live are
// connected to, changes their keys and compacts the history on the rest of
// the cluster, then brings the member back. The revisions they need are
// gone: the Watcher ends with a CompactedError; the Mirror lists again,
// ends equal to a fresh listing and reports the difference; the Live reads
// its key again.
func TestCompactionGap(t *testing.T) {
	t.Parallel()
	cl := etcdtest.StartCluster(t, 3)
	prefix := testPrefix(t)
	lagging := etcdkit.NewKV(cl.Member(0).Client(t), prefix, etcdkit.String())
	kv := etcdkit.NewKV(cl.Member(1).Client(t), prefix, etcdkit.String())
	ctx := testCtx(t)
	for _, k := range []string{"a", "b", "c"} {
		if _, err := kv.Put(ctx, k, "1"); err != nil {
			t.Fatal(err)
		}
	}
	var changes changeLog
	m, err := lagging.Mirror(ctx, etcdkit.OnEntryChange(changes.record))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	live, err := lagging.Follow(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	w := lagging.Watch(ctx)
	defer w.Close()

	cl.StopMember(0)
	cl.WaitLeader(t)
	kv.Put(ctx, "a", "2")
	kv.Delete(ctx, "b")
	kv.Put(ctx, "d", "1")
	kv.Put(ctx, "e", "1") // comes and goes within the gap: not a difference
	kv.Delete(ctx, "e")
	last, err := kv.Put(ctx, "a", "3")
	if err != nil {
		t.Fatal(err)
	}
	cl.Member(1).Compact(t, last)
	cl.RestartMember(0)

	for e := range w.Events() {
		t.Errorf("watcher delivered %v %s across a compacted gap", e.Type, e.Entry.Key)
	}
	if !errors.Is(w.Err(), etcdkit.ErrCompacted) {
		t.Errorf("watcher Err() = %v, want ErrCompacted", w.Err())
	}

	if err := m.WaitForRevision(ctx, last); err != nil {
		t.Fatal(err)
	}
	want := listing(t, cl.Member(1).RawClient(t), prefix)
	var got []string
	for _, e := range m.List() {
		got = append(got, e.Key+"="+e.Value)
	}
	if !slices.Equal(got, want) {
		t.Errorf("mirror after the gap = %v, fresh listing = %v", got, want)
	}
	wantChanges := []string{"a: 1 -> 3", "b: 1 -> -", "d: - -> 1"}
	if got := changes.get(); !slices.Equal(got, wantChanges) {
		t.Errorf("changes reported = %q, want the difference %q", got, wantChanges)
	}
	deadline := time.Now().Add(10 * time.Second)
	for live.Load() != "3" && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if live.Load() != "3" {
		t.Errorf("Live after the gap = %q, want 3", live.Load())
	}
}

// listing reads the keys under prefix as "key=value", sorted.
func listing(t *testing.T, raw *clientv3.Client, prefix string) []string {
	t.Helper()
	resp, err := raw.Get(testCtx(t), prefix, clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
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
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	live, err := kv.Follow(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	for i := range 3 {
		srv.Restart(t)
		rev, err := kv.Put(ctx, "a", fmt.Sprint(i+2))
		if err != nil {
			t.Fatal(err)
		}
		if err := m.WaitForRevision(ctx, rev); err != nil {
			t.Fatal(err)
		}
		if e, _ := m.Get("a"); e.ModRevision != rev {
			t.Errorf("restart %d: mirror has a at revision %d, want %d", i+1, e.ModRevision, rev)
		}
		deadline := time.Now().Add(10 * time.Second)
		for live.Revision() != rev && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if live.Revision() != rev || live.Load() != fmt.Sprint(i+2) {
			t.Errorf("restart %d: Live = %q at %d, want %q at %d", i+1, live.Load(), live.Revision(), fmt.Sprint(i+2), rev)
		}
	}
	if m.Err() != nil || live.Err() != nil {
		t.Errorf("Err() after restarts: mirror %v, live %v", m.Err(), live.Err())
	}
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
		wg.Go(func() {
			<-start
			for range 20 {
				switch i % 4 {
				case 0:
					w := kv.Watch(ctx)
					for range w.Events() {
					}
					if w.Err() != nil && !errors.Is(w.Err(), etcdkit.ErrClosed) {
						t.Errorf("watch: %v", w.Err())
					}
				case 1:
					if m, err := kv.Mirror(ctx); err == nil {
						<-m.Done()
					} else if !errors.Is(err, etcdkit.ErrClosed) {
						t.Errorf("mirror: %v", err)
					}
				case 2:
					if l, err := kv.Follow(ctx, "a"); err == nil {
						<-l.Done()
					} else if !errors.Is(err, etcdkit.ErrClosed) {
						t.Errorf("follow: %v", err)
					}
				case 3:
					if l, err := cli.Grant(ctx, time.Minute); err == nil {
						l.KeepAlive()
						<-l.Done()
					} else if !errors.Is(err, etcdkit.ErrClosed) {
						t.Errorf("grant: %v", err)
					}
				}
			}
		})
	}
	close(start)
	time.Sleep(20 * time.Millisecond)
	if err := cli.Close(); err != nil {
		t.Error(err)
	}
	wg.Wait()
}
