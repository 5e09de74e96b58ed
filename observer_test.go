package etcdkit_test

import (
	"context"
	"log/slog"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"

	"github.com/etcdkit/etcdkit"
	"github.com/etcdkit/etcdkit/etcdtest"
)

// recorder is an Observer that keeps what it is told.
type recorder struct {
	mu      sync.Mutex
	starts  []etcdkit.Operation
	ends    []etcdkit.Operation
	notices []etcdkit.Notice
}

func (r *recorder) OperationStart(ctx context.Context, op etcdkit.Operation) context.Context {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.starts = append(r.starts, op)
	return ctx
}

func (r *recorder) OperationEnd(_ context.Context, op etcdkit.Operation) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ends = append(r.ends, op)
}

func (r *recorder) Notice(_ context.Context, n etcdkit.Notice) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.notices = append(r.notices, n)
}

// ended returns the operations named name that ended.
func (r *recorder) ended(name string) []etcdkit.Operation {
	r.mu.Lock()
	defer r.mu.Unlock()
	var ops []etcdkit.Operation
	for _, op := range r.ends {
		if op.Name == name {
			ops = append(ops, op)
		}
	}
	return ops
}

// notice waits, within a bound, for a notice of kind, and returns the first.
func (r *recorder) notice(t testing.TB, kind etcdkit.NoticeKind) etcdkit.Notice {
	t.Helper()
	var found etcdkit.Notice
	require.Eventually(t, func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		i := slices.IndexFunc(r.notices, func(n etcdkit.Notice) bool { return n.Kind == kind })
		if i >= 0 {
			found = r.notices[i]
		}
		return i >= 0
	}, 20*time.Second, 10*time.Millisecond, "no %v notice", kind)
	return found
}

// observed returns a client of the shared server that reports to a new
// recorder.
func observed(t testing.TB, opts ...etcdtest.ClientOption) (*etcdkit.Client, *recorder) {
	t.Helper()
	rec := &recorder{}
	opts = append(opts, etcdtest.WithClientConfig(func(cfg *etcdkit.Config) { cfg.Observer = rec }))
	return testServer.Client(t, opts...), rec
}

// serverAddrs returns the host:port of each endpoint of the shared server.
func serverAddrs(t testing.TB) []string {
	t.Helper()
	var addrs []string
	for _, ep := range testServer.Endpoints() {
		u, err := url.Parse(ep)
		require.NoError(t, err)
		addrs = append(addrs, u.Host)
	}
	return addrs
}

