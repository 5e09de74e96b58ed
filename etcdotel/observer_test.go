package etcdotel_test

import (
	"context"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/etcdkit/etcdkit"
	"github.com/etcdkit/etcdkit/etcdtest"
)

// TestOperationSpans runs one call of each kind through a Client observed
// by the real SDK, inside a caller's span: each makes one CLIENT span,
// child of the caller's, with the database attributes.
func TestOperationSpans(t *testing.T) {
	t.Parallel()
	tel := newTelemetry(t)
	cli := tel.client(t, testServer)
	pfx := testPrefix(t)
	kv := etcdkit.NewKV(cli, pfx, etcdkit.String())
	q, err := etcdkit.NewQueue(cli, pfx+"queue/", etcdkit.String(), etcdkit.AtLeastOnce(10*time.Second))
	require.NoError(t, err)
	ctx, caller := tel.parent(testCtx(t))

	steps := []struct {
		op, collection string
		run            func() error
	}{
		{etcdkit.OpPut, pfx, func() error { _, err := kv.Put(ctx, "a", "1"); return err }},
		{etcdkit.OpGet, pfx, func() error { _, err := kv.Get(ctx, "a"); return err }},
		{etcdkit.OpCreate, pfx, func() error { _, err := kv.Create(ctx, "b", "2"); return err }},
		{etcdkit.OpCompareAndSwap, pfx, func() error {
			e, err := kv.Get(context.Background(), "a") // outside the caller's span
			if err != nil {
				return err
			}
			_, err = kv.CompareAndSwap(ctx, "a", "3", e.ModRevision)
			return err
		}},
		{etcdkit.OpUpdate, pfx, func() error {
			_, err := kv.Update(ctx, "a", func(s string) (string, error) { return s + "!", nil })
			return err
		}},
		{etcdkit.OpList, pfx, func() error {
			for _, err := range kv.List(ctx) {
				if err != nil {
					return err
				}
			}
			return nil
		}},
		{etcdkit.OpDelete, pfx, func() error { _, err := kv.Delete(ctx, "b"); return err }},
		{etcdkit.OpTxn, "", func() error {
			_, err := cli.Txn(ctx).Then(kv.PutOp("c", "4")).Commit()
			return err
		}},
		{etcdkit.OpAtomically, "", func() error {
			return cli.Atomically(ctx, func(tx *etcdkit.Tx) error {
				kv.In(tx).Put("d", "5")
				return nil
			})
		}},
		{etcdkit.OpPutMany, pfx, func() error {
			_, err := kv.PutMany(ctx, maps.All(map[string]string{"e": "6", "f": "7"}))
			return err
		}},
		{etcdkit.OpDeleteMany, pfx, func() error {
			_, err := kv.DeleteMany(ctx, slices.Values([]string{"e", "f"}))
			return err
		}},
		{etcdkit.OpWatch, pfx, func() error { kv.Watch(ctx).Close(); return nil }},
		{etcdkit.OpMirror, pfx, func() error {
			m, err := kv.Mirror(ctx)
			if err != nil {
				return err
			}
			m.Close()
			return nil
		}},
		{etcdkit.OpFollow, pfx, func() error {
			l, err := kv.Follow(ctx, "a")
			if err != nil {
				return err
			}
			l.Close()
			return nil
		}},
		{etcdkit.OpLeaseGrant, "", func() error {
			l, err := cli.Grant(ctx, 5*time.Second)
			if err != nil {
				return err
			}
			return l.Revoke(ctx)
		}},
		{etcdkit.OpLock, pfx + "lock", func() error {
			l, err := cli.Lock(ctx, pfx+"lock")
			if err != nil {
				return err
			}
			return l.Unlock(ctx)
		}},
		{etcdkit.OpCampaign, pfx + "election", func() error {
			ld, err := cli.Campaign(ctx, pfx+"election", "me")
			if err != nil {
				return err
			}
			return ld.Resign(ctx)
		}},
		{etcdkit.OpEnqueue, pfx + "queue/", func() error { _, err := q.Enqueue(ctx, "job"); return err }},
		{etcdkit.OpDequeue, pfx + "queue/", func() error {
			it, err := q.Dequeue(ctx)
			if err != nil {
				return err
			}
			return it.Ack(ctx)
		}},
	}
	for _, s := range steps {
		require.NoError(t, s.run(), s.op)
	}
	caller.End()

	// The steps' second calls (revoke, unlock, resign, ack) are checked too.
	extra := map[string]string{
		etcdkit.OpLeaseRevoke: "", etcdkit.OpUnlock: pfx + "lock",
		etcdkit.OpResign: pfx + "election", etcdkit.OpAck: pfx + "queue/",
	}
	want := map[string]string{}
	for _, s := range steps {
		want[s.op] = s.collection
	}
	maps.Copy(want, extra)
	for op, collection := range want {
		t.Run(op, func(t *testing.T) {
			name := op
			if collection != "" {
				name += " " + collection
			}
			s := tel.childOf(t, name, caller.SpanContext())
			assertOperationSpan(t, s, caller, op, collection)
		})
	}
}

