package etcdkit

import (
	"context"
	"fmt"
	"math"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Queue is a FIFO queue of T in etcd, shared by any number of producers and
// consumers on any number of clients. Items are dequeued in the order etcd
// committed their Enqueue.
//
// What a consumer is promised depends on the mode:
//
//   - By default (at most once) an item leaves the queue when it is
//     dequeued, and no item is delivered twice. An item is lost when its
//     consumer dies before finishing it, and when Dequeue fails with an
//     outcome it cannot know (a timeout, a connection lost after the
//     request went out): the removal may have committed, and the item is
//     then neither delivered nor in the queue any more.
//   - With [AtLeastOnce], a dequeued item is only claimed, under a lease of
//     its consumer, and leaves the queue on [Item.Ack]; no item is lost. If
//     the consumer dies first, the claim expires and the item goes to
//     another consumer, so an item can be delivered more than once. A claim
//     whose outcome Dequeue cannot know is handed back to the queue before
//     Dequeue returns its error; when that cannot be confirmed either (or the
//     claim lands later), the same Queue's next Dequeue delivers it, and
//     [Queue.Close] or the end of the lease hands it back.
//
// In both modes, a value that does not decode is moved, bytes intact, to
// the dead letters (see [WithDeadLetter]) and reported by Dequeue as a
// [*DecodeError]; the items after it are delivered as usual.
//
// Keys: items live under prefix+"items/", claims under prefix+"claims/",
// the last item number given out at prefix+"seq/", dead letters under
// prefix+"dead/" unless [WithDeadLetter] says otherwise.
type Queue[T any] struct {
	kv       *KV[T]
	items    string
	claims   string
	seq      string
	dead     string
	claimTTL time.Duration // 0: at-most-once

	mu    sync.Mutex
	lease *Lease // the claims' lease, granted on first use and replaced when lost
	// held names the claims under lease that this Queue is making or has
	// delivered. A claim under lease that is not in it was made by a
	// Dequeue that failed without knowing it: an orphan, which the next
	// Dequeue delivers.
	held map[string]bool

	// head is the first item key this Queue has read, "" before it read
	// one; see itemRange. Not used by a PriorityQueue, whose items of a
	// lower priority number sort before the head however late they come.
	head     string
	priority bool
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
// is needed only with [AtLeastOnce]. Without it (at most once) the item
// left the queue when it was dequeued: Ack returns nil, sends nothing and
// changes nothing, so that a consumer that acknowledges every item works
// in both modes unchanged. It does not make delivery at least once. It fails with
// [ErrLeaseExpired] when the claim was lost first (the consumer's lease
// expired): the item may then be delivered to another consumer. An Ack that
// fails otherwise may have committed; calling it again is safe, and returns
// [ErrLeaseExpired] if the first one did commit.
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
	atLeastOnce bool
	claimTTL    time.Duration
	dead        string
}

type queueOptionFunc func(*queueOptions)

func (f queueOptionFunc) applyQueue(o *queueOptions) { f(o) }

// AtLeastOnce makes a dequeued item stay in the queue, claimed by its
// consumer under a lease of the given TTL, until [Item.Ack]. A consumer that
// dies (its client closed or cut off) loses its claims once the lease ends,
// and the items return to the queue, in their place. A ttl under one second
// makes [NewQueue] fail with [ErrInvalidTTL].
func AtLeastOnce(ttl time.Duration) QueueOption {
	return queueOptionFunc(func(o *queueOptions) { o.atLeastOnce, o.claimTTL = true, ttl })
}

// WithDeadLetter sets the prefix values that do not decode are moved to:
// an item's dead letter is the prefix followed by the item's number (its
// key without "items/"). It is never overwritten: give each queue a
// dead-letter prefix of its own. The default is the queue's prefix +
// "dead/". An empty prefix makes [NewQueue] fail with [ErrEmptyKey].
func WithDeadLetter(prefix string) QueueOption {
	return queueOptionFunc(func(o *queueOptions) { o.dead = prefix })
}

// NewQueue returns the queue stored under prefix, its values encoded with
// codec. Nothing is sent to etcd. It checks its arguments here rather than
// on every later call: it fails with [ErrInvalidArgument] for a nil client
// or codec, with [ErrInvalidTTL] for an [AtLeastOnce] TTL under one second,
// and with [ErrEmptyKey] for an empty [WithDeadLetter] prefix.
func NewQueue[T any](c *Client, prefix string, codec Codec[T], opts ...QueueOption) (*Queue[T], error) {
	o := queueOptions{dead: prefix + "dead/"}
	for _, opt := range opts {
		if opt != nil {
			opt.applyQueue(&o)
		}
	}
	if err := o.validate(c, prefix, codec == nil); err != nil {
		return nil, err
	}
	return &Queue[T]{
		kv:       NewKV(c, prefix+"items/", codec),
		items:    prefix + "items/",
		claims:   prefix + "claims/",
		seq:      prefix + "seq/",
		dead:     o.dead,
		claimTTL: o.claimTTL,
	}, nil
}

// validate checks a queue's arguments for NewQueue.
func (o queueOptions) validate(c *Client, prefix string, nilCodec bool) error {
	bad := func(sentinel error, format string, args ...any) error {
		return &opError{op: "new queue", key: prefix, err: fmt.Errorf("%w: "+format, append([]any{sentinel}, args...)...)}
	}
	switch {
	case c == nil:
		return bad(ErrInvalidArgument, "nil client")
	case nilCodec:
		return bad(ErrInvalidArgument, "nil codec")
	case o.atLeastOnce && o.claimTTL < time.Second:
		return bad(ErrInvalidTTL, "AtLeastOnce TTL %v is under one second", o.claimTTL)
	case o.dead == "":
		return bad(ErrEmptyKey, "empty dead-letter prefix")
	}
	return nil
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
	ctx, o := q.kv.c.opStart(ctx, OpEnqueue, q.prefix(), "")
	key, rev, err := appendSeq(ctx, q.kv.c, "enqueue", q.seq+bucket, q.items+bucket, val)
	o.end(rev, err)
	if err != nil {
		return "", err
	}
	return "items/" + bucket + key, nil
}

// prefix is the prefix the queue was made with, as notices and operations
// name it.
func (q *Queue[T]) prefix() string { return strings.TrimSuffix(q.items, "items/") }

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
	n := resp.Responses[0].GetResponseRange().Count - resp.Responses[1].GetResponseRange().Count
	q.kv.c.notice(ctx, Notice{Kind: NoticeQueueDepth, Prefix: q.prefix(), Revision: resp.Header.Revision, Value: n})
	return n, nil
}

