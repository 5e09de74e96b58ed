// Command observability records what an etcdkit Client does with
// OpenTelemetry: it runs a few operations (one of them a conflict Update
// retries, one a read of a missing key) and loses a lock, then prints the
// spans and the metric points the SDK received, one line each.
//
// It connects to $ETCD_ENDPOINTS (see etcdkit.ConfigFromEnv); when that is
// not set, it starts an embedded etcd of its own, so it runs anywhere:
//
//	go run ./examples/observability
//
// A real service would give etcdotel its exporting providers (OTLP, say)
// or set the global ones; this one keeps everything in memory to print it.
package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"sort"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/etcdkit/etcdkit"
	"github.com/etcdkit/etcdkit/etcdotel"
	"github.com/etcdkit/etcdkit/etcdtest"
)

func main() {
	if err := run(); err != nil {
		log.Print(err)
		os.Exit(1)
	}
}

func run() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// The SDK: spans are printed as they end, metrics read at the end.
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(printer{}))
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer func() { _ = tp.Shutdown(context.Background()) }()
	defer func() { _ = mp.Shutdown(context.Background()) }()

	cfg, stopServer, err := etcdtest.ConfigFromEnvOrRun()
	if err != nil {
		return err
	}
	defer stopServer()
	// Turning it on: one field.
	cfg.Observer = etcdotel.Observer(etcdotel.WithTracerProvider(tp), etcdotel.WithMeterProvider(mp))
	cli, err := etcdkit.New(ctx, cfg)
	if err != nil {
		return err
	}
	defer cli.Close()

	// The operations run inside a span of the program's own, their parent.
	ctx, span := tp.Tracer("examples/observability").Start(ctx, "handle request")
	fmt.Println("spans:")
	if err := operations(ctx, cli); err != nil {
		return err
	}
	if err := loseLock(ctx, cli); err != nil {
		return err
	}
	span.End()

	fmt.Println("\nmetrics:")
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		return err
	}
	printMetrics(rm)
	return nil
}

// operations puts, reads, misses a key, and updates a counter that another
// writer changes under it, which Update retries.
func operations(ctx context.Context, cli *etcdkit.Client) error {
	counters := etcdkit.NewKV(cli, "examples/observability/counters/", etcdkit.JSON[int]())
	if _, err := counters.Put(ctx, "visits", 1); err != nil {
		return err
	}
	if _, err := counters.Get(ctx, "visits"); err != nil {
		return err
	}
	if _, err := counters.Get(ctx, "no-such-counter"); !errors.Is(err, etcdkit.ErrNotFound) {
		return fmt.Errorf("get a missing key: %v, want ErrNotFound", err)
	}
	raced := false
	_, err := counters.Update(ctx, "visits", func(n int) (int, error) {
		if !raced { // another writer gets there first, once
			raced = true
			if _, err := counters.Put(context.Background(), "visits", 10); err != nil {
				return 0, err
			}
		}
		return n + 1, nil
	})
	return err
}

// loseLock takes a lock, then revokes its lease behind its back, as an
// operator or an expiry would, and waits for the Lock to notice.
func loseLock(ctx context.Context, cli *etcdkit.Client) error {
	l, err := cli.Lock(ctx, "examples/observability/lock")
	if err != nil {
		return err
	}
	resp, err := cli.Raw().Get(ctx, l.Key())
	if err != nil || len(resp.Kvs) == 0 {
		return fmt.Errorf("read the lock's key: %v", err)
	}
	if _, err := cli.Raw().Revoke(ctx, clientv3.LeaseID(resp.Kvs[0].Lease)); err != nil {
		return err
	}
	select {
	case <-l.Lost():
	case <-ctx.Done():
		return ctx.Err()
	}
	// Unlock reports the loss: the lock did not protect its holder to the end.
	err = l.Unlock(ctx)
	if errors.Is(err, etcdkit.ErrLeaseExpired) || errors.Is(err, etcdkit.ErrLeaseLost) {
		fmt.Println("unlock says the lock was lost:", errors.Is(err, etcdkit.ErrLeaseExpired))
		return nil
	}
	if err == nil {
		return errors.New("unlock after a lost lock returned no error")
	}
	return err
}

// printer is a span exporter that prints each span on one line: its name,
// duration, status and attributes, then its events.
type printer struct{}

func (printer) ExportSpans(_ context.Context, spans []sdktrace.ReadOnlySpan) error {
	for _, s := range spans {
		status := ""
		if s.Status().Description != "" {
			status = " status=" + s.Status().Code.String() + "(" + s.Status().Description + ")"
		}
		fmt.Printf("  %s (%s) %s%s\n", s.Name(), s.SpanKind(), attrs(s.Attributes()), status)
		for _, e := range s.Events() {
			fmt.Printf("    event %s %s\n", e.Name, attrs(e.Attributes))
		}
	}
	return nil
}

func (printer) Shutdown(context.Context) error { return nil }

func attrs(kvs []attribute.KeyValue) string {
	parts := make([]string, 0, len(kvs))
	for _, kv := range kvs {
		parts = append(parts, string(kv.Key)+"="+kv.Value.String())
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}

// printMetrics prints one line per point: counters' and gauges' values,
// histograms' counts and sums.
func printMetrics(rm metricdata.ResourceMetrics) {
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					fmt.Printf("  %s %d {%s}\n", m.Name, p.Value, attrs(p.Attributes.ToSlice()))
				}
			case metricdata.Gauge[int64]:
				for _, p := range d.DataPoints {
					fmt.Printf("  %s %d {%s}\n", m.Name, p.Value, attrs(p.Attributes.ToSlice()))
				}
			case metricdata.Histogram[float64]:
				for _, p := range d.DataPoints {
					fmt.Printf("  %s count=%d sum=%.4fs {%s}\n", m.Name, p.Count, p.Sum, attrs(p.Attributes.ToSlice()))
				}
			}
		}
	}
}
