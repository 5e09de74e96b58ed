package etcdkit

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/etcdkit/etcdkit/internal/retry"
)

// Term is one leadership of [Client.RunAsLeader]: from the moment this
// client won the election until its function returned. It is safe for
// concurrent use.
type Term struct {
	key, value string
	fence      int64
	rev        int64 // a revision at which the key was known to lead
	started    time.Time
}

// Fence returns the term's fencing token: the create revision of its key.
// It grows with every new leader of the name, so a resource that remembers
// the highest token it saw can refuse a write from an older leader.
func (t *Term) Fence() int64 { return t.fence }

// Held returns the transaction condition "this term still leads": its key
// exists with the create revision it had when elected. Guard the leader's
// writes with it, so that a term that ended (its lease lost, its key
// deleted) cannot write after the next one began:
//
//	res, err := c.Txn(ctx).If(term.Held()).Then(ops...).Commit()
func (t *Term) Held() Cond {
	return Cond{cmp: clientv3.Compare(clientv3.CreateRevision(t.key), "=", t.fence)}
}

// Key returns the term's key in etcd (relative to the client's namespace).
func (t *Term) Key() string { return t.key }

// Value returns the value this client campaigned with.
func (t *Term) Value() string { return t.value }

// Started returns when the term began: this client won, and the function
// was about to be called.
func (t *Term) Started() time.Time { return t.started }

// LeaderEventKind says what a [LeaderEvent] reports.
type LeaderEventKind int

const (
	// LeaderStarted: this client won; its function is about to run.
	LeaderStarted LeaderEventKind = iota + 1
	// LeaderStopped: this client's function returned and the leadership
	// was given up (resigned, or left to lapse with its lease).
	LeaderStopped
	// LeaderStopOverrun: the function's ctx ended, and the function did not
	// return within the stop grace: the lease is no longer refreshed, and
	// the leadership lapses with it.
	LeaderStopOverrun
	// LeaderObserved: a new leader of the name (this client or another)
	// was seen, or the leader proclaimed a new value.
	LeaderObserved
)

func (k LeaderEventKind) String() string {
	switch k {
	case LeaderStarted:
		return "started"
	case LeaderStopped:
		return "stopped"
	case LeaderStopOverrun:
		return "stop overrun"
	case LeaderObserved:
		return "observed"
	}
	return fmt.Sprintf("LeaderEventKind(%d)", int(k))
}

// LeaderEvent is something that happened to a [Client.RunAsLeader] run,
// passed to the function given with [OnLeaderEvent].
//
// For each term, LeaderStarted comes exactly once, before the function
// runs, and LeaderStopped exactly once, after it returned; a
// LeaderStopOverrun, if any, comes between them.
type LeaderEvent struct {
	Kind   LeaderEventKind
	Name   string
	Leader LeaderInfo // the leader: this client's term, or the one observed
	// Err is, for LeaderStopped, why the term ended: the cause of the
	// function's ctx (such as [ErrLeaseLost], [ErrLeaseExpired] or the
	// caller's ctx error) or the function's own error; for
	// LeaderStopOverrun, the cause of the function's ctx. Nil otherwise.
	Err error
	At  time.Time
}

// RunAsLeader campaigns in the election called name with value (the keys of
// [Client.Campaign] and concurrency.Election) and, each time this client
// wins, runs fn with the [Term] it won. fn's ctx ends before another
// candidate can win: when the lease behind the term can no longer be
// relied on (no refresh confirmed in time, counted so that it is before the
// server can expire it), when the term's key is deleted or overwritten, and
// when ctx ends or the client closes. The reason is context.Cause(ctx) in fn.
//
// The leadership is given up only after fn has returned. If fn has not
// returned within the [LeaderStopGrace] after its ctx ended, the lease is
// no longer refreshed, so the key lapses with it (at most a TTL later)
// rather than being released while fn runs; a [LeaderStopOverrun] event
// and a warning report it.
//
// After fn returns, RunAsLeader resigns and campaigns again (after a pause,
// if fn returned nil while it still led, so that a function that returns at
// once does not spin), until ctx ends: then it returns nil. If fn returns an
// error that is not its ctx's, RunAsLeader resigns and returns that error.
// After [Client.Close] it returns an error matching [ErrClosed].
//
// Each run has a lease of its own, with the [LeaderTTL]: a lost lease is
// replaced by a new one, with [LeaderBackoff] between failed attempts, so
// that the run survives server restarts, leader changes, compactions and
// partitions. When RunAsLeader returns, its lease is revoked (or, if that
// fails, left to expire).
//
// It fails at once, sending nothing, with [ErrEmptyKey] for an empty name,
// [ErrInvalidArgument] for a name with a NUL byte, a nil fn or a bad option, and [ErrInvalidTTL] for
// a [LeaderTTL] under one second.
func (c *Client) RunAsLeader(ctx context.Context, name, value string,
	fn func(ctx context.Context, term *Term) error, opts ...LeaderOption) error {
	if err := checkName("run as leader", name); err != nil {
		return err
	}
	if fn == nil {
		return &opError{op: "run as leader", key: name, err: fmt.Errorf("%w: nil function", ErrInvalidArgument)}
	}
	o, err := leaderOpts(name, opts)
	if err != nil {
		return err
	}
	if err := c.checkOpen("run as leader", name); err != nil {
		return err
	}
	r := &leaderRun{c: c, name: name, prefix: name + "/", value: value, fn: fn, o: o, done: make(chan struct{})}
	return r.run(ctx)
}

