package etcdkit

import (
	"context"
	"fmt"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/etcdkit/etcdkit/internal/retry"
)

// Leadership is a won election: this client's candidate key is the oldest
// under the election's name, so its value is the leader's. It is safe for
// concurrent use.
//
// An election named N is wire-compatible with
// concurrency.NewElection(session, N) and "etcdctl elect N": its keys are
// N + "/" + the lease ID in hex, and each excludes the others.
type Leadership struct {
	l *Lock
}

// Campaign joins the election called name with value, and returns once this
// client leads it. Candidates lead in the order they joined. It fails with
// ctx's error if ctx ends first; with [ErrLeaseLost] if the lease behind the
// candidacy could not be refreshed in time while waiting, or
// [ErrLeaseExpired] if the server expired it (it never reports a leadership
// it does not have); with [ErrInvalidTTL] for a [LockTTL] under one second,
// [ErrEmptyKey] for an empty name, [ErrInvalidArgument] for a name with a
// NUL byte, and [ErrClosed] after [Client.Close]. A candidate that gives up
// leaves no key behind, as a waiter for [Client.Lock] does. As with
// [Client.Lock], the candidates of a nested name ("a/b" below "a") are not
// candidates of this one.
func (c *Client) Campaign(ctx context.Context, name, value string, opts ...LockOption) (*Leadership, error) {
	l, err := c.observeHold(ctx, OpCampaign, name, func(ctx context.Context) (*Lock, error) {
		lead, err := c.campaign(ctx, name, value, opts)
		if err != nil {
			return nil, err
		}
		return lead.l, nil
	})
	if err != nil {
		return nil, err
	}
	return &Leadership{l: l}, nil
}

func (c *Client) campaign(ctx context.Context, name, value string, opts []LockOption) (*Leadership, error) {
	prefix := name + "/"
	l, resp, err := c.enqueue(ctx, opts, mutexSpec("campaign", name, value))
	if err != nil {
		return nil, err
	}
	lead := &Leadership{l: l}
	if !resp.Succeeded && string(resp.Responses[0].GetResponseRange().Kvs[0].Value) != value {
		if err := lead.Proclaim(ctx, value); err != nil {
			l.abandon(ctx)
			return nil, err
		}
	}
	if isFirst(resp.Responses[1].GetResponseRange().Kvs, l.fence) {
		return lead, nil
	}
	if err := l.waitTurn(ctx, prefix, true, l.verifyFirst(prefix)); err != nil {
		l.abandon(ctx)
		return nil, err
	}
	return lead, nil
}

// Proclaim replaces the leader's value without a new election. It fails with
// [ErrLeaseExpired] if this client no longer leads (its key is gone), and
// with [ErrClosed] after [Leadership.Resign].
func (ld *Leadership) Proclaim(ctx context.Context, value string) error {
	l := ld.l
	l.mu.Lock()
	released := l.released
	l.mu.Unlock()
	if released {
		return &opError{op: "proclaim", key: l.key, err: fmt.Errorf("%w: resigned", ErrClosed)}
	}
	pctx, cancel := l.c.bound(ctx)
	resp, err := l.c.raw.KV.Txn(pctx).If(l.held()).
		Then(clientv3.OpPut(l.key, value, clientv3.WithLease(l.s.id))).Commit()
	cancel()
	if err != nil {
		return opErr("proclaim", l.key, err)
	}
	if !resp.Succeeded {
		return &opError{op: "proclaim", key: l.key, err: fmt.Errorf("%w: no longer the leader", ErrLeaseExpired)}
	}
	return nil
}

// Resign gives up the leadership, so that the next candidate leads. It
// deletes the key only if it is still this leadership's. Like
// [Lock.Unlock], it returns the loss ([ErrLeaseLost] or [ErrLeaseExpired])
// when the leadership was lost before Resign, since the leader's work was
// then not protected to the end; any other error means the key may still
// be there: call it again. Once it returned nil or a loss, later calls
// return nil.
func (ld *Leadership) Resign(ctx context.Context) error { return ld.l.release(ctx, OpResign) }

