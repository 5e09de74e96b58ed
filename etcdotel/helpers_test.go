package etcdotel_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/etcdkit/etcdkit"
	"github.com/etcdkit/etcdkit/etcdotel"
	"github.com/etcdkit/etcdkit/etcdtest"
)

// telemetry is a real OpenTelemetry SDK pipeline that keeps what it is
// given in memory: ended spans in a recorder, metrics in a manual reader.
type telemetry struct {
	spans  *tracetest.SpanRecorder
	reader *sdkmetric.ManualReader
	tp     *sdktrace.TracerProvider
	mp     *sdkmetric.MeterProvider
}

func newTelemetry(t testing.TB) *telemetry {
	t.Helper()
	tel := &telemetry{spans: tracetest.NewSpanRecorder(), reader: sdkmetric.NewManualReader()}
	tel.tp = sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(tel.spans))
	tel.mp = sdkmetric.NewMeterProvider(sdkmetric.WithReader(tel.reader))
	t.Cleanup(func() {
		_ = tel.tp.Shutdown(context.Background())
		_ = tel.mp.Shutdown(context.Background())
	})
	return tel
}

// observer returns an etcdotel Observer that records into tel.
func (tel *telemetry) observer(opts ...etcdotel.Option) etcdkit.Observer {
	opts = append([]etcdotel.Option{etcdotel.WithTracerProvider(tel.tp), etcdotel.WithMeterProvider(tel.mp)}, opts...)
	return etcdotel.Observer(opts...)
}

// client returns a client of srv observed by tel, closed when t ends.
func (tel *telemetry) client(t testing.TB, srv *etcdtest.Server, opts ...etcdotel.Option) *etcdkit.Client {
	t.Helper()
	obs := tel.observer(opts...)
	return srv.Client(t, etcdtest.WithClientConfig(func(c *etcdkit.Config) { c.Observer = obs }))
}

// parent starts a span of the test's own, as a caller's, and returns the
// ctx that carries it and the function that ends it.
func (tel *telemetry) parent(ctx context.Context) (context.Context, trace.Span) {
	return tel.tp.Tracer("test").Start(ctx, "caller")
}

// ended returns the ended spans named name.
func (tel *telemetry) ended(name string) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range tel.spans.Ended() {
		if s.Name() == name {
			out = append(out, s)
		}
	}
	return out
}

// span returns the one ended span named name, failing t if there is not
// exactly one.
func (tel *telemetry) span(t testing.TB, name string) sdktrace.ReadOnlySpan {
	t.Helper()
	spans := tel.ended(name)
	require.Len(t, spans, 1, "ended spans named %q; all: %v", name, tel.names())
	return spans[0]
}

// childOf returns the one ended span named name whose parent is parent.
func (tel *telemetry) childOf(t testing.TB, name string, parent trace.SpanContext) sdktrace.ReadOnlySpan {
	t.Helper()
	var in []sdktrace.ReadOnlySpan
	for _, s := range tel.ended(name) {
		if s.Parent().TraceID() == parent.TraceID() && s.Parent().SpanID() == parent.SpanID() {
			in = append(in, s)
		}
	}
	require.Len(t, in, 1, "ended spans named %q, children of the caller; all: %v", name, tel.names())
	return in[0]
}

func (tel *telemetry) names() []string {
	var names []string
	for _, s := range tel.spans.Ended() {
		names = append(names, s.Name())
	}
	return names
}

// metrics collects what the reader holds now.
func (tel *telemetry) metrics(t testing.TB) metricdata.ResourceMetrics {
	t.Helper()
	var rm metricdata.ResourceMetrics
	require.NoError(t, tel.reader.Collect(context.Background(), &rm))
	return rm
}

// metric returns the instrument named name, failing t if it recorded nothing.
func (tel *telemetry) metric(t testing.TB, name string) metricdata.Metrics {
	t.Helper()
	rm := tel.metrics(t)
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name == name {
				return m
			}
		}
	}
	t.Fatalf("no metric %q recorded", name)
	return metricdata.Metrics{}
}

// counted sums the counter name's points whose attributes include want.
func (tel *telemetry) counted(t testing.TB, name string, want ...attribute.KeyValue) int64 {
	t.Helper()
	sum, ok := tel.metric(t, name).Data.(metricdata.Sum[int64])
	require.True(t, ok, "%s is not an int64 sum", name)
	var n int64
	for _, p := range sum.DataPoints {
		if hasAll(p.Attributes, want) {
			n += p.Value
		}
	}
	return n
}

// waitCounted waits, at most 20s, until the counter name has counted at
// least n with the attributes want.
func (tel *telemetry) waitCounted(t testing.TB, name string, n int64, want ...attribute.KeyValue) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if tel.has(name) && tel.counted(t, name, want...) >= n {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("counter %s did not reach %d with %v", name, n, want)
}

func (tel *telemetry) has(name string) bool {
	var rm metricdata.ResourceMetrics
	if tel.reader.Collect(context.Background(), &rm) != nil {
		return false
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name == name {
				return true
			}
		}
	}
	return false
}

func hasAll(set attribute.Set, want []attribute.KeyValue) bool {
	for _, kv := range want {
		v, ok := set.Value(kv.Key)
		if !ok || v != kv.Value {
			return false
		}
	}
	return true
}

// attrs returns a span's attributes by key.
func attrs(s sdktrace.ReadOnlySpan) map[attribute.Key]attribute.Value {
	m := map[attribute.Key]attribute.Value{}
	for _, kv := range s.Attributes() {
		m[kv.Key] = kv.Value
	}
	return m
}

// events returns the span's events named name.
func events(s sdktrace.ReadOnlySpan, name string) []sdktrace.Event {
	var out []sdktrace.Event
	for _, e := range s.Events() {
		if e.Name == name {
			out = append(out, e)
		}
	}
	return out
}

// eventAttr returns the event's attribute key (an empty value if it has none).
func eventAttr(e sdktrace.Event, key attribute.Key) attribute.Value {
	for _, kv := range e.Attributes {
		if kv.Key == key {
			return kv.Value
		}
	}
	return attribute.Value{}
}

// testCtx returns a context that ends with t, bounded so a hung call fails
// the test instead of the whole run.
func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// testPrefix returns a key prefix no other test uses.
func testPrefix(t testing.TB) string {
	return strings.NewReplacer("/", "_", " ", "_").Replace(t.Name()) + "/"
}

// pointSets returns the attribute sets of an aggregation's points.
func pointSets(data metricdata.Aggregation) []attribute.Set {
	var sets []attribute.Set
	switch d := data.(type) {
	case metricdata.Sum[int64]:
		for _, p := range d.DataPoints {
			sets = append(sets, p.Attributes)
		}
	case metricdata.Gauge[int64]:
		for _, p := range d.DataPoints {
			sets = append(sets, p.Attributes)
		}
	case metricdata.Histogram[float64]:
		for _, p := range d.DataPoints {
			sets = append(sets, p.Attributes)
		}
	}
	return sets
}
