package etcdotel_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/etcdkit/etcdkit"
	"github.com/etcdkit/etcdkit/etcdotel"
)

// exampleTelemetry is an SDK pipeline that keeps spans and metrics in
// memory, for the examples to print. A program exports them instead.
type exampleTelemetry struct {
	spans  *tracetest.SpanRecorder
	reader *sdkmetric.ManualReader
	tp     *sdktrace.TracerProvider
	mp     *sdkmetric.MeterProvider
}

func newExampleTelemetry() *exampleTelemetry {
	tel := &exampleTelemetry{spans: tracetest.NewSpanRecorder(), reader: sdkmetric.NewManualReader()}
	tel.tp = sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(tel.spans))
	tel.mp = sdkmetric.NewMeterProvider(sdkmetric.WithReader(tel.reader))
	return tel
}

func (tel *exampleTelemetry) shutdown() {
	_ = tel.tp.Shutdown(context.Background())
	_ = tel.mp.Shutdown(context.Background())
}

// client connects to the package's embedded server with cfg changed by
// edit, as a program's etcdkit.New(ctx, cfg) would.
func exampleClient(edit func(*etcdkit.Config)) *etcdkit.Client {
	cfg := testServer.Config() // in a program: etcdkit.ConfigFromEnv()
	edit(&cfg)
	cli, err := etcdkit.New(context.Background(), cfg)
	if err != nil {
		panic(err)
	}
	return cli
}

// attrKeys returns the span's attribute keys, sorted: their values (the
// server's port, the revision) differ from run to run.
func attrKeys(s sdktrace.ReadOnlySpan) []string {
	var out []string
	for _, a := range s.Attributes() {
		out = append(out, string(a.Key))
	}
	slices.Sort(out)
	return out
}

// Observer makes each operation a span named after the operation and the
// KV's prefix. A failure is named by error.type, never by its message, and
// its status is Error; a Get of a missing key is an answer, not a failure:
// it is named by etcdkit.outcome, and its status stays Unset.
func ExampleObserver() {
	ctx := context.Background()
	tel := newExampleTelemetry()
	defer tel.shutdown()
	cli := exampleClient(func(c *etcdkit.Config) {
		c.Observer = etcdotel.Observer(etcdotel.WithTracerProvider(tel.tp), etcdotel.WithMeterProvider(tel.mp))
	})
	users := etcdkit.NewKV(cli, "example/observer/users/", etcdkit.String())
	_, _ = users.Put(ctx, "alice", "admin")
	_, _ = users.Get(ctx, "bob")
	_, _ = users.Update(ctx, "alice", func(string) (string, error) { return "", errors.New("refused") })
	cli.Close()

	for _, s := range tel.spans.Ended() {
		fmt.Printf("%s (%s) %s %q\n", s.Name(), s.SpanKind(), s.Status().Code, s.Status().Description)
		fmt.Println(" ", attrKeys(s))
	}
	// Output:
	// put example/observer/users/ (client) Unset ""
	//   [db.collection.name db.operation.name db.system.name etcd.revision etcdkit.retries server.address server.port]
	// get example/observer/users/ (client) Unset ""
	//   [db.collection.name db.operation.name db.system.name etcdkit.outcome etcdkit.retries server.address server.port]
	// update example/observer/users/ (client) Error "*errors.errorString"
	//   [db.collection.name db.operation.name db.system.name error.type etcdkit.retries server.address server.port]
}

// WithTracerProvider sends the spans to a TracerProvider of the
// program's rather than the global one; they are children of the span in
// the caller's ctx.
func ExampleWithTracerProvider() {
	tel := newExampleTelemetry()
	defer tel.shutdown()
	cli := exampleClient(func(c *etcdkit.Config) {
		c.Observer = etcdotel.Observer(etcdotel.WithTracerProvider(tel.tp))
	})
	ctx, parent := tel.tp.Tracer("example").Start(context.Background(), "handle request")
	_, _ = etcdkit.NewKV(cli, "example/tracerprovider/", etcdkit.String()).Put(ctx, "k", "v")
	parent.End()
	cli.Close()

	for _, s := range tel.spans.Ended() {
		fmt.Println(s.Name(), s.Parent().SpanID() == parent.SpanContext().SpanID())
	}
	// Output:
	// put example/tracerprovider/ true
	// handle request false
}

