package etcdkit

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Queue is a FIFO queue of T in etcd, shared by any number of producers and
// consumers on any number of clients. Items are dequeued in the order etcd
// committed their Enqueue, and each item goes to exactly one consumer.
//
// By default an item leaves the queue when it is dequeued: if its consumer
// dies before finishing it, it is lost (at-most-once). With [AtLeastOnce], a
// dequeued item is only claimed, under a lease of its consumer, and leaves
// the queue on [Item.Ack]; if the consumer dies first, the claim expires
// and the item is handed to another consumer.
//
// Keys: items live under prefix+"items/", claims under prefix+"claims/",
// the last item number given out at prefix+"seq/".
type Queue[T any] struct {
	kv       *KV[T]
	items    string
	claims   string
	seq      string
	claimTTL time.Duration // 0: at-most-once

	mu    sync.Mutex
	lease *Lease // the claims' lease, granted on first use and replaced when lost
}

// Item is a dequeued value.
type Item[T any] struct {
	Key      string // the item's key, relative to the queue's prefix
	Value    T
	Revision int64 // the revision at which it was enqueued
	Dequeued int64 // the revision at which this consumer took (or claimed) it

	ack func(context.Context) error
}

// Ack tells the queue the item is done, so it is never delivered again. It
// is needed only with [AtLeastOnce]; otherwise it does nothing. It fails with
// [ErrLeaseExpired] when the claim was lost first (the consumer's lease
// expired): the item may then be delivered to another consumer.
func (it Item[T]) Ack(ctx context.Context) error {
	if it.ack == nil {
		return nil
	}
	return it.ack(ctx)
}

// QueueOption configures a [Queue].
type QueueOption interface {
	applyQueue(*queueOptions)
}

type queueOptions struct {
	claimTTL time.Duration
}

type queueOptionFunc func(*queueOptions)

func (f queueOptionFunc) applyQueue(o *queueOptions) { f(o) }

// AtLeastOnce makes a dequeued item stay in the queue, claimed by its
// consumer under a lease of the given TTL, until [Item.Ack]. A consumer that
// dies (its client closed or cut off) loses its claims once the lease ends,
// and the items return to the queue, in their place. ttl must be at least
// one second.
func AtLeastOnce(ttl time.Duration) QueueOption {
	return queueOptionFunc(func(o *queueOptions) { o.claimTTL = ttl })
}

// NewQueue returns the queue stored under prefix, its values encoded with
// codec.
func NewQueue[T any](c *Client, prefix string, codec Codec[T], opts ...QueueOption) *Queue[T] {
	var o queueOptions
	for _, opt := range opts {
		if opt != nil {
			opt.applyQueue(&o)
		}
	}
	return &Queue[T]{
		kv:       NewKV(c, prefix+"items/", codec),
		items:    prefix + "items/",
		claims:   prefix + "claims/",
		seq:      prefix + "seq/",
		claimTTL: o.claimTTL,
	}
}

// Enqueue adds v at the end of the queue and returns its key.
func (q *Queue[T]) Enqueue(ctx context.Context, v T) (string, error) {
	return q.enqueue(ctx, "", v)
}

func (q *Queue[T]) enqueue(ctx context.Context, bucket string, v T) (string, error) {
	if err := q.check(ctx, "enqueue"); err != nil {
		return "", err
	}
	val, err := q.kv.encode("enqueue", q.items, v)
	if err != nil {
		return "", err
	}
	key, _, err := appendSeq(ctx, q.kv.c, "enqueue", q.seq+bucket, q.items+bucket, val)
	if err != nil {
		return "", err
	}
	return "items/" + bucket + key, nil
}

// Dequeue takes the first item of the queue, waiting until there is one or
// ctx ends. It fails with ctx's error, or [ErrClosed] once the client closed.
func (q *Queue[T]) Dequeue(ctx context.Context) (Item[T], error) {
	return q.dequeue(ctx, true)
}

// TryDequeue takes the first item of the queue, or fails at once with
// [ErrNotFound] when the queue is empty.
func (q *Queue[T]) TryDequeue(ctx context.Context) (Item[T], error) {
	return q.dequeue(ctx, false)
}

