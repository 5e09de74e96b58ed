package reliability_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/etcdkit/etcdkit"
	"github.com/etcdkit/etcdkit/etcdtest"
)

// logEvent is one change as the store's revision log has it.
type logEvent struct {
	rev   int64
	key   string
	put   bool
	value string
}

func (e logEvent) String() string {
	op := "DEL"
	if e.put {
		op = "PUT"
	}
	return fmt.Sprintf("%d %s %s=%q", e.rev, op, e.key, e.value)
}

// historyWriter changes keys under prefix with puts, deletes and
// multi-key transactions (several events at one revision), and returns the
// revision of its last write.
func historyWriter(ctx context.Context, t *testing.T, raw *clientv3.Client, prefix string, n int) int64 {
	rng := rand.New(rand.NewPCG(1, uint64(time.Now().UnixNano())))
	var last int64
	for i := 0; i < n && ctx.Err() == nil; {
		key := fmt.Sprintf("%sk%02d", prefix, rng.IntN(20))
		var ops []clientv3.Op
		switch p := rng.IntN(10); {
		case p < 6:
			ops = []clientv3.Op{clientv3.OpPut(key, fmt.Sprint("v", i))}
		case p < 8:
			ops = []clientv3.Op{clientv3.OpDelete(key)}
		default: // three keys changed at one revision
			for j := range 3 {
				ops = append(ops, clientv3.OpPut(fmt.Sprintf("%st%d", prefix, j), fmt.Sprint("t", i)))
			}
		}
		wctx, cancel := opCtx(ctx)
		resp, err := raw.Txn(wctx).Then(ops...).Commit()
		cancel()
		if err != nil {
			continue // ambiguous or failed; the revision log says which
		}
		last = resp.Header.Revision
		i++
	}
	return last
}