// TestObserver_Operations: each kind of operation reports its start and
// its end once, named, with the KV's (or lock's, election's, queue's)
// prefix, the revision it saw or made, no error, and the member that
// answered.
func TestObserver_Operations(t *testing.T) {
	t.Parallel()
	cli, rec := observed(t)
	ctx := testCtx(t)
	prefix := testPrefix(t)
	kv := etcdkit.NewKV(cli, prefix, etcdkit.String())

	put, err := kv.Put(ctx, "a", "1")
	require.NoError(t, err)
	_, err = kv.Get(ctx, "a")
	require.NoError(t, err)
	for _, err := range kv.List(ctx) {
		require.NoError(t, err)
	}
	_, err = kv.Create(ctx, "b", "1")
	require.NoError(t, err)
	cas, err := kv.CompareAndSwap(ctx, "a", "2", put)
	require.NoError(t, err)
	_, err = kv.Update(ctx, "a", func(string) (string, error) { return "3", nil })
	require.NoError(t, err)
	_, err = kv.Delete(ctx, "b")
	require.NoError(t, err)
	cur, err := kv.Get(ctx, "a")
	require.NoError(t, err)
	_, err = kv.CompareAndDelete(ctx, "a", cur.ModRevision)
	require.NoError(t, err)
	_, err = cli.Txn(ctx).Then(kv.PutOp("t", "1")).Commit()
	require.NoError(t, err)
	require.NoError(t, cli.Atomically(ctx, func(tx *etcdkit.Tx) error {
		kv.In(tx).Put("s", "1")
		return nil
	}))
	_, err = kv.PutMany(ctx, maps2(map[string]string{"m1": "1", "m2": "2"}))
	require.NoError(t, err)
	_, err = kv.DeleteMany(ctx, slices.Values([]string{"m1", "m2"}))
	require.NoError(t, err)
	w := kv.Watch(ctx)
	w.Close()
	m, err := kv.Mirror(ctx)
	require.NoError(t, err)
	m.Close()
	_, err = kv.Put(ctx, "f", "1")
	require.NoError(t, err)
	live, err := kv.Follow(ctx, "f")
	require.NoError(t, err)
	live.Close()

	lease, err := cli.Grant(ctx, 5*time.Second)
	require.NoError(t, err)
	require.NoError(t, lease.Revoke(ctx))
	l, err := cli.Lock(ctx, prefix+"lock")
	require.NoError(t, err)
	require.NoError(t, l.Unlock(ctx))
	ld, err := cli.Campaign(ctx, prefix+"election", "me")
	require.NoError(t, err)
	require.NoError(t, ld.Resign(ctx))
	q, err := etcdkit.NewQueue(cli, prefix+"queue/", etcdkit.String(), etcdkit.AtLeastOnce(5*time.Second))
	require.NoError(t, err)
	_, err = q.Enqueue(ctx, "job")
	require.NoError(t, err)
	it, err := q.Dequeue(ctx)
	require.NoError(t, err)
	require.NoError(t, it.Ack(ctx))
	require.NoError(t, q.Close(ctx))

	tests := []struct {
		name, prefix string
		rev          bool // a revision is reported
	}{
		{etcdkit.OpPut, prefix, true},
		{etcdkit.OpGet, prefix, true},
		{etcdkit.OpList, prefix, true},
		{etcdkit.OpCreate, prefix, true},
		{etcdkit.OpCompareAndSwap, prefix, true},
		{etcdkit.OpUpdate, prefix, true},
		{etcdkit.OpDelete, prefix, true},
		{etcdkit.OpCompareAndDelete, prefix, true},
		{etcdkit.OpTxn, "", true},
		{etcdkit.OpAtomically, "", true},
		{etcdkit.OpPutMany, prefix, true},
		{etcdkit.OpDeleteMany, prefix, true},
		{etcdkit.OpWatch, prefix, false},
		{etcdkit.OpMirror, prefix, true},
		{etcdkit.OpFollow, prefix, true},
		{etcdkit.OpLeaseGrant, "", true},
		{etcdkit.OpLeaseRevoke, "", false},
		{etcdkit.OpLock, prefix + "lock", true},
		{etcdkit.OpUnlock, prefix + "lock", false},
		{etcdkit.OpCampaign, prefix + "election", true},
		{etcdkit.OpResign, prefix + "election", false},
		{etcdkit.OpEnqueue, prefix + "queue/", true},
		{etcdkit.OpDequeue, prefix + "queue/", true},
		{etcdkit.OpAck, prefix + "queue/", true},
	}
	addrs := serverAddrs(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ops := rec.ended(tt.name)
			require.NotEmpty(t, ops, "no %s ended", tt.name)
			op := ops[0]
			assert.Equal(t, tt.prefix, op.Prefix)
			assert.NoError(t, op.Err)
			assert.False(t, op.Start.IsZero(), "Start")
			assert.Contains(t, addrs, op.Server)
			if tt.rev {
				assert.Positive(t, op.Revision)
			} else {
				assert.Zero(t, op.Revision)
			}
		})
	}
	if ops := rec.ended(etcdkit.OpCompareAndSwap); assert.NotEmpty(t, ops) {
		assert.Equal(t, cas, ops[0].Revision, "CompareAndSwap's revision")
	}
	if ops := rec.ended(etcdkit.OpGet); assert.NotEmpty(t, ops) {
		assert.Equal(t, "a", ops[0].Key, "Get's key, relative to the prefix")
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	assert.Len(t, rec.starts, len(rec.ends), "every start has its end")
}

func maps2(m map[string]string) func(func(string, string) bool) {
	return func(yield func(string, string) bool) {
		for k, v := range m {
			if !yield(k, v) {
				return
			}
		}
	}
}