func (q *Queue[T]) check(ctx context.Context, op string) error {
	if err := q.kv.check(op, "-"); err != nil {
		return err
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
	ctx, o := q.kv.c.opStart(ctx, OpDequeue, q.prefix(), "")
	it, err := q.take1(ctx, wait)
	o.end(it.Dequeued, err)
	return it, err
}

// take1 takes one item, waiting for one if wait is set.
func (q *Queue[T]) take1(ctx context.Context, wait bool) (Item[T], error) {
	for {
		v, err := q.scan(ctx)
		if err != nil {
			return Item[T]{}, err
		}
		if it, ok, err := q.takeFirst(ctx, v); err != nil || ok {
			return it, err
		}
		if len(v.free) > 0 || len(v.orphans) > 0 {
			retriedIn(ctx)
			continue // others were first: read the queue again
		}
		if !wait {
			return Item[T]{}, &opError{op: "dequeue", key: q.items, err: fmt.Errorf("%w: the queue is empty", ErrNotFound)}
		}
		if err := q.waitChange(ctx, v.rev, v.lease); err != nil {
			return Item[T]{}, err
		}
	}
}

// takeFirst delivers this Queue's orphaned claims first (they are its own,
// and were at the head of the queue when claimed), then the first free item
// no other consumer takes first. When another consumer takes an item first,
// that item is gone (or claimed), so trying the next one keeps the queue's
// order and saves a read per lost race.
func (q *Queue[T]) takeFirst(ctx context.Context, v queueView) (Item[T], bool, error) {
	for _, c := range v.orphans {
		if it, ok, err := q.adopt(ctx, c); err != nil || ok {
			return it, ok, err
		}
	}
	for _, kv := range v.free {
		if it, ok, err := q.take(ctx, kv); err != nil || ok {
			return it, ok, err
		}
	}
	return Item[T]{}, false, nil
}

// dequeuePage is how many items a consumer reads at once: enough that
// consumers racing for the head of the queue rarely read it again.
const dequeuePage = 16

// queueView is what a consumer reads before taking an item.
type queueView struct {
	free    []*mvccpb.KeyValue // the first items nobody claimed, in order
	orphans []*mvccpb.KeyValue // claims under lease that no Dequeue of this Queue delivered
	rev     int64              // the revision it was read at
	lease   int64              // this Queue's claim lease, 0 if it has none
}

// headWindow is how many item numbers from the head a read covers before
// it reads the whole queue: far more than the items consumers take
// between two reads of one consumer, and cheap for the server to walk.
const headWindow = 256

// itemRange returns the range of item keys a read of the first items
// covers: from the head to headWindow numbers on, or all of them before
// this Queue knows the head (wide is then true).
//
// etcd answers a read with a limit by also counting every key left in its
// range, and walks the keys deleted since the last compaction on the way:
// a read to the end of the prefix costs time linear in the queue's length.
// The window bounds both. It leaves out no item: a plain queue numbers its
// items in increasing order (the "seq/" counter only grows), so no item
// can appear before the head, which was the first one when it was read;
// and a read of the window that finds no item falls back to the whole
// range, which also finds the items numbered anew if the counter was
// deleted.
func (q *Queue[T]) itemRange() (start, end string, wide bool) {
	all := clientv3.GetPrefixRangeEnd(q.items)
	q.mu.Lock()
	head := q.head
	q.mu.Unlock()
	if q.priority || head == "" {
		return q.items, all, true
	}
	n, err := parseSeq(strings.TrimPrefix(head, q.items))
	if err != nil || n > math.MaxUint64-headWindow {
		return q.items, all, true // not a plain queue's item
	}
	return head, q.items + formatSeq(n+headWindow), false
}

// sawHead records the first item key a read found.
func (q *Queue[T]) sawHead(items []*mvccpb.KeyValue) {
	if len(items) == 0 || q.priority {
		return
	}
	q.mu.Lock()
	q.head = string(items[0].Key)
	q.mu.Unlock()
}

// scan reads the first items nobody has claimed.
func (q *Queue[T]) scan(ctx context.Context) (queueView, error) {
	if q.claimTTL != 0 {
		return q.scanClaimed(ctx)
	}
	bctx, cancel := q.kv.c.bound(ctx)
	defer cancel()
	for {
		start, end, wide := q.itemRange()
		resp, err := q.kv.c.raw.KV.Get(bctx, start, clientv3.WithRange(end), clientv3.WithLimit(dequeuePage))
		if err != nil {
			return queueView{}, opErr("dequeue", q.items, err)
		}
		if len(resp.Kvs) == 0 && !wide {
			q.forgetHead()
			continue
		}
		q.sawHead(resp.Kvs)
		return queueView{free: resp.Kvs, rev: resp.Header.Revision}, nil
	}
}

// forgetHead makes the next read cover every item: the window held none.
func (q *Queue[T]) forgetHead() {
	q.mu.Lock()
	q.head = ""
	q.mu.Unlock()
}

// scanClaimed is scan for [AtLeastOnce]. Claims are few (one per busy
// consumer), so reading them all and as many more items as there are
// claims always finds the free items among the first ones. Claims are read
// with their (empty) values: a keys-only read leaves out their lease, which
// tells this Queue's orphans apart.
func (q *Queue[T]) scanClaimed(ctx context.Context) (queueView, error) {
	bctx, cancel := q.kv.c.bound(ctx)
	defer cancel()
	v := queueView{lease: q.leaseID()}
	claims, err := q.kv.c.raw.KV.Get(bctx, q.claims, clientv3.WithPrefix())
	if err != nil {
		return queueView{}, opErr("dequeue", q.claims, err)
	}
	v.rev = claims.Header.Revision
	claimed := make(map[string]bool, len(claims.Kvs))
	for _, c := range claims.Kvs {
		claimed[strings.TrimPrefix(string(c.Key), q.claims)] = true
		if v.lease != 0 && c.Lease == v.lease && !q.isHeld(string(c.Key)) {
			v.orphans = append(v.orphans, c)
		}
	}
	for {
		start, end, wide := q.itemRange()
		items, err := q.kv.c.raw.KV.Get(bctx, start, clientv3.WithRange(end),
			clientv3.WithLimit(int64(len(claimed)+dequeuePage)), clientv3.WithRev(v.rev))
		if err != nil {
			return queueView{}, opErr("dequeue", q.items, err)
		}
		for _, it := range items.Kvs {
			if !claimed[strings.TrimPrefix(string(it.Key), q.items)] {
				v.free = append(v.free, it)
			}
		}
		if len(v.free) == 0 && !wide {
			// The window's items are all claimed, or there are none: the
			// free ones, if any, are further on.
			q.forgetHead()
			continue
		}
		q.sawHead(items.Kvs)
		return v, nil
	}
}

// take removes (or claims) the item, unless another consumer was first.
func (q *Queue[T]) take(ctx context.Context, kv *mvccpb.KeyValue) (Item[T], bool, error) {
	if q.claimTTL != 0 {
		return q.claim(ctx, kv)
	}
	it, err := q.item(kv)
	if err != nil {
		return q.bury(ctx, kv, err, nil, nil)
	}
	rev, err := q.remove(ctx, kv)
	it.Dequeued = rev
	return it, rev != 0, err
}

// item decodes kv; the error is the codec's.
func (q *Queue[T]) item(kv *mvccpb.KeyValue) (Item[T], error) {
	v, err := q.kv.codec.Decode(kv.Value)
	if err != nil {
		return Item[T]{}, err
	}
	return Item[T]{Key: q.relKey(kv.Key), Value: v, Revision: kv.CreateRevision}, nil
}

// relKey is an item's key relative to the queue's prefix: "items/<number>".
func (q *Queue[T]) relKey(key []byte) string {
	return "items/" + strings.TrimPrefix(string(key), q.items)
}

// bury moves an item that does not decode to the dead letters, if it is
// unchanged and the conditions hold, and reports it as a *DecodeError. It
// returns false when another consumer took the item first. Its bytes are
// never lost: the move is one transaction, and a dead letter is never
// overwritten. A move whose outcome is unknown fails with that error; the
// next Dequeue finds the item gone (moved) or moves it then.
func (q *Queue[T]) bury(ctx context.Context, kv *mvccpb.KeyValue, decodeErr error, cmps []clientv3.Cmp, ops []clientv3.Op) (Item[T], bool, error) {
	key := string(kv.Key)
	deadKey := q.dead + strings.TrimPrefix(key, q.items)
	cmps = append(cmps,
		clientv3.Compare(clientv3.ModRevision(key), "=", kv.ModRevision),
		clientv3.Compare(clientv3.CreateRevision(deadKey), "=", 0))
	ops = append(ops, clientv3.OpPut(deadKey, string(kv.Value)), clientv3.OpDelete(key))
	bctx, cancel := q.kv.c.bound(ctx)
	defer cancel()
	resp, err := q.kv.c.raw.KV.Txn(bctx).If(cmps...).Then(ops...).
		Else(clientv3.OpGet(deadKey, clientv3.WithCountOnly())).Commit()
	if err != nil {
		return Item[T]{}, false, opErr("dequeue", key, err)
	}
	if !resp.Succeeded {
		if resp.Responses[0].GetResponseRange().Count > 0 {
			return Item[T]{}, false, &opError{op: "dequeue", key: key, err: fmt.Errorf("%w: %w, and its dead letter %q is taken", ErrExists, &DecodeError{Key: q.relKey(kv.Key), Err: decodeErr}, deadKey)}
		}
		return Item[T]{}, false, nil
	}
	derr := &DecodeError{Key: q.relKey(kv.Key), Err: decodeErr}
	q.kv.c.notice(ctx, Notice{Kind: NoticeDecodeError, Prefix: q.prefix(), Key: derr.Key, Revision: kv.ModRevision, Err: derr})
	return Item[T]{}, true, &opError{op: "dequeue", key: key, err: fmt.Errorf("%w; its value was moved to %q", derr, deadKey)}
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

// claim claims a free item for this consumer, unless another was first.
func (q *Queue[T]) claim(ctx context.Context, kv *mvccpb.KeyValue) (Item[T], bool, error) {
	key := string(kv.Key)
	claimKey := q.claims + strings.TrimPrefix(key, q.items)
	unclaimed := clientv3.Compare(clientv3.CreateRevision(claimKey), "=", 0)
	it, err := q.item(kv)
	if err != nil {
		return q.bury(ctx, kv, err, []clientv3.Cmp{unclaimed}, nil)
	}
	lease, err := q.claimLease(ctx)
	if err != nil {
		return Item[T]{}, false, err
	}
	if !q.hold(claimKey) {
		return Item[T]{}, false, nil // another Dequeue of this Queue is on it
	}
	bctx, cancel := q.kv.c.bound(ctx)
	defer cancel()
	resp, err := q.kv.c.raw.KV.Txn(bctx).If(
		clientv3.Compare(clientv3.ModRevision(key), "=", kv.ModRevision), unclaimed,
	).Then(clientv3.OpPut(claimKey, "", clientv3.WithLease(clientv3.LeaseID(lease.ID())))).Commit()
	if err != nil {
		q.unclaim(claimKey, lease.ID())
		return Item[T]{}, false, opErr("dequeue", key, err)
	}
	if !resp.Succeeded {
		q.forget(claimKey)
		return Item[T]{}, false, nil
	}
	return q.handOver(it, key, claimKey, resp.Header.Revision), true, nil
}

// unclaimAttempts bounds how often a claim whose outcome is unknown is
// handed back before Dequeue returns.
const unclaimAttempts = 3

// unclaim hands back a claim whose outcome is unknown, before Dequeue
// returns its error, so that another consumer can take the item at once.
// Deleting the claim key if it is under this Queue's lease is right either
// way: if the claim did not commit, the key is absent or another
// consumer's. The claim may also stay (every delete failed) or land later
// (it was still in flight): forgetting it makes it an orphan, which this
// Queue's next Dequeue delivers, and which Close or the lease's end hands
// back at the latest. No path strands the item.
func (q *Queue[T]) unclaim(claimKey string, lease int64) {
	defer q.forget(claimKey)
	for range unclaimAttempts {
		ctx, cancel := context.WithTimeout(q.kv.c.ctx, closeGrace)
		_, err := q.kv.c.raw.KV.Txn(ctx).
			If(clientv3.Compare(clientv3.LeaseValue(claimKey), "=", lease)).
			Then(clientv3.OpDelete(claimKey)).Commit()
		cancel()
		if err == nil {
			return
		}
	}
}

// adopt delivers an orphan: a claim of this Queue's lease that the Dequeue
// which made it could not confirm. The claim stands, so the item is this
// consumer's already; it is delivered unless it went meanwhile.
func (q *Queue[T]) adopt(ctx context.Context, c *mvccpb.KeyValue) (Item[T], bool, error) {
	claimKey := string(c.Key)
	if !q.hold(claimKey) {
		return Item[T]{}, false, nil
	}
	key := q.items + strings.TrimPrefix(claimKey, q.claims)
	bctx, cancel := q.kv.c.bound(ctx)
	defer cancel()
	resp, err := q.kv.c.raw.KV.Txn(bctx).
		If(clientv3.Compare(clientv3.CreateRevision(claimKey), "=", c.CreateRevision)).
		Then(clientv3.OpGet(key)).Commit()
	if err != nil {
		q.forget(claimKey)
		return Item[T]{}, false, opErr("dequeue", key, err)
	}
	if !resp.Succeeded { // acknowledged, or the lease ended
		q.forget(claimKey)
		return Item[T]{}, false, nil
	}
	kvs := resp.Responses[0].GetResponseRange().Kvs
	if len(kvs) == 0 { // the item was deleted by hand: drop its claim
		q.unclaim(claimKey, c.Lease)
		return Item[T]{}, false, nil
	}
	return q.deliver(ctx, kvs[0], claimKey, c.CreateRevision)
}

// deliver hands over an item this consumer has claimed, or buries it (with
// its claim) when it does not decode.
func (q *Queue[T]) deliver(ctx context.Context, kv *mvccpb.KeyValue, claimKey string, claimRev int64) (Item[T], bool, error) {
	it, err := q.item(kv)
	if err != nil {
		defer q.forget(claimKey)
		mine := clientv3.Compare(clientv3.CreateRevision(claimKey), "=", claimRev)
		return q.bury(ctx, kv, err, []clientv3.Cmp{mine}, []clientv3.Op{clientv3.OpDelete(claimKey)})
	}
	return q.handOver(it, string(kv.Key), claimKey, claimRev), true, nil
}

// handOver makes it the caller's, with an Ack that ends its claim.
func (q *Queue[T]) handOver(it Item[T], key, claimKey string, claimRev int64) Item[T] {
	it.Dequeued = claimRev
	it.ack = func(ctx context.Context) error { return q.ack(ctx, key, claimKey, claimRev) }
	return it
}

// ack deletes the item and its claim, if the claim is still this consumer's.
func (q *Queue[T]) ack(ctx context.Context, key, claimKey string, claimRev int64) error {
	if err := q.kv.c.checkOpen("ack", key); err != nil {
		return err
	}
	ctx, o := q.kv.c.opStart(ctx, OpAck, q.prefix(), "")
	rev, err := q.ackOnce(ctx, key, claimKey, claimRev)
	o.end(rev, err)
	return err
}

func (q *Queue[T]) ackOnce(ctx context.Context, key, claimKey string, claimRev int64) (int64, error) {
	bctx, cancel := q.kv.c.bound(ctx)
	defer cancel()
	resp, err := q.kv.c.raw.KV.Txn(bctx).
		If(clientv3.Compare(clientv3.CreateRevision(claimKey), "=", claimRev)).
		Then(clientv3.OpDelete(key), clientv3.OpDelete(claimKey)).Commit()
	if err != nil {
		// The claim stays held: if the delete did not commit, the item is
		// still this consumer's, and Ack may be called again.
		return 0, opErr("ack", key, err)
	}
	q.forget(claimKey)
	if !resp.Succeeded {
		return 0, &opError{op: "ack", key: key, err: fmt.Errorf("%w: the claim was lost, the item may be delivered again", ErrLeaseExpired)}
	}
	return resp.Header.Revision, nil
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
	q.lease, q.held = l, map[string]bool{}
	return l, nil
}

// leaseID is the ID of the live claim lease, or 0.
func (q *Queue[T]) leaseID() int64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.lease == nil || q.lease.Err() != nil {
		return 0
	}
	return q.lease.ID()
}

// hold marks a claim as this Queue's to make or deliver, and says false if
// it was already.
func (q *Queue[T]) hold(claimKey string) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.held == nil {
		q.held = map[string]bool{}
	}
	if q.held[claimKey] {
		return false
	}
	q.held[claimKey] = true
	return true
}