// settle returns the revision after which no earlier write can still
// commit. A write that timed out during a fault may commit later, when a new
// leader commits what its predecessor's log holds; once a write made now has
// committed, every entry before it has too, or never will. The mirror
// reaches that revision through a progress notification, which comes after
// every earlier event and its callbacks.
func settle(ctx context.Context, t *testing.T, raw *clientv3.Client) int64 {
	t.Helper()
	for {
		resp, err := raw.Put(ctx, "settle", "")
		if err == nil {
			return resp.Header.Revision
		}
		if ctx.Err() != nil {
			require.NoError(t, err, "write after the faults")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// revisionLog reads what the store recorded under prefix in (from, to].
func revisionLog(t *testing.T, raw *clientv3.Client, prefix string, from, to int64) []logEvent {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	var out []logEvent
	for resp := range raw.Watch(ctx, prefix, clientv3.WithPrefix(), clientv3.WithRev(from+1)) {
		require.NoError(t, resp.Err(), "read the revision log")
		for _, ev := range resp.Events {
			if ev.Kv.ModRevision > to {
				return out
			}
			out = append(out, logEvent{rev: ev.Kv.ModRevision, key: string(ev.Kv.Key), put: ev.Type == clientv3.EventTypePut, value: string(ev.Kv.Value)})
		}
		if resp.Header.Revision >= to && len(resp.Events) == 0 {
			return out
		}
		if n := len(out); n > 0 && out[n-1].rev == to {
			return out
		}
	}
	require.FailNow(t, "the revision log ended early")
	return nil
}

// compareLogs reports the first difference between what was delivered and
// what the store recorded: a duplicate, a gap, a reordering or a change of
// value all show.
func compareLogs(t *testing.T, what string, got, want []logEvent) {
	t.Helper()
	for i := range min(len(got), len(want)) {
		require.Equal(t, want[i], got[i], "%s: event %d differs from what the store recorded", what, i)
	}
	require.Equal(t, len(want), len(got), "%s: events delivered, against the store's", what)
}

// TestWatchHistory_UnderFaults: a Watcher on a prefix delivers exactly the
// store's revision log, in order, while members stop, restart and lose
// leadership under it.
func TestWatchHistory_UnderFaults(t *testing.T) {
	cl := etcdtest.StartCluster(t, 3)
	raw := cl.RawClient(t)
	kv := etcdkit.NewKV(cl.Client(t), "wh/", etcdkit.String())
	start, err := raw.Get(t.Context(), "wh/")
	require.NoError(t, err)
	from := start.Header.Revision

	// The writer stops when its budget is spent; the watcher has longer.
	ctx, cancel := context.WithTimeout(t.Context(), budget(60*time.Second, 150*time.Second))
	defer cancel()
	wctx, wcancel := context.WithTimeout(t.Context(), budget(120*time.Second, 5*time.Minute))
	defer wcancel()
	w := kv.Watch(wctx, etcdkit.FromRevision(from+1))
	defer w.Close()

	var got []logEvent
	var last int64
	lastWrite := make(chan int64, 1)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { lastWrite <- historyWriter(ctx, t, raw, "wh/", budget(1500, 1_000_000)) })
	go func() { wg.Wait(); close(done) }()

	collect := make(chan struct{})
	go func() {
		defer close(collect)
		target := int64(-1)
		for {
			select {
			case rev := <-lastWrite:
				target = rev
			case ev, ok := <-w.Events():
				if !ok {
					return
				}
				got = append(got, logEvent{rev: ev.Entry.ModRevision, key: "wh/" + ev.Entry.Key, put: ev.Type == etcdkit.EventPut, value: ev.Entry.Value})
				last = ev.Entry.ModRevision
			}
			if target >= 0 && last >= target {
				return
			}
		}
	}()
	var inj injector
	inj.run(t, cl, []fault{stopRestartMember, stopLeader}, budget(4, 1000), budget(time.Second, 3*time.Second), done)
	<-done
	<-collect
	require.NoError(t, w.Err(), "the watch ended")
	want := revisionLog(t, raw, "wh/", from, last)
	compareLogs(t, "watcher", got, want)
	t.Logf("watcher delivered %d events exactly as recorded, under %d faults", len(got), inj.total())
}

// TestMirrorHistory_UnderFaults: a Mirror ends equal to a fresh listing, and
// its change callbacks, applied to an empty map in order, rebuild it.
func TestMirrorHistory_UnderFaults(t *testing.T) {
	cl := etcdtest.StartCluster(t, 3)
	raw := cl.RawClient(t)
	cli := cl.Client(t)
	kv := etcdkit.NewKV(cli, "mh/", etcdkit.String())

	var mu sync.Mutex
	shadow := map[string]string{}
	mirror, err := kv.Mirror(t.Context(), etcdkit.OnEntryChange(func(key string, old, new *etcdkit.Entry[string]) {
		mu.Lock()
		defer mu.Unlock()
		if new == nil {
			delete(shadow, key)
		} else {
			shadow[key] = new.Value
		}
	}))
	require.NoError(t, err)
	defer mirror.Close()

	ctx, cancel := context.WithTimeout(t.Context(), budget(60*time.Second, 90*time.Second))
	defer cancel()
	done := make(chan struct{})
	var last int64
	go func() { defer close(done); last = historyWriter(ctx, t, raw, "mh/", budget(1000, 1_000_000)) }()
	var inj injector
	inj.run(t, cl, []fault{stopRestartMember, stopLeader}, budget(3, 1000), budget(time.Second, 3*time.Second), done)
	<-done

	wctx, wcancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer wcancel()
	settled := settle(wctx, t, raw)
	require.NoError(t, mirror.WaitForRevision(wctx, max(last, settled)), "WaitForRevision(%d)", max(last, settled))
	resp, err := raw.Get(wctx, "mh/", clientv3.WithPrefix(), clientv3.WithRev(mirror.Revision()))
	require.NoError(t, err)
	fresh := map[string]string{}
	for _, kv := range resp.Kvs {
		fresh[string(kv.Key)[len("mh/"):]] = string(kv.Value)
	}
	inMirror := map[string]string{}
	for _, e := range mirror.List() {
		inMirror[e.Key] = e.Value
	}
	mu.Lock()
	defer mu.Unlock()
	for name, m := range map[string]map[string]string{"mirror": inMirror, "callbacks": shadow} {
		assert.Equal(t, len(fresh), len(m), "%s: keys, against a fresh listing", name)
		for k, v := range fresh {
			assert.Equal(t, v, m[k], "%s: %s, against a fresh listing", name, k)
		}
	}
	t.Logf("mirror of %d keys matched a fresh listing at revision %d, under %d faults", len(fresh), mirror.Revision(), inj.total())
}