// Close releases this consumer's claims, so that items it dequeued under
// [AtLeastOnce] and did not acknowledge go back to the queue at once rather
// than when the lease expires. The queue stays usable.
func (q *Queue[T]) Close(ctx context.Context) error {
	q.mu.Lock()
	l := q.lease
	q.lease = nil
	q.mu.Unlock()
	if l == nil {
		return nil
	}
	return l.Revoke(ctx)
}

// Len returns how many items wait in the queue, not counting those claimed
// by a consumer under [AtLeastOnce].
func (q *Queue[T]) Len(ctx context.Context) (int64, error) {
	if err := q.check(ctx, "queue length"); err != nil {
		return 0, err
	}
	bctx, cancel := q.kv.c.bound(ctx)
	defer cancel()
	resp, err := q.kv.c.raw.KV.Txn(bctx).Then(
		clientv3.OpGet(q.items, clientv3.WithPrefix(), clientv3.WithCountOnly()),
		clientv3.OpGet(q.claims, clientv3.WithPrefix(), clientv3.WithCountOnly()),
	).Commit()
	if err != nil {
		return 0, opErr("queue length", q.items, err)
	}
	return resp.Responses[0].GetResponseRange().Count - resp.Responses[1].GetResponseRange().Count, nil
}

func (q *Queue[T]) check(ctx context.Context, op string) error {
	if err := q.kv.check(op, "-"); err != nil {
		return err
	}
	if q.claimTTL != 0 && q.claimTTL < time.Second {
		return &opError{op: op, key: q.items, err: fmt.Errorf("%w: AtLeastOnce TTL %v is under one second", ErrInvalidTTL, q.claimTTL)}
	}
	if err := ctx.Err(); err != nil {
		return &opError{op: op, key: q.items, err: err}
	}
	return nil
}

func (q *Queue[T]) dequeue(ctx context.Context, wait bool) (Item[T], error) {
	if err := q.check(ctx, "dequeue"); err != nil {
		return Item[T]{}, err
	}
	for {
		free, rev, err := q.free(ctx)
		if err != nil {
			return Item[T]{}, err
		}
		if len(free) == 0 {
			if !wait {
				return Item[T]{}, &opError{op: "dequeue", key: q.items, err: fmt.Errorf("%w: the queue is empty", ErrNotFound)}
			}
			if err := q.waitChange(ctx, rev); err != nil {
				return Item[T]{}, err
			}
			continue
		}
		// When another consumer takes an item first, that item is gone (or
		// claimed), so trying the next one keeps the queue's order and saves
		// a read per lost race.
		for _, kv := range free {
			it, ok, err := q.take(ctx, kv)
			if err != nil || ok {
				return it, err
			}
		}
	}
}

// dequeuePage is how many items a consumer reads at once: enough that
// consumers racing for the head of the queue rarely read it again.
const dequeuePage = 16

// free returns the first items nobody has claimed, in order, and the
// revision they were read at. Claims are few (one per busy consumer), so
// reading them all and as many more items as there are claims always finds
// the free items among the first ones.
func (q *Queue[T]) free(ctx context.Context) ([]*mvccpb.KeyValue, int64, error) {
	bctx, cancel := q.kv.c.bound(ctx)
	defer cancel()
	if q.claimTTL == 0 {
		resp, err := q.kv.c.raw.KV.Get(bctx, q.items, clientv3.WithPrefix(), clientv3.WithLimit(dequeuePage))
		if err != nil {
			return nil, 0, opErr("dequeue", q.items, err)
		}
		return resp.Kvs, resp.Header.Revision, nil
	}
	claims, err := q.kv.c.raw.KV.Get(bctx, q.claims, clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		return nil, 0, opErr("dequeue", q.claims, err)
	}
	claimed := make(map[string]bool, len(claims.Kvs))
	for _, c := range claims.Kvs {
		claimed[strings.TrimPrefix(string(c.Key), q.claims)] = true
	}
	items, err := q.kv.c.raw.KV.Get(bctx, q.items, clientv3.WithPrefix(),
		clientv3.WithLimit(int64(len(claimed)+dequeuePage)), clientv3.WithRev(claims.Header.Revision))
	if err != nil {
		return nil, 0, opErr("dequeue", q.items, err)
	}
	free := items.Kvs[:0]
	for _, it := range items.Kvs {
		if !claimed[strings.TrimPrefix(string(it.Key), q.items)] {
			free = append(free, it)
		}
	}
	return free, claims.Header.Revision, nil
}

