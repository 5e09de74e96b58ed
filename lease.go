package etcdkit

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Lease is a lease granted by etcd: keys written [WithLease] are deleted
// when it ends. Make one with [Client.Grant] and keep it alive with
// [Lease.KeepAlive]. It is safe for concurrent use.
//
// Two ends are told apart. The lease is lost when no refresh was confirmed
// in time: its deadline is the TTL counted from when the last confirmed
// refresh (or the grant) was sent, less a small margin, and since the
// server renews a lease only when a refresh reaches it, the deadline passes
// before the server can expire the lease. Whatever the lease protects (a
// lock, leadership, a registration) must stop then; its keys may still
// exist for a while. The lease is expired when the server answered that it
// no longer holds it: its keys are gone. [Lease.Done] closes at the first
// of these, or when the lease is revoked or the client closes, and
// [Lease.Err] says which.
type Lease struct {
	c   *Client
	id  clientv3.LeaseID
	ttl time.Duration
	ka  *keeper // the deadline, and the refreshes once KeepAlive is called

	mu         sync.Mutex
	closing    bool // Client.Close is ending the lease
	done       chan struct{}
	err        error
	unregister func()
}

// Grant asks etcd for a lease that expires ttl after its last refresh. ttl
// is rounded up to whole seconds, as etcd counts in seconds, and must be at
// least one second, else Grant fails with [ErrInvalidTTL]; the server may
// grant a longer TTL than asked (its minimum is about 2s by default), which
// [Lease.TTL] reports. The lease is not refreshed until [Lease.KeepAlive]
// is called: until then, it is lost (see [Lease.Err]) a little before its
// TTL has passed since Grant was called.
func (c *Client) Grant(ctx context.Context, ttl time.Duration) (*Lease, error) {
	if ttl < time.Second {
		return nil, &opError{op: "grant lease", err: fmt.Errorf("%w: %v is under one second", ErrInvalidTTL, ttl)}
	}
	if err := c.checkOpen("grant lease", ""); err != nil {
		return nil, err
	}
	ctx, o := c.opStart(ctx, OpLeaseGrant, "", "")
	l, rev, err := c.grant(ctx, ttl)
	o.end(rev, err)
	return l, err
}

// grant is Grant once ttl is checked; it returns the revision it saw.
func (c *Client) grant(ctx context.Context, ttl time.Duration) (*Lease, int64, error) {
	secs := int64((ttl + time.Second - 1) / time.Second)
	sent := time.Now() // the server counts from a moment after this
	ctx, cancel := c.bound(ctx)
	resp, err := c.raw.Lease.Grant(ctx, secs)
	cancel()
	if err != nil {
		return nil, 0, opErr("grant lease", "", err)
	}
	if resp.Error != "" {
		return nil, 0, &opError{op: "grant lease", err: errors.New(resp.Error)}
	}
	l, err := c.newLease(resp.ID, time.Duration(resp.TTL)*time.Second, sent)
	return l, resp.GetRevision(), err
}

func (c *Client) newLease(id clientv3.LeaseID, ttl time.Duration, sent time.Time) (*Lease, error) {
	l := &Lease{c: c, id: id, ttl: ttl, done: make(chan struct{})}
	l.mu.Lock()
	defer l.mu.Unlock()
	unregister, err := c.onClose(l.closeWithClient)
	if err != nil {
		// Close began while the lease was granted: let it expire.
		return nil, &opError{op: l.op(), err: ErrClosed}
	}
	l.unregister = unregister
	l.ka = newKeeper(c, id, ttl, sent, l.finish)
	return l, nil
}

// ID returns the lease's ID, as etcd and etcdctl show it.
func (l *Lease) ID() int64 { return int64(l.id) }

// TTL returns the lease's time to live as granted by the server.
func (l *Lease) TTL() time.Duration { return l.ttl }

// Done returns a channel that is closed, once, as soon as the lease can no
// longer be relied on: lost, expired, revoked, or ended by [Client.Close].
// [Lease.Err] says which.
func (l *Lease) Done() <-chan struct{} { return l.done }

