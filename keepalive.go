package etcdkit

import (
	"context"
	"errors"
	"io"
	"sync"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"

	"github.com/etcdkit/etcdkit/internal/retry"
)

// keeper follows the deadline of one lease and, once started, refreshes it:
// the one keep-alive behind [Lease] and the lock sessions.
//
// The deadline is the moment this client must stop relying on the lease. The
// server renews a lease when a refresh reaches it, which is after the refresh
// was sent, and expires it a TTL after the last renewal. Counting the TTL from
// the moment each refresh was sent therefore gives a deadline no later than
// the server's expiry, however long the request and its answer took. Counting
// from the answer's arrival (as clientv3's KeepAlive does) is late by the
// answer's transit time, which a partition can make as long as it likes: the
// holder would still act on a lease the server has already given to nobody.
//
// When the deadline passes without a confirmed refresh, the keeper ends with
// ErrLeaseLost; when the server answers that the lease is unknown, with
// ErrLeaseExpired. Either way it calls end once and stops. stop ends it
// without calling end, for an owner that ends the lease itself.
type keeper struct {
	c   *Client
	id  clientv3.LeaseID
	end func(why error)

	mu       sync.Mutex
	ttl      time.Duration      // as last granted by the server
	sent     time.Time          // when the last confirmed refresh (or the grant) was sent
	deadline time.Time          // sent + ttl - safetyMargin(ttl), never moved back
	timer    *time.Timer        // fires at deadline, or earlier and re-arms
	cancel   context.CancelFunc // stops the refresh loop; nil until started
	halted   bool               // refreshing stopped; the deadline still counts
	over     bool               // ended or stopped: nothing more happens
	why      error              // why it ended; nil if stopped
}

// newKeeper follows a lease granted with ttl by a request sent at sent. It
// does not refresh the lease until start is called.
func newKeeper(c *Client, id clientv3.LeaseID, ttl time.Duration, sent time.Time, end func(error)) *keeper {
	k := &keeper{c: c, id: id, end: end, ttl: ttl, sent: sent}
	k.mu.Lock()
	defer k.mu.Unlock() // the timer's callback waits for k.timer to be set
	k.deadline = sent.Add(ttl - safetyMargin(ttl))
	k.timer = time.AfterFunc(time.Until(k.deadline), k.onTimer)
	return k
}

// safetyMargin is how much before sent+TTL the lease is given up. The
// send-time rule already keeps the deadline before the server's expiry;
// the margin covers what it cannot: the two clocks running at slightly
// different rates over the TTL, and the delay between the deadline and the
// moment holders, woken by a timer on a busy machine, actually stop. It is a
// tenth of the TTL, at most half a second, so that a short TTL keeps most of
// its length.
func safetyMargin(ttl time.Duration) time.Duration { return min(ttl/10, 500*time.Millisecond) }

// refreshInterval is how long after a confirmed refresh was sent the next
// one is sent: three refreshes per TTL, so that two can fail in a row
// before the deadline passes.
func refreshInterval(ttl time.Duration) time.Duration { return ttl / 3 }

// start begins refreshing the lease in the background. It returns why the
// keeper ended if it already has (nil if it was stopped or halted), and
// does nothing if it runs already.
func (k *keeper) start() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.over || k.halted || k.cancel != nil {
		return k.why
	}
	// The refreshes outlive any caller's ctx: they belong to the client.
	ctx, cancel := context.WithCancel(k.c.ctx)
	k.cancel = cancel
	k.c.goBackground(func() { k.run(ctx) })
	return nil
}

// started reports whether start began refreshing (it may have ended since).
func (k *keeper) started() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.cancel != nil
}

// halt stops refreshing for good, but keeps the deadline: a lease whose
// revocation failed still ends, lost, when nobody can rely on it any more.
func (k *keeper) halt() {
	k.mu.Lock()
	k.halted = true
	k.cancelLocked()
	k.mu.Unlock()
}

// stop ends the keeper without calling end. Calling it again is harmless.
func (k *keeper) stop() {
	k.mu.Lock()
	k.over = true
	k.timer.Stop()
	k.cancelLocked()
	k.mu.Unlock()
}

// finish ends the keeper with why, unless it ended or was stopped already.
func (k *keeper) finish(why error) {
	k.mu.Lock()
	if k.over {
		k.mu.Unlock()
		return
	}
	k.over, k.why = true, why
	k.timer.Stop()
	k.cancelLocked()
	k.mu.Unlock()
	k.noticeEnd(why)
	k.end(why)
}

