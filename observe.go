package etcdkit

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/peer"

	"github.com/etcdkit/etcdkit/internal/endpoint"
)

// observation is one operation being reported to the Client's Observer.
// A nil *observation, which opStart returns when there is no Observer,
// does nothing: that is what keeps an unobserved call free.
//
// It is also the ctx the operation runs with: the one OperationStart
// returned, in which the gRPC interceptor finds the observation to tell it
// which member answered. Being both saves an allocation per call.
type observation struct {
	context.Context // the one OperationStart returned
	c               *Client

	mu sync.Mutex // guards op.Server, set by the requests the operation sends
	op Operation
}

// Value finds the observation itself under observationKey.
func (o *observation) Value(key any) any {
	if key == (observationKey{}) {
		return o
	}
	return o.Context.Value(key)
}

// observationKey carries the running observation in a request's ctx, so
// that the gRPC interceptor can tell it which member answered.
type observationKey struct{}

// opStart reports the start of an operation to the Client's Observer and
// returns the ctx the operation runs with. With no Observer it returns ctx
// and nil, and costs nothing.
func (c *Client) opStart(ctx context.Context, name, prefix, key string) (context.Context, *observation) {
	if c.obs == nil {
		return ctx, nil
	}
	return c.startObservation(ctx, name, prefix, key)
}

func (c *Client) startObservation(ctx context.Context, name, prefix, key string) (context.Context, *observation) {
	o := &observation{c: c, op: Operation{
		Name: name, Prefix: prefix, Key: key, Start: time.Now(), Server: c.firstAddr,
	}}
	o.Context = c.obs.OperationStart(ctx, o.op)
	return o, o
}

// retried counts one more attempt after the first.
func (o *observation) retried() {
	if o != nil {
		o.mu.Lock()
		o.op.Retries++
		o.mu.Unlock()
	}
}

// retriedIn counts one more attempt of the operation observed in ctx, if
// any. Retry loops deep inside an operation (a lock's join, a queue's
// read) are handed its ctx, not its observation; without an Observer, ctx
// holds none and this costs a lookup and nothing else.
func retriedIn(ctx context.Context) {
	if o, ok := ctx.Value(observationKey{}).(*observation); ok {
		o.retried()
	}
}

// end reports the operation's return. It must be called once.
func (o *observation) end(rev int64, err error) {
	if o == nil {
		return
	}
	o.mu.Lock()
	op := o.op
	o.mu.Unlock()
	op.Revision, op.Err = rev, err
	o.c.obs.OperationEnd(o.Context, op)
}

func (o *observation) answeredBy(addr net.Addr) {
	server := o.c.addrString(addr)
	o.mu.Lock()
	o.op.Server = server
	o.mu.Unlock()
}

// namedAddr is an address with its String, kept so that the interceptor
// does not format the same member's address on every call.
type namedAddr struct {
	addr *net.TCPAddr
	name string
}

// addrString returns addr.String(), from the last one formatted when addr
// is the same connection's.
func (c *Client) addrString(addr net.Addr) string {
	tcp, ok := addr.(*net.TCPAddr)
	if !ok {
		return addr.String()
	}
	if last := c.lastAddr.Load(); last != nil && last.addr == tcp {
		return last.name
	}
	last := &namedAddr{addr: tcp, name: tcp.String()}
	c.lastAddr.Store(last)
	return last.name
}

// Observe reports an operation to the Client's [Observer], for packages
// built on etcdkit (such as discovery and admin) whose operations are not
// the Client's own: call it before the operation, run the operation with the
// ctx it returns, and call end once with the revision the operation saw or
// made (0 if none) and the error it returns. name and prefix are as in
// [Operation]; key is the key within prefix, or "".
//
// With no Observer it returns ctx and a function that does nothing, and
// allocates nothing.
func (c *Client) Observe(ctx context.Context, name, prefix, key string) (context.Context, func(rev int64, err error)) {
	ctx, o := c.opStart(ctx, name, prefix, key)
	if o == nil {
		return ctx, endNothing
	}
	return ctx, o.end
}

func endNothing(int64, error) {}

// notice tells the Observer of n and, when the Logger logs at debug level,
// logs it. Without either it costs nothing.
func (c *Client) notice(ctx context.Context, n Notice) {
	if c.obs != nil {
		c.obs.Notice(ctx, n)
	}
	if c.log.Enabled(ctx, slog.LevelDebug) {
		c.logNotice(ctx, n)
	}
}

// observed says whether a notice would go anywhere: to an Observer, or to
// a Logger that logs at debug level. Notices that cost something to make
// are made only then.
func (c *Client) observed(ctx context.Context) bool {
	return c.obs != nil || c.log.Enabled(ctx, slog.LevelDebug)
}

// logNotice logs n at debug level: the prefix, not the key.
func (c *Client) logNotice(ctx context.Context, n Notice) {
	attrs := make([]slog.Attr, 0, 5)
	if n.Prefix != "" {
		attrs = append(attrs, slog.String("prefix", n.Prefix))
	}
	if n.Revision != 0 {
		attrs = append(attrs, slog.Int64("revision", n.Revision))
	}
	if n.Value != 0 {
		attrs = append(attrs, slog.Int64("value", n.Value))
	}
	if n.Duration != 0 {
		attrs = append(attrs, slog.Duration("duration", n.Duration))
	}
	if n.Err != nil {
		attrs = append(attrs, slog.Any("error", n.Err))
	}
	msg := "etcdkit: " + strings.ReplaceAll(n.Kind.String(), "_", " ")
	c.log.LogAttrs(ctx, slog.LevelDebug, msg, attrs...)
}

// observeServer is the unary interceptor installed when an Observer is set:
// it notes, in the observation the request's ctx carries, which member
// answered. Requests outside an observed operation pass through untouched.
func observeServer(ctx context.Context, method string, req, reply any,
	cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	o, ok := ctx.Value(observationKey{}).(*observation)
	if !ok {
		return invoker(ctx, method, req, reply, cc, opts...)
	}
	var p peer.Peer
	err := invoker(ctx, method, req, reply, cc, append(opts, grpc.Peer(&p))...)
	if p.Addr != nil {
		o.answeredBy(p.Addr)
	}
	return err
}

// firstAddress is the address an operation reports when no member answered.
func firstAddress(endpoints []string) string {
	if len(endpoints) == 0 {
		return ""
	}
	ep, err := endpoint.Parse(endpoints[0])
	if err != nil {
		return ""
	}
	return ep.Addr()
}

// compactedAt returns the compaction point a CompactedError in err names,
// or 0.
func compactedAt(err error) int64 {
	var ce *CompactedError
	if errors.As(err, &ce) {
		return ce.Revision
	}
	return 0
}
