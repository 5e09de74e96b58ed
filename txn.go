package etcdkit

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Txn is a transaction being built: conditions ([Txn.If]), the operations run
// when all of them hold ([Txn.Then]) and those run otherwise ([Txn.Else]),
// sent as one request by [Txn.Commit]. Make one with [Client.Txn]; build
// conditions and operations with a [KV] ([KV.Missing], [KV.PutOp], …) so
// that keys get their prefix and values their encoding. A Txn is not safe for
// concurrent use and is meant to be committed once.
type Txn struct {
	c    *Client
	ctx  context.Context
	cmps []clientv3.Cmp
	then []clientv3.Op
	els  []clientv3.Op
	err  error // the first operation that could not be built
}

// Cond is a condition of a [Txn] on one key, made by a [KV]: [KV.Missing],
// [KV.Exists], [KV.ModRevisionIs], [KV.VersionIs], [KV.ValueIs]; or by a lock
// or a leadership, to guard writes with "still held": [Lock.Held],
// [Leadership.Held].
type Cond struct{ cmp clientv3.Cmp }

// Op is an operation of a [Txn] on one key, made by a [KV]: [KV.PutOp],
// [KV.DeleteOp], [KV.GetOp]. An operation that could not be built (a value
// that does not encode, an empty key) reports its error at [Txn.Commit].
type Op struct {
	op  clientv3.Op
	err error
}

// TxnResult is what a committed [Txn] did. Read the entries its GetOps found
// with [KV.FromResult].
type TxnResult struct {
	Succeeded bool  // whether the conditions held, so Then ran rather than Else
	Revision  int64 // the store's revision after the transaction

	ops   []clientv3.Op // the branch that ran
	resps []*pb.ResponseOp
}

// Txn starts a transaction that [Txn.Commit] sends with ctx.
func (c *Client) Txn(ctx context.Context) *Txn {
	return &Txn{c: c, ctx: ctx}
}

// If adds conditions; all of them must hold for Then to run.
func (t *Txn) If(conds ...Cond) *Txn {
	if t.cmps == nil {
		t.cmps = make([]clientv3.Cmp, 0, len(conds))
	}
	for _, c := range conds {
		t.cmps = append(t.cmps, c.cmp)
	}
	return t
}

// Then adds operations run when every condition holds.
func (t *Txn) Then(ops ...Op) *Txn {
	t.then = t.add(t.then, ops)
	return t
}

// Else adds operations run when a condition does not hold.
func (t *Txn) Else(ops ...Op) *Txn {
	t.els = t.add(t.els, ops)
	return t
}

func (t *Txn) add(dst []clientv3.Op, ops []Op) []clientv3.Op {
	if dst == nil {
		dst = make([]clientv3.Op, 0, len(ops))
	}
	for i := range ops {
		if ops[i].err != nil && t.err == nil {
			t.err = ops[i].err
		}
		dst = append(dst, ops[i].op)
	}
	return dst
}

// Commit checks the transaction and sends it. Nothing is sent when the check
// fails: more conditions or operations in a branch than the server allows
// ([ErrTooManyOps]), a key written twice in a branch ([ErrDuplicateKey]), a
// request over the size limit ([ErrTooLarge]), an empty key ([ErrEmptyKey]),
// an operation that could not be built, a closed client ([ErrClosed]) or a
// done ctx. A transaction whose conditions do not hold is not an error: see
// [TxnResult.Succeeded].
func (t *Txn) Commit() (TxnResult, error) {
	if err := t.validate(); err != nil {
		return TxnResult{}, err
	}
	ctx, o := t.c.opStart(t.ctx, OpTxn, "", "")
	res, err := t.commit(ctx)
	o.end(res.Revision, err)
	return res, err
}