// leaderRun is one call of RunAsLeader.
type leaderRun struct {
	c            *Client
	name, prefix string
	value        string
	fn           func(context.Context, *Term) error
	o            leaderOptions
	done         chan struct{} // closed when the run has cleaned up
	eventMu      sync.Mutex    // callbacks are never concurrent
	pause        time.Duration // the last pause after a failure: the backoff
}

// errLeaderClosed is the cause of a run's ctx when the client closes.
var errLeaderClosed = fmt.Errorf("%w: the client closed", ErrClosed)

func (r *leaderRun) run(parent context.Context) error {
	ctx, cancel := context.WithCancelCause(parent)
	defer cancel(nil)
	unregister, err := r.c.onClose(func(cctx context.Context) {
		cancel(errLeaderClosed)
		select { // let the run resign and revoke its lease while it can
		case <-r.done:
		case <-cctx.Done():
		}
	})
	if err != nil {
		return &opError{op: "run as leader", key: r.name, err: ErrClosed}
	}
	defer unregister()
	defer close(r.done)
	stopObserving := r.observe(ctx)
	defer stopObserving()

	var ls *leaderSession
	defer func() { r.dropSession(ls) }()
	for {
		if ctx.Err() != nil {
			return r.exitErr(ctx)
		}
		if ls == nil || !ls.usable() {
			r.dropSession(ls)
			if ls, err = r.c.newLeaderSession(ctx, r.o.ttlSeconds()); err != nil {
				ls = nil
				r.failed("grant lease", err, ctx)
				continue
			}
		}
		term, err := r.observedCampaign(ctx, ls)
		if err != nil {
			if !ls.usable() {
				continue // a fresh lease, at once
			}
			r.failed("campaign", err, ctx)
			continue
		}
		r.pause = 0
		ferr, returnedEarly := r.serve(ctx, ls, term)
		r.c.notice(ctx, Notice{Kind: NoticeLeaderChanged, Prefix: r.name, Revision: term.fence, Value: -1})
		if ferr != nil {
			return ferr
		}
		if returnedEarly {
			retry.Sleep(ctx, r.o.backoffMin)
		}
	}
}

// exitErr is what the run returns when its ctx ended: nil for the caller's
// ctx, ErrClosed for the client's close.
func (r *leaderRun) exitErr(ctx context.Context) error {
	if errors.Is(context.Cause(ctx), errLeaderClosed) {
		return &opError{op: "run as leader", key: r.name, err: ErrClosed}
	}
	return nil
}

// failed logs a failed attempt and waits the backoff, unless ctx ended
// (then the failure is just the end).
func (r *leaderRun) failed(what string, err error, ctx context.Context) {
	if ctx.Err() != nil {
		return
	}
	r.c.log.Debug("etcdkit: run as leader: retrying", "name", r.name, "step", what, "error", err)
	r.pause = min(max(2*r.pause, r.o.backoffMin), r.o.backoffMax)
	retry.Sleep(ctx, r.pause)
}

// serve runs fn for term, then gives the leadership up. It returns fn's
// error if it is not its ctx's (the run ends with it), and whether fn
// returned by itself while it still led.
func (r *leaderRun) serve(ctx context.Context, ls *leaderSession, term *Term) (ferr error, early bool) {
	fctx, fcancel := context.WithCancelCause(ctx)
	defer fcancel(nil)
	stopS := context.AfterFunc(ls.ctx, func() { fcancel(ls.err()) })
	defer stopS()
	var watch, grace sync.WaitGroup
	watch.Go(func() { r.watchTerm(fctx, fcancel, term) })
	returned := make(chan struct{})
	grace.Go(func() { r.watchGrace(fctx, returned, ls, term) })

	r.event(LeaderEvent{Kind: LeaderStarted, Leader: term.info(), At: term.started})
	var err error
	// Deferred, so that a panicking fn still resigns, after it stopped.
	defer func() {
		close(returned)
		grace.Wait() // an overrun is reported before the stop
		stopped := err
		if stopped == nil || isCtxErr(err, fctx) {
			stopped = context.Cause(fctx)
		}
		fcancel(nil)
		watch.Wait() // so that the resignation is not taken for a loss
		r.resign(ls, term)
		r.event(LeaderEvent{Kind: LeaderStopped, Leader: term.info(), Err: stopped, At: time.Now()})
	}()
	err = r.fn(fctx, term)
	switch {
	case err == nil:
		return nil, fctx.Err() == nil
	case isCtxErr(err, fctx):
		return nil, false
	}
	return err, false
}