// noticeEnd tells the Observer that the lease was lost or expired.
func (k *keeper) noticeEnd(why error) {
	kind := NoticeLeaseLost
	if errors.Is(why, ErrLeaseExpired) {
		kind = NoticeLeaseExpired
	}
	k.c.notice(k.c.ctx, Notice{Kind: kind, Value: int64(k.id), Err: why})
}

func (k *keeper) cancelLocked() {
	if k.cancel != nil {
		k.cancel()
	}
}

// onTimer runs at (or after) the deadline it was armed for. A refresh may
// have moved the deadline since: then it waits for the new one.
func (k *keeper) onTimer() {
	k.mu.Lock()
	left := time.Until(k.deadline)
	if left > 0 && !k.over {
		k.timer.Reset(left)
	}
	k.mu.Unlock()
	if left <= 0 {
		k.finish(ErrLeaseLost)
	}
}

// refreshed records that the server renewed the lease with ttl in answer
// to a request sent at sent, and returns the margin the refresh had: how
// long before the deadline it was sent.
func (k *keeper) refreshed(sent time.Time, ttl time.Duration) (margin time.Duration) {
	k.mu.Lock()
	defer k.mu.Unlock()
	margin = k.deadline.Sub(sent)
	k.ttl = ttl
	k.sent = sent
	// An earlier renewal still holds: the server never shortens a lease.
	if d := sent.Add(ttl - safetyMargin(ttl)); d.After(k.deadline) {
		k.deadline = d
	}
	return margin
}

// run refreshes the lease a refresh interval after each confirmed refresh
// was sent, and retries failed ones with a growing pause, until ctx ends:
// at the deadline (onTimer finishes the keeper, which cancels ctx), on
// stop or halt, or when the client closes. A transient failure never ends
// the lease early: only the deadline or the server's word do.
func (k *keeper) run(ctx context.Context) {
	const firstPause = 50 * time.Millisecond
	pause := retry.Backoff{Start: firstPause}
	for {
		k.mu.Lock()
		next, interval := k.sent.Add(refreshInterval(k.ttl)), refreshInterval(k.ttl)
		k.mu.Unlock()
		if !retry.Sleep(ctx, time.Until(next)) {
			return
		}
		sent := time.Now() // before the request leaves: the server renews later
		ttl, err := k.refreshOnce(ctx, interval)
		switch {
		case ctx.Err() != nil:
			return
		case err == nil:
			margin := k.refreshed(sent, ttl)
			k.c.notice(ctx, Notice{Kind: NoticeLeaseKeepAlive, Value: int64(k.id), Duration: margin})
			pause.Reset()
		case errors.Is(err, ErrLeaseExpired):
			k.finish(ErrLeaseExpired)
			return
		default:
			k.c.log.Debug("etcdkit: lease refresh failed, retrying", "lease", leaseKey(k.id), "error", err)
			// The pauses grow to half the refresh interval, which
			// changes with the lease's TTL.
			pause.Max = max(interval/2, firstPause)
			if !pause.Sleep(ctx) {
				return
			}
		}
	}
}

// refreshOnce sends one refresh on a stream of its own and returns the TTL
// the server renewed the lease with, or an error matching ErrLeaseExpired
// when the server does not know the lease. An attempt that has no answer
// within limit is abandoned, so that a connection that silently stopped
// carrying data does not hold the next attempt back.
//
// It uses the raw client's connection, whose interceptors and credentials
// add the auth token; leases are not namespaced, so a namespace changes
// nothing here.
func (k *keeper) refreshOnce(ctx context.Context, limit time.Duration) (time.Duration, error) {
	// Without a leader, a member answers at once rather than hold the
	// request: another attempt may reach one that has a leader.
	ctx, cancel := context.WithTimeout(requireLeader(ctx), limit)
	defer cancel() // ends the stream
	stream, err := pb.NewLeaseClient(k.c.raw.ActiveConnection()).LeaseKeepAlive(ctx, grpc.WaitForReady(true))
	if err != nil {
		return 0, mapError(err)
	}
	// A broken stream fails Send with io.EOF; Recv then says why.
	if err := stream.Send(&pb.LeaseKeepAliveRequest{ID: int64(k.id)}); err != nil && !errors.Is(err, io.EOF) {
		return 0, mapError(err)
	}
	resp, err := stream.Recv()
	if err != nil {
		return 0, mapError(err)
	}
	if resp.TTL <= 0 {
		return 0, ErrLeaseExpired // etcd's answer for a lease it does not hold
	}
	return time.Duration(resp.TTL) * time.Second, nil
}
