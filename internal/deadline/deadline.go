// Package deadline bounds requests whose context has no deadline, with
// deadlines shared by the requests that start close together.
package deadline

import (
	"context"
	"sync/atomic"
	"time"
)

// Bounds bounds calls whose ctx has no deadline by RequestTimeout, without
// paying for a timer per call. context.WithTimeout allocates a timer and a
// cancel context for every request; instead, calls that start within the same
// bucketWidth share one context that ends at the end of their bucket, so each
// call gets between RequestTimeout and RequestTimeout+bucketWidth.
//
// The bounded context ends at that time but does not report it as a
// deadline: gRPC would send a deadline to the server, which arms a timer of
// its own for every request. The call is still bounded, by the client: gRPC
// cancels the stream when the context ends, and the error is
// context.DeadlineExceeded.
type Bounds struct {
	timeout time.Duration
	parent  context.Context // the client's lifetime: Close ends every bucket
	cur     atomic.Pointer[bucket]
}

type bucket struct {
	ctx      context.Context
	cancel   context.CancelFunc // kept so the context can be freed; its timer does that at the deadline
	deadline time.Time
	bare     *boundCtx // the bounded view for callers whose ctx has no values
}

const bucketWidth = 10 * time.Millisecond

func noop() {}

// New returns the Bounds of requests that may take timeout, all ended when
// parent ends.
func New(parent context.Context, timeout time.Duration) *Bounds {
	return &Bounds{timeout: timeout, parent: parent}
}

// Timeout returns how long a request may take.
func (d *Bounds) Timeout() time.Duration { return d.timeout }

// Bound returns ctx bounded by the request timeout and the function to call
// when the request is done.
func (d *Bounds) Bound(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, noop
	}
	if ctx.Done() != nil {
		// A cancellable ctx must stay cancellable: it needs its own timer.
		return context.WithTimeout(ctx, d.timeout)
	}
	b := d.bucket()
	if ctx == context.Background() || ctx == context.TODO() {
		return b.bare, noop
	}
	return &boundCtx{Context: b.ctx, values: ctx}, noop
}

func (d *Bounds) bucket() *bucket {
	need := time.Now().Add(d.timeout)
	for {
		b := d.cur.Load()
		if b != nil && !b.deadline.Before(need) {
			return b
		}
		nb := &bucket{deadline: need.Add(bucketWidth)}
		// Nobody calls cancel early: the timer frees the context at its
		// deadline, and Close frees all of them through parent.
		nb.ctx, nb.cancel = context.WithDeadline(d.parent, nb.deadline)
		nb.bare = &boundCtx{Context: nb.ctx}
		if d.cur.CompareAndSwap(b, nb) {
			return nb
		}
	}
}

// boundCtx is a view of a bucket's context: it ends with it but reports no
// deadline (see Bounds), and it answers Value from the caller's ctx
// first, so request metadata survives.
type boundCtx struct {
	context.Context
	values context.Context // nil: no values of the caller's
}

func (c *boundCtx) Deadline() (time.Time, bool) { return time.Time{}, false }

func (c *boundCtx) Value(key any) any {
	if c.values != nil {
		if v := c.values.Value(key); v != nil {
			return v
		}
	}
	return c.Context.Value(key)
}

// Remaining is how long is left before ctx's deadline, or def when it has
// none.
func Remaining(ctx context.Context, def time.Duration) time.Duration {
	if dl, ok := ctx.Deadline(); ok {
		return time.Until(dl)
	}
	return def
}
