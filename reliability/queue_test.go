package reliability_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/etcdkit/etcdkit"
	"github.com/etcdkit/etcdkit/etcdtest"
)

// queueTTL is the claim TTL of the AtLeastOnce consumers.
const queueTTL = 2 * time.Second

// deliveries records which consumer got which id, in order.
type deliveries struct {
	mu       sync.Mutex
	byID     map[string][]string // id -> consumers, one per delivery
	revs     map[string][]int64  // consumer -> enqueue revisions, in delivery order
	enqueued map[string]bool     // id -> its Enqueue returned without error
	maybe    map[string]bool     // id -> its Enqueue failed: it may be there
}

func newDeliveries() *deliveries {
	return &deliveries{byID: map[string][]string{}, revs: map[string][]int64{}, enqueued: map[string]bool{}, maybe: map[string]bool{}}
}

func (d *deliveries) deliver(consumer string, it etcdkit.Item[string]) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.byID[it.Value] = append(d.byID[it.Value], consumer)
	d.revs[consumer] = append(d.revs[consumer], it.Revision)
}

// queueStats counts what the consumers saw.
type queueStats struct {
	failedDequeues atomic.Int64 // Dequeue calls that failed, their ctx's deadline included
	ackFailures    atomic.Int64 // Ack calls that failed (claim lost, or unknown)
}

// produce enqueues n items with unique ids, each once: an Enqueue that
// fails is not retried, so an id is never in the queue twice.
func produce(ctx context.Context, q *etcdkit.Queue[string], n int, d *deliveries) {
	for i := range n {
		if ctx.Err() != nil {
			return
		}
		id := fmt.Sprintf("id-%05d", i)
		ectx, cancel := opCtx(ctx)
		_, err := q.Enqueue(ectx, id)
		cancel()
		d.mu.Lock()
		if err == nil {
			d.enqueued[id] = true
		} else {
			d.maybe[id] = true
		}
		d.mu.Unlock()
		time.Sleep(time.Duration(rand.IntN(60)) * time.Millisecond)
	}
}

// consume dequeues until ctx ends, acknowledging each item after a short
// "processing" time; an Ack whose outcome is unknown is tried again.
func consume(ctx context.Context, c *faultyClient, q *etcdkit.Queue[string], d *deliveries, st *queueStats, log *activityLog) {
	for ctx.Err() == nil {
		dctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		start := time.Now()
		it, err := q.Dequeue(dctx)
		cancel()
		log.add(c.name, "dequeue "+it.Value, start, err)
		if err != nil {
			// Even one that ran out of time may have taken an item: its
			// answer may have been what was late.
			st.failedDequeues.Add(1)
			sleepCtx(ctx, 20*time.Millisecond)
			continue
		}
		d.deliver(c.name, it)
		c.busy.Store(true)
		sleepCtx(ctx, time.Duration(rand.IntN(300))*time.Millisecond)
		ackBounded(ctx, c.name, it, st, log)
		c.busy.Store(false)
	}
}

func ackBounded(ctx context.Context, consumer string, it etcdkit.Item[string], st *queueStats, log *activityLog) {
	for range 5 {
		actx, cancel := opCtx(context.WithoutCancel(ctx))
		start := time.Now()
		err := it.Ack(actx)
		cancel()
		log.add(consumer, "ack "+it.Value, start, err)
		if err == nil {
			return
		}
		st.ackFailures.Add(1)
		if errors.Is(err, etcdkit.ErrLeaseExpired) {
			return // the claim is gone: the item may come again
		}
	}
}

