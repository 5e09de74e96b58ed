package etcdkit

import (
	"context"
	"fmt"
	"iter"
	"sync"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// bulkInFlight is how many transactions [KV.PutMany] and [KV.DeleteMany]
// keep in flight: enough to hide the round trip of each behind the others,
// few enough that one caller does not crowd out the rest of the cluster.
const bulkInFlight = 4

// PutMany stores every entry of entries, in transactions of up to the
// client's [Config.MaxTxnOps] puts and under its [Config.MaxRequestBytes],
// several of them in flight at once. opts apply to every entry; with
// [WithLease] every key is attached to the lease.
//
// A key that appears more than once ends with its last value: a later entry
// never lands before an earlier one for the same key.
//
// It returns n, the number of entries (repeated keys included) whose
// transactions were confirmed committed. On error, entries in a transaction
// whose outcome is unknown (a timeout, a broken connection) are not counted
// though they may have been written; entries in transactions sent before
// the error may be counted whichever order they finished in, so the written
// entries are not always a prefix of entries. No new transaction is sent
// after the first error, and PutMany returns once those in flight have
// ended. On success n is the number of entries.
//
// Entries are checked as they are read, not all before anything is sent:
// an empty key ([ErrEmptyKey]), an entry over the request size limit
// ([ErrTooLarge]) or a value the codec cannot encode ([ErrInvalidArgument],
// wrapping the codec's error, with the key) stops the load there, and
// entries read since the last transaction was sent are not written. A done
// ctx stops it too, with ctx's error.
func (kv *KV[T]) PutMany(ctx context.Context, entries iter.Seq2[string, T], opts ...PutOption) (int, error) {
	const op = "put many"
	l, err := kv.startBulk(ctx, op, entries == nil, putCount)
	if err != nil {
		return 0, err
	}
	var o *observation
	l.ctx, o = kv.c.opStart(ctx, OpPutMany, kv.prefix, "")
	putOpts := putOpOptions(opts)
	for key, v := range entries {
		if !l.feed(kv.putForBulk(op, key, v, putOpts)) {
			break
		}
	}
	n, err := l.finish()
	o.end(l.rev, err)
	return n, err
}

// DeleteMany deletes every key of keys, in transactions of up to the
// client's [Config.MaxTxnOps] deletes, several of them in flight at once.
//
// It returns n, the number of keys that existed and were deleted by
// transactions confirmed committed (a key given twice counts once). On
// error, deletes in a transaction whose outcome is unknown are not counted
// though they may have happened. As with [KV.PutMany], no new transaction
// is sent after the first error, keys are checked as they are read (an
// empty key fails with [ErrEmptyKey] and stops there) and a done ctx stops
// it with ctx's error.
func (kv *KV[T]) DeleteMany(ctx context.Context, keys iter.Seq[string]) (int, error) {
	const op = "delete many"
	l, err := kv.startBulk(ctx, op, keys == nil, deleteCount)
	if err != nil {
		return 0, err
	}
	var o *observation
	l.ctx, o = kv.c.opStart(ctx, OpDeleteMany, kv.prefix, "")
	for key := range keys {
		if !l.feed(kv.deleteForBulk(op, key)) {
			break
		}
	}
	n, err := l.finish()
	o.end(l.rev, err)
	return n, err
}

// startBulk checks what a bulk call needs before it reads its input.
func (kv *KV[T]) startBulk(ctx context.Context, op string, nilInput bool, count func(*bulkBatch, *clientv3.TxnResponse) int) (*bulkLoad, error) {
	switch {
	case kv == nil || kv.c == nil:
		return nil, &opError{op: op, err: fmt.Errorf("%w: nil KV or client", ErrInvalidArgument)}
	case kv.codec == nil:
		return nil, &opError{op: op, key: kv.prefix, err: fmt.Errorf("%w: nil codec", ErrInvalidArgument)}
	case nilInput:
		return nil, &opError{op: op, key: kv.prefix, err: fmt.Errorf("%w: nil sequence", ErrInvalidArgument)}
	}
	if err := kv.c.checkOpen(op, kv.prefix); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, &opError{op: op, key: kv.prefix, err: err}
	}
	return newBulkLoad(ctx, kv.c, op, count), nil
}

