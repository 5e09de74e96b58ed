package etcdotel

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/etcdkit/etcdkit"
)

// Notice records n in its metric and, when ctx holds a recording span, as
// an event on it.
func (o *observer) Notice(ctx context.Context, n etcdkit.Notice) {
	o.record(ctx, n)
	if span := trace.SpanFromContext(ctx); span.IsRecording() {
		span.AddEvent("etcdkit."+n.Kind.String(), trace.WithAttributes(o.eventAttrs(n)...))
	}
}

// record adds n to its metric, with the prefix it concerns (never the key).
func (o *observer) record(ctx context.Context, n etcdkit.Notice) {
	attrs := make([]attribute.KeyValue, 0, 3)
	attrs = append(attrs, systemEtcd)
	if n.Prefix != "" {
		attrs = append(attrs, semconv.DBCollectionName(n.Prefix))
	}
	if n.Kind == etcdkit.NoticeLeaderChanged {
		attrs = append(attrs, TransitionKey.String(transition(n.Value)))
	}
	set := metric.WithAttributes(attrs...)
	switch n.Kind {
	case etcdkit.NoticeWatchResumed:
		o.inst.watchResumes.Add(ctx, 1, set)
	case etcdkit.NoticeCompactionResync:
		o.inst.compactionResyncs.Add(ctx, 1, set)
	case etcdkit.NoticeConflict:
		o.inst.conflicts.Add(ctx, 1, set)
	case etcdkit.NoticeLeaseKeepAlive:
		o.inst.keepAliveMargin.Record(ctx, n.Duration.Seconds(), set)
	case etcdkit.NoticeLeaseLost:
		o.inst.leaseLost.Add(ctx, 1, set)
	case etcdkit.NoticeLeaseExpired:
		o.inst.leaseExpired.Add(ctx, 1, set)
	case etcdkit.NoticeLockAcquired:
		o.inst.lockWait.Record(ctx, n.Duration.Seconds(), set)
	case etcdkit.NoticeLockLost:
		o.inst.lockLost.Add(ctx, 1, set)
	case etcdkit.NoticeLeaderChanged:
		o.inst.transitions.Add(ctx, 1, set)
	case etcdkit.NoticeMirrorLag:
		o.inst.mirrorLag.Record(ctx, n.Value, set)
	case etcdkit.NoticeDecodeError:
		o.inst.decodeErrors.Add(ctx, 1, set)
	case etcdkit.NoticeQueueDepth:
		o.inst.queueDepth.Record(ctx, n.Value, set)
	}
}

// transition names a NoticeLeaderChanged's Value.
func transition(v int64) string {
	switch {
	case v > 0:
		return "elected"
	case v < 0:
		return "stepped_down"
	}
	return "observed"
}

// eventAttrs are the attributes of n's span event: what it concerns, and
// the fields its kind sets.
func (o *observer) eventAttrs(n etcdkit.Notice) []attribute.KeyValue {
	attrs := make([]attribute.KeyValue, 0, 4)
	if n.Prefix != "" {
		attrs = append(attrs, semconv.DBCollectionName(n.Prefix))
	}
	if o.keys && n.Key != "" {
		attrs = append(attrs, KeyKey.String(n.Key))
	}
	if n.Err != nil {
		attrs = append(attrs, semconv.ErrorTypeKey.String(ErrorType(n.Err)))
	}
	return append(attrs, kindAttrs(n)...)
}

// kindAttrs are the attributes of the fields n's kind sets.
func kindAttrs(n etcdkit.Notice) []attribute.KeyValue {
	switch n.Kind {
	case etcdkit.NoticeWatchResumed, etcdkit.NoticeCompactionResync:
		return []attribute.KeyValue{RevisionKey.Int64(n.Revision)}
	case etcdkit.NoticeConflict:
		return []attribute.KeyValue{AttemptKey.Int64(n.Value)}
	case etcdkit.NoticeLeaseKeepAlive:
		return []attribute.KeyValue{MarginKey.Float64(n.Duration.Seconds())}
	case etcdkit.NoticeLockAcquired:
		return []attribute.KeyValue{WaitKey.Float64(n.Duration.Seconds())}
	case etcdkit.NoticeLeaderChanged:
		return []attribute.KeyValue{RevisionKey.Int64(n.Revision), TransitionKey.String(transition(n.Value))}
	case etcdkit.NoticeMirrorLag:
		return []attribute.KeyValue{RevisionKey.Int64(n.Revision), LagKey.Int64(n.Value)}
	case etcdkit.NoticeQueueDepth:
		return []attribute.KeyValue{DepthKey.Int64(n.Value)}
	}
	return nil
}