// WithMeterProvider records the metrics with a MeterProvider of the
// program's: each operation's duration, and the notices' counters.
func ExampleWithMeterProvider() {
	ctx := context.Background()
	tel := newExampleTelemetry()
	defer tel.shutdown()
	cli := exampleClient(func(c *etcdkit.Config) {
		c.Observer = etcdotel.Observer(etcdotel.WithMeterProvider(tel.mp))
	})
	_, _ = etcdkit.NewKV(cli, "example/meterprovider/", etcdkit.String()).Put(ctx, "k", "v")
	cli.Close()

	var rm metricdata.ResourceMetrics
	if err := tel.reader.Collect(ctx, &rm); err != nil {
		fmt.Println(err)
		return
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if h, ok := m.Data.(metricdata.Histogram[float64]); ok {
				fmt.Println(m.Name, m.Unit, h.DataPoints[0].Count)
			}
		}
	}
	// Output: db.client.operation.duration s 1
}

// WithKeys records the key each operation concerns on its span. Keys
// often name people or hosts, so they are left out by default.
func ExampleWithKeys() {
	ctx := context.Background()
	tel := newExampleTelemetry()
	defer tel.shutdown()
	cli := exampleClient(func(c *etcdkit.Config) {
		c.Observer = etcdotel.Observer(etcdotel.WithTracerProvider(tel.tp), etcdotel.WithKeys())
	})
	_, _ = etcdkit.NewKV(cli, "example/withkeys/", etcdkit.String()).Put(ctx, "alice", "admin")
	cli.Close()

	for _, s := range tel.spans.Ended() {
		for _, a := range s.Attributes() {
			if a.Key == etcdotel.KeyKey {
				fmt.Println(s.Name(), a.Value.AsString())
			}
		}
	}
	// Output: put example/withkeys/ alice
}

// metadataKeys is an interceptor that records the metadata keys of the
// requests sent with a trace context, to show what the server receives.
func metadataKeys(seen map[string]bool) grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		md, _ := metadata.FromOutgoingContext(ctx)
		if len(md.Get("traceparent")) > 0 {
			for k := range md {
				seen[k] = true
			}
		}
		return invoker(ctx, method, req, reply, cc, opts...)
	}
}

// UnaryClientInterceptor sends the operation's trace context to the
// server in each request's metadata, in W3C Trace Context format unless
// WithPropagator says otherwise.
func ExampleUnaryClientInterceptor() {
	ctx := context.Background()
	tel := newExampleTelemetry()
	defer tel.shutdown()
	seen := map[string]bool{}
	cli := exampleClient(func(c *etcdkit.Config) {
		c.Observer = etcdotel.Observer(etcdotel.WithTracerProvider(tel.tp))
		c.UnaryInterceptors = append(c.UnaryInterceptors, etcdotel.UnaryClientInterceptor(), metadataKeys(seen))
	})
	_, _ = etcdkit.NewKV(cli, "example/interceptor/", etcdkit.String()).Put(ctx, "k", "v")
	cli.Close()
	fmt.Println(seen["traceparent"])
	// Output: true
}

// WithPropagator picks the format the interceptor writes: here the trace
// context and the caller's baggage.
func ExampleWithPropagator() {
	tel := newExampleTelemetry()
	defer tel.shutdown()
	seen := map[string]bool{}
	prop := propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
	cli := exampleClient(func(c *etcdkit.Config) {
		c.Observer = etcdotel.Observer(etcdotel.WithTracerProvider(tel.tp))
		c.UnaryInterceptors = append(c.UnaryInterceptors, etcdotel.UnaryClientInterceptor(etcdotel.WithPropagator(prop)), metadataKeys(seen))
	})
	member, _ := baggage.NewMember("tenant", "acme")
	bag, _ := baggage.New(member)
	ctx := baggage.ContextWithBaggage(context.Background(), bag)
	_, _ = etcdkit.NewKV(cli, "example/propagator/", etcdkit.String()).Put(ctx, "k", "v")
	cli.Close()
	fmt.Println(seen["traceparent"], seen["baggage"])
	// Output: true true
}

// ErrorType names a failure as etcdotel records it, without its message,
// which can quote a key.
func ExampleErrorType() {
	ctx := context.Background()
	cli := exampleClient(func(*etcdkit.Config) {})
	defer cli.Close()
	_, err := etcdkit.NewKV(cli, "example/errortype/", etcdkit.String()).Get(ctx, "nobody")
	fmt.Println(strings.Contains(err.Error(), "nobody"), etcdotel.ErrorType(err))
	fmt.Println(etcdotel.ErrorType(fmt.Errorf("sync: %w", context.Canceled)))
	fmt.Println(etcdotel.ErrorType(errors.New("boom")))
	fmt.Printf("%q\n", etcdotel.ErrorType(nil))
	// Output:
	// true not_found
	// canceled
	// *errors.errorString
	// ""
}