// isCtxErr reports whether err is what a function returns because ctx
// ended: ctx's error or its cause.
func isCtxErr(err error, ctx context.Context) bool {
	if ctx.Err() == nil {
		return false
	}
	return errors.Is(err, ctx.Err()) || errors.Is(err, context.Cause(ctx))
}

// watchGrace waits, once fctx ended, for fn to return within the stop
// grace; past it, it stops refreshing the lease, so that the leadership
// lapses with it instead of being kept for a function that may never
// return, and reports it.
func (r *leaderRun) watchGrace(fctx context.Context, returned <-chan struct{}, ls *leaderSession, term *Term) {
	select {
	case <-returned:
		return
	case <-fctx.Done():
	}
	t := time.NewTimer(r.o.grace)
	defer t.Stop()
	select {
	case <-returned:
		return
	case <-t.C:
	}
	ls.ka.halt()
	ls.spent.Store(true)
	cause := context.Cause(fctx)
	r.c.log.Warn("etcdkit: run as leader: the function did not return within the stop grace; "+
		"its lease is no longer refreshed and lapses", "name", r.name, "key", term.key, "grace", r.o.grace, "cause", cause)
	r.event(LeaderEvent{Kind: LeaderStopOverrun, Leader: term.info(), Err: cause, At: time.Now()})
}

// event passes ev to the caller's callback, one at a time.
func (r *leaderRun) event(ev LeaderEvent) {
	if r.o.onEvent == nil {
		return
	}
	ev.Name = r.name
	r.eventMu.Lock()
	defer r.eventMu.Unlock()
	r.o.onEvent(ev)
}

// observe reports every leader of the name as a LeaderObserved event, until
// the returned function is called. It observes only when events are asked
// for.
func (r *leaderRun) observe(ctx context.Context) (stop func()) {
	if r.o.onEvent == nil {
		return func() {}
	}
	octx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		r.c.observeLeader(octx, r.name, func(_ context.Context, li LeaderInfo) bool {
			r.event(LeaderEvent{Kind: LeaderObserved, Leader: li, At: time.Now()})
			return true
		})
	})
	return func() { cancel(); wg.Wait() }
}

func (t *Term) info() LeaderInfo { return LeaderInfo{Key: t.key, Value: t.value, Fence: t.fence} }

// leaderSession is the lease of one run, with its keep-alive at hand, so
// that a function that overruns its stop grace can let it lapse.
type leaderSession struct {
	*session
	ka    *keeper
	spent atomic.Bool // no more campaigns on it: its key may be left behind
}

// usable reports whether the run may campaign on ls.
func (ls *leaderSession) usable() bool { return !ls.dead() && !ls.spent.Load() }

// newLeaderSession grants a lease of its own to a run, outside the pool of
// lock sessions: losing it ends this run's terms only, and the run replaces
// it with a fresh one.
func (c *Client) newLeaderSession(ctx context.Context, ttl int64) (*leaderSession, error) {
	s, ka, err := c.grantSession(ctx, ttl)
	if err != nil {
		return nil, err
	}
	return &leaderSession{session: s, ka: ka}, nil
}

// dropSession revokes the run's lease, which deletes its key if one is
// left. It is called only when no fn of the run is running. A revocation
// that fails leaves the lease to expire: its keep-alive has stopped.
func (r *leaderRun) dropSession(ls *leaderSession) {
	if ls == nil {
		return
	}
	if r.c.ctx.Err() != nil {
		ls.stopKeepAlive() // the connection is closing: the lease lapses
		ls.end(ErrClosed)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), r.c.bounds.Timeout())
	defer cancel()
	ls.close(ctx, r.c)
}

// observedCampaign is campaign, observed as a Campaign is.
func (r *leaderRun) observedCampaign(ctx context.Context, ls *leaderSession) (*Term, error) {
	ctx, o := r.c.opStart(ctx, OpCampaign, r.name, "")
	t, err := r.campaign(ctx, ls)
	if err != nil {
		o.end(0, err)
		return nil, err
	}
	r.c.notice(ctx, Notice{Kind: NoticeLeaderChanged, Prefix: r.name, Revision: t.fence, Value: 1})
	o.end(t.fence, nil)
	return t, nil
}