// Lost returns a channel that is closed when this client no longer leads:
// its lease could not be refreshed in time, expired or was revoked, its key
// was deleted, the client was closed, or it resigned. [Leadership.Err] says
// which.
func (ld *Leadership) Lost() <-chan struct{} { return ld.l.Lost() }

// Err returns nil while leading, and once it is not why: [ErrLeaseLost] if
// the lease could not be refreshed in time, [ErrLeaseExpired] if the server
// confirmed the lease gone or the key was deleted, [ErrClosed] after Resign
// or [Client.Close]. Like [Lock.Err] it sends and starts nothing; a deleted
// key is reported once [Leadership.Lost] was called.
func (ld *Leadership) Err() error { return ld.l.Err() }

// Fence returns the leadership's fencing token: the create revision of its
// key. It grows with every new leader of the election.
func (ld *Leadership) Fence() int64 { return ld.l.fence }

// Held returns the transaction condition "this client still leads": its
// key exists with the create revision it had when elected. Guard a leader's
// writes with it so that a deposed leader cannot write.
func (ld *Leadership) Held() Cond { return Cond{cmp: ld.l.held()} }

// Key returns the leader's key in etcd (relative to the client's namespace).
func (ld *Leadership) Key() string { return ld.l.key }

// Leader returns the value of the current leader of the election called
// name. It fails with [ErrNoLeader] when nobody leads it (the leader of a
// nested name, "a/b" below "a", does not lead it), [ErrEmptyKey] for an
// empty name and [ErrInvalidArgument] for a name with a NUL byte.
func (c *Client) Leader(ctx context.Context, name string) (string, error) {
	if err := checkName("leader", name); err != nil {
		return "", err
	}
	if err := c.checkOpen("leader", name); err != nil {
		return "", err
	}
	kv, _, err := c.firstCandidate(ctx, name+"/")
	if err != nil {
		return "", opErr("leader", name, err)
	}
	if kv == nil {
		return "", &opError{op: "leader", key: name, err: ErrNoLeader}
	}
	return string(kv.Value), nil
}

// firstCandidate reads the oldest child of prefix (nil if none), and the
// revision read. The keys of nested names ("a/b" under "a") are skipped.
func (c *Client) firstCandidate(ctx context.Context, prefix string) (*mvccpb.KeyValue, int64, error) {
	gctx, cancel := c.bound(ctx)
	resp, err := c.raw.KV.Get(gctx, prefix, clientv3.WithFirstCreate()...)
	cancel()
	if err != nil {
		return nil, 0, err
	}
	kvs := resp.Kvs
	if len(kvs) > 0 && !isChild(prefix, kvs[0].Key) {
		if kvs, err = c.childrenOf(ctx, prefix, clientv3.SortAscend, clientv3.WithRev(resp.Header.Revision)); err != nil {
			return nil, 0, err
		}
	}
	if len(kvs) == 0 {
		return nil, resp.Header.Revision, nil
	}
	return kvs[0], resp.Header.Revision, nil
}

// LeaderInfo is one leader of an election, as [Client.ObserveLeaderInfo]
// sees it.
type LeaderInfo struct {
	Key   string // the leader's key (relative to the client's namespace)
	Value string // the value it campaigned with or last proclaimed
	Fence int64  // its key's create revision: grows with every new leader
}

// ObserveLeader returns a channel that receives the value of the leader of
// the election called name: the current one first (if any), then every new
// leader and every value it proclaims. A new leader is sent even when its
// value equals the last one sent (a restarted replica that campaigns again
// with its name); a leader's value equal to the last one sent is not sent
// again. The channel is closed when ctx ends or the client closes;
// connection failures and compactions are retried, not reported.
// [Client.ObserveLeaderInfo] also gives each leader's key and fence.
func (c *Client) ObserveLeader(ctx context.Context, name string) <-chan string {
	ch := make(chan string)
	return observeInto(c, ctx, name, ch, func(li LeaderInfo) string { return li.Value })
}

