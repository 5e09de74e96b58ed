package etcdkit_test

import (
	"context"
	"fmt"
	"log/slog"
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
			require.FailNow(t, fmt.Sprintf("watch ended at revision %d, before %d", last, rev))
		case <-time.After(10 * time.Millisecond):
		}
		require.False(t, time.Now().After(deadline), "watch at revision %d after 30s, want %d", last, rev)
	}
}

// history reads from etcd itself every change under prefix in (from, to].
func history(t *testing.T, raw *clientv3.Client, prefix string, from, to int64) []rec {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	var recs []rec
	for resp := range raw.Watch(ctx, prefix, clientv3.WithPrefix(), clientv3.WithRev(from+1)) {
		require.NoError(t, resp.Err(), "history")
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
	require.FailNow(t, fmt.Sprintf("history: watch ended before revision %d", to))
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
	_, err := kv.Delete(ctx, "a")
	require.NoError(t, err)
	want := []struct {
		typ  etcdkit.EventType
		val  string
		prev string
	}{{etcdkit.EventPut, "1", ""}, {etcdkit.EventPut, "2", "1"}, {etcdkit.EventDelete, "", "2"}}
	var lastRev int64
	for i, wnt := range want {
		e := <-w.Events()
		require.Equal(t, wnt.typ, e.Type, "event %d", i)
		require.Equal(t, "a", e.Entry.Key, "event %d", i)
		require.Equal(t, wnt.val, e.Entry.Value, "event %d", i)
		if wnt.prev == "" {
			assert.Nil(t, e.Prev, "event %d: Prev", i)
		} else if assert.NotNil(t, e.Prev, "event %d: Prev", i) {
			assert.Equal(t, wnt.prev, e.Prev.Value, "event %d: Prev", i)
		}
		assert.Greater(t, e.Entry.ModRevision, lastRev, "event %d: revision, want after the last one's", i)
		lastRev = e.Entry.ModRevision
	}
	assert.Greater(t, lastRev, r2, "the delete's revision, want after the puts at %d and %d", r1, r2)
	assert.Equal(t, lastRev, w.Revision(), "Revision()")
	w.Close()
	_, ok := <-w.Events()
	assert.False(t, ok, "Events open after Close")
	assert.NoError(t, w.Err(), "Err() after Close")
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
		require.Equal(t, "a", e.Entry.Key)
		require.Equal(t, want, e.Entry.Value, "event %q", e.Entry.Key)
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
	assert.NoError(t, w.Err(), "Err() after ctx cancel")
}

func TestWatchEndsWithClient(t *testing.T) {
	t.Parallel()
	cli := newClient(t)
	kv := etcdkit.NewKV(cli, testPrefix(t), etcdkit.String())
	w := kv.Watch(testCtx(t))
	cli.Close()
	for range w.Events() {
	}
	assert.ErrorIs(t, w.Err(), etcdkit.ErrClosed, "Err() after Client.Close")
	w2 := kv.Watch(testCtx(t))
	_, ok := <-w2.Events()
	assert.False(t, ok, "Watch after Client.Close: Events open")
	assert.ErrorIs(t, w2.Err(), etcdkit.ErrClosed, "Watch after Client.Close: Err()")
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
	_, err := cli.Raw().Put(ctx, prefix+"b", "not json")
	require.NoError(t, err)
	kv.Put(ctx, "c", 3)
	var got []string
	for e := range w.Events() {
		got = append(got, e.Entry.Key)
	}
	var de *etcdkit.DecodeError
	if assert.ErrorAs(t, w.Err(), &de, "Err()") {
		assert.Equal(t, "b", de.Key, "the DecodeError's key")
	}
	assert.Equal(t, []string{"a"}, got, "keys delivered before the bad value")
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
		assert.Fail(t, "an event from a compacted revision", "%+v", e)
	}
	var ce *etcdkit.CompactedError
	assert.ErrorIs(t, w.Err(), etcdkit.ErrCompacted)
	if assert.ErrorAs(t, w.Err(), &ce) {
		assert.Equal(t, r2, ce.Revision, "the CompactedError's revision")
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
	require.NoError(t, err)
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
	// Not assert.Equal: a diff of thousands of changes says less than this.
	assert.True(t, slices.Equal(got, want), "%s got %d changes, history has %d; first difference at %d", who, len(got), len(want), firstDiff(got, want))
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
	require.NoError(t, w.err)
	return w.last
}

// TestWatchLeaderLoss stops the leader of a three-member cluster twice
// while writing: the watcher still sees each change once, in order.
func TestWatchLeaderLoss(t *testing.T) {
	t.Parallel()
	cl := etcdtest.StartCluster(t, 3)
	kv := etcdkit.NewKV(cl.Client(t), testPrefix(t), etcdkit.String())
	// 5,000 writes, one at a time, each committed by a quorum of three
	// members under -race beside the rest of the suite: about 30 a second
	// on a busy 2-core machine, so a bound of 3 minutes is too tight there.
	// The bound only keeps a hung test from running forever.
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
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
	require.NoError(t, err)
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
	_, err = writeN(ctx, writer, 50, nil)
	require.NoError(t, err)

	cl.StopMember(1)
	cl.StopMember(2)
	waitClosed(t, interrupted.seen, 20*time.Second, "log of the watch cancelled for lack of a leader")
	cl.RestartMember(1)
	cl.RestartMember(2)

	last, err := writeN(ctx, writer, 50, nil)
	require.NoError(t, err)
	c.expectHistory(t, cl.RawClient(t), kv.Prefix(), start, last, "watcher")
}
