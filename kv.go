package etcdkit

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unsafe"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// KV is a typed view of the keys under one prefix: a key k lives at prefix+k
// in etcd, and its value is encoded with the KV's codec. It is safe for
// concurrent use and cheap to make; make one per prefix and value type.
type KV[T any] struct {
	c      *Client
	prefix string
	codec  Codec[T]
	clone  func(T) T // the codec's clone, nil when values need no copy
}

// Entry is a key with its decoded value and etcd's metadata for it.
type Entry[T any] struct {
	Key            string // relative to the KV's prefix
	Value          T
	CreateRevision int64 // revision of the key's creation
	ModRevision    int64 // revision of the key's last change
	Version        int64 // number of changes since creation, from 1
	Lease          int64 // the lease attached to the key; 0 if none
}

// NewKV returns a KV over the keys under prefix, encoded with codec. No
// separator is added: with prefix "users/", key "alice" is "users/alice".
// A nil codec is reported by every call with [ErrInvalidArgument].
func NewKV[T any](c *Client, prefix string, codec Codec[T]) *KV[T] {
	// The clone is taken once: each handle that copies values shares it.
	return &KV[T]{c: c, prefix: prefix, codec: codec, clone: clonerOf(codec)}
}

// Prefix returns the prefix the KV's keys live under.
func (kv *KV[T]) Prefix() string { return kv.prefix }

// Client returns the client the KV uses.
func (kv *KV[T]) Client() *Client { return kv.c }

// Get returns the entry at key. It fails with [ErrNotFound] when the key does
// not exist and with a [*DecodeError] when its value does not decode.
func (kv *KV[T]) Get(ctx context.Context, key string) (Entry[T], error) {
	if err := kv.checkCall(ctx, "get", key); err != nil {
		return Entry[T]{}, err
	}
	ctx, o := kv.c.opStart(ctx, OpGet, kv.prefix, key)
	e, err := kv.get(ctx, "get", kv.prefix+key)
	o.end(e.ModRevision, err)
	return e, err
}

// get reads the full key (prefix included).
func (kv *KV[T]) get(ctx context.Context, op, full string) (Entry[T], error) {
	ctx, cancel := kv.c.bound(ctx)
	resp, err := kv.c.raw.KV.Get(ctx, full)
	cancel()
	if err != nil {
		return Entry[T]{}, opErr(op, full, err)
	}
	if len(resp.Kvs) == 0 {
		return Entry[T]{}, &opError{op: op, key: full, err: ErrNotFound}
	}
	return kv.entry(resp.Kvs[0])
}

// Put stores v at key and returns the revision of the write. Without
// [WithLease] the key has no lease afterwards, as with etcd's own put. It
// fails with [ErrTooLarge] when key and value are over the request size limit.
func (kv *KV[T]) Put(ctx context.Context, key string, v T, opts ...PutOption) (int64, error) {
	val, err := kv.checkWrite(ctx, "put", key, v)
	if err != nil {
		return 0, err
	}
	ctx, o := kv.c.opStart(ctx, OpPut, kv.prefix, key)
	rev, err := kv.put(ctx, key, val, opts)
	o.end(rev, err)
	return rev, err
}

// put writes val, which checkWrite returned, at key.
func (kv *KV[T]) put(ctx context.Context, key, val string, opts []PutOption) (int64, error) {
	ctx, cancel := kv.c.bound(ctx)
	resp, err := kv.c.raw.KV.Put(ctx, kv.prefix+key, val, putOpOptions(opts)...)
	cancel()
	if err != nil {
		return 0, opErr("put", kv.prefix+key, err)
	}
	return resp.Header.Revision, nil
}

// Create stores v at key only if the key does not exist, in one round trip,
// and returns the revision of the write. It fails with [ErrExists] when the
// key is already there.
func (kv *KV[T]) Create(ctx context.Context, key string, v T, opts ...PutOption) (int64, error) {
	val, err := kv.checkWrite(ctx, "create", key, v)
	if err != nil {
		return 0, err
	}
	ctx, o := kv.c.opStart(ctx, OpCreate, kv.prefix, key)
	rev, err := kv.create(ctx, key, val, opts)
	o.end(rev, err)
	return rev, err
}

