package etcdkit

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Tx is one attempt of a transaction run by [Client.Atomically]. Read and
// write through it with [KV.In]. Every read sees the store as it was at the
// revision of the attempt's first read (a snapshot), and reads what the
// attempt itself wrote. Writes are buffered and sent together at the end.
// A Tx is valid only inside the function given to Atomically and is not safe
// for concurrent use.
type Tx struct {
	c         *Client
	ctx       context.Context
	rev       int64                       // the snapshot: revision of the first read; 0 before it
	reads     map[string]*mvccpb.KeyValue // full key → what the snapshot holds; nil if missing
	writes    []clientv3.Op
	written   map[string]int // full key → index in writes
	err       error          // the first write that could not be built
	readErr   error          // the first read that got no answer
	compacted bool           // the snapshot was compacted away: the attempt must start over
}

// Atomically runs fn as one serializable transaction: fn's reads (through
// [KV.In]) see one snapshot, and its writes are applied, all together, only
// if nothing fn read or wrote changed since that snapshot. Otherwise fn runs
// again on a new snapshot, after a short jittered pause, up to a bounded
// number of attempts; fn must therefore have no side effects besides its
// reads and writes through the [Tx]. A transaction that only reads writes
// nothing and succeeds unless one of its reads failed.
//
// Every key fn read counts, whatever the read returned: a value, a missing
// key (which must still be missing at the commit) or a value that did not
// decode (a [*DecodeError]; fn may overwrite it, if it is unchanged). A read
// that got no answer from etcd (unreachable, timed out) fails the attempt
// even when fn ignored the error: nothing is written and Atomically returns
// that read's error, wrapped, since fn decided without knowing the key.
//
// When fn returns an error, nothing is written and Atomically returns that
// error, wrapped. It fails with [ErrConflict] when every attempt conflicted,
// with [ErrTooManyOps] or [ErrTooLarge] when the transaction is over the
// server's limits, with [ErrClosed] after Close, and with ctx's error.
func (c *Client) Atomically(ctx context.Context, fn func(tx *Tx) error) error {
	ctx, o := c.opStart(ctx, OpAtomically, "", "")
	rev, err := c.atomically(ctx, fn, o)
	o.end(rev, err)
	return err
}

// atomically is Atomically; it returns the revision the transaction saw or
// made, and counts its retries in o.
func (c *Client) atomically(ctx context.Context, fn func(tx *Tx) error, o *observation) (int64, error) {
	const op = "atomically"
	for attempt := 1; ; attempt++ {
		if err := c.checkOpen(op, ""); err != nil {
			return 0, err
		}
		if err := ctx.Err(); err != nil {
			return 0, &opError{op: op, err: err}
		}
		tx := &Tx{c: c, ctx: ctx}
		start := time.Now()
		done, err := tx.run(fn)
		if done {
			return tx.rev, err
		}
		if attempt >= maxConflictAttempts {
			return 0, &opError{op: op, err: fmt.Errorf("%w: gave up after %d attempts", ErrConflict, attempt)}
		}
		c.notice(ctx, Notice{Kind: NoticeConflict, Revision: tx.rev, Value: int64(attempt)})
		if err := c.conflictPause(ctx, attempt, time.Since(start)); err != nil {
			return 0, &opError{op: op, err: err}
		}
		o.retried()
	}
}

// run makes one attempt; done is false when it conflicted and may be retried.
func (tx *Tx) run(fn func(*Tx) error) (done bool, err error) {
	err = fn(tx)
	if tx.compacted {
		return false, nil
	}
	if err != nil {
		return true, &opError{op: "atomically", err: err}
	}
	if tx.readErr != nil {
		return true, &opError{op: "atomically", err: tx.readErr}
	}
	if tx.err != nil {
		return true, tx.err
	}
	ok, err := tx.commit()
	return ok || err != nil, err
}

// commit writes the buffered writes if nothing read or written changed since
// the snapshot, and reports whether it did.
func (tx *Tx) commit() (bool, error) {
	if len(tx.writes) == 0 {
		return true, nil // every read came from one snapshot: nothing to check
	}
	cmps := make([]clientv3.Cmp, 0, len(tx.reads)+len(tx.writes))
	for key, p := range tx.reads {
		var mod int64
		if p != nil {
			mod = p.ModRevision
		}
		cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(key), "=", mod))
	}
	if tx.rev > 0 {
		// A key written without being read must not have changed either.
		for i := range tx.writes {
			key := string(tx.writes[i].KeyBytes())
			if _, read := tx.reads[key]; !read {
				cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(key), "<", tx.rev+1))
			}
		}
	}
	if err := tx.c.limits().checkTxn("atomically", cmps, tx.writes, nil); err != nil {
		return false, err
	}
	ctx, cancel := tx.c.bound(tx.ctx)
	resp, err := tx.c.raw.KV.Txn(ctx).If(cmps...).Then(tx.writes...).Commit()
	cancel()
	if err != nil {
		return false, opErr("atomically", "", err)
	}
	if resp.Succeeded {
		tx.rev = resp.Header.Revision // what Atomically reports it made
	}
	return resp.Succeeded, nil
}

