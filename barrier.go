package etcdkit

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

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
// [DoubleBarrier.Leave] until all of them have left. Participants go
// through in rounds of n: those who enter once a round is full form the
// next round, and neither counts the other, whoever of the earlier round
// is still in. Each participant's place is tied to a lease of its own, so
// one that dies stops holding the others back once its lease expires. A
// DoubleBarrier value is one participant: make one per participant.
//
// Keys: the round being filled is numbered at key+"/round", the
// participants of round r are under key+"/waiters/<r>/", and
// key+"/ready/<r>" is put when round r is full. The last participant to
// leave removes them all.
type DoubleBarrier struct {
	c     *Client
	key   string
	n     int
	ttl   time.Duration
	round string // the key holding the number of the round being filled

	mu      sync.Mutex
	lease   *Lease
	myKey   string
	myRound uint64
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
	return &DoubleBarrier{c: c, key: key, n: n, ttl: o.ttl, round: key + "/round"}, nil
}

func (b *DoubleBarrier) waiters(round uint64) string {
	return b.key + "/waiters/" + strconv.FormatUint(round, 10) + "/"
}

func (b *DoubleBarrier) ready(round uint64) string {
	return b.key + "/ready/" + strconv.FormatUint(round, 10)
}

// Enter joins the round being filled and waits until n participants have
// joined it. It fails with [ErrExists] when this participant is in
// already, with [ErrLeaseExpired] when its place expired while it waited,
// and when ctx ends or the client closes (leaving the barrier again, so
// nobody waits for this participant).
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

// join puts this participant's key, under a lease of its own, into the
// round being filled.
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
	round, key, err := b.joinRound(ctx, l.ID())
	if err != nil {
		// Revoking removes the key if the join committed after all.
		_ = l.Revoke(context.WithoutCancel(ctx))
		return err
	}
	b.lease, b.myKey, b.myRound = l, key, round
	return nil
}

// joinRound adds a key under lease to the round being filled. Every join
// rewrites the round key, and succeeds only if nobody else did since it
// read the round: joins are thus one after the other, each knows how many
// came before it, and the one that fills the round closes it (puts its
// ready key) and opens the next in the same transaction. No round gets
// more than n participants.
func (b *DoubleBarrier) joinRound(ctx context.Context, lease int64) (uint64, string, error) {
	for range maxAppendAttempts {
		round, modRev, count, err := b.filling(ctx)
		if err != nil {
			return 0, "", err
		}
		key := fmt.Sprintf("%s%x", b.waiters(round), lease)
		ops := []clientv3.Op{clientv3.OpPut(key, "", clientv3.WithLease(clientv3.LeaseID(lease)))}
		if count+1 >= int64(b.n) {
			ops = append(ops, clientv3.OpPut(b.ready(round), ""), clientv3.OpPut(b.round, strconv.FormatUint(round+1, 10)))
		} else {
			ops = append(ops, clientv3.OpPut(b.round, strconv.FormatUint(round, 10)))
		}
		bctx, cancel := b.c.bound(ctx)
		resp, err := b.c.raw.KV.Txn(bctx).
			If(clientv3.Compare(clientv3.ModRevision(b.round), "=", modRev)).Then(ops...).Commit()
		cancel()
		if err != nil {
			return 0, "", opErr("enter barrier", key, err)
		}
		if resp.Succeeded {
			return round, key, nil
		}
	}
	return 0, "", &opError{op: "enter barrier", key: b.key, err: fmt.Errorf("%w: %d attempts lost to other participants", ErrConflict, maxAppendAttempts)}
}

