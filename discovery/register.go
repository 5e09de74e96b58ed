package discovery

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/etcdkit/etcdkit"
)

// DefaultTTL is the lease TTL of a registration without [WithTTL]: an
// instance whose process dies disappears within about this long.
const DefaultTTL = 10 * time.Second

// Bounds of the pause between two attempts to register again after the
// lease was lost. The cap is short so that an instance is back soon after
// etcd is.
const (
	minRetryPause = 100 * time.Millisecond
	maxRetryPause = time.Second
	// attemptTimeout bounds one attempt to register again; a server that
	// comes back answers a waiting attempt at once.
	attemptTimeout = 5 * time.Second
)

// RegisterOption changes how [Register] registers an instance.
type RegisterOption interface {
	applyRegister(*registerOptions)
}

type registerOptions struct {
	ttl time.Duration
}

type registerOptionFunc func(*registerOptions)

func (f registerOptionFunc) applyRegister(o *registerOptions) { f(o) }

// WithTTL sets the TTL of the registration's lease (default [DefaultTTL]):
// how long the instance stays registered after its process dies without
// [Registration.Close]. It must be at least one second, else Register fails
// with [etcdkit.ErrInvalidTTL]; etcd may grant more than asked.
func WithTTL(d time.Duration) RegisterOption {
	return registerOptionFunc(func(o *registerOptions) { o.ttl = d })
}

// Registration is an instance registered by [Register]. It stays registered
// until [Registration.Close] or the client's Close, registering itself
// again whenever its lease is lost. It is safe for concurrent use.
type Registration struct {
	key   string // service/ID, relative to the client's namespace
	ttl   time.Duration
	c     *etcdkit.Client
	put   func(ctx context.Context, l *etcdkit.Lease) error
	stop  context.CancelFunc // ends the background loop
	ended chan struct{}      // closed when the loop returned

	mu    sync.Mutex
	lease *etcdkit.Lease // nil while registering again

	closeOnce sync.Once
	closeErr  error
}

// Register registers inst as an instance of service under a lease kept
// alive in the background, and returns once the instance is visible in
// etcd. An instance registered before with the same ID is replaced. ctx
// bounds this first registration only: the registration lives on until
// [Registration.Close] or the client's Close.
//
// If the lease is lost while the registration is open (etcd restarted after
// more than the TTL, its data was wiped, or it was unreachable for longer
// than the TTL), the instance is registered again with a new lease as soon
// as etcd answers, retrying about every second.
//
// Register fails, leaving nothing behind in etcd, with an error matching
// [etcdkit.ErrInvalidArgument] for an empty service or ID, an ID with a
// '/', or an empty Addr; [etcdkit.ErrInvalidTTL] for a TTL under one
// second; [etcdkit.ErrUnavailable] or ctx's error when etcd does not
// answer; [etcdkit.ErrClosed] after the client's Close.
func Register(ctx context.Context, c *etcdkit.Client, service string, inst Instance, opts ...RegisterOption) (*Registration, error) {
	return RegisterOf(ctx, c, service, inst, opts...)
}

// RegisterOf is [Register] for an instance with metadata of type M, which
// must encode to JSON.
func RegisterOf[M any](ctx context.Context, c *etcdkit.Client, service string, inst InstanceOf[M], opts ...RegisterOption) (*Registration, error) {
	o := registerOptions{ttl: DefaultTTL}
	for _, opt := range opts {
		if opt != nil {
			opt.applyRegister(&o)
		}
	}
	if err := checkInstance("register", service, inst); err != nil {
		return nil, err
	}
	if c == nil {
		return nil, &opError{op: "register", key: service + "/" + inst.ID, err: fmt.Errorf("%w: nil client", etcdkit.ErrInvalidArgument)}
	}
	if o.ttl < time.Second {
		return nil, &opError{op: "register", key: service + "/" + inst.ID, err: fmt.Errorf("%w: %v is under one second", etcdkit.ErrInvalidTTL, o.ttl)}
	}
	kv := instances[M](c, service)
	rec := record[M]{Addr: inst.Addr, Metadata: inst.Metadata}
	r := &Registration{
		key: service + "/" + inst.ID,
		ttl: o.ttl,
		c:   c,
		put: func(ctx context.Context, l *etcdkit.Lease) error {
			_, err := kv.Put(ctx, inst.ID, rec, etcdkit.WithLease(l))
			return err
		},
		ended: make(chan struct{}),
	}
	lease, err := r.register(ctx)
	if err != nil {
		return nil, &opError{op: "register", key: r.key, err: err}
	}
	r.lease = lease
	var loopCtx context.Context
	loopCtx, r.stop = context.WithCancel(context.Background())
	go r.run(loopCtx, lease)
	return r, nil
}