// TestObserver_OperationError: a failed operation ends with its error.
func TestObserver_OperationError(t *testing.T) {
	t.Parallel()
	cli, rec := observed(t)
	kv := etcdkit.NewKV(cli, testPrefix(t), etcdkit.String())
	_, err := kv.Get(testCtx(t), "missing")
	require.ErrorIs(t, err, etcdkit.ErrNotFound)
	ops := rec.ended(etcdkit.OpGet)
	require.Len(t, ops, 1)
	assert.ErrorIs(t, ops[0].Err, etcdkit.ErrNotFound)
	assert.Zero(t, ops[0].Revision)
}

// TestObserver_Follow: Follow is one operation, from its first read until
// the Live is ready or Follow fails: named follow, with the KV's prefix, the
// key, the revision it read at and the error Follow returned.
func TestObserver_Follow(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		present bool
	}{
		{"present", true},
		{"missing", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cli, rec := observed(t)
			ctx := testCtx(t)
			kv := etcdkit.NewKV(cli, testPrefix(t), etcdkit.String())
			before, err := kv.Put(ctx, "before", "x") // a revision Follow's read comes after
			require.NoError(t, err)
			if tc.present {
				_, err = kv.Put(ctx, "cfg", "v1")
				require.NoError(t, err)
			}

			live, err := kv.Follow(ctx, "cfg")
			if tc.present {
				require.NoError(t, err)
				live.Close()
			} else {
				require.ErrorIs(t, err, etcdkit.ErrNotFound)
			}

			ops := rec.ended(etcdkit.OpFollow)
			require.Len(t, ops, 1, "follow operations ended")
			op := ops[0]
			assert.Equal(t, kv.Prefix(), op.Prefix, "prefix")
			assert.Equal(t, "cfg", op.Key, "key, relative to the prefix")
			assert.GreaterOrEqual(t, op.Revision, before, "the revision Follow read at")
			assert.Equal(t, err, op.Err, "the error Follow returned")
			assert.Contains(t, serverAddrs(t), op.Server)
			rec.mu.Lock()
			defer rec.mu.Unlock()
			starts := slices.DeleteFunc(slices.Clone(rec.starts), func(op etcdkit.Operation) bool { return op.Name != etcdkit.OpFollow })
			assert.Len(t, starts, 1, "follow operations started")
		})
	}
}

// TestObserver_UpdateConflict: an Update that finds the key changed under
// it tells of the conflict, and its end counts the retry.
func TestObserver_UpdateConflict(t *testing.T) {
	t.Parallel()
	cli, rec := observed(t)
	ctx := testCtx(t)
	kv := etcdkit.NewKV(cli, testPrefix(t), etcdkit.String())
	other := etcdkit.NewKV(newClient(t), kv.Prefix(), etcdkit.String())
	_, err := kv.Put(ctx, "k", "0")
	require.NoError(t, err)
	var calls atomic.Int32
	_, err = kv.Update(ctx, "k", func(cur string) (string, error) {
		if calls.Add(1) == 1 {
			_, err := other.Put(ctx, "k", "changed")
			require.NoError(t, err)
		}
		return cur + "+", nil
	})
	require.NoError(t, err)
	n := rec.notice(t, etcdkit.NoticeConflict)
	assert.Equal(t, kv.Prefix(), n.Prefix)
	assert.Equal(t, "k", n.Key)
	assert.Equal(t, int64(1), n.Value, "the attempt that conflicted")
	ops := rec.ended(etcdkit.OpUpdate)
	require.Len(t, ops, 1)
	assert.Equal(t, 1, ops[0].Retries)
}

// TestObserver_MirrorDecodeError: a value a Mirror cannot decode is left
// out, and the Observer is told which key it was.
func TestObserver_MirrorDecodeError(t *testing.T) {
	t.Parallel()
	cli, rec := observed(t)
	ctx := testCtx(t)
	prefix := testPrefix(t)
	_, err := etcdkit.NewKV(cli, prefix, etcdkit.String()).Put(ctx, "bad", "not json")
	require.NoError(t, err)
	m, err := etcdkit.NewKV(cli, prefix, etcdkit.JSON[int]()).Mirror(ctx)
	require.NoError(t, err)
	defer m.Close()
	n := rec.notice(t, etcdkit.NoticeDecodeError)
	assert.Equal(t, prefix, n.Prefix)
	assert.Equal(t, "bad", n.Key)
	var de *etcdkit.DecodeError
	assert.ErrorAs(t, n.Err, &de)
}