// filling reads the number of the round being filled, the round key's mod
// revision (0 when there is none: round 0), and how many participants of
// that round are in.
func (b *DoubleBarrier) filling(ctx context.Context) (round uint64, modRev, count int64, err error) {
	bctx, cancel := b.c.bound(ctx)
	defer cancel()
	resp, err := b.c.raw.KV.Get(bctx, b.round)
	if err != nil {
		return 0, 0, 0, opErr("enter barrier", b.round, err)
	}
	if len(resp.Kvs) > 0 {
		round, err = strconv.ParseUint(string(resp.Kvs[0].Value), 10, 64)
		if err != nil {
			return 0, 0, 0, &opError{op: "enter barrier", key: b.round, err: fmt.Errorf("%w: round key holds %q, not a round number", ErrInvalidArgument, resp.Kvs[0].Value)}
		}
		modRev = resp.Kvs[0].ModRevision
	}
	in, err := b.c.raw.KV.Get(bctx, b.waiters(round), clientv3.WithPrefix(), clientv3.WithCountOnly(), clientv3.WithRev(resp.Header.Revision))
	if err != nil {
		return 0, 0, 0, opErr("enter barrier", b.waiters(round), err)
	}
	return round, modRev, in.Count, nil
}

// awaitFull waits until this participant's round is full: its ready key
// exists.
func (b *DoubleBarrier) awaitFull(ctx context.Context) error {
	b.mu.Lock()
	myKey, ready := b.myKey, b.ready(b.myRound)
	b.mu.Unlock()
	for {
		bctx, cancel := b.c.bound(ctx)
		resp, err := b.c.raw.KV.Txn(bctx).Then(
			clientv3.OpGet(ready, clientv3.WithCountOnly()),
			clientv3.OpGet(myKey, clientv3.WithCountOnly()),
		).Commit()
		cancel()
		if err != nil {
			return opErr("enter barrier", ready, err)
		}
		if resp.Responses[0].GetResponseRange().Count > 0 {
			return nil
		}
		if resp.Responses[1].GetResponseRange().Count == 0 {
			return &opError{op: "enter barrier", key: myKey, err: fmt.Errorf("%w: this participant's place ended before its round was full", ErrLeaseExpired)}
		}
		err = waitEvent(ctx, b.c, "enter barrier", b.key+"/", resp.Header.Revision+1, func(ev *clientv3.Event) bool {
			key := string(ev.Kv.Key)
			return key == ready || (key == myKey && ev.Type == clientv3.EventTypeDelete)
		})
		if err != nil {
			return err
		}
	}
}

// Leave gives up this participant's place and waits until every
// participant of its round has left (or its lease expired). It fails when
// ctx ends or the client closes. Leaving without having entered does
// nothing.
func (b *DoubleBarrier) Leave(ctx context.Context) error {
	if err := checkCoord(ctx, b.c, "leave barrier", b.key); err != nil {
		return err
	}
	b.mu.Lock()
	entered, round := b.myKey != "", b.myRound
	b.mu.Unlock()
	if !entered {
		return nil
	}
	if err := b.quitCtx(ctx); err != nil {
		return err
	}
	return b.awaitEmpty(ctx, round)
}

// awaitEmpty waits until no participant of round is left, then removes the
// round's ready key; or, when nobody is in any round, every key of the
// barrier, so that it starts again from round 0 with nothing left over
// (ready keys of rounds whose participants all died included).
func (b *DoubleBarrier) awaitEmpty(ctx context.Context, round uint64) error {
	empty := func(prefix string) clientv3.Cmp {
		return clientv3.Compare(clientv3.CreateRevision(prefix), "=", 0).WithPrefix()
	}
	cleanup := clientv3.OpTxn(
		[]clientv3.Cmp{empty(b.key + "/waiters/")},
		[]clientv3.Op{clientv3.OpDelete(b.round), clientv3.OpDelete(b.key+"/ready/", clientv3.WithPrefix())},
		[]clientv3.Op{clientv3.OpDelete(b.ready(round))},
	)
	for {
		bctx, cancel := b.c.bound(ctx)
		resp, err := b.c.raw.KV.Txn(bctx).If(empty(b.waiters(round))).Then(cleanup).Commit()
		cancel()
		if err != nil {
			return opErr("leave barrier", b.key, err)
		}
		if resp.Succeeded {
			return nil
		}
		err = waitEvent(ctx, b.c, "leave barrier", b.waiters(round), resp.Header.Revision+1, func(ev *clientv3.Event) bool {
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
	b.lease, b.myKey, b.myRound = nil, "", 0
	b.mu.Unlock()
	if l == nil {
		return nil
	}
	return l.Revoke(ctx)
}