// commit sends the checked transaction.
func (t *Txn) commit(ctx context.Context) (TxnResult, error) {
	ctx, cancel := t.c.bound(ctx)
	resp, err := t.c.raw.KV.Txn(ctx).If(t.cmps...).Then(t.then...).Else(t.els...).Commit()
	cancel()
	if err != nil {
		return TxnResult{}, opErr("txn", "", err)
	}
	res := TxnResult{Succeeded: resp.Succeeded, Revision: resp.Header.Revision, ops: t.els, resps: resp.Responses}
	if resp.Succeeded {
		res.ops = t.then
	}
	return res, nil
}

func (t *Txn) validate() error {
	if t == nil || t.c == nil {
		return &opError{op: "txn", err: fmt.Errorf("%w: nil Txn or client; make one with Client.Txn", ErrInvalidArgument)}
	}
	if err := t.c.checkOpen("txn", ""); err != nil {
		return err
	}
	if err := t.ctx.Err(); err != nil {
		return &opError{op: "txn", err: err}
	}
	if t.err != nil {
		return t.err
	}
	return t.c.limits().checkTxn("txn", t.cmps, t.then, t.els)
}

// Missing is a condition that holds when key does not exist.
func (kv *KV[T]) Missing(key string) Cond {
	return Cond{clientv3.Compare(clientv3.CreateRevision(kv.prefix+key), "=", 0)}
}

// Exists is a condition that holds when key exists.
func (kv *KV[T]) Exists(key string) Cond {
	return Cond{clientv3.Compare(clientv3.CreateRevision(kv.prefix+key), ">", 0)}
}

// ModRevisionIs is a condition that holds when key was last changed at
// revision rev; rev 0 means the key does not exist.
func (kv *KV[T]) ModRevisionIs(key string, rev int64) Cond {
	return Cond{clientv3.Compare(clientv3.ModRevision(kv.prefix+key), "=", rev)}
}

// VersionIs is a condition that holds when key has been written version
// times since its creation; version 0 means the key does not exist.
func (kv *KV[T]) VersionIs(key string, version int64) Cond {
	return Cond{clientv3.Compare(clientv3.Version(kv.prefix+key), "=", version)}
}

// ValueIs is a condition that holds when key's value is v, as encoded by the
// KV's codec. A value that does not encode makes [Txn.Commit] fail with
// [ErrInvalidArgument].
func (kv *KV[T]) ValueIs(key string, v T) Cond {
	full := kv.prefix + key
	if kv.codec == nil {
		return badCond(full, "nil codec")
	}
	b, err := kv.codec.Encode(v)
	if err != nil {
		return badCond(full, "encode: "+err.Error())
	}
	return Cond{clientv3.Compare(clientv3.Value(full), "=", string(b))}
}

// badCond is a condition that could not be built. Cond carries nothing but
// its comparison, so the reason travels in its range end, which a value
// comparison never has otherwise (a comparison with no target value marks it).
func badCond(key, why string) Cond {
	return Cond{clientv3.FromCompare(&pb.Compare{Key: []byte(key), Target: pb.Compare_VALUE, RangeEnd: []byte(why)})}
}

func condErr(cmp *clientv3.Cmp) error {
	c := cmp.GetCompare()
	if c.Target == pb.Compare_VALUE && c.TargetUnion == nil {
		return &opError{op: "txn", key: string(c.Key), err: fmt.Errorf("%w: ValueIs: %s", ErrInvalidArgument, c.RangeEnd)}
	}
	return nil
}

// PutOp is an operation that stores v at key, as [KV.Put] does.
func (kv *KV[T]) PutOp(key string, v T, opts ...PutOption) Op {
	if err := kv.opCheck("put", key); err != nil {
		return Op{err: err}
	}
	val, err := kv.encodeForOp("txn put", key, v)
	if err != nil {
		return Op{err: err}
	}
	return Op{op: clientv3.OpPut(kv.prefix+key, val, putOpOptions(opts)...)}
}

// DeleteOp is an operation that deletes key.
func (kv *KV[T]) DeleteOp(key string) Op {
	if err := kv.opCheck("delete", key); err != nil {
		return Op{err: err}
	}
	return Op{op: clientv3.OpDelete(kv.prefix + key)}
}

