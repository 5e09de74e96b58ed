package discovery

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/etcdkit/etcdkit"
	"github.com/etcdkit/etcdkit/internal/errs"
	"github.com/etcdkit/etcdkit/internal/retry"
)

// DeregisterCriticalAfter deregisters the instance once it has been
// critical for d without a break, as Close would: its key goes at once,
// and nothing puts it back. [Registration.Done] is then closed and
// [Registration.Err] says why. Without it an instance stays registered
// whatever its status. d must be positive, else Register fails with an
// error matching [etcdkit.ErrInvalidArgument].
func DeregisterCriticalAfter(d time.Duration) RegisterOption {
	return registerOptionFunc(func(o *registerOptions) {
		if d <= 0 && o.err == nil {
			o.err = fmt.Errorf("%w: DeregisterCriticalAfter(%v) is not positive", etcdkit.ErrInvalidArgument, d)
		}
		o.criticalAfter = d
	})
}

// Drain takes the instance out of service gracefully: it marks it
// critical (output "draining"), waits until etcd holds that, so that
// resolvers that dial passing instances only ([NewResolver]) stop sending
// it new calls, then waits d for clients to notice and calls in flight to
// end, and deregisters it with [Registration.Close]. Its status stays
// critical meanwhile, whatever its checks say.
//
// If ctx ends first, Drain deregisters at once, within a few seconds, and
// returns ctx's error. Otherwise it returns Close's error; [etcdkit.ErrClosed]
// when the registration was closed already.
func (r *Registration) Drain(ctx context.Context, d time.Duration) error {
	if r.closed() {
		return &errs.Op{Op: "drain", Key: r.key, Err: etcdkit.ErrClosed}
	}
	r.mu.Lock()
	r.draining = true
	version := r.recompute()
	r.mu.Unlock()
	err := r.waitStored(ctx, version)
	if errors.Is(err, etcdkit.ErrClosed) {
		return &errs.Op{Op: "drain", Key: r.key, Err: err}
	}
	if err == nil && !retry.Sleep(ctx, d) {
		err = ctx.Err()
	}
	if err != nil {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), attemptTimeout)
		defer cancel()
		return errors.Join(&errs.Op{Op: "drain", Key: r.key, Err: err}, r.Close(cctx))
	}
	return r.Close(ctx)
}

// deregisterWhenCritical ends the registration once its status has been
// critical for criticalAfter, until ctx ends.
func (r *Registration) deregisterWhenCritical(ctx context.Context) {
	for {
		r.mu.Lock()
		h, changed := r.health, r.changed
		r.mu.Unlock()
		if h.Status != Critical {
			select {
			case <-ctx.Done():
				return
			case <-changed:
				continue
			}
		}
		if r.expireAt(ctx, h.Since.Add(r.criticalAfter), changed) {
			return
		}
	}
}

// expireAt waits until at, and ends the registration if it is still
// critical since the same time then. It returns true when the waiting is
// over for good: the registration ended, or ctx did.
func (r *Registration) expireAt(ctx context.Context, at time.Time, changed <-chan struct{}) bool {
	t := time.NewTimer(time.Until(at))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return true
	case <-changed:
		return false
	case <-t.C:
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.health.Status != Critical || !r.health.Since.Add(r.criticalAfter).Equal(at) {
		return false
	}
	r.err = &errs.Op{Op: "deregister", Key: r.key, Err: fmt.Errorf("%w: critical for %v: %s", etcdkit.ErrClosed, r.criticalAfter, r.health.Output)}
	r.stop()
	return true
}

// revokeIfExpired revokes the lease of a registration that ended for being
// critical too long, once its background work is over. If the revoke
// fails, the lease, no longer kept alive, expires within one TTL.
func (r *Registration) revokeIfExpired() {
	r.mu.Lock()
	expired, lease := r.err != nil, r.lease
	if expired {
		r.lease = nil
	}
	r.mu.Unlock()
	if !expired || lease == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), attemptTimeout)
	defer cancel()
	_ = lease.Revoke(ctx) // on failure the lease expires unrefreshed
}
