package etcdkit

import (
	"context"
	"fmt"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Barrier holds back any number of processes until it is released: while
// one process holds it, [Barrier.Wait] blocks everyone else.
type Barrier struct {
	c   *Client
	key string
}

// NewBarrier returns the barrier stored at key.
func NewBarrier(c *Client, key string) *Barrier {
	return &Barrier{c: c, key: key}
}

// Hold raises the barrier. It fails with [ErrExists] when it is held
// already. Pass [WithLease] to lower the barrier by itself if the holder
// dies (its lease ends).
func (b *Barrier) Hold(ctx context.Context, opts ...PutOption) error {
	if err := b.check(ctx, "hold barrier"); err != nil {
		return err
	}
	bctx, cancel := b.c.bound(ctx)
	defer cancel()
	resp, err := b.c.raw.KV.Txn(bctx).
		If(clientv3.Compare(clientv3.CreateRevision(b.key), "=", 0)).
		Then(clientv3.OpPut(b.key, "", putOpOptions(opts)...)).Commit()
	if err != nil {
		return opErr("hold barrier", b.key, err)
	}
	if !resp.Succeeded {
		return &opError{op: "hold barrier", key: b.key, err: ErrExists}
	}
	return nil
}

// Release lowers the barrier and lets every waiter through. Releasing a
// barrier nobody holds does nothing.
func (b *Barrier) Release(ctx context.Context) error {
	if err := b.check(ctx, "release barrier"); err != nil {
		return err
	}
	bctx, cancel := b.c.bound(ctx)
	defer cancel()
	_, err := b.c.raw.KV.Delete(bctx, b.key)
	return opErr("release barrier", b.key, err)
}

// Wait returns once the barrier is not held, or fails when ctx ends or the
// client closes.
func (b *Barrier) Wait(ctx context.Context) error {
	if err := b.check(ctx, "wait on barrier"); err != nil {
		return err
	}
	for {
		bctx, cancel := b.c.bound(ctx)
		resp, err := b.c.raw.KV.Get(bctx, b.key, clientv3.WithKeysOnly())
		cancel()
		if err != nil {
			return opErr("wait on barrier", b.key, err)
		}
		if len(resp.Kvs) == 0 {
			return nil
		}
		err = waitEvent(ctx, b.c, "wait on barrier", b.key, resp.Header.Revision+1, func(ev *clientv3.Event) bool {
			return ev.Type == clientv3.EventTypeDelete
		})
		if err != nil {
			return err
		}
	}
}

func (b *Barrier) check(ctx context.Context, op string) error {
	return checkCoord(ctx, b.c, op, b.key)
}

func checkCoord(ctx context.Context, c *Client, op, key string) error {
	if c == nil {
		return &opError{op: op, key: key, err: fmt.Errorf("%w: nil client", ErrInvalidArgument)}
	}
	if key == "" {
		return &opError{op: op, err: ErrEmptyKey}
	}
	if err := c.checkOpen(op, key); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return &opError{op: op, key: key, err: err}
	}
	return nil
}

// DefaultBarrierTTL is the lease TTL of a [DoubleBarrier] participant unless
// [BarrierTTL] says otherwise.
const DefaultBarrierTTL = 10 * time.Second

// BarrierOption configures a [DoubleBarrier].
type BarrierOption interface {
	applyBarrier(*barrierOptions)
}

type barrierOptions struct {
	ttl time.Duration
}

type barrierOptionFunc func(*barrierOptions)

func (f barrierOptionFunc) applyBarrier(o *barrierOptions) { f(o) }

// BarrierTTL sets the TTL of the lease a participant's place in a
// [DoubleBarrier] is tied to: a participant that dies holds the others back
// for at most about that long. It must be at least one second.
func BarrierTTL(d time.Duration) BarrierOption {
	return barrierOptionFunc(func(o *barrierOptions) { o.ttl = d })
}

// DoubleBarrier makes n participants start a step together and finish it
// together: [DoubleBarrier.Enter] waits until n participants have entered,
// [DoubleBarrier.Leave] until all of them have left. Each participant's
// place is tied to a lease of its own, so one that dies stops holding the
// others back once its lease expires. A DoubleBarrier value is one
// participant: make one per participant.
type DoubleBarrier struct {
	c       *Client
	key     string
	n       int
	ttl     time.Duration
	waiters string
	ready   string

	mu    sync.Mutex
	lease *Lease
	myKey string
	myRev int64
}

// NewDoubleBarrier returns a participant of the double barrier stored under
// key, for n participants. It fails with [ErrInvalidArgument] when n < 1 and
// with [ErrInvalidTTL] for a TTL under one second.
func NewDoubleBarrier(c *Client, key string, n int, opts ...BarrierOption) (*DoubleBarrier, error) {
	o := barrierOptions{ttl: DefaultBarrierTTL}
	for _, opt := range opts {
		if opt != nil {
			opt.applyBarrier(&o)
		}
	}
	switch {
	case n < 1:
		return nil, &opError{op: "new double barrier", key: key, err: fmt.Errorf("%w: %d participants, want at least 1", ErrInvalidArgument, n)}
	case o.ttl < time.Second:
		return nil, &opError{op: "new double barrier", key: key, err: fmt.Errorf("%w: %v is under one second", ErrInvalidTTL, o.ttl)}
	case key == "":
		return nil, &opError{op: "new double barrier", err: ErrEmptyKey}
	}
	return &DoubleBarrier{c: c, key: key, n: n, ttl: o.ttl, waiters: key + "/waiters/", ready: key + "/ready"}, nil
}

