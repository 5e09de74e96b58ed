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
// The lease is considered gone, and [Lease.Done] is closed, as soon as it
// can no longer be relied on: when the server says it expired, when it is
// revoked, when its keep-alive has not succeeded for as long as its TTL
// (etcd may have expired it by then, so a lock or registration held by it
// must be given up), or when the client closes. [Lease.Err] says which.
type Lease struct {
	c   *Client
	id  clientv3.LeaseID
	ttl time.Duration

	mu         sync.Mutex
	deadline   time.Time   // when the lease expires unless refreshed
	expiry     *time.Timer // fires at deadline
	kaCancel   context.CancelFunc
	closing    bool // Client.Close is ending the lease
	done       chan struct{}
	err        error
	unregister func()
}

// Grant asks etcd for a lease that expires ttl after its last refresh. ttl
// is rounded up to whole seconds, as etcd counts in seconds, and must be at
// least one second, else Grant fails with [ErrInvalidTTL]; the server may
// grant a longer TTL than asked (its minimum is about 2s by default), which
// [Lease.TTL] reports. The lease is not kept alive until [Lease.KeepAlive]
// is called.
func (c *Client) Grant(ctx context.Context, ttl time.Duration) (*Lease, error) {
	if ttl < time.Second {
		return nil, &opError{op: "grant lease", err: fmt.Errorf("%w: %v is under one second", ErrInvalidTTL, ttl)}
	}
	if err := c.checkOpen("grant lease", ""); err != nil {
		return nil, err
	}
	secs := int64((ttl + time.Second - 1) / time.Second)
	start := time.Now() // the server counts from a moment after this
	ctx, cancel := c.bound(ctx)
	resp, err := c.raw.Lease.Grant(ctx, secs)
	cancel()
	if err != nil {
		return nil, opErr("grant lease", "", err)
	}
	if resp.Error != "" {
		return nil, &opError{op: "grant lease", err: errors.New(resp.Error)}
	}
	return c.newLease(resp.ID, time.Duration(resp.TTL)*time.Second, start)
}

func (c *Client) newLease(id clientv3.LeaseID, ttl time.Duration, start time.Time) (*Lease, error) {
	l := &Lease{c: c, id: id, ttl: ttl, deadline: start.Add(ttl), done: make(chan struct{})}
	l.mu.Lock()
	defer l.mu.Unlock()
	unregister, err := c.onClose(l.closeWithClient)
	if err != nil {
		// Close began while the lease was granted: let it expire.
		return nil, &opError{op: l.op(), err: ErrClosed}
	}
	l.unregister = unregister
	l.expiry = time.AfterFunc(ttl, l.expire)
	return l, nil
}

// ID returns the lease's ID, as etcd and etcdctl show it.
func (l *Lease) ID() int64 { return int64(l.id) }

// TTL returns the lease's time to live as granted by the server.
func (l *Lease) TTL() time.Duration { return l.ttl }

// Done returns a channel that is closed when the lease is gone: expired,
// revoked, kept alive unsuccessfully for longer than its TTL, or ended by
// [Client.Close]. [Lease.Err] says why.
func (l *Lease) Done() <-chan struct{} { return l.done }

// Err returns nil while the lease is live, then why [Lease.Done] closed: an
// error matching [ErrLeaseExpired] (the server expired it, or keep-alive
// failed for longer than the TTL), [ErrLeaseRevoked] or [ErrClosed].
func (l *Lease) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

// KeepAlive refreshes the lease in the background, about every third of
// its TTL, until [Lease.Revoke], [Client.Close] or the lease is lost. It
// returns at once: watch [Lease.Done] to learn of a loss. Calling it again
// is harmless. [Client.Close] revokes the leases it keeps alive, so their
// keys vanish at once; a lease nobody kept alive is left to expire. It fails with the lease's [Lease.Err] when the lease is
// already gone and with [ErrClosed] after Close.
func (l *Lease) KeepAlive() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil {
		return l.err
	}
	if l.closing || l.c.closed.Load() {
		return &opError{op: "keep alive " + l.op(), err: ErrClosed}
	}
	if l.kaCancel != nil {
		return nil
	}
	// The keep-alive outlives any caller's ctx: it belongs to the client.
	ctx, cancel := context.WithCancel(l.c.ctx)
	l.kaCancel = cancel
	// Holding l.mu orders this before closeWithClient, so Close waits for it.
	l.c.goBackground(func() { l.keepAlive(ctx) })
	return nil
}

