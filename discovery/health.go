package discovery

import (
	"context"
	"fmt"
	"time"

	"github.com/etcdkit/etcdkit"
	"github.com/etcdkit/etcdkit/internal/errs"
)

// SetStatus sets the instance's status by hand, with output saying why
// (it may be empty), and returns once etcd holds the new status. It is
// meant for instances that judge their own health, such as a worker that
// reports how far behind it is; for a status the instance must keep
// confirming, call it on a timer of your own.
//
// With checks ([WithCheck]), the instance's status is the worst of the
// checks' and of the one set here, which starts passing. After
// [Registration.Drain] the status stays critical.
//
// The status is kept with the instance: it is put back with it after a
// lost lease, a deleted key or an overwrite (see [Register]). SetStatus
// fails with an error matching [etcdkit.ErrInvalidArgument] for a status
// that is none of [Passing], [Warning] and [Critical], and
// [etcdkit.ErrClosed] once the registration is closed; if ctx ends before
// the status is stored, it returns ctx's error, and the status is stored
// as soon as etcd answers. While another registration of the same ID
// holds the key, nothing is written: SetStatus waits for ctx.
func (r *Registration) SetStatus(ctx context.Context, s Status, output string) error {
	if !s.valid() {
		return &errs.Op{Op: "set status", Key: r.key, Err: fmt.Errorf("%w: status %d", etcdkit.ErrInvalidArgument, uint8(s))}
	}
	if r.closed() {
		return &errs.Op{Op: "set status", Key: r.key, Err: etcdkit.ErrClosed}
	}
	r.mu.Lock()
	r.manual = Health{Status: s, Output: output}
	version := r.recompute()
	r.mu.Unlock()
	if err := r.waitStored(ctx, version); err != nil {
		return &errs.Op{Op: "set status", Key: r.key, Err: err}
	}
	return nil
}

// Health returns the instance's status as this registration last set it;
// etcd may not hold it yet.
func (r *Registration) Health() Health {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.health
}

// Done returns a channel that is closed when the registration stops
// keeping its instance: after [Registration.Close], the client's Close, or
// a deregistration for being critical too long ([DeregisterCriticalAfter]).
func (r *Registration) Done() <-chan struct{} { return r.ended }

// Err returns why the registration stopped by itself: nil while it is
// open and after [Registration.Close]; an error matching
// [etcdkit.ErrClosed] after the client's Close or after a deregistration
// for being critical too long, which says so.
func (r *Registration) Err() error {
	if !r.closed() {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return r.err
	}
	select {
	case <-r.c.Done():
		return &errs.Op{Op: "register", Key: r.key, Err: etcdkit.ErrClosed}
	default:
		return nil
	}
}

// closed reports whether the registration stopped keeping its instance.
func (r *Registration) closed() bool {
	select {
	case <-r.ended:
		return true
	default:
		return false
	}
}

// start sets the first status and encodes the first value to store. With
// checks, each check starts in the given status, and the hand-set one
// passing.
func (r *Registration) start(first Health) error {
	if first.Since.IsZero() {
		first.Since = time.Now()
	}
	if len(r.checks) == 0 {
		r.manual = first
	}
	for _, ch := range r.checks {
		ch.status, ch.output = first.Status, first.Output
	}
	r.health = first
	val, err := r.encode(storedHealth(first))
	r.val = val
	return err
}

// storedHealth returns what a record holds for h: nothing while passing
// without output, so that such a record reads exactly like etcd's own.
func storedHealth(h Health) *Health {
	if h.Status == Passing && h.Output == "" {
		return nil
	}
	return &h
}

// recompute makes the instance's status from the checks', the hand-set one
// and Drain's, stores it in val when it changed, wakes the loop that puts
// it, and returns the version of val. The caller holds mu.
func (r *Registration) recompute() uint64 {
	worst := r.manual
	if r.draining {
		worst = Health{Status: Critical, Output: "draining"}
	}
	for _, ch := range r.checks {
		if ch.status > worst.Status {
			worst = Health{Status: ch.status, Output: ch.output}
		}
	}
	if worst.Status == r.health.Status && worst.Output == r.health.Output {
		return r.version
	}
	worst.Since = r.health.Since
	if worst.Status != r.health.Status {
		worst.Since = time.Now()
	}
	val, err := r.encode(storedHealth(worst))
	if err != nil {
		return r.version // the metadata encoded at Register: it still does
	}
	r.health, r.val = worst, val
	r.version++
	r.signal()
	select {
	case r.wake <- struct{}{}:
	default: // already woken: the loop reads the newest val
	}
	return r.version
}

// signal tells the waiters of changed that something changed. The caller
// holds mu.
func (r *Registration) signal() {
	close(r.changed)
	r.changed = make(chan struct{})
}

// current returns the value to store now and its version.
func (r *Registration) current() ([]byte, uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.val, r.version
}

// stored records that etcd holds version of val (or a later one).
func (r *Registration) stored(version uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if version > r.written {
		r.written = version
		r.signal()
	}
}

// waitStored waits until etcd holds version of val, ctx ends or the
// registration stops.
func (r *Registration) waitStored(ctx context.Context, version uint64) error {
	for {
		r.mu.Lock()
		written, changed := r.written, r.changed
		r.mu.Unlock()
		if written >= version {
			return nil
		}
		select {
		case <-changed:
		case <-r.ended:
			return etcdkit.ErrClosed
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