// ObserveLeaderInfo is [Client.ObserveLeader] with each leader's key and
// fence: it receives the current leader first (if any), then every new
// leader and every value it proclaims, never the same key, fence and value
// twice in a row. After a compaction or a broken connection it resumes
// from the leader of the moment.
func (c *Client) ObserveLeaderInfo(ctx context.Context, name string) <-chan LeaderInfo {
	ch := make(chan LeaderInfo)
	return observeInto(c, ctx, name, ch, func(li LeaderInfo) LeaderInfo { return li })
}

// observeInto follows the leaders of name into ch, converted by conv.
func observeInto[T any](c *Client, ctx context.Context, name string, ch chan T, conv func(LeaderInfo) T) <-chan T {
	if checkName("observe leader", name) != nil || c.checkOpen("observe leader", name) != nil {
		close(ch)
		return ch
	}
	emit := func(ctx context.Context, li LeaderInfo) bool {
		select {
		case ch <- conv(li):
			return true
		case <-ctx.Done():
			return false
		}
	}
	c.goBackground(func() {
		defer close(ch)
		c.observeLeader(ctx, name, emit)
	})
	return ch
}

// leaderObserver passes leaders on, without repeating the last one, until
// ctx ends.
type leaderObserver struct {
	c     *Client
	name  string
	ctx   context.Context
	emit  func(context.Context, LeaderInfo) bool
	last  LeaderInfo
	sent  bool
	fence int64 // the leader last noticed: its fence, 0 for none, -1 before any
}

// noticeLeader tells of a leader with this fence (0: none) if it is new.
func (o *leaderObserver) noticeLeader(fence int64) {
	if fence == o.fence {
		return
	}
	o.fence = fence
	o.c.notice(o.ctx, Notice{Kind: NoticeLeaderChanged, Prefix: o.name, Revision: fence})
}

func (o *leaderObserver) send(kv *mvccpb.KeyValue) bool {
	li := LeaderInfo{Key: string(kv.Key), Value: string(kv.Value), Fence: kv.CreateRevision}
	if o.sent && li == o.last {
		return true
	}
	if !o.emit(o.ctx, li) {
		return false
	}
	o.last, o.sent = li, true
	o.noticeLeader(li.Fence)
	return true
}

func (c *Client) observeLeader(ctx context.Context, name string, emit func(context.Context, LeaderInfo) bool) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(c.ctx, cancel)
	defer stop()
	o := &leaderObserver{c: c, name: name, ctx: ctx, emit: emit, fence: -1}
	prefix := name + "/"
	backoff := retry.Backoff{Start: 50 * time.Millisecond, Max: time.Second}
	for ctx.Err() == nil {
		kv, rev, err := c.firstCandidate(ctx, prefix)
		switch {
		case err != nil:
		case kv == nil:
			o.noticeLeader(0)
			if c.waitEvent(ctx, prefix, rev, clientv3.WithPrefix(), clientv3.WithFilterDelete()) {
				backoff.Reset()
				continue
			}
		default:
			if !o.send(kv) {
				return
			}
			if c.followLeader(ctx, o, string(kv.Key), rev) {
				backoff.Reset()
				continue
			}
		}
		backoff.Sleep(ctx)
	}
}

// followLeader sends every value put at the leader's key after rev, and
// reports whether it ended because the key was deleted (rather than on a
// broken watch or ctx).
func (c *Client) followLeader(ctx context.Context, o *leaderObserver, key string, rev int64) bool {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for wr := range c.rawWatch(wctx, key, clientv3.WithRev(rev+1)) {
		for _, ev := range wr.Events {
			if ev.Type == mvccpb.DELETE {
				return true
			}
			if !o.send(ev.Kv) {
				return false
			}
		}
		if wr.Err() != nil {
			return false
		}
	}
	return false
}

// waitEvent waits for the first event on key after rev (with opts), and
// reports whether one came (rather than the watch breaking or ctx ending).
func (c *Client) waitEvent(ctx context.Context, key string, rev int64, opts ...clientv3.OpOption) bool {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	opts = append(opts, clientv3.WithRev(rev+1))
	for wr := range c.rawWatch(wctx, key, opts...) {
		if len(wr.Events) > 0 {
			return true
		}
		if wr.Err() != nil {
			return false
		}
	}
	return false
}
