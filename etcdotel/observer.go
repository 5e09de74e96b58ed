package etcdotel

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/etcdkit/etcdkit"
)

// Observer returns an [etcdkit.Observer] that records each operation as a
// span and in the histogram db.client.operation.duration, and each notice
// as a metric and, when the ctx it comes with holds a recording span, as an
// event "etcdkit.{notice}" on that span (such as "etcdkit.conflict"). Set
// it in [etcdkit.Config.Observer]; one Observer can serve several Clients.
//
// The notices' metrics, each with db.system.name and db.collection.name
// (the prefix the notice concerns) as attributes:
//
//	etcdkit.watch.resumes             counter    watches cut and resumed
//	etcdkit.watch.compaction_resyncs  counter    watches that read their prefix again after a compaction
//	etcdkit.conflicts                 counter    conflicts Update and Atomically retried
//	etcdkit.lease.lost                counter    leases not refreshed in time (etcdkit.ErrLeaseLost)
//	etcdkit.lease.expired             counter    leases the server said were gone (etcdkit.ErrLeaseExpired)
//	etcdkit.lease.keepalive.margin    histogram  s, how long before expiry each refresh was sent
//	etcdkit.lock.wait.duration        histogram  s, how long taking a lock waited
//	etcdkit.lock.lost                 counter    locks lost while held
//	etcdkit.election.transitions      counter    leader changes, by etcdkit.election.transition
//	etcdkit.mirror.lag                gauge      revisions a Mirror is behind
//	etcdkit.queue.depth               gauge      items a queue held when last read
//	etcdkit.decode_errors             counter    stored values that did not decode
//
// Instruments the MeterProvider refuses are reported to otel.Handle and
// record nothing; Observer itself never fails.
func Observer(opts ...Option) etcdkit.Observer {
	c := newConfig(opts)
	return &observer{
		tracer: c.tracerProvider.Tracer(scope, trace.WithSchemaURL(semconv.SchemaURL)),
		inst:   newInstruments(c.meterProvider.Meter(scope, metric.WithSchemaURL(semconv.SchemaURL))),
		keys:   c.keys,
	}
}

type observer struct {
	tracer trace.Tracer
	inst   instruments
	keys   bool // record keys on spans and events
}

// OperationStart starts the operation's span, a child of the one in ctx.
func (o *observer) OperationStart(ctx context.Context, op etcdkit.Operation) context.Context {
	attrs := make([]attribute.KeyValue, 0, 7)
	attrs = append(opAttrs(attrs, op), serverAttrs(op.Server)...)
	if o.keys && op.Key != "" {
		attrs = append(attrs, KeyKey.String(op.Key))
	}
	opts := []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...)}
	if !op.Start.IsZero() {
		opts = append(opts, trace.WithTimestamp(op.Start))
	}
	ctx, _ = o.tracer.Start(ctx, spanName(op), opts...)
	return ctx
}

// OperationEnd records the operation's duration and ends its span, which
// must be the one OperationStart put in ctx.
func (o *observer) OperationEnd(ctx context.Context, op etcdkit.Operation) {
	end := time.Now()
	errType, outcome := classify(op)
	attrs := make([]attribute.KeyValue, 0, 6)
	attrs = append(opAttrs(attrs, op), serverAttrs(op.Server)...)
	if errType != "" {
		attrs = append(attrs, semconv.ErrorTypeKey.String(errType))
	}
	if outcome != "" {
		attrs = append(attrs, OutcomeKey.String(outcome))
	}
	if !op.Start.IsZero() {
		o.inst.duration.Record(ctx, end.Sub(op.Start).Seconds(), metric.WithAttributes(attrs...))
	}
	span := trace.SpanFromContext(ctx)
	if span.IsRecording() {
		// The member that answered may not be the one the span started
		// with; setting server.* again replaces them.
		span.SetAttributes(attrs...)
		span.SetAttributes(RetriesKey.Int(op.Retries))
		if op.Revision > 0 {
			span.SetAttributes(RevisionKey.Int64(op.Revision))
		}
		if errType != "" {
			// The error's message quotes the key: its type says enough.
			span.SetStatus(codes.Error, errType)
		}
	}
	span.End(trace.WithTimestamp(end))
}

// classify names op's error as a failure (error.type) or, when it is an
// answer the caller asked for, as an outcome. A missing key for a Get, a
// key already there for a Create, a changed key for a compare-and-swap, a
// lock held for a TryLock, an empty queue for a TryDequeue: these are
// what the calls exist to find out, and marking them as errors
// would make a cache's misses or an optimistic writer's lost races look
// like an outage, as database instrumentations (go-redis's redis.Nil)
// avoid. The same error from another operation (a lease not found) is a
// failure.
func classify(op etcdkit.Operation) (errType, outcome string) {
	errType = ErrorType(op.Err)
	if isOutcome(op.Name, errType) {
		return "", errType
	}
	return errType, ""
}

func isOutcome(name, errType string) bool {
	switch errType {
	case "not_found":
		// A Dequeue says not found only when a TryDequeue finds the
		// queue empty.
		return name == etcdkit.OpGet || name == etcdkit.OpDequeue
	case "exists":
		return name == etcdkit.OpCreate
	case "conflict":
		return name == etcdkit.OpCompareAndSwap || name == etcdkit.OpCompareAndDelete
	case "locked":
		return true // only a TryLock, TryAcquire or TryRLock says it
	}
	return false
}

// spanName is "{db.operation.name} {db.collection.name}", or the operation
// alone when it has no prefix, as the database conventions name spans.
func spanName(op etcdkit.Operation) string {
	if op.Prefix == "" {
		return op.Name
	}
	return op.Name + " " + op.Prefix
}

// opAttrs appends the attributes every span and measurement of op has.
func opAttrs(attrs []attribute.KeyValue, op etcdkit.Operation) []attribute.KeyValue {
	attrs = append(attrs, systemEtcd, semconv.DBOperationName(op.Name))
	if op.Prefix != "" {
		attrs = append(attrs, semconv.DBCollectionName(op.Prefix))
	}
	return attrs
}