// putForBulk builds the put of v at key, checked as [KV.Put] checks it.
func (kv *KV[T]) putForBulk(op, key string, v T, opts []clientv3.OpOption) (clientv3.Op, error) {
	if kv.prefix == "" && key == "" {
		return clientv3.Op{}, &opError{op: op, err: ErrEmptyKey}
	}
	val, err := kv.encodeForOp(op, key, v)
	if err != nil {
		return clientv3.Op{}, err
	}
	if err := kv.c.limits().checkPut(op, kv.prefix, key, len(val)); err != nil {
		return clientv3.Op{}, err
	}
	// OpPut copies val, which shares the codec's bytes, before it returns.
	return clientv3.OpPut(kv.prefix+key, val, opts...), nil
}

// deleteForBulk builds the delete of key.
func (kv *KV[T]) deleteForBulk(op, key string) (clientv3.Op, error) {
	if kv.prefix == "" && key == "" {
		return clientv3.Op{}, &opError{op: op, err: ErrEmptyKey}
	}
	if err := kv.c.limits().checkPut(op, kv.prefix, key, 0); err != nil {
		return clientv3.Op{}, err
	}
	return clientv3.OpDelete(kv.prefix + key), nil
}

// putCount counts every entry of a committed batch of puts.
func putCount(b *bulkBatch, _ *clientv3.TxnResponse) int { return b.entries }

// deleteCount counts the keys a committed batch of deletes found.
func deleteCount(_ *bulkBatch, resp *clientv3.TxnResponse) int {
	n := 0
	for _, r := range resp.Responses {
		n += int(r.GetResponseDeleteRange().GetDeleted())
	}
	return n
}

// bulkLoad sends batches of operations as transactions, up to bulkInFlight
// at once. Its methods other than send run in the caller's goroutine.
type bulkLoad struct {
	c     *Client
	ctx   context.Context
	op    string
	count func(*bulkBatch, *clientv3.TxnResponse) int
	cur   bulkBatch

	slots chan struct{}  // one per transaction in flight
	spare chan bulkBatch // batches sent and done with, to be filled again
	wg    sync.WaitGroup

	mu   sync.Mutex
	done int            // entries of the batches confirmed committed
	rev  int64          // the highest revision a batch committed at
	err  error          // the first error
	busy map[string]int // full key -> how many batches in flight write it
}

// bulkBatch is one transaction's worth of operations.
type bulkBatch struct {
	ops     []clientv3.Op
	at      map[string]int // full key -> its index in ops
	size    int            // request bytes with framing
	entries int            // entries of the input, repeated keys included
}

func newBulkLoad(ctx context.Context, c *Client, op string, count func(*bulkBatch, *clientv3.TxnResponse) int) *bulkLoad {
	l := &bulkLoad{c: c, ctx: ctx, op: op, count: count,
		slots: make(chan struct{}, bulkInFlight), spare: make(chan bulkBatch, bulkInFlight+1), busy: map[string]int{}}
	l.cur = l.newBatch()
	return l
}

// newBatch returns an empty batch, reusing the buffers of one that was sent
// when there is one: a batch's ops are large (clientv3.Op is about 300
// bytes), and a load sends thousands of batches.
func (l *bulkLoad) newBatch() bulkBatch {
	select {
	case b := <-l.spare:
		clear(b.ops) // drop the sent keys and values for the GC
		clear(b.at)
		return bulkBatch{ops: b.ops[:0], at: b.at, size: reqOverheadBytes}
	default:
	}
	n := min(l.c.limits().maxTxnOps, 1024)
	return bulkBatch{ops: make([]clientv3.Op, 0, n), at: make(map[string]int, n), size: reqOverheadBytes}
}

// recycle hands the buffers of a batch that is done with to newBatch.
func (l *bulkLoad) recycle(b bulkBatch) {
	select {
	case l.spare <- b:
	default:
	}
}

// opBytes is an operation's share of a transaction's size, as
// limits.checkTxn counts it.
func opBytes(o *clientv3.Op) int {
	return opOverheadBytes + len(o.KeyBytes()) + len(o.RangeBytes()) + len(o.ValueBytes())
}

// feed adds the op an input entry became, or fails the load with the
// entry's error; it reports whether to read on.
func (l *bulkLoad) feed(o clientv3.Op, err error) bool {
	if err != nil {
		l.fail(err)
		return false
	}
	return l.add(o)
}