// TestObserver_LockLost: a lock whose key someone deletes tells of the loss.
func TestObserver_LockLost(t *testing.T) {
	t.Parallel()
	cli, rec := observed(t)
	ctx := testCtx(t)
	name := testPrefix(t) + "lock"
	l, err := cli.Lock(ctx, name)
	require.NoError(t, err)
	acq := rec.notice(t, etcdkit.NoticeLockAcquired)
	assert.Equal(t, name, acq.Prefix)
	assert.Equal(t, l.Fence(), acq.Revision)
	lost := l.Lost() // starts watching for the loss
	_, err = testServer.RawClient(t).Delete(ctx, l.Key())
	require.NoError(t, err)
	select {
	case <-lost:
	case <-ctx.Done():
		t.Fatal("the lock was not lost")
	}
	n := rec.notice(t, etcdkit.NoticeLockLost)
	assert.Equal(t, name, n.Prefix)
	assert.ErrorIs(t, n.Err, etcdkit.ErrLeaseExpired)
}

// TestObserver_UnlockIsNoLoss: a lock released by its holder is not lost.
func TestObserver_UnlockIsNoLoss(t *testing.T) {
	t.Parallel()
	cli, rec := observed(t)
	ctx := testCtx(t)
	l, err := cli.Lock(ctx, testPrefix(t)+"lock")
	require.NoError(t, err)
	lost := l.Lost()
	require.NoError(t, l.Unlock(ctx))
	<-lost
	require.ErrorIs(t, l.Err(), etcdkit.ErrClosed)
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for _, n := range rec.notices {
		assert.NotEqual(t, etcdkit.NoticeLockLost, n.Kind)
	}
}

// watchCutter makes the next message of every watch stream fail, as a
// member that lost its leader does, once cut is set.
type watchCutter struct{ cut atomic.Bool }

func (c *watchCutter) intercept(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn,
	method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	s, err := streamer(ctx, desc, cc, method, opts...)
	if err != nil || method != "/etcdserverpb.Watch/Watch" {
		return s, err
	}
	return &cutStream{ClientStream: s, c: c}, nil
}

type cutStream struct {
	grpc.ClientStream
	c *watchCutter
}

func (s *cutStream) RecvMsg(m any) error {
	err := s.ClientStream.RecvMsg(m)
	if err == nil && s.c.cut.CompareAndSwap(true, false) {
		return rpctypes.ErrGRPCNoLeader
	}
	return err
}

// TestObserver_WatchResumed: a watch cut off tells, when it resumes, from
// which revision, and still delivers every change.
func TestObserver_WatchResumed(t *testing.T) {
	t.Parallel()
	cutter := &watchCutter{}
	cli, rec := observed(t, etcdtest.WithClientConfig(func(cfg *etcdkit.Config) {
		cfg.StreamInterceptors = append(cfg.StreamInterceptors, cutter.intercept)
	}))
	ctx := testCtx(t)
	kv := etcdkit.NewKV(cli, testPrefix(t), etcdkit.String())
	w := kv.Watch(ctx)
	defer w.Close()
	first, err := kv.Put(ctx, "k", "1")
	require.NoError(t, err)
	next := func() etcdkit.Event[string] {
		select {
		case ev := <-w.Events():
			return ev
		case <-ctx.Done():
			t.Fatal("no event")
			return etcdkit.Event[string]{}
		}
	}
	require.Equal(t, first, next().Entry.ModRevision)
	cutter.cut.Store(true)
	second, err := kv.Put(ctx, "k", "2") // its message is the one cut
	require.NoError(t, err)
	assert.Equal(t, second, next().Entry.ModRevision, "the change lost with the cut is delivered")
	n := rec.notice(t, etcdkit.NoticeWatchResumed)
	assert.Equal(t, kv.Prefix(), n.Prefix)
	assert.Equal(t, first+1, n.Revision)
	assert.Error(t, n.Err)
}

