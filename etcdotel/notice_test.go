package etcdotel_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/etcdkit/etcdkit"
	"github.com/etcdkit/etcdkit/etcdtest"
)

// TestConflictEvent races Update against another writer: the retried
// conflict is an event on the update's span, a count in etcdkit.conflicts,
// and the span's etcdkit.retries.
func TestConflictEvent(t *testing.T) {
	t.Parallel()
	tel := newTelemetry(t)
	cli := tel.client(t, testServer)
	pfx := testPrefix(t)
	kv := etcdkit.NewKV(cli, pfx, etcdkit.String())
	other := etcdkit.NewKV(testServer.Client(t), pfx, etcdkit.String())
	ctx := testCtx(t)
	_, err := kv.Put(ctx, "k", "0")
	require.NoError(t, err)

	calls := 0
	_, err = kv.Update(ctx, "k", func(cur string) (string, error) {
		calls++
		if calls == 1 {
			_, err := other.Put(ctx, "k", "raced")
			require.NoError(t, err)
		}
		return cur + "+1", nil
	})
	require.NoError(t, err)
	require.Equal(t, 2, calls, "the race made Update call fn again")

	s := tel.span(t, "update "+pfx)
	assert.EqualValues(t, 1, attrs(s)["etcdkit.retries"].AsInt64(), "etcdkit.retries")
	evs := events(s, "etcdkit.conflict")
	require.Len(t, evs, 1, "conflict events on the update's span")
	assert.EqualValues(t, 1, eventAttr(evs[0], "etcdkit.attempt").AsInt64(), "etcdkit.attempt")
	assert.Equal(t, pfx, eventAttr(evs[0], "db.collection.name").AsString())
	assert.EqualValues(t, 1, tel.counted(t, "etcdkit.conflicts", attribute.String("db.collection.name", pfx)))
}

// TestDecodeError stores a value the codec cannot read: a Get fails with
// error.type decode_error, and a Mirror that skips it counts it in
// etcdkit.decode_errors, as an event on the caller's span.
func TestDecodeError(t *testing.T) {
	t.Parallel()
	tel := newTelemetry(t)
	cli := tel.client(t, testServer)
	pfx := testPrefix(t)
	type rec struct{ N int }
	kv := etcdkit.NewKV(cli, pfx, etcdkit.JSON[rec]())
	_, err := etcdkit.NewKV(testServer.Client(t), pfx, etcdkit.String()).Put(testCtx(t), "bad", "{not json")
	require.NoError(t, err)
	ctx, caller := tel.parent(testCtx(t))

	_, err = kv.Get(ctx, "bad")
	var de *etcdkit.DecodeError
	require.ErrorAs(t, err, &de)
	m, err := kv.Mirror(ctx)
	require.NoError(t, err)
	m.Close()
	caller.End()

	get := tel.span(t, "get "+pfx)
	assert.Equal(t, "decode_error", attrs(get)["error.type"].AsString())
	assert.Equal(t, "decode_error", get.Status().Description)
	assert.EqualValues(t, 1, tel.counted(t, "etcdkit.decode_errors", attribute.String("db.collection.name", pfx)))
	var evs int
	for _, s := range tel.spans.Ended() {
		for _, e := range events(s, "etcdkit.decode_error") {
			evs++
			assert.Equal(t, caller.SpanContext().TraceID(), s.SpanContext().TraceID(), "event in the caller's trace")
			assert.Equal(t, "decode_error", eventAttr(e, "error.type").AsString())
		}
	}
	assert.Equal(t, 1, evs, "decode_error events")
}

// TestLockLost revokes a held lock's lease behind its back: the loss is
// counted in etcdkit.lock.lost, the lease's end in etcdkit.lease.expired,
// and the wait that took the lock in etcdkit.lock.wait.duration.
func TestLockLost(t *testing.T) {
	t.Parallel()
	tel := newTelemetry(t)
	cli := tel.client(t, testServer)
	name := testPrefix(t) + "lock"
	ctx := testCtx(t)
	l, err := cli.Lock(ctx, name)
	require.NoError(t, err)
	revokeLeaseOf(t, testServer.RawClient(t), l.Key())
	select {
	case <-l.Lost():
	case <-time.After(20 * time.Second):
		t.Fatal("the lock was not lost within 20s of revoking its lease")
	}
	require.ErrorIs(t, l.Unlock(ctx), etcdkit.ErrLeaseExpired, "Unlock after the loss returns it")

	tel.waitCounted(t, "etcdkit.lock.lost", 1, attribute.String("db.collection.name", name))
	tel.waitCounted(t, "etcdkit.lease.expired", 1)
	h, ok := tel.metric(t, "etcdkit.lock.wait.duration").Data.(metricdata.Histogram[float64])
	require.True(t, ok, "a float64 histogram")
	p := point(t, h, attribute.String("db.collection.name", name))
	assert.EqualValues(t, 1, p.Count, "lock waits")
	assert.Equal(t, "s", tel.metric(t, "etcdkit.lock.wait.duration").Unit)
}