// create writes val, which checkWrite returned, at key if it is missing.
func (kv *KV[T]) create(ctx context.Context, key, val string, opts []PutOption) (int64, error) {
	full := kv.prefix + key
	ctx, cancel := kv.c.bound(ctx)
	resp, err := kv.c.raw.KV.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(full), "=", 0)).
		Then(clientv3.OpPut(full, val, putOpOptions(opts)...)).
		Commit()
	cancel()
	if err != nil {
		return 0, opErr("create", full, err)
	}
	if !resp.Succeeded {
		return 0, &opError{op: "create", key: full, err: ErrExists}
	}
	return resp.Header.Revision, nil
}

// CompareAndSwap stores v at key only if the key's mod revision is still
// modRevision, in one round trip, and returns the revision of the write.
// A modRevision of 0 means "only if the key does not exist". The key keeps
// the lease it has.
//
// When the key changed, it fails with a [*ConflictError] (matching
// [ErrConflict]) that carries the current entry, or none if the key is gone;
// read it with [CurrentEntry]. A current value that does not decode gives a
// [*DecodeError] instead.
func (kv *KV[T]) CompareAndSwap(ctx context.Context, key string, v T, modRevision int64) (int64, error) {
	if modRevision < 0 {
		return 0, &opError{op: "compare-and-swap", key: kv.prefix + key,
			err: fmt.Errorf("%w: modRevision %d is negative", ErrInvalidArgument, modRevision)}
	}
	ctx, o := kv.c.opStart(ctx, OpCompareAndSwap, kv.prefix, key)
	rev, err := kv.compareAndSwap(ctx, "compare-and-swap", key, kv.prefix+key, v, modRevision)
	o.end(rev, err)
	return rev, err
}

// compareAndSwap swaps key, whose full key (prefix included) is full.
func (kv *KV[T]) compareAndSwap(ctx context.Context, op, key, full string, v T, modRevision int64) (int64, error) {
	val, err := kv.checkWrite(ctx, op, key, v)
	if err != nil {
		return 0, err
	}
	var put clientv3.Op
	if modRevision > 0 {
		// Without this a swap would silently detach the key from its lease.
		put = clientv3.OpPut(full, val, clientv3.WithIgnoreLease())
	} else {
		put = clientv3.OpPut(full, val)
	}
	return kv.ifModRevision(ctx, op, key, full, modRevision, put)
}

// ifModRevision runs then on key only if its mod revision is still
// modRevision, in one round trip: the Else branch reads the key, so that a
// conflict carries what was found without another read.
func (kv *KV[T]) ifModRevision(ctx context.Context, op, key, full string, modRevision int64, then clientv3.Op) (int64, error) {
	ctx, cancel := kv.c.bound(ctx)
	resp, err := kv.c.raw.KV.Txn(ctx).
		If(clientv3.Compare(clientv3.ModRevision(full), "=", modRevision)).
		Then(then).
		Else(clientv3.OpGet(full)).
		Commit()
	cancel()
	if err != nil {
		return 0, opErr(op, full, err)
	}
	if !resp.Succeeded {
		return 0, kv.conflict(op, key, resp.Responses[0].GetResponseRange().GetKvs())
	}
	return resp.Header.Revision, nil
}

// conflict builds the ConflictError for key from what the Else branch read.
func (kv *KV[T]) conflict(op, key string, kvs []*mvccpb.KeyValue) error {
	ce := &ConflictError{Key: key}
	if len(kvs) > 0 {
		cur, err := kv.entry(kvs[0])
		if err != nil {
			return &opError{op: op, key: kv.prefix + key, err: err}
		}
		ce.Current = &cur
	}
	return &opError{op: op, key: kv.prefix + key, err: ce}
}

// Update reads the value at key, applies fn to it and writes the result back
// with [KV.CompareAndSwap], so that no concurrent change is lost. On a
// conflict it calls fn again with the value the conflict reported (no extra
// read), after a short jittered pause, up to a bounded number of attempts;
// fn must therefore have no side effects. It returns the entry written; the
// key keeps its lease.
//
// It fails with [ErrNotFound] when the key does not exist (or is deleted
// meanwhile), with fn's error (wrapped) when fn fails, and with a
// [*ConflictError] when every attempt conflicted.
func (kv *KV[T]) Update(ctx context.Context, key string, fn func(cur T) (T, error)) (Entry[T], error) {
	if err := kv.checkCall(ctx, "update", key); err != nil {
		return Entry[T]{}, err
	}
	ctx, o := kv.c.opStart(ctx, OpUpdate, kv.prefix, key)
	e, err := kv.update(ctx, key, fn, o)
	o.end(e.ModRevision, err)
	return e, err
}