// campaign joins the election on ls and returns once this client leads.
// A failure leaves the key, if the join put it, in the queue: the next
// attempt on the same lease finds it and keeps its place, and dropping the
// lease removes it.
func (r *leaderRun) campaign(ctx context.Context, ls *leaderSession) (*Term, error) {
	wctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stop := context.AfterFunc(ls.ctx, func() { cancel(ls.err()) })
	defer stop()
	key := r.prefix + leaseHex(ls.id)
	q := queueSpec{value: r.value, checks: []clientv3.Op{clientv3.OpGet(r.prefix, clientv3.WithFirstCreate()...)}}
	resp, err := r.c.joinTxn(wctx, ls.session, key, q)
	if err != nil {
		if isLeaseGone(err) {
			ls.spent.Store(true) // revoked: its keep-alive may take a while to hear it
		}
		return nil, opErr("campaign", r.name, err)
	}
	t := &Term{key: key, value: r.value, fence: resp.Header.Revision, rev: resp.Header.Revision}
	if !resp.Succeeded {
		kv := resp.Responses[0].GetResponseRange().Kvs[0]
		if string(kv.Value) != r.value || clientv3.LeaseID(kv.Lease) != ls.id {
			// Not what this run put: someone overwrote it. Start afresh.
			ls.spent.Store(true)
			return nil, &opError{op: "campaign", key: key, err: fmt.Errorf("%w: the key was overwritten", ErrConflict)}
		}
		t.fence = kv.CreateRevision
	}
	if !isFirst(resp.Responses[1].GetResponseRange().Kvs, t.fence) {
		if err := r.c.waitDeletes(wctx, r.prefix, t.fence-1, true); err != nil {
			return nil, r.campaignErr(wctx, err)
		}
		if t.rev, err = r.verifyFirst(wctx, t); err != nil {
			return nil, r.campaignErr(wctx, err)
		}
	}
	if ls.dead() {
		return nil, opErr("campaign", r.name, ls.err()) // won on a lease that can no longer be relied on
	}
	t.started = time.Now()
	return t, nil
}

// campaignErr says why waiting for the turn failed: the session, or etcd.
func (r *leaderRun) campaignErr(wctx context.Context, err error) error {
	if cause := context.Cause(wctx); cause != nil {
		err = cause
	}
	return opErr("campaign", r.name, err)
}

// verifyFirst checks that t's key is now the first under the prefix, and
// returns the revision read: a term is never started on a key that
// vanished while it waited.
func (r *leaderRun) verifyFirst(ctx context.Context, t *Term) (int64, error) {
	kv, rev, err := r.c.firstCandidate(ctx, r.prefix)
	if err != nil {
		return 0, err
	}
	if kv == nil || string(kv.Key) != t.key || kv.CreateRevision != t.fence {
		return 0, fmt.Errorf("%w: the key vanished while waiting", ErrLeaseExpired)
	}
	return rev, nil
}

// watchTerm ends fctx when the term's key is deleted or overwritten.
func (r *leaderRun) watchTerm(fctx context.Context, end context.CancelCauseFunc, t *Term) {
	rev := t.rev
	backoff := retry.Backoff{Start: 50 * time.Millisecond, Max: time.Second}
	for fctx.Err() == nil {
		changed, next, err := r.c.watchKey(fctx, t.key, t.fence, rev, true)
		if changed {
			end(&opError{op: "lead", key: t.key, err: fmt.Errorf("%w: the key was deleted or overwritten", ErrLeaseExpired)})
			return
		}
		if err == nil {
			backoff.Reset()
		}
		rev = max(rev, next)
		backoff.Sleep(fctx)
	}
}

// resign deletes the term's key if it is still the term's, retrying for
// about a TTL. If it cannot, or the lease can no longer be relied on, the
// lease is not used again: the run revokes it, or it expires.
func (r *leaderRun) resign(ls *leaderSession, t *Term) {
	held := clientv3.Compare(clientv3.CreateRevision(t.key), "=", t.fence)
	deadline := time.Now().Add(r.o.ttl)
	pause := retry.Backoff{Start: 50 * time.Millisecond, Max: time.Second}
	for {
		if ls.dead() {
			return // its lease lost: dropping it revokes the lease, or it expires
		}
		err := r.c.deleteIf(context.Background(), t.key, held)
		if err == nil {
			return
		}
		if !time.Now().Before(deadline) || !pause.Sleep(r.c.ctx) {
			r.c.log.Warn("etcdkit: run as leader: resign failed; the lease is dropped instead", "key", t.key, "error", err)
			ls.spent.Store(true)
			return
		}
	}
}
