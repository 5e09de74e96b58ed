package bench_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/etcdkit/etcdkit"
	"github.com/etcdkit/etcdkit/etcdotel"
)

// The OpenTelemetry benchmarks run Get and Put as impl=raw (clientv3),
// impl=etcdkit (no Observer), impl=noop (an Observer that does nothing),
// impl=otel-unsampled (etcdotel with the real SDK, sampling off:
// sdktrace.NeverSample, metrics still recorded) and impl=otel-sampled
// (sdktrace.AlwaysSample, every span ended into a batch processor whose
// exporter drops it). Metrics go to a MeterProvider with a reader that is
// never collected, so their cost is the SDK's aggregation alone.

// otelClient returns a client of the benchmarks' server observed by
// etcdotel with sampler, closed when b ends.
func otelClient(b *testing.B, sampler sdktrace.Sampler) *etcdkit.Client {
	b.Helper()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sampler),
		sdktrace.WithBatcher(tracetest.NewNoopExporter()))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	b.Cleanup(func() {
		_ = tp.Shutdown(context.Background())
		_ = mp.Shutdown(context.Background())
	})
	return clientObservedBy(b, etcdotel.Observer(etcdotel.WithTracerProvider(tp), etcdotel.WithMeterProvider(mp)))
}

// clientObservedBy returns a client of the benchmarks' server with obs,
// closed when b ends.
func clientObservedBy(b *testing.B, obs etcdkit.Observer) *etcdkit.Client {
	b.Helper()
	clients(b)
	cfg := kitCfg
	cfg.Observer = obs
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := etcdkit.New(ctx, cfg)
	require.NoError(b, err)
	b.Cleanup(func() { _ = c.Close() })
	return c
}

// observedKVs are the KVs of one prefix through each observed client.
type observedKVs struct {
	noop, unsampled, sampled *etcdkit.KV[[]byte]
}

func newObservedKVs(b *testing.B, prefix string) observedKVs {
	return observedKVs{
		noop:      etcdkit.NewKV(clientObservedBy(b, noopObserver{}), prefix, etcdkit.Bytes()),
		unsampled: etcdkit.NewKV(otelClient(b, sdktrace.NeverSample()), prefix, etcdkit.Bytes()),
		sampled:   etcdkit.NewKV(otelClient(b, sdktrace.AlwaysSample()), prefix, etcdkit.Bytes()),
	}
}

func BenchmarkOtelGet(b *testing.B) {
	c, rc := clients(b)
	ctx := context.Background()
	kv := etcdkit.NewKV(c, newPrefix("otel-get"), etcdkit.Bytes())
	_, err := kv.Put(ctx, "k", []byte("value"))
	require.NoError(b, err)
	o := newObservedKVs(b, kv.Prefix())
	compare(b, rawGetWorker(ctx, rc, kv.Prefix()+"k"), getWorker(ctx, kv),
		namedWorker{"noop", getWorker(ctx, o.noop)},
		namedWorker{"otel-unsampled", getWorker(ctx, o.unsampled)},
		namedWorker{"otel-sampled", getWorker(ctx, o.sampled)})
}

func BenchmarkOtelPut(b *testing.B) {
	c, rc := clients(b)
	ctx := context.Background()
	kv := etcdkit.NewKV(c, newPrefix("otel-put"), etcdkit.Bytes())
	o := newObservedKVs(b, kv.Prefix())
	compare(b, rawPutWorker(ctx, rc, kv.Prefix()), putWorker(ctx, kv, "kit"),
		namedWorker{"noop", putWorker(ctx, o.noop, "noop")},
		namedWorker{"otel-unsampled", putWorker(ctx, o.unsampled, "unsampled")},
		namedWorker{"otel-sampled", putWorker(ctx, o.sampled, "sampled")})
}