// debugRecords is a slog handler that keeps debug records.
type debugRecords struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (h *debugRecords) Enabled(context.Context, slog.Level) bool { return true }
func (h *debugRecords) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.recs = append(h.recs, r)
	return nil
}
func (h *debugRecords) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *debugRecords) WithGroup(string) slog.Handler      { return h }

// TestObserver_LogView: with a Logger that logs debug records and no
// Observer, a notice is logged at debug level with the prefix, and
// neither the key nor the value.
func TestObserver_LogView(t *testing.T) {
	t.Parallel()
	h := &debugRecords{}
	cli := testServer.Client(t, etcdtest.WithClientConfig(func(cfg *etcdkit.Config) { cfg.Logger = slog.New(h) }))
	ctx := testCtx(t)
	kv := etcdkit.NewKV(cli, testPrefix(t), etcdkit.String())
	other := etcdkit.NewKV(newClient(t), kv.Prefix(), etcdkit.String())
	_, err := kv.Put(ctx, "secret-key", "0")
	require.NoError(t, err)
	var calls atomic.Int32
	_, err = kv.Update(ctx, "secret-key", func(cur string) (string, error) {
		if calls.Add(1) == 1 {
			_, err := other.Put(ctx, "secret-key", "secret-value")
			require.NoError(t, err)
		}
		return "x", nil
	})
	require.NoError(t, err)
	h.mu.Lock()
	defer h.mu.Unlock()
	i := slices.IndexFunc(h.recs, func(r slog.Record) bool { return r.Message == "etcdkit: conflict" })
	require.GreaterOrEqual(t, i, 0, "no conflict record")
	r := h.recs[i]
	assert.Equal(t, slog.LevelDebug, r.Level)
	attrs := map[string]string{}
	r.Attrs(func(a slog.Attr) bool {
		attrs[a.Key] = a.Value.String()
		return true
	})
	assert.Equal(t, kv.Prefix(), attrs["prefix"])
	for k, v := range attrs {
		assert.NotContains(t, v, "secret", "attribute %s", k)
	}
}

// TestObserver_NilCostsNothing: without an Observer, reporting an
// operation allocates nothing. (What Get and Put allocate in all, the
// embedded server's share included, is in the benchmarks of package bench.)
// Not parallel: AllocsPerRun counts every goroutine's allocations.
func TestObserver_NilCostsNothing(t *testing.T) {
	cli := newClient(t)
	ctx := testCtx(t)
	assert.Zero(t, testing.AllocsPerRun(1000, func() {
		octx, end := cli.Observe(ctx, "op", "prefix/", "key")
		end(1, nil)
		ctxSink = octx
	}), "Observe")

}

var ctxSink context.Context

// TestObserver_CloseIsNoLoss: a lock ended by the client's Close is not
// lost: Close ends what the client holds on purpose.
func TestObserver_CloseIsNoLoss(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	cli, err := etcdkit.New(testCtx(t), func() etcdkit.Config {
		cfg := testServer.Config()
		cfg.Observer = rec
		return cfg
	}())
	require.NoError(t, err)
	l, err := cli.Lock(testCtx(t), testPrefix(t)+"lock")
	require.NoError(t, err)
	lost := l.Lost()
	require.NoError(t, cli.Close())
	<-lost
	require.ErrorIs(t, l.Err(), etcdkit.ErrClosed)
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for _, n := range rec.notices {
		assert.NotEqual(t, etcdkit.NoticeLockLost, n.Kind, "notice %+v", n)
	}
}

// TestObserver_LeaseNotices: a lease kept alive tells of each refresh and
// the margin it had, and of its expiry when the server no longer holds it.
func TestObserver_LeaseNotices(t *testing.T) {
	t.Parallel()
	cli, rec := observed(t)
	ctx := testCtx(t)
	lease, err := cli.Grant(ctx, 3*time.Second)
	require.NoError(t, err)
	require.NoError(t, lease.KeepAlive())
	ka := rec.notice(t, etcdkit.NoticeLeaseKeepAlive)
	assert.Equal(t, lease.ID(), ka.Value)
	assert.Positive(t, ka.Duration, "margin")
	_, err = testServer.RawClient(t).Revoke(ctx, clientv3.LeaseID(lease.ID()))
	require.NoError(t, err)
	n := rec.notice(t, etcdkit.NoticeLeaseExpired)
	assert.Equal(t, lease.ID(), n.Value)
	assert.ErrorIs(t, n.Err, etcdkit.ErrLeaseExpired)
}