// read returns what key holds in the attempt: its own write, else the
// snapshot. It returns nil for a missing key.
func (tx *Tx) read(op, key string) (*mvccpb.KeyValue, error) {
	if i, ok := tx.written[key]; ok {
		w := &tx.writes[i]
		if w.IsDelete() {
			return nil, nil
		}
		return &mvccpb.KeyValue{Key: w.KeyBytes(), Value: w.ValueBytes()}, nil
	}
	if p, ok := tx.reads[key]; ok {
		return p, nil
	}
	p, err := tx.fetch(key)
	if err != nil {
		err = opErr(op, key, err)
		if tx.readErr == nil && !tx.compacted {
			tx.readErr = err
		}
		return nil, err
	}
	if tx.reads == nil {
		tx.reads = make(map[string]*mvccpb.KeyValue)
	}
	tx.reads[key] = p
	return p, nil
}

// fetch reads key at the snapshot, taking the snapshot on the first read.
func (tx *Tx) fetch(key string) (*mvccpb.KeyValue, error) {
	ctx, cancel := tx.c.bound(tx.ctx)
	defer cancel()
	var resp *clientv3.GetResponse
	var err error
	if tx.rev == 0 {
		resp, err = tx.c.raw.KV.Get(ctx, key)
	} else {
		resp, err = tx.c.raw.KV.Get(ctx, key, clientv3.WithRev(tx.rev))
	}
	if err != nil {
		if err = mapError(err); errors.Is(err, ErrCompacted) {
			tx.compacted = true
		}
		return nil, err
	}
	if tx.rev == 0 {
		tx.rev = resp.Header.Revision
	}
	if len(resp.Kvs) == 0 {
		return nil, nil
	}
	return resp.Kvs[0], nil
}

// write buffers op, replacing an earlier write of the same key.
func (tx *Tx) write(op clientv3.Op) {
	key := string(op.KeyBytes())
	if i, ok := tx.written[key]; ok {
		tx.writes[i] = op
		return
	}
	if tx.written == nil {
		tx.written = make(map[string]int)
	}
	tx.written[key] = len(tx.writes)
	tx.writes = append(tx.writes, op)
}

func (tx *Tx) fail(err error) {
	if tx.err == nil {
		tx.err = err
	}
}

// TxKV is a [KV] inside a [Tx]: its reads see the transaction's snapshot and
// its writes are applied with the transaction. Get one with [KV.In].
type TxKV[T any] struct {
	kv *KV[T]
	tx *Tx
}

// In returns kv as seen by tx, inside a function run by [Client.Atomically].
func (kv *KV[T]) In(tx *Tx) TxKV[T] { return TxKV[T]{kv: kv, tx: tx} }

// Get returns the value at key in the transaction. It fails with
// [ErrNotFound] when the key does not exist (or the transaction deleted it)
// and with a [*DecodeError] when its value does not decode. A [Bytes] value
// is a copy: changing it changes neither later reads nor what is written.
func (h TxKV[T]) Get(key string) (T, error) {
	var zero T
	if err := h.kv.checkCall(h.tx.ctx, "get", key); err != nil {
		return zero, err
	}
	p, err := h.tx.read("get", h.kv.prefix+key)
	if err != nil {
		return zero, err
	}
	if p == nil {
		return zero, &opError{op: "get", key: h.kv.prefix + key, err: ErrNotFound}
	}
	e, err := h.kv.entry(p)
	return own(h.kv.clone, e.Value), err
}

// Put stores v at key when the transaction commits, as [KV.Put] does. An
// error (a value that does not encode, an empty key) is returned by
// [Client.Atomically].
func (h TxKV[T]) Put(key string, v T, opts ...PutOption) {
	if err := h.kv.check("put", key); err != nil {
		h.tx.fail(err)
		return
	}
	val, err := h.kv.encode("put", key, v)
	if err != nil {
		h.tx.fail(err)
		return
	}
	h.tx.write(clientv3.OpPut(h.kv.prefix+key, val, putOpOptions(opts)...))
}

// Delete deletes key when the transaction commits. An error (an empty key)
// is returned by [Client.Atomically].
func (h TxKV[T]) Delete(key string) {
	if err := h.kv.check("delete", key); err != nil {
		h.tx.fail(err)
		return
	}
	h.tx.write(clientv3.OpDelete(h.kv.prefix + key))
}
