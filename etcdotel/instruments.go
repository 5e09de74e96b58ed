package etcdotel

import (
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
)

// scope is the instrumentation scope of every span and instrument.
const scope = "github.com/etcdkit/etcdkit/etcdotel"

// The buckets OpenTelemetry's database conventions advise for
// db.client.operation.duration, in seconds.
var durationBuckets = []float64{0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10}

// Lock waits run from nothing to minutes (a job waiting its turn).
var lockWaitBuckets = []float64{0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300}

// Lease refresh margins are fractions of a TTL of seconds to minutes; the
// ones near zero are those that matter.
var marginBuckets = []float64{0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 20, 30, 60}

// instruments are the metrics an observer records.
type instruments struct {
	duration          metric.Float64Histogram
	watchResumes      metric.Int64Counter
	compactionResyncs metric.Int64Counter
	conflicts         metric.Int64Counter
	leaseLost         metric.Int64Counter
	leaseExpired      metric.Int64Counter
	keepAliveMargin   metric.Float64Histogram
	lockWait          metric.Float64Histogram
	lockLost          metric.Int64Counter
	transitions       metric.Int64Counter
	mirrorLag         metric.Int64Gauge
	queueDepth        metric.Int64Gauge
	decodeErrors      metric.Int64Counter
}

// newInstruments makes the instruments with m. An instrument the provider
// refuses is reported to otel.Handle and replaced by one that records
// nothing, so the observer goes on with the others.
func newInstruments(m metric.Meter) instruments {
	b := builder{m: m}
	return instruments{
		duration: b.histogram("db.client.operation.duration", "s",
			"Duration of database client operations.", durationBuckets),
		watchResumes: b.counter("etcdkit.watch.resumes", "{resume}",
			"Watches cut and resumed from the revision after the last one seen."),
		compactionResyncs: b.counter("etcdkit.watch.compaction_resyncs", "{resync}",
			"Watches whose next revision was compacted, so the whole prefix was read again."),
		conflicts: b.counter("etcdkit.conflicts", "{conflict}",
			"Conflicts Update and Atomically met and retried."),
		leaseLost: b.counter("etcdkit.lease.lost", "{lease}",
			"Leases that could not be refreshed in time."),
		leaseExpired: b.counter("etcdkit.lease.expired", "{lease}",
			"Leases the server said were gone."),
		keepAliveMargin: b.histogram("etcdkit.lease.keepalive.margin", "s",
			"How long before a lease could have expired its refresh was sent.", marginBuckets),
		lockWait: b.histogram("etcdkit.lock.wait.duration", "s",
			"How long taking a lock (or semaphore slot, read or write hold) waited.", lockWaitBuckets),
		lockLost: b.counter("etcdkit.lock.lost", "{lock}",
			"Locks lost while held."),
		transitions: b.counter("etcdkit.election.transitions", "{transition}",
			"Leader changes of the elections this client campaigns in or observes."),
		mirrorLag: b.gauge("etcdkit.mirror.lag", "{revision}",
			"How many revisions a Mirror is behind the server."),
		queueDepth: b.gauge("etcdkit.queue.depth", "{item}",
			"How many items a queue held when it was last read."),
		decodeErrors: b.counter("etcdkit.decode_errors", "{error}",
			"Stored values that did not decode."),
	}
}

// builder makes instruments, sending any error to otel.Handle.
type builder struct{ m metric.Meter }

func (b builder) counter(name, unit, desc string) metric.Int64Counter {
	c, err := b.m.Int64Counter(name, metric.WithUnit(unit), metric.WithDescription(desc))
	handle(err)
	if c == nil {
		return noop.Int64Counter{}
	}
	return c
}

func (b builder) gauge(name, unit, desc string) metric.Int64Gauge {
	g, err := b.m.Int64Gauge(name, metric.WithUnit(unit), metric.WithDescription(desc))
	handle(err)
	if g == nil {
		return noop.Int64Gauge{}
	}
	return g
}

func (b builder) histogram(name, unit, desc string, buckets []float64) metric.Float64Histogram {
	h, err := b.m.Float64Histogram(name, metric.WithUnit(unit), metric.WithDescription(desc),
		metric.WithExplicitBucketBoundaries(buckets...))
	handle(err)
	if h == nil {
		return noop.Float64Histogram{}
	}
	return h
}

func handle(err error) {
	if err != nil {
		otel.Handle(err)
	}
}