func (q *Queue[T]) isHeld(claimKey string) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.held[claimKey]
}

func (q *Queue[T]) forget(claimKey string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.held, claimKey)
}

// waitChange waits for the next change under the queue's prefix after rev:
// an item put, a claim released, or a claim of lease (an orphan: a claim
// that landed after its Dequeue gave up) made.
func (q *Queue[T]) waitChange(ctx context.Context, rev, lease int64) error {
	prefix := strings.TrimSuffix(q.items, "items/")
	return waitEvent(ctx, q.kv.c, "dequeue", prefix, rev+1, func(ev *clientv3.Event) bool {
		key := string(ev.Kv.Key)
		return (ev.IsCreate() && strings.HasPrefix(key, q.items)) ||
			(ev.Type == clientv3.EventTypeDelete && strings.HasPrefix(key, q.claims)) ||
			(ev.IsCreate() && lease != 0 && ev.Kv.Lease == lease && strings.HasPrefix(key, q.claims))
	})
}

// waitEvent watches prefix from rev until match accepts an event, ctx ends
// or the client closes. A watch that breaks (compaction, lost leader) ends
// the wait without error: the caller reads again and decides.
func waitEvent(ctx context.Context, c *Client, op, prefix string, rev int64, match func(*clientv3.Event) bool) error {
	wctx, cancel := context.WithCancel(requireLeader(ctx))
	defer cancel()
	stop := context.AfterFunc(c.ctx, cancel)
	defer stop()
	for resp := range c.rawWatch(wctx, prefix, clientv3.WithPrefix(), clientv3.WithRev(rev)) {
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
	if err := c.sleep(ctx, 100*time.Millisecond); err != nil {
		return &opError{op: op, key: prefix, err: err}
	}
	return nil
}

// PriorityQueue is a [Queue] whose items are dequeued lowest priority number
// first, and in arrival order within one priority.
type PriorityQueue[T any] struct {
	q *Queue[T]
}

// NewPriorityQueue returns the priority queue stored under prefix. Its
// errors are those of [NewQueue].
func NewPriorityQueue[T any](c *Client, prefix string, codec Codec[T], opts ...QueueOption) (*PriorityQueue[T], error) {
	q, err := NewQueue(c, prefix, codec, opts...)
	if err != nil {
		return nil, err
	}
	q.priority = true
	return &PriorityQueue[T]{q: q}, nil
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