// take removes (or claims) the item, unless another consumer was first.
func (q *Queue[T]) take(ctx context.Context, kv *mvccpb.KeyValue) (Item[T], bool, error) {
	it, err := q.item(kv)
	if err != nil {
		return Item[T]{}, false, err
	}
	if q.claimTTL == 0 {
		rev, err := q.remove(ctx, kv)
		it.Dequeued = rev
		return it, rev != 0, err
	}
	return q.claim(ctx, kv, it)
}

func (q *Queue[T]) item(kv *mvccpb.KeyValue) (Item[T], error) {
	e, err := q.kv.entry(kv)
	if err != nil {
		return Item[T]{}, &opError{op: "dequeue", key: string(kv.Key), err: err}
	}
	return Item[T]{Key: "items/" + e.Key, Value: e.Value, Revision: kv.CreateRevision}, nil
}

// remove deletes the item if it is unchanged, and returns the revision of
// the delete, or 0 when another consumer took it first.
func (q *Queue[T]) remove(ctx context.Context, kv *mvccpb.KeyValue) (int64, error) {
	bctx, cancel := q.kv.c.bound(ctx)
	defer cancel()
	key := string(kv.Key)
	resp, err := q.kv.c.raw.KV.Txn(bctx).
		If(clientv3.Compare(clientv3.ModRevision(key), "=", kv.ModRevision)).
		Then(clientv3.OpDelete(key)).Commit()
	if err != nil {
		return 0, opErr("dequeue", key, err)
	}
	if !resp.Succeeded {
		return 0, nil
	}
	return resp.Header.Revision, nil
}

func (q *Queue[T]) claim(ctx context.Context, kv *mvccpb.KeyValue, it Item[T]) (Item[T], bool, error) {
	lease, err := q.claimLease(ctx)
	if err != nil {
		return Item[T]{}, false, err
	}
	key := string(kv.Key)
	claimKey := q.claims + strings.TrimPrefix(key, q.items)
	bctx, cancel := q.kv.c.bound(ctx)
	defer cancel()
	resp, err := q.kv.c.raw.KV.Txn(bctx).If(
		clientv3.Compare(clientv3.ModRevision(key), "=", kv.ModRevision),
		clientv3.Compare(clientv3.CreateRevision(claimKey), "=", 0),
	).Then(clientv3.OpPut(claimKey, "", clientv3.WithLease(clientv3.LeaseID(lease.ID())))).Commit()
	if err != nil {
		return Item[T]{}, false, opErr("dequeue", key, err)
	}
	if !resp.Succeeded {
		return Item[T]{}, false, nil
	}
	claimRev := resp.Header.Revision
	it.Dequeued = claimRev
	it.ack = func(ctx context.Context) error { return q.ack(ctx, key, claimKey, claimRev) }
	return it, true, nil
}

// ack deletes the item and its claim, if the claim is still this consumer's.
func (q *Queue[T]) ack(ctx context.Context, key, claimKey string, claimRev int64) error {
	if err := q.kv.c.checkOpen("ack", key); err != nil {
		return err
	}
	bctx, cancel := q.kv.c.bound(ctx)
	defer cancel()
	resp, err := q.kv.c.raw.KV.Txn(bctx).
		If(clientv3.Compare(clientv3.CreateRevision(claimKey), "=", claimRev)).
		Then(clientv3.OpDelete(key), clientv3.OpDelete(claimKey)).Commit()
	if err != nil {
		return opErr("ack", key, err)
	}
	if !resp.Succeeded {
		return &opError{op: "ack", key: key, err: fmt.Errorf("%w: the claim was lost, the item may be delivered again", ErrLeaseExpired)}
	}
	return nil
}