// Err returns nil until [Lease.Done] is closed, and from then on always the
// same error, which matches exactly one of these:
//   - [ErrLeaseLost]: no refresh was confirmed before the deadline (see
//     [Lease]); this is how a lease nobody keeps alive ends by itself. The
//     server may still hold the lease and its keys, until a TTL after the
//     last refresh that reached it. Nothing refreshes the lease or asks the
//     server about it afterwards, so Err never turns into ErrLeaseExpired;
//     [Lease.Revoke] still deletes the keys at once.
//   - [ErrLeaseExpired]: the server answered a refresh saying it no longer
//     holds the lease: its keys are deleted, and reading one finds
//     [ErrNotFound].
//   - [ErrLeaseRevoked]: [Lease.Revoke] revoked it.
//   - [ErrClosed]: [Client.Close] ended it.
func (l *Lease) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

// KeepAlive refreshes the lease in the background until [Lease.Revoke],
// [Client.Close] or the end of the lease. A refresh is sent a third of the
// TTL after the last confirmed one was sent; a failed one is retried, with
// growing pauses, until the deadline (see [Lease]), so a passing network
// failure does not end the lease. It returns at once: watch [Lease.Done]
// to learn of the end. Calling it again is harmless. [Client.Close]
// revokes the leases it keeps alive, so their keys vanish at once; a lease
// nobody kept alive is left to expire. It fails with the lease's
// [Lease.Err] when the lease is already gone and with [ErrClosed] after
// Close.
func (l *Lease) KeepAlive() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil {
		return l.err
	}
	if l.closing || l.c.closed.Load() {
		return &opError{op: "keep alive " + l.op(), err: ErrClosed}
	}
	// Holding l.mu orders this before closeWithClient, so Close waits for
	// the refreshes to stop.
	if why := l.ka.start(); why != nil {
		// The deadline passed just now: l.finish waits for l.mu.
		return &opError{op: l.op(), err: why}
	}
	return nil
}

// Revoke ends the lease now: etcd deletes its keys, and [Lease.Done] closes
// with [ErrLeaseRevoked] unless it closed before. It returns nil when the
// lease is already gone, so calling it twice is harmless. Refreshes stop
// even when the server cannot be reached: Revoke then fails, and the lease
// is lost at its deadline.
func (l *Lease) Revoke(ctx context.Context) error {
	l.mu.Lock()
	revoked := errors.Is(l.err, ErrLeaseRevoked)
	l.mu.Unlock()
	l.ka.halt()
	if revoked {
		return nil
	}
	if err := l.c.checkOpen("revoke "+l.op(), ""); err != nil {
		return err
	}
	ctx, o := l.c.opStart(ctx, OpLeaseRevoke, "", "")
	err := l.revoke(ctx)
	o.end(0, err)
	if err != nil {
		return err
	}
	l.finish(ErrLeaseRevoked)
	return nil
}

func (l *Lease) revoke(ctx context.Context) error {
	ctx, cancel := l.c.bound(ctx)
	_, err := l.c.raw.Lease.Revoke(ctx, l.id)
	cancel()
	err = mapError(err)
	if err != nil && !errors.Is(err, ErrLeaseExpired) { // an unknown lease is gone already
		return opErr("revoke "+l.op(), "", err)
	}
	return nil
}

// closeWithClient runs when the client closes: the lease is revoked if it
// was being kept alive, so its keys disappear at once rather than one TTL
// later; a lease nobody kept alive is left to expire at its own time.
func (l *Lease) closeWithClient(ctx context.Context) {
	l.mu.Lock()
	l.closing = true
	kept := l.ka.started() && l.err == nil
	l.mu.Unlock()
	l.ka.stop()
	if kept {
		if err := l.revoke(ctx); err != nil {
			l.c.log.Warn("etcdkit: revoke lease on close", "lease", fmt.Sprintf("%x", int64(l.id)), "error", err)
		}
	}
	l.finish(ErrClosed)
}

// finish ends the lease with why, once.
func (l *Lease) finish(why error) {
	l.mu.Lock()
	if l.err != nil {
		l.mu.Unlock()
		return
	}
	l.err = &opError{op: l.op(), err: why}
	close(l.done)
	unregister := l.unregister
	l.mu.Unlock()
	l.ka.stop()
	unregister()
}

func (l *Lease) op() string { return fmt.Sprintf("lease %x", int64(l.id)) }

// WithLease attaches the key to l: etcd deletes the key when the lease
// ends. A nil lease attaches nothing.
func WithLease(l *Lease) PutOption {
	return putOptionFunc(func(o *putOptions) {
		if l != nil {
			o.lease = l.id
		}
	})
}