// Key returns the instance's key in etcd, "service/ID" (within the
// client's namespace, if it has one).
func (r *Registration) Key() string { return r.key }

// Close deregisters the instance at once: its lease is revoked, which
// deletes its key, and the keep-alive stops. It is safe to call more than
// once; later calls return the first call's result. If etcd cannot be
// reached within ctx, Close returns the error and the key disappears when
// the lease expires, one TTL later. After the client's Close, which revokes
// the lease itself, Close returns nil.
func (r *Registration) Close(ctx context.Context) error {
	r.closeOnce.Do(func() {
		r.stop()
		<-r.ended
		r.mu.Lock()
		lease := r.lease
		r.lease = nil
		r.mu.Unlock()
		if lease == nil || lease.Err() != nil {
			return // lost or ended with the client: nothing holds the key
		}
		if err := lease.Revoke(ctx); err != nil && !errors.Is(err, etcdkit.ErrClosed) {
			r.closeErr = &opError{op: "deregister", key: r.key, err: err}
		}
	})
	return r.closeErr
}

// register grants a lease, keeps it alive and puts the instance under it.
// On failure it revokes the lease, so nothing is left behind.
func (r *Registration) register(ctx context.Context) (*etcdkit.Lease, error) {
	lease, err := r.c.Grant(ctx, r.ttl)
	if err != nil {
		return nil, err
	}
	if err = lease.KeepAlive(); err == nil {
		err = r.put(ctx, lease)
	}
	if err != nil {
		// The caller's ctx may be what failed: revoke within a fresh bound.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		_ = lease.Revoke(rctx) // else the lease expires in one TTL, unrefreshed
		cancel()
		return nil, err
	}
	return lease, nil
}

// run waits for the lease to be lost, then registers again, until ctx ends
// or the client closes.
func (r *Registration) run(ctx context.Context, lease *etcdkit.Lease) {
	defer close(r.ended)
	for {
		select {
		case <-ctx.Done():
			return
		case <-lease.Done():
		}
		if errors.Is(lease.Err(), etcdkit.ErrClosed) {
			return // the client closed, and revoked the lease
		}
		if lease = r.reregister(ctx); lease == nil {
			return
		}
	}
}

// reregister registers the instance again with a new lease, pausing
// between failed attempts, and returns the lease; it returns nil when ctx
// ends or the client closes first.
func (r *Registration) reregister(ctx context.Context) *etcdkit.Lease {
	r.mu.Lock()
	r.lease = nil
	r.mu.Unlock()
	// The client's end must end an attempt too: clientv3 retries a call
	// on a dead connection until the call's own ctx ends.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := afterDone(r.c.Done(), cancel)
	defer stop()
	pause := minRetryPause
	for {
		actx, cancel := context.WithTimeout(ctx, attemptTimeout)
		lease, err := r.register(actx)
		cancel()
		if err == nil {
			// Stored before looking at ctx, so that Close revokes it.
			r.mu.Lock()
			r.lease = lease
			r.mu.Unlock()
			return lease
		}
		if errors.Is(err, etcdkit.ErrClosed) || !sleep(ctx, pause) {
			return nil
		}
		pause = min(2*pause, maxRetryPause)
	}
}

// sleep waits for d, and reports false if ctx ended first.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// afterDone calls f once done is closed, unless stop is called first.
func afterDone(done <-chan struct{}, f func()) (stop func()) {
	quit := make(chan struct{})
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		select {
		case <-done:
			f()
		case <-quit:
		}
	}()
	return func() {
		close(quit)
		<-exited
	}
}
