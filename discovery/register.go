package discovery

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/etcdkit/etcdkit"
	"github.com/etcdkit/etcdkit/internal/errs"
	"github.com/etcdkit/etcdkit/internal/retry"
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
	ttl           time.Duration
	checks        []checkSpec
	criticalAfter time.Duration // 0: never deregistered for being critical
	err           error         // the first bad option
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
// until [Registration.Close] or the client's Close: it keeps its key, and
// registers itself again whenever its lease is lost (see [Register]). It is
// safe for concurrent use.
type Registration struct {
	key    string // service/ID, relative to the client's namespace
	id     string
	ttl    time.Duration
	c      *etcdkit.Client
	kv     *etcdkit.KV[[]byte]           // the service's keys, values as stored
	encode func(*Health) ([]byte, error) // the instance's record with a health
	stop   context.CancelFunc            // ends the background work
	ended  chan struct{}                 // closed when the background work returned
	wake   chan struct{}                 // (buffered) val changed: put it

	checks        []*check
	criticalAfter time.Duration

	mu       sync.Mutex
	lease    *etcdkit.Lease // nil while registering again
	val      []byte         // the record to store now, to tell it from others
	version  uint64         // counts the changes of val
	written  uint64         // the version of val last known to be stored
	changed  chan struct{}  // closed and replaced when version or written grows
	health   Health         // what val holds
	manual   Health         // what SetStatus set
	draining bool           // Drain called: critical from now on
	err      error          // why the background work ended by itself

	closeOnce sync.Once
	closeErr  error
}

// Register registers inst as an instance of service under a lease kept
// alive in the background, and returns once the instance is visible in
// etcd. An instance registered before with the same ID is replaced. ctx
// bounds this first registration only: the registration lives on until
// [Registration.Close] or the client's Close.
//
// While it is open, the registration watches its key and puts it back,
// under its lease, when the key is deleted (etcdctl del, or the Close of
// another registration of the same ID) or overwritten by a value on no
// lease or on its own lease. It resumes watching after a compaction or a
// restart of etcd by reading the key again. A failed attempt is retried
// after a pause that grows to about a second; one that may have been
// applied is checked by reading the key before trying again.
//
// Two open registrations of the same ID conflict, and the last one to
// register wins: the other leaves the key alone while it is held by
// another lease, and puts its own instance back once that key is deleted
// or its lease ends, for instance when the winner closes. A registration
// writes over a key held by another lease only when it registers (here,
// and again after losing its lease), never in answer to a change, so two
// registrations cannot keep overwriting each other.
//
// If the lease is lost while the registration is open (etcd restarted after
// more than the TTL, its data was wiped, or it was unreachable for longer
// than the TTL), the instance is registered again with a new lease as soon
// as etcd answers, retrying about every second.
//
// What is put back is the instance as it stands then: with its current
// status ([WithCheck], [Registration.SetStatus]), not the one it was
// registered with.
//
// Register fails, leaving nothing behind in etcd, with an error matching
// [etcdkit.ErrInvalidArgument] for an empty service or ID, an ID with a
// '/', an empty Addr or one with a space or control character, a status
// in inst.Health that is none of the three, metadata that does not encode
// to JSON, or a bad [WithCheck] or [DeregisterCriticalAfter];
// [etcdkit.ErrInvalidTTL] for a TTL under one second;
// [etcdkit.ErrUnavailable] or ctx's error when etcd does not answer;
// [etcdkit.ErrClosed] after the client's Close.
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
	key := service + "/" + inst.ID
	if err := o.check(c); err != nil {
		return nil, &errs.Op{Op: "register", Key: key, Err: err}
	}
	encode := func(h *Health) ([]byte, error) {
		return recordCodec[M]{}.Encode(record[M]{Addr: inst.Addr, Metadata: inst.Metadata, Health: h})
	}
	r := &Registration{
		key:           key,
		id:            inst.ID,
		ttl:           o.ttl,
		c:             c,
		kv:            etcdkit.NewKV(c, service+"/", etcdkit.Bytes()),
		encode:        encode,
		ended:         make(chan struct{}),
		wake:          make(chan struct{}, 1),
		changed:       make(chan struct{}),
		criticalAfter: o.criticalAfter,
	}
	for _, spec := range o.checks {
		r.checks = append(r.checks, &check{spec: spec})
	}
	if err := r.start(inst.Health); err != nil {
		return nil, &errs.Op{Op: "register", Key: key, Err: fmt.Errorf("%w: encode: %w", etcdkit.ErrInvalidArgument, err)}
	}
	octx, end := c.Observe(ctx, "register", service+"/", inst.ID)
	lease, rev, err := r.register(octx)
	end(rev, err)
	if err != nil {
		return nil, &errs.Op{Op: "register", Key: r.key, Err: err}
	}
	r.lease = lease
	var loopCtx context.Context
	loopCtx, r.stop = context.WithCancel(context.Background())
	r.runAll(loopCtx, lease, rev)
	return r, nil
}