func revokeLeaseOf(t testing.TB, raw *clientv3.Client, key string) {
	t.Helper()
	resp, err := raw.Get(t.Context(), key)
	require.NoError(t, err, "get %q", key)
	require.NotEmpty(t, resp.Kvs, "get %q", key)
	_, err = raw.Revoke(t.Context(), clientv3.LeaseID(resp.Kvs[0].Lease))
	require.NoError(t, err, "revoke lease of %q", key)
}

// TestWatchResumed cuts the member a watch uses off from its quorum, which
// cancels the watch: the resume is counted in etcdkit.watch.resumes and is
// an event, with the revision it resumed from, on the span of the ctx the
// watch was started with.
func TestWatchResumed(t *testing.T) {
	t.Parallel()
	cl := etcdtest.StartCluster(t, 3)
	tel := newTelemetry(t)
	obs := tel.observer()
	cli := cl.Member(0).Client(t, etcdtest.WithClientConfig(func(c *etcdkit.Config) { c.Observer = obs }))
	pfx := testPrefix(t)
	kv := etcdkit.NewKV(cli, pfx, etcdkit.String())
	ctx, caller := tel.parent(testCtx(t))
	start, err := kv.Put(ctx, "start", "")
	require.NoError(t, err)
	w := kv.Watch(ctx, etcdkit.FromRevision(start+1))
	defer w.Close()

	cl.StopMember(1)
	cl.StopMember(2)
	tel.waitCounted(t, "etcdkit.watch.resumes", 1, attribute.String("db.collection.name", pfx))
	cl.RestartMember(1)
	cl.RestartMember(2)
	caller.End()

	s := tel.span(t, "caller")
	evs := events(s, "etcdkit.watch_resumed")
	require.NotEmpty(t, evs, "watch_resumed events on the caller's span")
	assert.Equal(t, start+1, eventAttr(evs[0], "etcd.revision").AsInt64(), "the revision it resumed from")
	assert.Equal(t, "unavailable", eventAttr(evs[0], "error.type").AsString(), "why it was cut")
}

// TestNoticeMetrics tells an Observer of each notice that no test above
// provokes through a Client, and checks the metric it lands in.
func TestNoticeMetrics(t *testing.T) {
	t.Parallel()
	tel := newTelemetry(t)
	obs := tel.observer()
	ctx := context.Background()
	for _, n := range []etcdkit.Notice{
		{Kind: etcdkit.NoticeCompactionResync, Prefix: "p/", Revision: 7},
		{Kind: etcdkit.NoticeLeaseKeepAlive, Duration: 3 * time.Second},
		{Kind: etcdkit.NoticeLeaseLost},
		{Kind: etcdkit.NoticeLeaderChanged, Prefix: "e", Value: 1},
		{Kind: etcdkit.NoticeLeaderChanged, Prefix: "e", Value: -1},
		{Kind: etcdkit.NoticeLeaderChanged, Prefix: "e"},
		{Kind: etcdkit.NoticeMirrorLag, Prefix: "p/", Value: 12},
		{Kind: etcdkit.NoticeQueueDepth, Prefix: "q/", Value: 5},
	} {
		obs.Notice(ctx, n)
	}
	assert.EqualValues(t, 1, tel.counted(t, "etcdkit.watch.compaction_resyncs", attribute.String("db.collection.name", "p/")))
	assert.EqualValues(t, 1, tel.counted(t, "etcdkit.lease.lost"))
	for _, tr := range []string{"elected", "stepped_down", "observed"} {
		assert.EqualValues(t, 1, tel.counted(t, "etcdkit.election.transitions", attribute.String("etcdkit.election.transition", tr)), tr)
	}
	gauge := func(name string) int64 {
		g, ok := tel.metric(t, name).Data.(metricdata.Gauge[int64])
		require.True(t, ok, "%s is an int64 gauge", name)
		require.Len(t, g.DataPoints, 1, name)
		return g.DataPoints[0].Value
	}
	assert.EqualValues(t, 12, gauge("etcdkit.mirror.lag"))
	assert.EqualValues(t, 5, gauge("etcdkit.queue.depth"))
	h, ok := tel.metric(t, "etcdkit.lease.keepalive.margin").Data.(metricdata.Histogram[float64])
	require.True(t, ok)
	require.Len(t, h.DataPoints, 1)
	assert.InDelta(t, 3.0, h.DataPoints[0].Sum, 1e-9, "margin in seconds")
}
