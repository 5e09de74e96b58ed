package etcdkit_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/etcdkit/etcdkit"
	"github.com/etcdkit/etcdkit/etcdtest"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// rec is one change, comparable between a Watcher and etcd's own history.
type rec struct {
	Rev      int64
	Type     string
	Key, Val string
}

// collector reads a watcher's events in the background.
type collector struct {
	mu   sync.Mutex
	recs []rec
	done chan struct{}
}

func collect(w *etcdkit.Watcher[string]) *collector {
	c := &collector{done: make(chan struct{})}
	go func() {
		defer close(c.done)
		for e := range w.Events() {
			c.mu.Lock()
			c.recs = append(c.recs, rec{e.Entry.ModRevision, e.Type.String(), e.Entry.Key, e.Entry.Value})
			c.mu.Unlock()
		}
	}()
	return c
}

// waitRev waits until the collector has seen revision rev.
func (c *collector) waitRev(t *testing.T, rev int64) []rec {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		c.mu.Lock()
		n := len(c.recs)
		var last int64
		if n > 0 {
			last = c.recs[n-1].Rev
		}
		c.mu.Unlock()
		if last >= rev {
			c.mu.Lock()
			defer c.mu.Unlock()
			return slices.Clone(c.recs)
		}
		select {
		case <-c.done:
			t.Fatalf("watch ended at revision %d, before %d", last, rev)
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("watch at revision %d after 30s, want %d", last, rev)
		}
	}
}

// history reads from etcd itself every change under prefix in (from, to].
func history(t *testing.T, raw *clientv3.Client, prefix string, from, to int64) []rec {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	var recs []rec
	for resp := range raw.Watch(ctx, prefix, clientv3.WithPrefix(), clientv3.WithRev(from+1)) {
		if err := resp.Err(); err != nil {
			t.Fatalf("history: %v", err)
		}
		for _, ev := range resp.Events {
			typ := "PUT"
			if ev.Type == clientv3.EventTypeDelete {
				typ = "DELETE"
			}
			r := rec{ev.Kv.ModRevision, typ, string(ev.Kv.Key[len(prefix):]), string(ev.Kv.Value)}
			if r.Rev > to {
				return recs
			}
			recs = append(recs, r)
		}
		if len(recs) > 0 && recs[len(recs)-1].Rev == to {
			return recs
		}
	}
	t.Fatalf("history: watch ended before revision %d", to)
	return nil
}