// update is Update once its arguments are checked; it counts its retries in o.
func (kv *KV[T]) update(ctx context.Context, key string, fn func(cur T) (T, error), o *observation) (Entry[T], error) {
	full := kv.prefix + key
	cur, err := kv.get(ctx, "update", full)
	if err != nil {
		return Entry[T]{}, err
	}
	for attempt := 1; ; attempt++ {
		next, err := fn(cur.Value)
		if err != nil {
			return Entry[T]{}, &opError{op: "update", key: full, err: err}
		}
		start := time.Now()
		rev, err := kv.compareAndSwap(ctx, "update", key, full, next, cur.ModRevision)
		if err == nil {
			return updated(cur, next, rev), nil
		}
		if cur, err = kv.retryUpdate(ctx, key, err, attempt, time.Since(start)); err != nil {
			return Entry[T]{}, err
		}
		o.retried()
		kv.c.notice(ctx, Notice{Kind: NoticeConflict, Prefix: kv.prefix, Key: key,
			Revision: cur.ModRevision, Value: int64(attempt)})
	}
}

// retryUpdate decides, after a failed swap, whether Update goes on: it
// returns the entry to retry with or the error to return.
//
// The entry a conflict carries is fresh, so the retry goes at once; a pause
// there would only let it go stale. Every second failure pauses instead, so
// that contending writers spread out: the attempt after a pause serves as
// the read (if its entry went stale, its conflict brings a fresh one).
func (kv *KV[T]) retryUpdate(ctx context.Context, key string, err error, attempt int, roundTrip time.Duration) (Entry[T], error) {
	var ce *ConflictError
	if !errors.As(err, &ce) {
		return Entry[T]{}, err
	}
	cur, ok := ce.Current.(*Entry[T])
	if !ok || cur == nil {
		return Entry[T]{}, &opError{op: "update", key: kv.prefix + key, err: ErrNotFound}
	}
	if attempt >= maxUpdateAttempts {
		return Entry[T]{}, &opError{op: "update", key: kv.prefix + key,
			err: fmt.Errorf("gave up after %d attempts: %w", attempt, ce)}
	}
	if attempt%2 == 1 {
		return *cur, nil
	}
	if err := kv.c.conflictPause(ctx, attempt/2, roundTrip); err != nil {
		return Entry[T]{}, &opError{op: "update", key: kv.prefix + key, err: err}
	}
	return *cur, nil
}

func updated[T any](cur Entry[T], v T, rev int64) Entry[T] {
	cur.Value = v
	cur.ModRevision = rev
	cur.Version++
	return cur
}

// Delete deletes key and reports whether it existed.
func (kv *KV[T]) Delete(ctx context.Context, key string) (bool, error) {
	if err := kv.checkCall(ctx, "delete", key); err != nil {
		return false, err
	}
	ctx, o := kv.c.opStart(ctx, OpDelete, kv.prefix, key)
	rev, deleted, err := kv.delete(ctx, key)
	o.end(rev, err)
	return deleted, err
}

// delete deletes key and returns the revision of the delete (or of the
// store, if there was nothing to delete).
func (kv *KV[T]) delete(ctx context.Context, key string) (int64, bool, error) {
	ctx, cancel := kv.c.bound(ctx)
	resp, err := kv.c.raw.KV.Delete(ctx, kv.prefix+key)
	cancel()
	if err != nil {
		return 0, false, opErr("delete", kv.prefix+key, err)
	}
	return resp.Header.Revision, resp.Deleted > 0, nil
}

// CompareAndDelete deletes key only if its mod revision is still
// modRevision (which must be > 0), in one round trip, and returns the
// revision of the delete. When the key changed or is gone it fails with a
// [*ConflictError] (matching [ErrConflict]) carrying the current entry, or
// none if the key is gone.
func (kv *KV[T]) CompareAndDelete(ctx context.Context, key string, modRevision int64) (int64, error) {
	const op = "compare-and-delete"
	if err := kv.checkCall(ctx, op, key); err != nil {
		return 0, err
	}
	full := kv.prefix + key
	if modRevision <= 0 {
		return 0, &opError{op: op, key: full, err: fmt.Errorf("%w: modRevision %d, want > 0", ErrInvalidArgument, modRevision)}
	}
	ctx, o := kv.c.opStart(ctx, OpCompareAndDelete, kv.prefix, key)
	rev, err := kv.ifModRevision(ctx, op, key, full, modRevision, clientv3.OpDelete(full))
	o.end(rev, err)
	return rev, err
}