// add puts o in the current batch, sending the batch first when o would not
// fit. A key already in the batch has its operation replaced, so that the
// last one wins without the transaction writing the key twice. It returns
// false once the load has failed.
func (l *bulkLoad) add(o clientv3.Op) bool {
	if l.failed() {
		return false
	}
	b, lim := &l.cur, l.c.limits()
	n := opBytes(&o)
	if i, ok := b.at[string(o.KeyBytes())]; ok {
		if size := b.size - opBytes(&b.ops[i]) + n; size <= lim.maxRequestBytes {
			b.ops[i], b.size = o, size
			b.entries++
			return true
		}
		// The new value does not fit beside the others: it goes in the next
		// batch, which flush orders after this one.
		l.flush()
	} else if len(b.ops) >= lim.maxTxnOps || b.size+n > lim.maxRequestBytes {
		l.flush()
	}
	if l.failed() {
		return false
	}
	b.at[string(o.KeyBytes())] = len(b.ops)
	b.ops = append(b.ops, o)
	b.size += n
	b.entries++
	return true
}

// flush sends the current batch and starts a new one. A batch that writes
// a key a batch in flight writes too waits for every batch in flight to
// end, so that the later write lands last.
func (l *bulkLoad) flush() {
	b := l.cur
	l.cur = l.newBatch()
	if len(b.ops) == 0 || l.failed() {
		return
	}
	// add keeps a batch within the limits and its keys distinct, as
	// limits.checkTxn would find; checkTxn's scan for repeated keys takes
	// time quadratic in the ops, a seventh of a load's CPU time.
	if lim := l.c.limits(); len(b.ops) > lim.maxTxnOps || b.size > lim.maxRequestBytes || len(b.at) != len(b.ops) {
		l.fail(&opError{op: l.op, err: fmt.Errorf("%w: batch of %d ops and %d bytes", ErrTooLarge, len(b.ops), b.size)}) // a bug in the batching: nothing is sent
		return
	}
	if l.overlaps(&b) {
		l.wg.Wait()
	}
	select {
	case l.slots <- struct{}{}:
	case <-l.ctx.Done():
		l.fail(&opError{op: l.op, err: l.ctx.Err()})
		return
	}
	if err := l.ctx.Err(); err != nil {
		<-l.slots
		l.fail(&opError{op: l.op, err: err})
		return
	}
	l.mark(&b, 1)
	l.wg.Add(1)
	go l.send(b)
}

// overlaps reports whether b writes a key that a batch in flight writes.
func (l *bulkLoad) overlaps(b *bulkBatch) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.busy) == 0 {
		return false
	}
	for k := range b.at {
		if l.busy[k] > 0 {
			return true
		}
	}
	return false
}

// mark adds d to the in-flight count of each key of b.
func (l *bulkLoad) mark(b *bulkBatch, d int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for k := range b.at {
		if l.busy[k] += d; l.busy[k] <= 0 {
			delete(l.busy, k)
		}
	}
}

// send commits b and records its outcome.
func (l *bulkLoad) send(b bulkBatch) {
	defer l.wg.Done()
	defer func() { <-l.slots }()
	ctx, cancel := l.c.bound(l.ctx)
	resp, err := l.c.raw.KV.Txn(ctx).Then(b.ops...).Commit()
	cancel()
	l.mark(&b, -1)
	if err != nil {
		l.fail(opErr(fmt.Sprintf("%s: transaction of %d keys from", l.op, len(b.ops)), string(b.ops[0].KeyBytes()), err))
		return
	}
	n := l.count(&b, resp)
	l.mu.Lock()
	l.done += n
	l.rev = max(l.rev, resp.Header.Revision)
	l.mu.Unlock()
	l.recycle(b)
}

func (l *bulkLoad) fail(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err == nil {
		l.err = err
	}
}

func (l *bulkLoad) failed() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err != nil
}

// finish sends what is left, unless the load failed, and waits for every
// batch in flight.
func (l *bulkLoad) finish() (int, error) {
	if !l.failed() {
		if err := l.ctx.Err(); err != nil {
			l.fail(&opError{op: l.op, err: err})
		}
	}
	l.flush()
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.done, l.err
}