// Revoke ends the lease now: etcd deletes its keys, and [Lease.Done] closes
// with [ErrLeaseRevoked]. It returns nil when the lease is already gone, so
// calling it twice is harmless. If the server cannot be reached, the
// keep-alive is stopped anyway, so the lease expires within its TTL.
func (l *Lease) Revoke(ctx context.Context) error {
	l.mu.Lock()
	revoked := errors.Is(l.err, ErrLeaseRevoked)
	l.stopKeepAliveLocked()
	l.mu.Unlock()
	if revoked {
		return nil
	}
	if err := l.c.checkOpen("revoke "+l.op(), ""); err != nil {
		return err
	}
	if err := l.revoke(ctx); err != nil {
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
	kept := l.kaCancel != nil && l.err == nil
	l.stopKeepAliveLocked()
	l.mu.Unlock()
	if kept {
		if err := l.revoke(ctx); err != nil {
			l.c.log.Warn("etcdkit: revoke lease on close", "lease", fmt.Sprintf("%x", int64(l.id)), "error", err)
		}
	}
	l.finish(ErrClosed)
}

func (l *Lease) stopKeepAliveLocked() {
	if l.kaCancel != nil {
		l.kaCancel()
	}
}

// keepAlive drains clientv3's keep-alive channel and moves the deadline on
// every response, until ctx ends or the lease is found gone.
func (l *Lease) keepAlive(ctx context.Context) {
	for ctx.Err() == nil {
		ch, err := l.c.raw.Lease.KeepAlive(ctx, l.id)
		if err != nil {
			// The raw client's lessor was closed under us: nothing will
			// refresh the lease, so the expiry timer ends it.
			l.c.log.Warn("etcdkit: lease keep-alive halted", "lease", fmt.Sprintf("%x", int64(l.id)), "error", err)
			return
		}
		for resp := range ch {
			l.refreshed(time.Duration(resp.TTL) * time.Second)
		}
		if ctx.Err() != nil {
			return
		}
		// clientv3 closes the channel when the server answers that the
		// lease is unknown, or when no answer came within the TTL. Ask,
		// within what is left of the TTL, which one it was.
		if l.gone(ctx) {
			l.finish(ErrLeaseExpired)
			return
		}
		sleepCtx(ctx, 100*time.Millisecond)
	}
}

// gone reports whether the server says the lease no longer exists. A
// server it cannot reach before the deadline leaves the answer to the
// expiry timer.
func (l *Lease) gone(ctx context.Context) bool {
	l.mu.Lock()
	deadline := l.deadline
	l.mu.Unlock()
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	resp, err := l.c.raw.Lease.TimeToLive(ctx, l.id)
	if err != nil {
		return errors.Is(mapError(err), ErrLeaseExpired)
	}
	if resp.TTL <= 0 {
		return true
	}
	l.refreshed(time.Duration(resp.TTL) * time.Second)
	return false
}

// refreshed moves the deadline to ttl from now.
func (l *Lease) refreshed(ttl time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil {
		return
	}
	l.deadline = time.Now().Add(ttl)
	l.expiry.Reset(ttl)
}

// expire runs when the deadline passes without a refresh.
func (l *Lease) expire() {
	l.mu.Lock()
	late := time.Now().Before(l.deadline) // a refresh raced the timer
	l.mu.Unlock()
	if !late {
		l.finish(ErrLeaseExpired)
	}
}

// finish ends the lease with why, once.
func (l *Lease) finish(why error) {
	l.mu.Lock()
	if l.err != nil {
		l.mu.Unlock()
		return
	}
	l.err = &opError{op: l.op(), err: why}
	l.expiry.Stop()
	l.stopKeepAliveLocked()
	close(l.done)
	unregister := l.unregister
	l.mu.Unlock()
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

// sleepCtx waits for d or until ctx ends, and reports whether d passed.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