// claimLease returns the live lease claims are made under, granting a new
// one when there is none or the last one was lost.
func (q *Queue[T]) claimLease(ctx context.Context) (*Lease, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.lease != nil && q.lease.Err() == nil {
		return q.lease, nil
	}
	l, err := q.kv.c.Grant(ctx, q.claimTTL)
	if err != nil {
		return nil, err
	}
	if err := l.KeepAlive(); err != nil {
		return nil, err
	}
	q.lease = l
	return l, nil
}

// waitChange waits for the next change under the queue's prefix after rev:
// an item put, or a claim released.
func (q *Queue[T]) waitChange(ctx context.Context, rev int64) error {
	prefix := strings.TrimSuffix(q.items, "items/")
	return waitEvent(ctx, q.kv.c, "dequeue", prefix, rev+1, func(ev *clientv3.Event) bool {
		key := string(ev.Kv.Key)
		return (ev.IsCreate() && strings.HasPrefix(key, q.items)) ||
			(ev.Type == clientv3.EventTypeDelete && strings.HasPrefix(key, q.claims))
	})
}

// waitEvent watches prefix from rev until match accepts an event, ctx ends
// or the client closes. A watch that breaks (compaction, lost leader) ends
// the wait without error: the caller reads again and decides.
func waitEvent(ctx context.Context, c *Client, op, prefix string, rev int64, match func(*clientv3.Event) bool) error {
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	stop := context.AfterFunc(c.ctx, cancel)
	defer stop()
	for resp := range c.raw.Watcher.Watch(wctx, prefix, clientv3.WithPrefix(), clientv3.WithRev(rev)) {
		if resp.Err() != nil {
			return waitPause(ctx, c, op, prefix)
		}
		for _, ev := range resp.Events {
			if match(ev) {
				return nil
			}
		}
	}
	if c.closed.Load() {
		return &opError{op: op, key: prefix, err: ErrClosed}
	}
	if err := ctx.Err(); err != nil {
		return &opError{op: op, key: prefix, err: err}
	}
	return nil
}

// waitPause keeps a broken watch from turning into a busy loop.
func waitPause(ctx context.Context, c *Client, op, prefix string) error {
	t := time.NewTimer(100 * time.Millisecond)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return &opError{op: op, key: prefix, err: ctx.Err()}
	case <-c.ctx.Done():
		return &opError{op: op, key: prefix, err: ErrClosed}
	}
}

// PriorityQueue is a [Queue] whose items are dequeued lowest priority number
// first, and in arrival order within one priority.
type PriorityQueue[T any] struct {
	q *Queue[T]
}

// NewPriorityQueue returns the priority queue stored under prefix.
func NewPriorityQueue[T any](c *Client, prefix string, codec Codec[T], opts ...QueueOption) *PriorityQueue[T] {
	return &PriorityQueue[T]{q: NewQueue(c, prefix, codec, opts...)}
}

// Enqueue adds v with the given priority: 0 is dequeued first.
func (p *PriorityQueue[T]) Enqueue(ctx context.Context, v T, priority uint16) (string, error) {
	return p.q.enqueue(ctx, fmt.Sprintf("%05d/", priority), v)
}

// Dequeue takes the first item of the lowest priority, waiting until there
// is one or ctx ends. See [Queue.Dequeue].
func (p *PriorityQueue[T]) Dequeue(ctx context.Context) (Item[T], error) { return p.q.Dequeue(ctx) }

// TryDequeue is [Queue.TryDequeue] for a priority queue.
func (p *PriorityQueue[T]) TryDequeue(ctx context.Context) (Item[T], error) {
	return p.q.TryDequeue(ctx)
}

// Len is [Queue.Len] for a priority queue.
func (p *PriorityQueue[T]) Len(ctx context.Context) (int64, error) { return p.q.Len(ctx) }