// check validates what every call on one key needs before anything is sent.
func (kv *KV[T]) check(op, key string) error {
	if kv == nil || kv.c == nil {
		return &opError{op: op, key: key, err: fmt.Errorf("%w: nil KV or client", ErrInvalidArgument)}
	}
	if kv.codec == nil {
		return &opError{op: op, key: kv.prefix + key, err: fmt.Errorf("%w: nil codec", ErrInvalidArgument)}
	}
	if kv.prefix == "" && key == "" {
		return &opError{op: op, err: ErrEmptyKey}
	}
	// The full key is built only for the error: this runs on every call.
	if kv.c.checkOpen(op, "") != nil {
		return &opError{op: op, key: kv.prefix + key, err: ErrClosed}
	}
	return nil
}

// checkCall is check plus a done ctx: nothing is sent for a cancelled call.
func (kv *KV[T]) checkCall(ctx context.Context, op, key string) error {
	if err := kv.check(op, key); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return &opError{op: op, key: kv.prefix + key, err: err}
	}
	return nil
}

// checkWrite is checkCall for a write of v: it returns v encoded, or the
// error when the request would be over the size limit. The string shares
// the codec's bytes (see encodeForOp): pass it to clientv3.OpPut or Put
// at once and keep it no longer.
func (kv *KV[T]) checkWrite(ctx context.Context, op, key string, v T) (string, error) {
	if err := kv.checkCall(ctx, op, key); err != nil {
		return "", err
	}
	val, err := kv.encodeForOp(op, key, v)
	if err != nil {
		return "", err
	}
	if err := kv.c.limits().checkPut(op, kv.prefix, key, len(val)); err != nil {
		return "", err
	}
	return val, nil
}

func (kv *KV[T]) encode(op, key string, v T) (string, error) {
	b, err := kv.codec.Encode(v)
	if err != nil {
		return "", &opError{op: op, key: kv.prefix + key, err: fmt.Errorf("%w: encode: %w", ErrInvalidArgument, err)}
	}
	return string(b), nil
}

// encodeForOp is encode without the copy, for a value that goes straight
// into clientv3.OpPut, which copies it into the request before it returns:
// the string must not be kept past that call. The copy encode makes would be
// a second copy of every value written, and an allocation per write.
func (kv *KV[T]) encodeForOp(op, key string, v T) (string, error) {
	b, err := kv.codec.Encode(v)
	if err != nil {
		return "", &opError{op: op, key: kv.prefix + key, err: fmt.Errorf("%w: encode: %w", ErrInvalidArgument, err)}
	}
	if len(b) == 0 {
		return "", nil
	}
	return unsafe.String(&b[0], len(b)), nil
}

// entry decodes a key-value from etcd into an Entry.
func (kv *KV[T]) entry(p *mvccpb.KeyValue) (Entry[T], error) {
	key := kv.entryKey(p.Key)
	v, err := kv.codec.Decode(p.Value)
	if err != nil {
		return Entry[T]{}, &DecodeError{Key: key, Err: err}
	}
	return Entry[T]{
		Key:            key,
		Value:          v,
		CreateRevision: p.CreateRevision,
		ModRevision:    p.ModRevision,
		Version:        p.Version,
		Lease:          p.Lease,
	}, nil
}

// entryKey returns a full key from a response as a key relative to the
// prefix. It does not copy: every response is decoded into fresh slices that
// nothing else writes to, and the copy would be the one allocation a Get
// adds over clientv3.
func (kv *KV[T]) entryKey(full []byte) string {
	if len(full) == 0 {
		return ""
	}
	return strings.TrimPrefix(unsafe.String(&full[0], len(full)), kv.prefix)
}

// PutOption changes how a value is written.
type PutOption interface {
	applyPut(*putOptions)
}

type putOptions struct {
	lease clientv3.LeaseID
}

type putOptionFunc func(*putOptions)

func (f putOptionFunc) applyPut(o *putOptions) { f(o) }

func putOpOptions(opts []PutOption) []clientv3.OpOption {
	if len(opts) == 0 {
		return nil
	}
	var o putOptions
	for _, opt := range opts {
		if opt != nil {
			opt.applyPut(&o)
		}
	}
	if o.lease != 0 {
		return []clientv3.OpOption{clientv3.WithLease(o.lease)}
	}
	return nil
}