// check validates the options and the client Register was given.
func (o *registerOptions) check(c *etcdkit.Client) error {
	switch {
	case c == nil:
		return fmt.Errorf("%w: nil client", etcdkit.ErrInvalidArgument)
	case o.err != nil:
		return o.err
	case o.ttl < time.Second:
		return fmt.Errorf("%w: %v is under one second", etcdkit.ErrInvalidTTL, o.ttl)
	}
	return nil
}

// runAll starts the background work: the loop that keeps the key, the
// checks, and the watch on a critical status; ended is closed once all of
// it has returned.
func (r *Registration) runAll(ctx context.Context, lease *etcdkit.Lease, rev int64) {
	var wg sync.WaitGroup
	wg.Go(func() { r.run(ctx, lease, rev) })
	for _, ch := range r.checks {
		wg.Go(func() { ch.run(ctx, r) })
	}
	if r.criticalAfter > 0 {
		wg.Go(func() { r.deregisterWhenCritical(ctx) })
	}
	go func() {
		wg.Wait()
		r.revokeIfExpired()
		close(r.ended)
	}()
}

// Key returns the instance's key in etcd, "service/ID" (within the
// client's namespace, if it has one).
func (r *Registration) Key() string { return r.key }

// Close deregisters the instance at once: the background work stops, so
// nothing puts the key back any more, then the lease is revoked, which
// deletes the key. It is safe to call more than once; later calls return
// the first call's result. If the revoke fails (etcd out of reach within
// ctx, or an answer lost), Close returns its error, matching
// [etcdkit.ErrUnavailable], or [context.DeadlineExceeded] when no answer
// came within ctx or the client's RequestTimeout (ctx's error if it was
// cancelled), and the key disappears when the lease expires, at most one
// TTL later, since nothing refreshes it any more. After the client's Close, which revokes the lease itself,
// Close returns nil.
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
		octx, end := r.c.Observe(ctx, "deregister", r.kv.Prefix(), r.id)
		err := lease.Revoke(octx)
		end(0, err)
		if err != nil && !errors.Is(err, etcdkit.ErrClosed) {
			r.closeErr = &errs.Op{Op: "deregister", Key: r.key, Err: err}
		}
	})
	return r.closeErr
}

// register grants a lease, keeps it alive and puts the instance under it,
// and returns the lease and the revision of the put. On failure it revokes
// the lease, so nothing is left behind.
func (r *Registration) register(ctx context.Context) (*etcdkit.Lease, int64, error) {
	lease, err := r.c.Grant(ctx, r.ttl)
	if err != nil {
		return nil, 0, err
	}
	var rev int64
	if err = lease.KeepAlive(); err == nil {
		rev, err = r.put(ctx, lease)
	}
	if err != nil {
		// The caller's ctx may be what failed: revoke within a fresh bound.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		_ = lease.Revoke(rctx) // else the lease expires in one TTL, unrefreshed
		cancel()
		return nil, 0, err
	}
	return lease, rev, nil
}

// put writes the instance under lease and returns the revision of the write.
func (r *Registration) put(ctx context.Context, lease *etcdkit.Lease) (int64, error) {
	val, version := r.current()
	rev, err := r.kv.Put(ctx, r.id, val, etcdkit.WithLease(lease))
	if err == nil {
		r.stored(version)
	}
	return rev, err
}

// run keeps the key under lease, and registers again whenever the lease is
// lost, until ctx ends or the client closes.
func (r *Registration) run(ctx context.Context, lease *etcdkit.Lease, rev int64) {
	// The client's end must end the loop too: clientv3 retries a call on
	// a dead connection until the call's own ctx ends.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := afterDone(r.c.Done(), cancel)
	defer stop()
	for {
		r.hold(ctx, lease, rev)
		if ctx.Err() != nil || errors.Is(lease.Err(), etcdkit.ErrClosed) {
			return // closed, or the client closed and revoked the lease
		}
		if lease, rev = r.reregister(ctx); lease == nil {
			return
		}
	}
}

// reregister registers the instance again with a new lease, pausing
// between failed attempts, and returns the lease and the revision of the
// put; it returns a nil lease when ctx ends or the client closes first.
func (r *Registration) reregister(ctx context.Context) (*etcdkit.Lease, int64) {
	r.mu.Lock()
	r.lease = nil
	r.mu.Unlock()
	pause := retry.Backoff{Start: minRetryPause, Max: maxRetryPause}
	for {
		actx, cancel := context.WithTimeout(ctx, attemptTimeout)
		lease, rev, err := r.register(actx)
		cancel()
		if err == nil {
			// Stored before looking at ctx, so that Close revokes it.
			r.mu.Lock()
			r.lease = lease
			r.mu.Unlock()
			return lease, rev
		}
		if errors.Is(err, etcdkit.ErrClosed) || !pause.Sleep(ctx) {
			return nil, 0
		}
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
