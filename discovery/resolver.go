package discovery

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/attributes"
	"google.golang.org/grpc/resolver"

	"github.com/etcdkit/etcdkit"
	"github.com/etcdkit/etcdkit/internal/errs"
	"github.com/etcdkit/etcdkit/internal/retry"
)

// Scheme is the URI scheme of the targets [NewResolver]'s builder
// resolves: "etcdkit:///greeter" names the instances of service "greeter".
const Scheme = "etcdkit"

// ResolverOption changes what [NewResolver]'s resolvers dial; [WithStatus]
// is one.
type ResolverOption interface {
	applyResolver(*resolverOptions)
}

type resolverOptions struct {
	filter *StatusFilter
}

// NewResolver returns a gRPC resolver builder for targets
// "etcdkit:///service", to pass to grpc.WithResolvers, whose resolvers
// follow the instances of the service in c (within c's namespace) with a
// [Set]: they resume after reconnects, restarts of etcd and compactions,
// where etcd's own resolver stops following after a compaction. A change
// reaches gRPC within one watch round trip.
//
// They dial passing instances only, unless [WithStatus] says otherwise:
// an instance that turns critical is dropped from the connection's
// addresses, and comes back once passing. Each instance is one endpoint,
// with one address, that carries the instance (ID, metadata and health) in
// its Attributes, for a balancer to read with [ResolvedInstance]. While no instance is kept, the connection has no
// address, and calls fail (or wait, with grpc.WaitForReady) until one
// appears.
//
// NewResolver fails with an error matching [etcdkit.ErrInvalidArgument]
// for a nil client or a bad option. A target whose service is not valid
// (see [Register]) fails the connection's calls with that error.
func NewResolver(c *etcdkit.Client, opts ...ResolverOption) (resolver.Builder, error) {
	o := resolverOptions{filter: &StatusFilter{keep: [Critical + 1]bool{Passing: true}}}
	for _, opt := range opts {
		if opt != nil {
			opt.applyResolver(&o)
		}
	}
	switch {
	case c == nil:
		return nil, &errs.Op{Op: "new resolver", Err: fmt.Errorf("%w: nil client", etcdkit.ErrInvalidArgument)}
	case o.filter.err != nil:
		return nil, &errs.Op{Op: "new resolver", Err: o.filter.err}
	}
	return &builder{c: c, filter: o.filter}, nil
}

type builder struct {
	c      *etcdkit.Client
	filter *StatusFilter
}

// Scheme returns [Scheme].
func (b *builder) Scheme() string { return Scheme }

// Build starts following the target's service; it does not wait for etcd.
func (b *builder) Build(target resolver.Target, cc resolver.ClientConn, _ resolver.BuildOptions) (resolver.Resolver, error) {
	service := target.URL.Path
	if service == "" {
		service = target.URL.Opaque
	}
	service = strings.TrimPrefix(service, "/")
	if err := checkService("resolve", service); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &etcdResolver{cc: cc, cancel: cancel, done: make(chan struct{})}
	go r.run(ctx, b, service)
	return r, nil
}

// etcdResolver feeds one gRPC connection the instances of one service.
type etcdResolver struct {
	cc     resolver.ClientConn
	cancel context.CancelFunc
	done   chan struct{} // closed when run returned

	mu  sync.Mutex // orders the updates; guards set
	set *SetOf[json.RawMessage]
}

// ResolveNow does nothing: the resolver follows every change as it comes.
func (r *etcdResolver) ResolveNow(resolver.ResolveNowOptions) {}

// Close stops following the service and waits until it has.
func (r *etcdResolver) Close() {
	r.cancel()
	<-r.done
}

// run makes the set, retrying until etcd answers, then waits for the end.
func (r *etcdResolver) run(ctx context.Context, b *builder, service string) {
	defer close(r.done)
	pause := retry.Backoff{Start: minRetryPause, Max: maxRetryPause}
	for {
		set, err := NewSetOf(ctx, b.c, service,
			setOptionFunc[json.RawMessage](func(o *setOptions[json.RawMessage]) { o.filter = b.filter }),
			OnAdd(r.changed), OnRemove(r.changed))
		if err == nil {
			r.follow(ctx, set)
			return
		}
		if ctx.Err() != nil {
			return
		}
		r.cc.ReportError(err)
		select {
		case <-b.c.Done():
			return
		case <-ctx.Done():
			return
		case <-time.After(pause.Next()):
		}
	}
}

// follow hands set's instances to gRPC, then keeps them current until the
// set or ctx ends.
func (r *etcdResolver) follow(ctx context.Context, set *SetOf[json.RawMessage]) {
	defer set.Close()
	r.mu.Lock()
	r.set = set
	r.update()
	r.mu.Unlock()
	select {
	case <-ctx.Done():
	case <-set.Done():
		if err := set.Err(); err != nil {
			r.cc.ReportError(err)
		}
	}
}

// changed is the set's callback. Before follow stores the set, its
// changes are in the snapshot follow sends.
func (r *etcdResolver) changed(InstanceOf[json.RawMessage]) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.set != nil {
		r.update()
	}
}

// update sends the set's instances to gRPC. The caller holds mu.
func (r *etcdResolver) update() {
	insts := r.set.Snapshot()
	eps := make([]resolver.Endpoint, 0, len(insts))
	for _, inst := range insts {
		attr := attributes.New(instanceKey{}, resolved{id: inst.ID, meta: string(inst.Metadata), health: inst.Health})
		eps = append(eps, resolver.Endpoint{
			Addresses:  []resolver.Address{{Addr: inst.Addr}},
			Attributes: attr,
		})
	}
	// An error asks for a new resolution; this resolver sends every
	// change anyway.
	_ = r.cc.UpdateState(resolver.State{Endpoints: eps})
}

type instanceKey struct{}

// resolved is what an address carries of its instance. Its Equal lets
// gRPC compare attributes, which it does with == otherwise.
type resolved struct {
	id, meta string
	health   Health
}

func (a resolved) Equal(o any) bool {
	b, ok := o.(resolved)
	return ok && a.id == b.id && a.meta == b.meta && sameHealth(a.health, b.health)
}

// ResolvedInstance returns the instance behind an endpoint of a resolver
// of [NewResolver], from its Attributes, with its metadata
// decoded into M; false if the attributes hold no instance, or its
// metadata does not decode into M. The Addr of the result is empty: it is
// the endpoint's address.
func ResolvedInstance[M any](attrs *attributes.Attributes) (InstanceOf[M], bool) {
	a, ok := attrs.Value(instanceKey{}).(resolved)
	if !ok {
		return InstanceOf[M]{}, false
	}
	inst := InstanceOf[M]{ID: a.id, Health: a.health}
	if a.meta != "" && a.meta != "null" {
		if err := json.Unmarshal([]byte(a.meta), &inst.Metadata); err != nil {
			return InstanceOf[M]{}, false
		}
	}
	return inst, true
}