// assertOperationSpan checks what every operation's span carries.
func assertOperationSpan(t *testing.T, s sdktrace.ReadOnlySpan, caller trace.Span, op, collection string) {
	t.Helper()
	a := attrs(s)
	assert.Equal(t, trace.SpanKindClient, s.SpanKind(), "span kind")
	assert.Equal(t, caller.SpanContext().SpanID(), s.Parent().SpanID(), "parent is the caller's span")
	assert.Equal(t, caller.SpanContext().TraceID(), s.SpanContext().TraceID(), "trace")
	assert.Equal(t, "etcd", a["db.system.name"].AsString(), "db.system.name")
	assert.Equal(t, op, a["db.operation.name"].AsString(), "db.operation.name")
	if collection == "" {
		assert.NotContains(t, a, attribute.Key("db.collection.name"))
	} else {
		assert.Equal(t, collection, a["db.collection.name"].AsString(), "db.collection.name")
	}
	assert.Equal(t, "127.0.0.1", a["server.address"].AsString(), "server.address")
	assert.Positive(t, a["server.port"].AsInt64(), "server.port")
	assert.Contains(t, a, attribute.Key("etcdkit.retries"))
	assert.NotContains(t, a, attribute.Key("error.type"))
	assert.NotContains(t, a, attribute.Key("etcdkit.key"), "keys are recorded only when asked")
	assert.Equal(t, codes.Unset, s.Status().Code, "status")
	// Releases, leases and a watch from now report no revision.
	if !slices.Contains([]string{etcdkit.OpUnlock, etcdkit.OpResign, etcdkit.OpLeaseGrant, etcdkit.OpLeaseRevoke, etcdkit.OpWatch}, op) {
		assert.Positive(t, a["etcd.revision"].AsInt64(), "etcd.revision")
	}
}

// TestOperationDuration: every operation is measured in
// db.client.operation.duration, in seconds with the advised buckets, with
// the span's low-cardinality attributes.
func TestOperationDuration(t *testing.T) {
	t.Parallel()
	tel := newTelemetry(t)
	cli := tel.client(t, testServer)
	pfx := testPrefix(t)
	kv := etcdkit.NewKV(cli, pfx, etcdkit.String())
	ctx := testCtx(t)
	for range 3 {
		_, err := kv.Put(ctx, "k", "v")
		require.NoError(t, err)
	}
	_, err := kv.Get(ctx, "missing")
	require.ErrorIs(t, err, etcdkit.ErrNotFound)

	m := tel.metric(t, "db.client.operation.duration")
	assert.Equal(t, "s", m.Unit)
	h, ok := m.Data.(metricdata.Histogram[float64])
	require.True(t, ok, "a float64 histogram")
	puts := point(t, h, attribute.String("db.operation.name", "put"))
	assert.EqualValues(t, 3, puts.Count)
	assert.Equal(t, []float64{0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10}, puts.Bounds)
	v, _ := puts.Attributes.Value("db.collection.name")
	assert.Equal(t, pfx, v.AsString())
	v, _ = puts.Attributes.Value("db.system.name")
	assert.Equal(t, "etcd", v.AsString())
	v, _ = puts.Attributes.Value("server.address")
	assert.Equal(t, "127.0.0.1", v.AsString())
	assert.False(t, puts.Attributes.HasValue("error.type"))
	gets := point(t, h, attribute.String("db.operation.name", "get"))
	assert.False(t, gets.Attributes.HasValue("error.type"), "a missing key is no failure")
	v, _ = gets.Attributes.Value("etcdkit.outcome")
	assert.Equal(t, "not_found", v.AsString())
}

// point returns the histogram's one point with the attribute want.
func point(t *testing.T, h metricdata.Histogram[float64], want attribute.KeyValue) metricdata.HistogramDataPoint[float64] {
	t.Helper()
	var found []metricdata.HistogramDataPoint[float64]
	for _, p := range h.DataPoints {
		if hasAll(p.Attributes, []attribute.KeyValue{want}) {
			found = append(found, p)
		}
	}
	require.Len(t, found, 1, "points with %v", want)
	return found[0]
}