// testQueueDelivery runs one producer on a client without faults and three
// consumers behind their own proxies and faults, then lets the consumers
// drain the queue once the faults healed.
func testQueueDelivery(t *testing.T, atLeastOnce bool) {
	cl := etcdtest.StartCluster(t, 3)
	var opts []etcdkit.QueueOption
	if atLeastOnce {
		opts = append(opts, etcdkit.AtLeastOnce(queueTTL))
	}
	prefix := "rq/"
	clients := newFaultyClients(t, cl, 3)
	d := newDeliveries()
	log := newActivityLog(time.Now())
	var st queueStats
	n := budget(150, 800) // what three consumers that each take up to 0.3 s per item can drain while cut off half the time

	faultCtx, stopFaults := context.WithTimeout(t.Context(), budget(12*time.Second, 3*time.Minute))
	defer stopFaults()
	// The consumers run until they drain the queue or stop making
	// progress (below), within a bound: how fast they drain depends on
	// the machine's load, which a fixed time cannot foresee.
	consumeCtx, stopConsumers := context.WithTimeout(t.Context(), budget(2*time.Minute, 6*time.Minute))
	defer stopConsumers()
	var producers, consumers sync.WaitGroup
	producer, err := etcdkit.NewQueue(cl.Client(t), prefix, etcdkit.String(), opts...)
	require.NoError(t, err)
	producers.Go(func() { produce(faultCtx, producer, n, d) })
	queues := make([]*etcdkit.Queue[string], len(clients))
	for i, c := range clients {
		q, err := etcdkit.NewQueue(c.cli, prefix, etcdkit.String(), opts...)
		require.NoError(t, err)
		queues[i] = q
		consumers.Go(func() { consume(consumeCtx, c, queues[i], d, &st, log) })
	}
	var inj injector
	inj.runClients(t, clients, allClientFaults, queueTTL, budget(16, 400), budget(600*time.Millisecond, 400*time.Millisecond), faultCtx.Done())
	producers.Wait()
	healed := time.Now()
	raw := cl.RawClient(t)
	// Stalled is no item leaving the queue for longer than an item
	// claimed under a lease that a partition let expire takes to come
	// back (its TTL), with room for a Dequeue's and an Ack's time-outs.
	const stalled = 5*queueTTL + 10*time.Second
	deadline, _ := consumeCtx.Deadline()
	lastLeft, lastProgress := len(queueLeft(t, raw, prefix)), time.Now()
	for consumeCtx.Err() == nil && lastLeft > 0 {
		if time.Since(lastProgress) > stalled || time.Until(deadline) < time.Second {
			// The consumers are not draining the queue: show where they
			// are while they still run, and what they did last.
			t.Logf("queue not drained (%d left, none taken for %v); the consumers now:\n%s\nwhat they did last:\n%s",
				lastLeft, time.Since(lastProgress).Round(time.Millisecond), consumerStacks(), log)
			break
		}
		sleepCtx(consumeCtx, 200*time.Millisecond)
		if left := len(queueLeft(t, raw, prefix)); left < lastLeft {
			lastLeft, lastProgress = left, time.Now()
		}
	}
	drained := time.Since(healed)
	stopConsumers()
	consumers.Wait()

	left := queueLeft(t, raw, prefix)
	d.mu.Lock()
	defer d.mu.Unlock()
	var missing, twice []string
	lost := 0
	for id := range d.enqueued {
		switch got := len(d.byID[id]); {
		case got == 0 && left[id] != "":
			missing = append(missing, id+" (still in the queue, "+left[id]+")")
		case got == 0:
			missing = append(missing, id+" (gone)")
			lost++
		case got > 1:
			twice = append(twice, fmt.Sprintf("%s (to %v)", id, d.byID[id]))
		}
	}
	delivered := 0
	for _, consumers := range d.byID {
		delivered += len(consumers)
	}
	var ambiguous int64
	for _, c := range clients {
		ambiguous += c.faults.Injected()
	}
	t.Logf("%d items enqueued (%d more with an unknown outcome), %d deliveries, %d delivered more than once, %d never (%d gone), %d left in the queue; "+
		"%d failed dequeues, %d failed acks; %d client faults (%s), %d calls with an ambiguous outcome; drained %v after the faults",
		len(d.enqueued), len(d.maybe), delivered, len(twice), len(missing), lost, len(left), st.failedDequeues.Load(), st.ackFailures.Load(),
		inj.total(), inj.summary(), ambiguous, drained.Round(time.Millisecond))
	require.NotEmpty(t, d.enqueued, "nothing was enqueued: the test proves nothing")
	if atLeastOnce {
		assert.Empty(t, missing, "AtLeastOnce: every item enqueued is delivered")
		assert.Empty(t, left, "AtLeastOnce: every item is acknowledged and leaves the queue")
		return
	}
	assert.Empty(t, twice, "each item goes to one consumer at most")
	// An item leaves the queue without reaching a consumer only when the
	// delete that took it committed and its answer was lost: each such
	// loss is a failed Dequeue.
	assert.LessOrEqual(t, int64(lost), st.failedDequeues.Load(), "items lost without a failed Dequeue to explain them: %v", missing)
	assert.Empty(t, left, "the consumers drain the queue")
	for consumer, revs := range d.revs {
		for i := 1; i < len(revs); i++ {
			assert.Greater(t, revs[i], revs[i-1], "%s was handed items out of the order they were enqueued in", consumer)
		}
	}
}