// GetOp is an operation that reads key; read its entry from the
// [TxnResult] with [KV.FromResult].
func (kv *KV[T]) GetOp(key string) Op {
	if err := kv.opCheck("get", key); err != nil {
		return Op{err: err}
	}
	return Op{op: clientv3.OpGet(kv.prefix + key)}
}

func (kv *KV[T]) opCheck(op, key string) error {
	if kv.codec == nil {
		return &opError{op: "txn " + op, key: kv.prefix + key, err: fmt.Errorf("%w: nil codec", ErrInvalidArgument)}
	}
	if kv.prefix == "" && key == "" { // not prefix+key == "": that allocates on every op
		return &opError{op: "txn " + op, err: ErrEmptyKey}
	}
	return nil
}

// FromResult returns the entry that the [KV.GetOp] for key found in the
// branch of the transaction that ran. It fails with [ErrNotFound] when the
// key did not exist, with a [*DecodeError] when its value does not decode,
// and with [ErrInvalidArgument] when that branch had no GetOp for key.
func (kv *KV[T]) FromResult(res TxnResult, key string) (Entry[T], error) {
	for i := range res.ops {
		if !res.ops[i].IsGet() || !kv.isKey(res.ops[i].KeyBytes(), key) || i >= len(res.resps) {
			continue
		}
		kvs := res.resps[i].GetResponseRange().GetKvs()
		if len(kvs) == 0 {
			return Entry[T]{}, &opError{op: "txn get", key: kv.prefix + key, err: ErrNotFound}
		}
		return kv.entry(kvs[0])
	}
	return Entry[T]{}, &opError{op: "txn get", key: kv.prefix + key,
		err: fmt.Errorf("%w: the branch that ran has no GetOp for this key", ErrInvalidArgument)}
}

// isKey reports whether full is prefix+key, without building prefix+key.
func (kv *KV[T]) isKey(full []byte, key string) bool {
	n := len(kv.prefix)
	return len(full) == n+len(key) && string(full[:n]) == kv.prefix && string(full[n:]) == key
}

// Estimated protobuf framing around the keys and values of a request: tags,
// lengths, revisions, lease IDs. Generous, so that a request that passes the
// check is not refused by the server.
const (
	opOverheadBytes  = 32
	reqOverheadBytes = 64
)

// limits are the server limits checked before a request is sent.
type limits struct {
	maxTxnOps       int
	maxRequestBytes int
}

func (c *Client) limits() limits { return c.lim }

// checkPut fails with ErrTooLarge when a put of a value of valLen bytes at
// prefix+key would be over the request size limit.
func (l limits) checkPut(op, prefix, key string, valLen int) error {
	keyLen := len(prefix) + len(key)
	if n := reqOverheadBytes + opOverheadBytes + keyLen + valLen; n > l.maxRequestBytes {
		return &opError{op: op, key: prefix + key, err: fmt.Errorf("%w: key and value are %d bytes (%d + %d) with framing, the limit is %d",
			ErrTooLarge, n, keyLen, valLen, l.maxRequestBytes)}
	}
	return nil
}

// checkTxn checks a transaction as etcd would, and its size.
func (l limits) checkTxn(op string, cmps []clientv3.Cmp, then, els []clientv3.Op) error {
	if err := l.checkCount(op, len(cmps), "conditions"); err != nil {
		return err
	}
	if err := l.checkCount(op, len(then), "ops in Then"); err != nil {
		return err
	}
	if err := l.checkCount(op, len(els), "ops in Else"); err != nil {
		return err
	}
	size := reqOverheadBytes
	for i := range cmps {
		n, err := cmpSize(op, &cmps[i])
		if err != nil {
			return err
		}
		size += n
	}
	for _, ops := range [2][]clientv3.Op{then, els} {
		n, err := opsSize(op, ops)
		if err != nil {
			return err
		}
		size += n
	}
	if size > l.maxRequestBytes {
		return &opError{op: op, err: fmt.Errorf("%w: txn is %d bytes with framing, the limit is %d", ErrTooLarge, size, l.maxRequestBytes)}
	}
	return nil
}