// Enter joins the barrier and waits until n participants have joined. It
// fails with [ErrLocked] when n others are in already, and when ctx ends or
// the client closes (leaving the barrier again, so nobody waits for this
// participant).
func (b *DoubleBarrier) Enter(ctx context.Context) error {
	if err := checkCoord(ctx, b.c, "enter barrier", b.key); err != nil {
		return err
	}
	if err := b.join(ctx); err != nil {
		return err
	}
	if err := b.awaitFull(ctx); err != nil {
		b.quit()
		return err
	}
	return nil
}

// join puts this participant's key under a lease of its own.
func (b *DoubleBarrier) join(ctx context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.myKey != "" {
		return &opError{op: "enter barrier", key: b.key, err: fmt.Errorf("%w: already entered", ErrExists)}
	}
	l, err := b.c.Grant(ctx, b.ttl)
	if err != nil {
		return err
	}
	if err := l.KeepAlive(); err != nil {
		return err
	}
	key := fmt.Sprintf("%s%x", b.waiters, l.ID())
	bctx, cancel := b.c.bound(ctx)
	defer cancel()
	resp, err := b.c.raw.KV.Put(bctx, key, "", clientv3.WithLease(clientv3.LeaseID(l.ID())))
	if err != nil {
		_ = l.Revoke(context.WithoutCancel(ctx))
		return opErr("enter barrier", key, err)
	}
	b.lease, b.myKey, b.myRev = l, key, resp.Header.Revision
	return nil
}

// awaitFull waits until n participants are in. The ready key, put by whoever
// sees the barrier full, counts only if written after this participant
// joined: an old one is left from an earlier round.
func (b *DoubleBarrier) awaitFull(ctx context.Context) error {
	for {
		resp, err := b.state(ctx)
		if err != nil {
			return err
		}
		waiters := resp.Responses[0].GetResponseRange().Kvs
		if ready := resp.Responses[1].GetResponseRange().Kvs; len(ready) > 0 && ready[0].ModRevision > b.myRev {
			return nil
		}
		pos := position(waiters, b.myKey)
		if pos >= b.n {
			return &opError{op: "enter barrier", key: b.key, err: fmt.Errorf("%w: the barrier is full with %d participants", ErrLocked, b.n)}
		}
		if len(waiters) >= b.n {
			return b.open(ctx)
		}
		if err := waitEvent(ctx, b.c, "enter barrier", b.key+"/", resp.Header.Revision+1, anyEvent); err != nil {
			return err
		}
	}
}

func (b *DoubleBarrier) state(ctx context.Context) (*clientv3.TxnResponse, error) {
	bctx, cancel := b.c.bound(ctx)
	defer cancel()
	resp, err := b.c.raw.KV.Txn(bctx).Then(
		clientv3.OpGet(b.waiters, clientv3.WithPrefix(), clientv3.WithKeysOnly(),
			clientv3.WithSort(clientv3.SortByCreateRevision, clientv3.SortAscend)),
		clientv3.OpGet(b.ready, clientv3.WithKeysOnly()),
	).Commit()
	if err != nil {
		return nil, opErr("enter barrier", b.key, err)
	}
	return resp, nil
}

func (b *DoubleBarrier) open(ctx context.Context) error {
	bctx, cancel := b.c.bound(ctx)
	defer cancel()
	_, err := b.c.raw.KV.Put(bctx, b.ready, "")
	return opErr("enter barrier", b.ready, err)
}

func anyEvent(*clientv3.Event) bool { return true }

// position is the index of key among the waiters sorted by arrival, or
// len(waiters) when it is not among them.
func position(waiters []*mvccpb.KeyValue, key string) int {
	for i, w := range waiters {
		if string(w.Key) == key {
			return i
		}
	}
	return len(waiters)
}

// Leave gives up this participant's place and waits until every participant
// has left (or its lease expired). It fails when ctx ends or the client
// closes. Leaving without having entered does nothing.
func (b *DoubleBarrier) Leave(ctx context.Context) error {
	if err := checkCoord(ctx, b.c, "leave barrier", b.key); err != nil {
		return err
	}
	b.mu.Lock()
	entered := b.myKey != ""
	b.mu.Unlock()
	if !entered {
		return nil
	}
	if err := b.quitCtx(ctx); err != nil {
		return err
	}
	return b.awaitEmpty(ctx)
}

// awaitEmpty waits until no participant is left, then removes the ready key
// unless a new round began meanwhile.
func (b *DoubleBarrier) awaitEmpty(ctx context.Context) error {
	noWaiters := clientv3.Compare(clientv3.CreateRevision(b.waiters), "=", 0).WithPrefix()
	for {
		bctx, cancel := b.c.bound(ctx)
		resp, err := b.c.raw.KV.Txn(bctx).If(noWaiters).Then(clientv3.OpDelete(b.ready)).Commit()
		cancel()
		if err != nil {
			return opErr("leave barrier", b.key, err)
		}
		if resp.Succeeded {
			return nil
		}
		err = waitEvent(ctx, b.c, "leave barrier", b.waiters, resp.Header.Revision+1, func(ev *clientv3.Event) bool {
			return ev.Type == clientv3.EventTypeDelete
		})
		if err != nil {
			return err
		}
	}
}

// quit deletes this participant's key by revoking its lease, on a path
// where the caller's ctx may be over already.
func (b *DoubleBarrier) quit() {
	ctx, cancel := context.WithTimeout(context.Background(), closeGrace)
	defer cancel()
	_ = b.quitCtx(ctx)
}

func (b *DoubleBarrier) quitCtx(ctx context.Context) error {
	b.mu.Lock()
	l := b.lease
	b.lease, b.myKey, b.myRev = nil, "", 0
	b.mu.Unlock()
	if l == nil {
		return nil
	}
	return l.Revoke(ctx)
}