// activityLog keeps the last calls of each consumer, for a failure to
// say what they were doing.
type activityLog struct {
	mu    sync.Mutex
	start time.Time
	last  map[string][]string
}

func newActivityLog(start time.Time) *activityLog {
	return &activityLog{start: start, last: map[string][]string{}}
}

// add records one call that began at start and returned err.
func (l *activityLog) add(consumer, call string, start time.Time, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	line := fmt.Sprintf("%s: %s at %v for %v: %v", consumer, call,
		start.Sub(l.start).Round(time.Millisecond), time.Since(start).Round(time.Millisecond), err)
	const keep = 12
	l.last[consumer] = append(l.last[consumer], line)
	if n := len(l.last[consumer]); n > keep {
		l.last[consumer] = l.last[consumer][n-keep:]
	}
}

func (l *activityLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var b strings.Builder
	for _, lines := range l.last {
		for _, line := range lines {
			b.WriteString(line + "\n")
		}
	}
	return b.String()
}

// consumerStacks returns the stacks of the goroutines running consume.
func consumerStacks() string {
	buf := make([]byte, 8<<20)
	var out []string
	for _, g := range strings.Split(string(buf[:runtime.Stack(buf, true)]), "\n\n") {
		if strings.Contains(g, "reliability_test.consume") {
			out = append(out, g)
		}
	}
	return strings.Join(out, "\n\n")
}

// queueLeft returns the ids still in the queue's items, each with whether
// a consumer's claim holds it and under which lease.
func queueLeft(t *testing.T, raw *clientv3.Client, prefix string) map[string]string {
	t.Helper()
	resp, err := raw.Txn(t.Context()).Then(
		clientv3.OpGet(prefix+"items/", clientv3.WithPrefix()),
		clientv3.OpGet(prefix+"claims/", clientv3.WithPrefix()),
	).Commit()
	require.NoError(t, err)
	claims := map[string]int64{}
	for _, kv := range resp.Responses[1].GetResponseRange().Kvs {
		claims[strings.TrimPrefix(string(kv.Key), prefix+"claims/")] = kv.Lease
	}
	left := map[string]string{}
	for _, kv := range resp.Responses[0].GetResponseRange().Kvs {
		state := "free"
		if lease, ok := claims[strings.TrimPrefix(string(kv.Key), prefix+"items/")]; ok {
			state = fmt.Sprintf("claimed under lease %x", lease)
		}
		left[string(kv.Value)] = state
	}
	return left
}

// TestQueue_AtMostOnceUnderClientFaults: with the default queue, items
// consumed through clients that are partitioned, dropped and made to see
// ambiguous commits are never delivered twice, each consumer gets them in
// enqueue order, an item is lost only by a Dequeue that failed, and the
// queue drains.
func TestQueue_AtMostOnceUnderClientFaults(t *testing.T) {
	t.Parallel()
	testQueueDelivery(t, false)
}

// TestQueue_AtLeastOnceUnderClientFaults: with [etcdkit.AtLeastOnce],
// every item enqueued is delivered, under the same faults, and every one is
// finally acknowledged.
func TestQueue_AtLeastOnceUnderClientFaults(t *testing.T) {
	t.Parallel()
	testQueueDelivery(t, true)
}