// TestOutcomeSpans: an operation whose error is the answer it asked for
// (a Get of a missing key, a Create of a key already there, a compare that
// failed, a TryDequeue of an empty queue, a TryLock of a held lock) is no
// failure: its span keeps the status Unset and has no
// error.type, nor has its duration, and both carry etcdkit.outcome.
func TestOutcomeSpans(t *testing.T) {
	t.Parallel()
	tel := newTelemetry(t)
	cli := tel.client(t, testServer)
	pfx := testPrefix(t)
	kv := etcdkit.NewKV(cli, pfx, etcdkit.String())
	ctx := testCtx(t)
	_, err := kv.Get(ctx, "no-such-key")
	require.ErrorIs(t, err, etcdkit.ErrNotFound)
	rev, err := kv.Put(ctx, "taken", "x")
	require.NoError(t, err)
	_, err = kv.Create(ctx, "taken", "y")
	require.ErrorIs(t, err, etcdkit.ErrExists)
	_, err = kv.CompareAndSwap(ctx, "taken", "z", rev+1000)
	require.ErrorIs(t, err, etcdkit.ErrConflict)
	_, err = kv.CompareAndDelete(ctx, "taken", rev+1000)
	require.ErrorIs(t, err, etcdkit.ErrConflict)
	q, err := etcdkit.NewQueue(cli, pfx+"queue/", etcdkit.String())
	require.NoError(t, err)
	_, err = q.TryDequeue(ctx)
	require.ErrorIs(t, err, etcdkit.ErrNotFound, "TryDequeue of an empty queue")
	// Held through another, unobserved client: the TryLock's is the one
	// lock span.
	held, err := testServer.Client(t).Lock(ctx, pfx+"lock")
	require.NoError(t, err)
	_, err = cli.TryLock(ctx, pfx+"lock")
	require.ErrorIs(t, err, etcdkit.ErrLocked)
	require.NoError(t, held.Unlock(ctx))

	h, ok := tel.metric(t, "db.client.operation.duration").Data.(metricdata.Histogram[float64])
	require.True(t, ok, "a float64 histogram")
	for _, tt := range []struct{ op, collection, want string }{
		{etcdkit.OpGet, pfx, "not_found"},
		{etcdkit.OpCreate, pfx, "exists"},
		{etcdkit.OpCompareAndSwap, pfx, "conflict"},
		{etcdkit.OpCompareAndDelete, pfx, "conflict"},
		{etcdkit.OpDequeue, pfx + "queue/", "not_found"},
		{etcdkit.OpLock, pfx + "lock", "locked"},
	} {
		t.Run(tt.op, func(t *testing.T) {
			s := tel.span(t, tt.op+" "+tt.collection)
			a := attrs(s)
			assert.Equal(t, codes.Unset, s.Status().Code, "status")
			assert.NotContains(t, a, attribute.Key("error.type"))
			assert.Equal(t, tt.want, a["etcdkit.outcome"].AsString(), "etcdkit.outcome")
			p := point(t, h, attribute.String("db.operation.name", tt.op))
			assert.False(t, p.Attributes.HasValue("error.type"), "duration's error.type")
			v, _ := p.Attributes.Value("etcdkit.outcome")
			assert.Equal(t, tt.want, v.AsString(), "duration's etcdkit.outcome")
		})
	}
}

// TestErrorSpan: a failed operation, even one of those whose misses are
// outcomes, has error.type and status Error whose description is the
// error's type, never its message, which names the key; it has no
// etcdkit.outcome.
func TestErrorSpan(t *testing.T) {
	t.Parallel()
	tel := newTelemetry(t)
	f := etcdtest.NewFaults()
	cli := testServer.Client(t, etcdtest.WithFaults(f),
		etcdtest.WithClientConfig(func(c *etcdkit.Config) { c.Observer = tel.observer() }))
	pfx := testPrefix(t)
	kv := etcdkit.NewKV(cli, pfx, etcdkit.String())

	f.Inject(etcdtest.RPCRange, etcdtest.CommitThenTimeout, 1, 0) // the answer never comes
	ctx, cancel := context.WithTimeout(testCtx(t), 200*time.Millisecond)
	defer cancel()
	_, err := kv.Get(ctx, "no-such-key")
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Contains(t, err.Error(), "no-such-key", "the message names the key")
	f.Inject(etcdtest.RPCTxn, etcdtest.FailBeforeSend, 1, 0)
	_, err = kv.Create(testCtx(t), "k", "v")
	require.ErrorIs(t, err, etcdkit.ErrUnavailable)
	require.EqualValues(t, 2, f.Injected(), "both faults used")
	// Not found is an answer for a Get or a TryDequeue, a failure for a
	// Follow, which needs the key.
	_, err = kv.Follow(testCtx(t), "no-such-key")
	require.ErrorIs(t, err, etcdkit.ErrNotFound)

	for name, want := range map[string]string{
		"get " + pfx: "deadline_exceeded", "create " + pfx: "unavailable", "follow " + pfx: "not_found",
	} {
		s := tel.span(t, name)
		assert.Equal(t, want, attrs(s)["error.type"].AsString(), "%s: error.type", name)
		assert.Equal(t, codes.Error, s.Status().Code, "%s: status", name)
		assert.Equal(t, want, s.Status().Description, "%s: status description", name)
		assert.NotContains(t, attrs(s), attribute.Key("etcdkit.outcome"), name)
	}
}
