package etcdkit_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	recipe "go.etcd.io/etcd/client/v3/experimental/recipes"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/etcdkit/etcdkit"
	"github.com/etcdkit/etcdkit/etcdtest"
)

type job struct {
	Producer int `json:"p"`
	Seq      int `json:"s"`
}

func TestAppend_ListsInArrivalOrder(t *testing.T) {
	t.Parallel()
	kv := etcdkit.NewKV(newClient(t), testPrefix(t), etcdkit.String())
	ctx := testCtx(t)
	var mu sync.Mutex
	var order []int64 // revisions in the order Append returned them, per key
	keys := map[string]int64{}
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 25 {
				key, rev, err := kv.Append(ctx, fmt.Sprintf("w%d-%d", w, i))
				if !assert.NoError(t, err, "Append") {
					return
				}
				mu.Lock()
				keys[key] = rev
				order = append(order, rev)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	require.Len(t, keys, 100, "distinct keys for 100 appends")
	var prev int64
	n := 0
	for e, err := range kv.List(ctx) {
		require.NoError(t, err)
		assert.Equal(t, keys[e.Key], e.ModRevision, "key %s: listed revision differs from the one Append returned", e.Key)
		assert.Greater(t, e.ModRevision, prev, "key %s lists after a later revision: not arrival order", e.Key)
		prev = e.ModRevision
		n++
	}
	assert.Equal(t, 100, n, "listed entries")
}

// TestAppend_NeverReusesANumber: a key appended and deleted is never named
// again, so a reader that remembers the last key it saw misses nothing.
func TestAppend_NeverReusesANumber(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	kv := etcdkit.NewKV(newClient(t), testPrefix(t), etcdkit.String())
	first, _, err := kv.Append(ctx, "a")
	require.NoError(t, err)
	_, err = kv.Delete(ctx, first)
	require.NoError(t, err)
	second, _, err := kv.Append(ctx, "b")
	require.NoError(t, err)
	assert.Greater(t, second, first, "after deleting the first key, Append must name the next one above it")
}

func TestAppend_BadCounter(t *testing.T) {
	t.Parallel()
	prefix := testPrefix(t)
	_, err := testServer.RawClient(t).Put(testCtx(t), etcdkit.SequenceKey(prefix), "garbage")
	require.NoError(t, err)
	kv := etcdkit.NewKV(newClient(t), prefix, etcdkit.String())
	_, _, err = kv.Append(testCtx(t), "v")
	assert.ErrorIs(t, err, etcdkit.ErrInvalidArgument, "Append with a corrupt counter")
}

// TestQueue_CompetingConsumers: 4 producers × 250 items, 8 consumers on
// separate clients; every item is dequeued exactly once and each producer's
// items are dequeued in the order they were enqueued.
func TestQueue_CompetingConsumers(t *testing.T) {
	t.Parallel()
	const producers, perProducer, consumers = 4, 250, 8
	prefix := testPrefix(t)
	// 1,000 items through contended appends and dequeues: a slow machine
	// running the whole suite in parallel needs more than testCtx's bound.
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()

	var wg sync.WaitGroup
	for p := range producers {
		q := newQueue(t, newClient(t), prefix, etcdkit.JSON[job]())
		wg.Go(func() {
			for s := range perProducer {
				if _, err := q.Enqueue(ctx, job{Producer: p, Seq: s}); !assert.NoError(t, err, "Enqueue") {
					return
				}
			}
		})
	}

	var mu sync.Mutex
	got := map[job]int{}
	var taken []etcdkit.Item[job]
	remaining := producers * perProducer
	cctx, stop := context.WithCancel(ctx)
	defer stop()
	var cwg sync.WaitGroup
	for range consumers {
		q := newQueue(t, newClient(t), prefix, etcdkit.JSON[job]())
		cwg.Go(func() {
			for {
				it, err := q.Dequeue(cctx)
				if err != nil {
					if !errors.Is(err, context.Canceled) {
						assert.NoError(t, err, "Dequeue")
					}
					return
				}
				mu.Lock()
				got[it.Value]++
				taken = append(taken, it)
				remaining--
				if remaining == 0 {
					stop()
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	cwg.Wait()

	require.Len(t, got, producers*perProducer, "distinct items dequeued")
	for j, n := range got {
		assert.Equal(t, 1, n, "times item %+v was dequeued", j)
	}
	slices.SortFunc(taken, func(a, b etcdkit.Item[job]) int { return int(a.Dequeued - b.Dequeued) })
	last := map[int]int{}
	for p := range producers {
		last[p] = -1
	}
	for _, it := range taken {
		assert.Greater(t, it.Value.Seq, last[it.Value.Producer], "producer %d: item dequeued after a later one", it.Value.Producer)
		last[it.Value.Producer] = it.Value.Seq
	}
	n, err := newQueue(t, newClient(t), prefix, etcdkit.JSON[job]()).Len(ctx)
	assert.NoError(t, err, "Len after draining")
	assert.Zero(t, n, "Len after draining")
}

func TestQueue_TryDequeueAndLen(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	q := newQueue(t, newClient(t), testPrefix(t), etcdkit.String())
	_, err := q.TryDequeue(ctx)
	require.ErrorIs(t, err, etcdkit.ErrNotFound, "TryDequeue on an empty queue")
	for _, v := range []string{"a", "b", "c"} {
		_, err := q.Enqueue(ctx, v)
		require.NoError(t, err)
	}
	n, err := q.Len(ctx)
	require.NoError(t, err, "Len")
	require.Equal(t, int64(3), n, "Len")
	for _, want := range []string{"a", "b", "c"} {
		it, err := q.TryDequeue(ctx)
		require.NoError(t, err, "TryDequeue")
		require.Equal(t, want, it.Value, "TryDequeue")
		assert.NoError(t, it.Ack(ctx), "Ack in at-most-once mode")
	}
}

func TestQueue_DequeueWaits(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	q := newQueue(t, newClient(t), testPrefix(t), etcdkit.String())
	got := make(chan string, 1)
	go func() {
		it, err := q.Dequeue(ctx)
		assert.NoError(t, err, "Dequeue")
		got <- it.Value
	}()
	time.Sleep(100 * time.Millisecond) // let the consumer start waiting first
	_, err := q.Enqueue(ctx, "late")
	require.NoError(t, err)
	assert.Equal(t, "late", <-got, "Dequeue")
}

func TestPriorityQueue(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	pq := newPriorityQueue(t, newClient(t), testPrefix(t), etcdkit.String())
	for _, e := range []struct {
		v string
		p uint16
	}{{"low-1", 9}, {"high-1", 1}, {"low-2", 9}, {"urgent", 0}, {"high-2", 1}} {
		_, err := pq.Enqueue(ctx, e.v, e.p)
		require.NoError(t, err)
	}
	var got []string
	for range 5 {
		it, err := pq.Dequeue(ctx)
		require.NoError(t, err)
		got = append(got, it.Value)
	}
	assert.Equal(t, []string{"urgent", "high-1", "high-2", "low-1", "low-2"}, got, "dequeue order")
}

func TestQueue_AtLeastOnce(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	prefix := testPrefix(t)
	opt := etcdkit.AtLeastOnce(2 * time.Second)
	producer := newQueue(t, newClient(t), prefix, etcdkit.String(), opt)
	for _, v := range []string{"one", "two"} {
		_, err := producer.Enqueue(ctx, v)
		require.NoError(t, err)
	}

	// A consumer takes "one" and dies without Ack: its client closes.
	dying, err := etcdkit.New(ctx, testServer.Config())
	require.NoError(t, err)
	first, err := newQueue(t, dying, prefix, etcdkit.String(), opt).Dequeue(ctx)
	require.NoError(t, err, "first Dequeue")
	require.Equal(t, "one", first.Value, "first Dequeue")

	// While "one" is claimed, another consumer gets "two".
	other := newQueue(t, newClient(t), prefix, etcdkit.String(), opt)
	second, err := other.Dequeue(ctx)
	require.NoError(t, err, "second Dequeue")
	require.Equal(t, "two", second.Value, "second Dequeue")
	require.NoError(t, second.Ack(ctx), "Ack")
	dying.Close()

	again, err := other.Dequeue(ctx)
	require.NoError(t, err, "Dequeue after the consumer died")
	require.Equal(t, "one", again.Value, "Dequeue after the consumer died: want its item again")
	require.NoError(t, again.Ack(ctx), "Ack")
	err = first.Ack(ctx)
	assert.True(t, errors.Is(err, etcdkit.ErrClosed) || errors.Is(err, etcdkit.ErrLeaseExpired),
		"the dead consumer's Ack: err = %v, want ErrClosed or ErrLeaseExpired", err)
	_, err = other.TryDequeue(ctx)
	assert.ErrorIs(t, err, etcdkit.ErrNotFound, "acknowledged items came back")
	assert.NoError(t, other.Close(ctx), "Close")
}

func TestQueue_AtLeastOnce_ExpiredClaimReturns(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	prefix := testPrefix(t)
	q := newQueue(t, newClient(t), prefix, etcdkit.String(), etcdkit.AtLeastOnce(time.Second))
	_, err := q.Enqueue(ctx, "job")
	require.NoError(t, err)
	_, err = q.Dequeue(ctx)
	require.NoError(t, err)
	n, _ := q.Len(ctx)
	assert.Zero(t, n, "Len with the only item claimed")
	// Releasing the claims (as a lease expiry would) puts the item back.
	require.NoError(t, q.Close(ctx))
	it, err := q.Dequeue(ctx)
	require.NoError(t, err, "Dequeue after release")
	require.Equal(t, "job", it.Value, "Dequeue after release")
	require.NoError(t, it.Ack(ctx))
}

func TestQueue_BadInput(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	closed, err := etcdkit.New(ctx, testServer.Config())
	require.NoError(t, err)
	closed.Close()
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	prefix := testPrefix(t)
	live := newClient(t)
	tests := []struct {
		name string
		call func() error
		want error
	}{
		{"dequeue on a closed client", func() error {
			_, err := newQueue(t, closed, prefix, etcdkit.String()).Dequeue(ctx)
			return err
		}, etcdkit.ErrClosed},
		{"enqueue on a closed client", func() error {
			_, err := newQueue(t, closed, prefix, etcdkit.String()).Enqueue(ctx, "x")
			return err
		}, etcdkit.ErrClosed},
		{"dequeue with a cancelled ctx", func() error {
			_, err := newQueue(t, live, prefix, etcdkit.String()).Dequeue(cancelled)
			return err
		}, context.Canceled},
		{"enqueue with a cancelled ctx", func() error {
			_, err := newQueue(t, live, prefix, etcdkit.String()).Enqueue(cancelled, "x")
			return err
		}, context.Canceled},
		{"barrier of 0", func() error {
			_, err := etcdkit.NewDoubleBarrier(live, prefix+"b", 0)
			return err
		}, etcdkit.ErrInvalidArgument},
		{"barrier TTL under a second", func() error {
			_, err := etcdkit.NewDoubleBarrier(live, prefix+"b", 2, etcdkit.BarrierTTL(time.Millisecond))
			return err
		}, etcdkit.ErrInvalidTTL},
		{"barrier wait on a closed client", func() error {
			return etcdkit.NewBarrier(closed, prefix+"b").Wait(ctx)
		}, etcdkit.ErrClosed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.ErrorIs(t, tt.call(), tt.want)
		})
	}
	resp, err := testServer.RawClient(t).Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
	if assert.NoError(t, err) {
		assert.Zero(t, resp.Count, "bad calls left keys behind")
	}
}

func BenchmarkQueue(b *testing.B) {
	ctx := context.Background()
	raw := testServer.RawClient(b)
	cli := newClient(b)
	b.Run("Enqueue/etcdkit", func(b *testing.B) {
		q := newQueue(b, cli, "bench/eq/etcdkit/", etcdkit.String())
		b.ReportAllocs()
		for b.Loop() {
			if _, err := q.Enqueue(ctx, "job"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Enqueue/recipe", func(b *testing.B) {
		q := recipe.NewPriorityQueue(raw, "bench/eq/recipe")
		b.ReportAllocs()
		for b.Loop() {
			if err := q.Enqueue("job", 0); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("EnqueueDequeue/etcdkit", func(b *testing.B) {
		q := newQueue(b, cli, "bench/dq/etcdkit/", etcdkit.String())
		b.ReportAllocs()
		for b.Loop() {
			if _, err := q.Enqueue(ctx, "job"); err != nil {
				b.Fatal(err)
			}
			if _, err := q.Dequeue(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("EnqueueDequeue/recipe", func(b *testing.B) {
		q := recipe.NewPriorityQueue(raw, "bench/dq/recipe")
		b.ReportAllocs()
		for b.Loop() {
			if err := q.Enqueue("job", 0); err != nil {
				b.Fatal(err)
			}
			if _, err := q.Dequeue(); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// enqueueAll puts values into q in order.
func enqueueAll(t testing.TB, q *etcdkit.Queue[string], values ...string) {
	t.Helper()
	for _, v := range values {
		_, err := q.Enqueue(testCtx(t), v)
		require.NoError(t, err, "Enqueue %q", v)
	}
}

// TestQueue_AtLeastOnce_AmbiguousClaimIsReleased: a claim that commits while
// Dequeue fails is handed back before Dequeue returns, so another consumer
// gets the item while the first one lives on.
func TestQueue_AtLeastOnce_AmbiguousClaimIsReleased(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	prefix := testPrefix(t)
	opt := etcdkit.AtLeastOnce(10 * time.Second)
	f := etcdtest.NewFaults()
	consumer := newQueue(t, testServer.Client(t, etcdtest.WithFaults(f)), prefix, etcdkit.String(), opt)
	other := newQueue(t, newClient(t), prefix, etcdkit.String(), opt)
	enqueueAll(t, other, "one")

	f.Inject(etcdtest.RPCTxn, etcdtest.CommitThenFail, 1, 0)
	_, err := consumer.Dequeue(ctx)
	require.Error(t, err, "Dequeue whose claim committed then failed")
	require.EqualValues(t, 1, f.Injected(), "the fault was used")

	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	it, err := other.Dequeue(wctx)
	require.NoError(t, err, "the item must go back to the queue while its first consumer lives")
	assert.Equal(t, "one", it.Value)
	assert.NoError(t, it.Ack(ctx))
}

// TestQueue_AtLeastOnce_LateClaimIsDelivered: a claim that lands after
// Dequeue gave up (and after its clean-up) is delivered by the same
// consumer's next Dequeue, ahead of later items.
func TestQueue_AtLeastOnce_LateClaimIsDelivered(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	prefix := testPrefix(t)
	f := etcdtest.NewFaults()
	consumer := newQueue(t, testServer.Client(t, etcdtest.WithFaults(f)), prefix, etcdkit.String(), etcdkit.AtLeastOnce(10*time.Second))
	enqueueAll(t, consumer, "one", "two")

	f.Inject(etcdtest.RPCTxn, etcdtest.FailThenCommit, 1, 300*time.Millisecond)
	_, err := consumer.Dequeue(ctx)
	require.Error(t, err, "Dequeue whose claim failed, then landed")
	f.Wait() // the claim has landed now

	for _, want := range []string{"one", "two"} {
		it, err := consumer.TryDequeue(ctx)
		require.NoError(t, err, "TryDequeue, want %q", want)
		assert.Equal(t, want, it.Value)
		assert.NoError(t, it.Ack(ctx), "Ack %q", want)
	}
	_, err = consumer.TryDequeue(ctx)
	assert.ErrorIs(t, err, etcdkit.ErrNotFound, "nothing is delivered twice")
}

// TestQueue_AtLeastOnce_AmbiguousAck: an Ack that commits and then fails
// leaves the item done: it is not delivered again.
func TestQueue_AtLeastOnce_AmbiguousAck(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	f := etcdtest.NewFaults()
	q := newQueue(t, testServer.Client(t, etcdtest.WithFaults(f)), testPrefix(t), etcdkit.String(), etcdkit.AtLeastOnce(10*time.Second))
	enqueueAll(t, q, "one")
	it, err := q.Dequeue(ctx)
	require.NoError(t, err)
	f.Inject(etcdtest.RPCTxn, etcdtest.CommitThenFail, 1, 0)
	require.Error(t, it.Ack(ctx), "Ack that committed then failed")
	assert.ErrorIs(t, it.Ack(ctx), etcdkit.ErrLeaseExpired, "Ack again after it committed")
	_, err = q.TryDequeue(ctx)
	assert.ErrorIs(t, err, etcdkit.ErrNotFound, "an acknowledged item came back")
}

// TestQueue_AtMostOnce_AmbiguousDequeue: in the default mode, a Dequeue
// whose removal committed and then failed has taken the item out of the
// queue: it is never delivered to anyone, so never twice.
func TestQueue_AtMostOnce_AmbiguousDequeue(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	prefix := testPrefix(t)
	f := etcdtest.NewFaults()
	consumer := newQueue(t, testServer.Client(t, etcdtest.WithFaults(f)), prefix, etcdkit.String())
	other := newQueue(t, newClient(t), prefix, etcdkit.String())
	enqueueAll(t, other, "one", "two")

	f.Inject(etcdtest.RPCTxn, etcdtest.CommitThenFail, 1, 0)
	_, err := consumer.Dequeue(ctx)
	require.Error(t, err, "Dequeue whose removal committed then failed")
	it, err := other.TryDequeue(ctx)
	require.NoError(t, err)
	assert.Equal(t, "two", it.Value, "the item being taken must not be delivered again")
}

// TestQueue_AmbiguousEnqueue: an Enqueue that commits and then fails has
// added the item.
func TestQueue_AmbiguousEnqueue(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	f := etcdtest.NewFaults()
	q := newQueue(t, testServer.Client(t, etcdtest.WithFaults(f)), testPrefix(t), etcdkit.String())
	f.Inject(etcdtest.RPCTxn, etcdtest.CommitThenFail, 1, 0)
	_, err := q.Enqueue(ctx, "one")
	require.Error(t, err)
	it, err := q.TryDequeue(ctx)
	require.NoError(t, err, "the item of a failed Enqueue may be in the queue")
	assert.Equal(t, "one", it.Value)
}

// TestQueue_UndecodableItem: a value the codec rejects is handed to the
// consumer as a *DecodeError naming its key, and moved to the dead letters
// with its bytes intact; the items after it are delivered.
func TestQueue_UndecodableItem(t *testing.T) {
	for _, mode := range []struct {
		name string
		opts []etcdkit.QueueOption
	}{
		{"at most once", nil},
		{"at least once", []etcdkit.QueueOption{etcdkit.AtLeastOnce(10 * time.Second)}},
	} {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			ctx := testCtx(t)
			prefix := testPrefix(t)
			raw := testServer.RawClient(t)
			q := newQueue(t, newClient(t), prefix, etcdkit.JSON[job](), mode.opts...)
			_, err := q.Enqueue(ctx, job{Seq: 1})
			require.NoError(t, err)
			// The next number, written raw: the queue's own Enqueue could not
			// store bytes its codec rejects.
			badKey := prefix + "items/00000000000000000002"
			_, err = raw.Put(ctx, badKey, "not json")
			require.NoError(t, err)
			_, err = raw.Put(ctx, prefix+"seq/", "00000000000000000002")
			require.NoError(t, err)
			_, err = q.Enqueue(ctx, job{Seq: 3})
			require.NoError(t, err)

			it, err := q.Dequeue(ctx)
			require.NoError(t, err)
			assert.Equal(t, 1, it.Value.Seq)
			assert.NoError(t, it.Ack(ctx))

			_, err = q.Dequeue(ctx)
			var de *etcdkit.DecodeError
			require.ErrorAs(t, err, &de, "the undecodable item")
			assert.Equal(t, "items/00000000000000000002", de.Key)

			it, err = q.Dequeue(ctx)
			require.NoError(t, err, "the item after the undecodable one")
			assert.Equal(t, 3, it.Value.Seq)
			assert.NoError(t, it.Ack(ctx))

			dead, err := raw.Get(ctx, prefix+"dead/00000000000000000002")
			require.NoError(t, err)
			require.Len(t, dead.Kvs, 1, "the dead letter")
			assert.Equal(t, "not json", string(dead.Kvs[0].Value))
			left, err := raw.Get(ctx, prefix+"items/", clientv3.WithPrefix(), clientv3.WithCountOnly())
			require.NoError(t, err)
			assert.Zero(t, left.Count, "items left in the queue")
		})
	}
}

// TestQueue_DeadLetterPrefix: WithDeadLetter puts undecodable values where
// it says.
func TestQueue_DeadLetterPrefix(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	prefix := testPrefix(t)
	raw := testServer.RawClient(t)
	_, err := raw.Put(ctx, prefix+"items/00000000000000000001", "not json")
	require.NoError(t, err)
	q := newQueue(t, newClient(t), prefix, etcdkit.JSON[job](), etcdkit.WithDeadLetter(prefix+"graveyard/"))
	_, err = q.TryDequeue(ctx)
	var de *etcdkit.DecodeError
	require.ErrorAs(t, err, &de)
	dead, err := raw.Get(ctx, prefix+"graveyard/00000000000000000001")
	require.NoError(t, err)
	require.Len(t, dead.Kvs, 1, "the dead letter")
	assert.Equal(t, "not json", string(dead.Kvs[0].Value))
}

// TestAppend_NeverOverwrites: a key already at the next number (written by
// someone who did not move the counter) is kept, and Append takes the
// number after it.
func TestAppend_NeverOverwrites(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	prefix := testPrefix(t)
	_, err := testServer.RawClient(t).Put(ctx, prefix+"00000000000000000001", "first")
	require.NoError(t, err)
	kv := etcdkit.NewKV(newClient(t), prefix, etcdkit.String())
	key, _, err := kv.Append(ctx, "second")
	require.NoError(t, err)
	assert.Equal(t, "00000000000000000002", key)
	got, err := kv.Get(ctx, "00000000000000000001")
	require.NoError(t, err)
	assert.Equal(t, "first", got.Value, "the existing key was overwritten")
}

// TestAppend_RaceForOneNumber: appenders on separate clients keep every
// item, however their reads of the counter interleave.
func TestAppend_RaceForOneNumber(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	prefix := testPrefix(t)
	const appenders, each = 4, 10
	var wg sync.WaitGroup
	for a := range appenders {
		kv := etcdkit.NewKV(newClient(t), prefix, etcdkit.String())
		wg.Go(func() {
			for i := range each {
				_, _, err := kv.Append(ctx, fmt.Sprintf("%d-%d", a, i))
				assert.NoError(t, err)
			}
		})
	}
	wg.Wait()
	resp, err := testServer.RawClient(t).Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
	require.NoError(t, err)
	assert.EqualValues(t, appenders*each, resp.Count)
}

// TestQueue_DeadLetterNeverOverwritten: when an undecodable item's dead
// letter is taken already, both values are kept and Dequeue says so.
func TestQueue_DeadLetterNeverOverwritten(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	prefix := testPrefix(t)
	raw := testServer.RawClient(t)
	_, err := raw.Put(ctx, prefix+"dead/00000000000000000001", "older")
	require.NoError(t, err)
	_, err = raw.Put(ctx, prefix+"items/00000000000000000001", "not json")
	require.NoError(t, err)
	q := newQueue(t, newClient(t), prefix, etcdkit.JSON[job]())
	_, err = q.TryDequeue(ctx)
	var de *etcdkit.DecodeError
	assert.ErrorAs(t, err, &de)
	assert.ErrorIs(t, err, etcdkit.ErrExists)
	for key, want := range map[string]string{"dead/00000000000000000001": "older", "items/00000000000000000001": "not json"} {
		resp, err := raw.Get(ctx, prefix+key)
		require.NoError(t, err)
		require.Len(t, resp.Kvs, 1, key)
		assert.Equal(t, want, string(resp.Kvs[0].Value), key)
	}
}

// newQueue is etcdkit.NewQueue for arguments that are known to be valid.
func newQueue[T any](tb testing.TB, c *etcdkit.Client, prefix string, codec etcdkit.Codec[T], opts ...etcdkit.QueueOption) *etcdkit.Queue[T] {
	tb.Helper()
	q, err := etcdkit.NewQueue(c, prefix, codec, opts...)
	require.NoError(tb, err, "NewQueue(%q)", prefix)
	return q
}

// newPriorityQueue is etcdkit.NewPriorityQueue for valid arguments.
func newPriorityQueue[T any](tb testing.TB, c *etcdkit.Client, prefix string, codec etcdkit.Codec[T], opts ...etcdkit.QueueOption) *etcdkit.PriorityQueue[T] {
	tb.Helper()
	q, err := etcdkit.NewPriorityQueue(c, prefix, codec, opts...)
	require.NoError(tb, err, "NewPriorityQueue(%q)", prefix)
	return q
}

// TestQueue_AtMostOnceAckDoesNothing checks the promise of Item.Ack without
// AtLeastOnce: it returns nil, sends nothing and changes nothing.
func TestQueue_AtMostOnceAckDoesNothing(t *testing.T) {
	t.Parallel()
	f := etcdtest.NewFaults()
	prefix := testPrefix(t)
	q := newQueue(t, testServer.Client(t, etcdtest.WithFaults(f)), prefix, etcdkit.String())
	ctx := testCtx(t)
	_, err := q.Enqueue(ctx, "a")
	require.NoError(t, err)
	_, err = q.Enqueue(ctx, "b")
	require.NoError(t, err)
	it, err := q.Dequeue(ctx)
	require.NoError(t, err)
	before, err := testServer.RawClient(t).Get(ctx, prefix, clientv3.WithPrefix())
	require.NoError(t, err)

	// Any request Ack sent would be counted.
	f.SetRate(1, 1, etcdtest.RPCRange, etcdtest.RPCPut, etcdtest.RPCDeleteRange, etcdtest.RPCTxn, etcdtest.RPCLeaseGrant, etcdtest.RPCLeaseRevoke)
	assert.NoError(t, it.Ack(ctx), "Ack at most once")
	assert.NoError(t, it.Ack(ctx), "second Ack at most once")
	f.Clear()
	assert.Zero(t, f.Injected(), "requests sent by Ack")
	after, err := testServer.RawClient(t).Get(ctx, prefix, clientv3.WithPrefix())
	require.NoError(t, err)
	assert.Equal(t, before.Header.Revision, after.Header.Revision, "revision after Ack")
	next, err := q.TryDequeue(ctx)
	require.NoError(t, err)
	assert.Equal(t, "b", next.Value, "the next item after an Ack at most once")
}