// TestObserver_LeaderChanged: an observer of an election is told of each
// new leader with its fence, and a campaign that wins tells it became the
// leader.
func TestObserver_LeaderChanged(t *testing.T) {
	t.Parallel()
	cli, rec := observed(t)
	ctx := testCtx(t)
	name := testPrefix(t) + "election"
	ld, err := newClient(t).Campaign(ctx, name, "other")
	require.NoError(t, err)
	octx, cancel := context.WithCancel(ctx)
	defer cancel()
	infos := cli.ObserveLeaderInfo(octx, name)
	<-infos
	n := rec.notice(t, etcdkit.NoticeLeaderChanged)
	assert.Equal(t, name, n.Prefix)
	assert.Equal(t, ld.Fence(), n.Revision)
	assert.Zero(t, n.Value, "an observer")
	require.NoError(t, ld.Resign(ctx))

	mine, err := cli.Campaign(ctx, name, "me")
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		return slices.ContainsFunc(rec.notices, func(n etcdkit.Notice) bool {
			return n.Kind == etcdkit.NoticeLeaderChanged && n.Value == 1 && n.Revision == mine.Fence()
		})
	}, 20*time.Second, 10*time.Millisecond, "no notice of this client leading")
	require.NoError(t, mine.Resign(ctx))
}

// TestObserver_QueueDepth: Len tells how many items the queue holds.
func TestObserver_QueueDepth(t *testing.T) {
	t.Parallel()
	cli, rec := observed(t)
	ctx := testCtx(t)
	q, err := etcdkit.NewQueue(cli, testPrefix(t), etcdkit.String())
	require.NoError(t, err)
	for range 2 {
		_, err := q.Enqueue(ctx, "job")
		require.NoError(t, err)
	}
	n, err := q.Len(ctx)
	require.NoError(t, err)
	d := rec.notice(t, etcdkit.NoticeQueueDepth)
	assert.Equal(t, n, d.Value)
	assert.Equal(t, testPrefix(t), d.Prefix)
}

// endedOnce returns the one operation named name that ended.
func (r *recorder) endedOnce(t testing.TB, name string) etcdkit.Operation {
	t.Helper()
	ops := r.ended(name)
	require.Len(t, ops, 1, "%s operations ended", name)
	return ops[0]
}

// TestObserver_LockJoinRetries: a lock whose join finds its session's lease
// gone joins again on a new lease, and that second join counts as a retry.
func TestObserver_LockJoinRetries(t *testing.T) {
	t.Parallel()
	cli, rec := observed(t)
	raw := testServer.RawClient(t)
	ctx := testCtx(t)
	name := lockName(t)
	// A long TTL: the session's keep-alive does not hear of the revoke
	// before the second Lock picks the session.
	ttl := etcdkit.LockTTL(time.Minute)
	l, err := cli.Lock(ctx, name, ttl)
	require.NoError(t, err)
	resp, err := raw.Get(ctx, l.Key())
	require.NoError(t, err)
	require.Len(t, resp.Kvs, 1, "the lock's key")
	require.NoError(t, l.Unlock(ctx))
	assert.Zero(t, rec.endedOnce(t, etcdkit.OpLock).Retries, "a join that succeeded at once")

	_, err = raw.Revoke(ctx, clientv3.LeaseID(resp.Kvs[0].Lease))
	require.NoError(t, err)
	l, err = cli.Lock(ctx, name, ttl)
	require.NoError(t, err)
	require.NoError(t, l.Unlock(ctx))
	ops := rec.ended(etcdkit.OpLock)
	require.Len(t, ops, 2)
	assert.Equal(t, 1, ops[1].Retries, "the join sent again on a new lease")
	assert.NoError(t, ops[1].Err)
}