// writeN makes n changes to 20 keys (every tenth a delete), retrying each
// until it succeeds, so that faults in between are survived; it returns the
// revision of the last one. progress, if not nil, is told how many are done.
func writeN(ctx context.Context, kv *etcdkit.KV[string], n int, progress func(int)) (int64, error) {
	var last int64
	for i := range n {
		key := fmt.Sprintf("k%02d", i%20)
		for {
			var err error
			if i%10 == 9 {
				_, err = kv.Delete(ctx, key)
			} else {
				last, err = kv.Put(ctx, key, strconv.Itoa(i))
			}
			if err == nil {
				break
			}
			if ctx.Err() != nil {
				return 0, fmt.Errorf("write %d: %w", i, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
		if progress != nil {
			progress(i + 1)
		}
	}
	return last, nil
}

func TestWatchEvents(t *testing.T) {
	t.Parallel()
	cli := newClient(t)
	kv := etcdkit.NewKV(cli, testPrefix(t), etcdkit.String())
	ctx := testCtx(t)
	w := kv.Watch(ctx, etcdkit.WithPrevValue())
	defer w.Close()
	r1, _ := kv.Put(ctx, "a", "1")
	r2, _ := kv.Put(ctx, "a", "2")
	if _, err := kv.Delete(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	want := []struct {
		typ  etcdkit.EventType
		val  string
		prev string
	}{{etcdkit.EventPut, "1", ""}, {etcdkit.EventPut, "2", "1"}, {etcdkit.EventDelete, "", "2"}}
	var lastRev int64
	for i, wnt := range want {
		e := <-w.Events()
		if e.Type != wnt.typ || e.Entry.Key != "a" || e.Entry.Value != wnt.val {
			t.Fatalf("event %d = %v %q=%q, want %v a=%q", i, e.Type, e.Entry.Key, e.Entry.Value, wnt.typ, wnt.val)
		}
		switch {
		case wnt.prev == "" && e.Prev != nil:
			t.Errorf("event %d: Prev = %+v, want nil", i, *e.Prev)
		case wnt.prev != "" && (e.Prev == nil || e.Prev.Value != wnt.prev):
			t.Errorf("event %d: Prev = %+v, want value %q", i, e.Prev, wnt.prev)
		}
		if e.Entry.ModRevision <= lastRev {
			t.Errorf("event %d: revision %d after %d", i, e.Entry.ModRevision, lastRev)
		}
		lastRev = e.Entry.ModRevision
	}
	if want := []int64{r1, r2}; lastRev <= want[1] {
		t.Errorf("delete at revision %d, not after the puts %v", lastRev, want)
	}
	if w.Revision() != lastRev {
		t.Errorf("Revision() = %d, want %d", w.Revision(), lastRev)
	}
	w.Close()
	if _, ok := <-w.Events(); ok {
		t.Error("Events open after Close")
	}
	if w.Err() != nil {
		t.Errorf("Err() after Close = %v, want nil", w.Err())
	}
}

func TestWatchKeyFromRevision(t *testing.T) {
	t.Parallel()
	cli := newClient(t)
	kv := etcdkit.NewKV(cli, testPrefix(t), etcdkit.String())
	ctx := testCtx(t)
	r1, _ := kv.Put(ctx, "a", "1")
	kv.Put(ctx, "b", "x")
	kv.Put(ctx, "a", "2")
	w := kv.Watch(ctx, etcdkit.WatchKey("a"), etcdkit.FromRevision(r1))
	defer w.Close()
	for _, want := range []string{"1", "2"} {
		e := <-w.Events()
		if e.Entry.Key != "a" || e.Entry.Value != want {
			t.Fatalf("event %q=%q, want a=%q", e.Entry.Key, e.Entry.Value, want)
		}
	}
}

func TestWatchEndsWithCtx(t *testing.T) {
	t.Parallel()
	kv := etcdkit.NewKV(newClient(t), testPrefix(t), etcdkit.String())
	ctx, cancel := context.WithCancel(testCtx(t))
	w := kv.Watch(ctx)
	cancel()
	for range w.Events() {
	}
	if w.Err() != nil {
		t.Errorf("Err() after ctx cancel = %v, want nil", w.Err())
	}
}

func TestWatchEndsWithClient(t *testing.T) {
	t.Parallel()
	cli := newClient(t)
	kv := etcdkit.NewKV(cli, testPrefix(t), etcdkit.String())
	w := kv.Watch(testCtx(t))
	cli.Close()
	for range w.Events() {
	}
	if !errors.Is(w.Err(), etcdkit.ErrClosed) {
		t.Errorf("Err() after Client.Close = %v, want ErrClosed", w.Err())
	}
	w2 := kv.Watch(testCtx(t))
	if _, ok := <-w2.Events(); ok || !errors.Is(w2.Err(), etcdkit.ErrClosed) {
		t.Errorf("Watch after Client.Close: Err() = %v, want ErrClosed and closed Events", w2.Err())
	}
}

func TestWatchDecodeError(t *testing.T) {
	t.Parallel()
	cli := newClient(t)
	prefix := testPrefix(t)
	kv := etcdkit.NewKV(cli, prefix, etcdkit.JSON[int]())
	ctx := testCtx(t)
	w := kv.Watch(ctx)
	defer w.Close()
	kv.Put(ctx, "a", 1)
	if _, err := cli.Raw().Put(ctx, prefix+"b", "not json"); err != nil {
		t.Fatal(err)
	}
	kv.Put(ctx, "c", 3)
	var got []string
	for e := range w.Events() {
		got = append(got, e.Entry.Key)
	}
	var de *etcdkit.DecodeError
	if !errors.As(w.Err(), &de) || de.Key != "b" {
		t.Errorf("Err() = %v, want a DecodeError for key b", w.Err())
	}
	if !slices.Equal(got, []string{"a"}) {
		t.Errorf("delivered %v before the bad value, want [a]", got)
	}
}

func TestWatchCompacted(t *testing.T) {
	t.Parallel()
	srv := etcdtest.Start(t)
	kv := etcdkit.NewKV(srv.Client(t), testPrefix(t), etcdkit.String())
	ctx := testCtx(t)
	r1, _ := kv.Put(ctx, "a", "1")
	r2, _ := kv.Put(ctx, "a", "2")
	srv.Compact(t, r2)
	w := kv.Watch(ctx, etcdkit.FromRevision(r1))
	for e := range w.Events() {
		t.Errorf("event %+v from a compacted revision", e)
	}
	var ce *etcdkit.CompactedError
	if !errors.Is(w.Err(), etcdkit.ErrCompacted) || !errors.As(w.Err(), &ce) || ce.Revision != r2 {
		t.Errorf("Err() = %v, want a CompactedError at revision %d", w.Err(), r2)
	}
}

func TestWatchSlowReader(t *testing.T) {
	t.Parallel()
	kv := etcdkit.NewKV(newClient(t), testPrefix(t), etcdkit.String())
	ctx := testCtx(t)
	start, _ := kv.Put(ctx, "start", "")
	w := kv.Watch(ctx)
	defer w.Close()
	const n = 300
	last, err := writeN(ctx, kv, n, nil)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond) // the reader is away: the watch pauses
	c := collect(w)
	c.expectHistory(t, kv.Client().Raw(), kv.Prefix(), start, last, "slow reader")
}

// expectHistory waits until the collector has seen revision last, then
// checks that it got exactly the changes the store recorded under prefix in
// (start, last]: once each, in order, nothing missing.
func (c *collector) expectHistory(t *testing.T, raw *clientv3.Client, prefix string, start, last int64, who string) {
	t.Helper()
	got := c.waitRev(t, last)
	want := history(t, raw, prefix, start, last)
	if !slices.Equal(got, want) {
		t.Errorf("%s got %d changes, history has %d; first difference at %d", who, len(got), len(want), firstDiff(got, want))
	}
}

func firstDiff(a, b []rec) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// TestWatchSurvivesRestarts restarts the server three times while writing:
// the watcher still sees each change once, in order, with no gap.
func TestWatchSurvivesRestarts(t *testing.T) {
	t.Parallel()
	srv := etcdtest.Start(t)
	cli := srv.Client(t)
	kv := etcdkit.NewKV(cli, testPrefix(t), etcdkit.String())
	// 5,000 writes through restarts, beside the rest of the suite running in
	// parallel under -race, need more than testCtx's 30s bound.
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	start, _ := kv.Put(ctx, "start", "")
	w := kv.Watch(ctx)
	defer w.Close()
	c := collect(w)

	const n = 5000
	wr := startWrites(ctx, kv, n)
	for restart := 1; restart <= 3; restart++ {
		wr.waitCount(restart * n / 4)
		srv.Restart(t)
	}
	last := wr.wait(t)
	c.expectHistory(t, srv.RawClient(t), kv.Prefix(), start, last, "watcher")
}

// writes is writeN running in the background while a test injects faults.
type writes struct {
	count atomic.Int64
	done  chan struct{}
	last  int64
	err   error
}

func startWrites(ctx context.Context, kv *etcdkit.KV[string], n int) *writes {
	w := &writes{done: make(chan struct{})}
	go func() {
		defer close(w.done)
		w.last, w.err = writeN(ctx, kv, n, func(i int) { w.count.Store(int64(i)) })
	}()
	return w
}

// waitCount returns once n changes are written, or the writes have ended.
func (w *writes) waitCount(n int) {
	for w.count.Load() < int64(n) {
		select {
		case <-w.done:
			return
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// wait waits for the writes to end and returns the last one's revision.
func (w *writes) wait(t *testing.T) int64 {
	t.Helper()
	<-w.done
	if w.err != nil {
		t.Fatal(w.err)
	}
	return w.last
}

// TestWatchLeaderLoss stops the leader of a three-member cluster twice
// while writing: the watcher still sees each change once, in order.
func TestWatchLeaderLoss(t *testing.T) {
	t.Parallel()
	cl := etcdtest.StartCluster(t, 3)
	kv := etcdkit.NewKV(cl.Client(t), testPrefix(t), etcdkit.String())
	// 5,000 writes through restarts, beside the rest of the suite running in
	// parallel under -race, need more than testCtx's 30s bound.
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	start, _ := kv.Put(ctx, "start", "")
	// The member serving the watch may not have applied start yet, so
	// "now" could be before it: start right after it instead.
	w := kv.Watch(ctx, etcdkit.FromRevision(start+1))
	defer w.Close()
	c := collect(w)

	const n = 5000
	wr := startWrites(ctx, kv, n)
	for round := 1; round <= 2; round++ {
		wr.waitCount(round * n / 3)
		leader := cl.WaitLeader(t)
		cl.StopMember(leader)
		cl.WaitLeader(t)
		wr.waitCount(round*n/3 + n/10)
		cl.RestartMember(leader)
	}
	last := wr.wait(t)
	c.expectHistory(t, cl.RawClient(t), kv.Prefix(), start, last, "watcher")
}

// logWatch is a slog handler that signals when a message containing want
// is logged.
type logWatch struct {
	want string
	seen chan struct{}
	once sync.Once
}

func (h *logWatch) Enabled(context.Context, slog.Level) bool { return true }
func (h *logWatch) Handle(_ context.Context, r slog.Record) error {
	if strings.Contains(r.Message, h.want) {
		h.once.Do(func() { close(h.seen) })
	}
	return nil
}
func (h *logWatch) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *logWatch) WithGroup(string) slog.Handler      { return h }

// TestWatchNoLeader cuts the member a watcher uses off from its quorum: the
// member cancels the watch (it asks for a leader), the watcher keeps
// retrying, and once the quorum is back it resumes where it was.
func TestWatchNoLeader(t *testing.T) {
	t.Parallel()
	cl := etcdtest.StartCluster(t, 3)
	interrupted := &logWatch{want: "watch interrupted", seen: make(chan struct{})}
	cfg := cl.Member(0).Config()
	cfg.Logger = slog.New(interrupted)
	cli, err := etcdkit.New(testCtx(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	kv := etcdkit.NewKV(cli, testPrefix(t), etcdkit.String())
	writer := etcdkit.NewKV(cl.Client(t), testPrefix(t), etcdkit.String())
	ctx := testCtx(t)
	start, _ := writer.Put(ctx, "start", "")
	// The member serving the watch may not have applied start yet, so
	// "now" could be before it: start right after it instead.
	w := kv.Watch(ctx, etcdkit.FromRevision(start+1))
	defer w.Close()
	c := collect(w)
	if _, err := writeN(ctx, writer, 50, nil); err != nil {
		t.Fatal(err)
	}

	cl.StopMember(1)
	cl.StopMember(2)
	waitClosed(t, interrupted.seen, 20*time.Second, "log of the watch cancelled for lack of a leader")
	cl.RestartMember(1)
	cl.RestartMember(2)

	last, err := writeN(ctx, writer, 50, nil)
	if err != nil {
		t.Fatal(err)
	}
	c.expectHistory(t, cl.RawClient(t), kv.Prefix(), start, last, "watcher")
}