func (l limits) checkCount(op string, n int, what string) error {
	if n > l.maxTxnOps {
		return &opError{op: op, err: fmt.Errorf("%w: txn has %d %s, the limit is %d", ErrTooManyOps, n, what, l.maxTxnOps)}
	}
	return nil
}

func cmpSize(op string, cmp *clientv3.Cmp) (int, error) {
	if err := condErr(cmp); err != nil {
		return 0, err
	}
	key := cmp.KeyBytes()
	if len(key) == 0 {
		return 0, &opError{op: op, err: fmt.Errorf("%w: in a condition", ErrEmptyKey)}
	}
	return opOverheadBytes + len(key) + len(cmp.GetCompare().RangeEnd) + len(cmp.ValueBytes()), nil
}

// opsSize checks one branch's operations (keys set, no key written twice)
// and returns their size.
func opsSize(op string, ops []clientv3.Op) (int, error) {
	size := 0
	for i := range ops {
		o := &ops[i]
		if !o.IsGet() && !o.IsPut() && !o.IsDelete() {
			return 0, &opError{op: op, err: fmt.Errorf("%w: op %d is a zero Op; make ops with a KV", ErrInvalidArgument, i)}
		}
		if len(o.KeyBytes()) == 0 {
			return 0, &opError{op: op, err: fmt.Errorf("%w: in op %d", ErrEmptyKey, i)}
		}
		if err := checkDuplicate(op, ops, i); err != nil {
			return 0, err
		}
		size += opOverheadBytes + len(o.KeyBytes()) + len(o.RangeBytes()) + len(o.ValueBytes())
	}
	return size, nil
}

// checkDuplicate fails when ops[i] writes a key an earlier op of the branch
// writes too. Branches hold at most a few hundred ops, so a quadratic scan
// costs less than a map.
func checkDuplicate(op string, ops []clientv3.Op, i int) error {
	if ops[i].IsGet() {
		return nil
	}
	key := ops[i].KeyBytes()
	for j := range i {
		if !ops[j].IsGet() && string(ops[j].KeyBytes()) == string(key) {
			return &opError{op: op, key: string(key), err: fmt.Errorf("%w: ops %d and %d both write it", ErrDuplicateKey, j, i)}
		}
	}
	return nil
}

// How often Update and Atomically try before giving up on keys that keep
// changing. Update pauses after every second attempt only, so both pause at
// most 31 times.
const (
	maxUpdateAttempts   = 64
	maxConflictAttempts = 32
)

// conflictPause waits before retrying after a conflict: a random time up to
// a bound that doubles with each attempt, from one round trip of the failed
// attempt (at least a millisecond) to 32 of them, so that contending writers
// spread out until one at a time gets through. Scaling by the round trip
// keeps the pauses short on a fast cluster and long enough on a loaded one.
// It fails when ctx is done or the client closes.
func (c *Client) conflictPause(ctx context.Context, attempt int, roundTrip time.Duration) error {
	return c.sleep(ctx, conflictDelay(attempt, roundTrip))
}

func conflictDelay(attempt int, roundTrip time.Duration) time.Duration {
	bound := max(roundTrip, time.Millisecond) << min(attempt-1, 5)
	return rand.N(bound) + 1
}

// compactRevision asks the server for its compaction point, which a failed
// read does not report but a watch from a compacted revision does. It
// returns rev when the server does not say.
func (c *Client) compactRevision(ctx context.Context, key string, rev int64) int64 {
	ctx, cancel := context.WithTimeout(ctx, closeGrace)
	defer cancel()
	for resp := range c.rawWatch(ctx, key, clientv3.WithRev(rev)) {
		if resp.CompactRevision > 0 {
			return resp.CompactRevision
		}
		if resp.Err() != nil || len(resp.Events) > 0 {
			break
		}
	}
	return rev
}