// TestObserver_SemaphoreLimitRetries: a store of a semaphore's limit that
// did not commit is sent again, and counts as a retry; one that committed
// though its answer was lost is settled by a read, and does not.
func TestObserver_SemaphoreLimitRetries(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		outcome etcdtest.Outcome // 0: no fault
		retries int
	}{
		{0, 0},
		{etcdtest.FailBeforeSend, 1},
		{etcdtest.CommitThenFail, 0},
	} {
		t.Run(tc.outcome.String(), func(t *testing.T) {
			t.Parallel()
			f := etcdtest.NewFaults()
			cli, rec := observed(t, etcdtest.WithFaults(f))
			sem, err := cli.Semaphore(lockName(t), 2)
			require.NoError(t, err)
			if tc.outcome != 0 {
				f.Inject(etcdtest.RPCTxn, tc.outcome, 1, 0) // the limit's store, the first Txn
			}
			h, err := sem.Acquire(testCtx(t))
			require.NoError(t, err)
			require.NoError(t, h.Unlock(testCtx(t)))
			if tc.outcome != 0 {
				require.EqualValues(t, 1, f.Injected(), "the fault was used")
			}
			op := rec.endedOnce(t, etcdkit.OpLock)
			assert.Equal(t, tc.retries, op.Retries, "retries")
			assert.NoError(t, op.Err)
		})
	}
}

// TestObserver_EnqueueRetries: an Enqueue whose number is taken (a key
// written by hand) appends again at the next number, and counts a retry.
func TestObserver_EnqueueRetries(t *testing.T) {
	t.Parallel()
	cli, rec := observed(t)
	ctx := testCtx(t)
	prefix := runPrefix(t)
	q := newQueue(t, cli, prefix, etcdkit.String())
	_, err := testServer.RawClient(t).Put(ctx, prefix+"items/00000000000000000001", `"by hand"`)
	require.NoError(t, err)
	key, err := q.Enqueue(ctx, "job")
	require.NoError(t, err)
	assert.Equal(t, "items/00000000000000000002", key, "the number after the taken one")
	assert.Equal(t, 1, rec.endedOnce(t, etcdkit.OpEnqueue).Retries, "retries")
	_, err = q.Enqueue(ctx, "job 2")
	require.NoError(t, err)
	assert.Zero(t, rec.ended(etcdkit.OpEnqueue)[1].Retries, "an Enqueue whose first attempt succeeds")
}

// TestObserver_DequeueRetries: a Dequeue that finds its item taken by
// another consumer reads the queue again, and counts a retry.
func TestObserver_DequeueRetries(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	prefix := runPrefix(t)
	raw := testServer.RawClient(t)
	var stolen atomic.Bool
	// Before the consumer's first take is sent, another takes the item.
	steal := func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn,
		invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		if strings.HasSuffix(method, "/Txn") && stolen.CompareAndSwap(false, true) {
			if _, err := raw.Delete(ctx, prefix+"items/", clientv3.WithPrefix()); err != nil {
				return err
			}
		}
		return invoker(ctx, method, req, reply, cc, opts...)
	}
	cli, rec := observed(t, etcdtest.WithClientConfig(func(cfg *etcdkit.Config) {
		cfg.UnaryInterceptors = append(cfg.UnaryInterceptors, steal)
	}))
	_, err := newQueue(t, newClient(t), prefix, etcdkit.String()).Enqueue(ctx, "job")
	require.NoError(t, err)

	_, err = newQueue(t, cli, prefix, etcdkit.String()).TryDequeue(ctx)
	require.ErrorIs(t, err, etcdkit.ErrNotFound, "the item was taken by another")
	require.True(t, stolen.Load())
	assert.Equal(t, 1, rec.endedOnce(t, etcdkit.OpDequeue).Retries, "retries")
}

// runPrefix is testPrefix made unique to this run of the test, for a test
// that needs its prefix empty when run again with -count.
func runPrefix(t testing.TB) string {
	return testPrefix(t) + strconv.FormatInt(time.Now().UnixNano(), 36) + "/"
}
