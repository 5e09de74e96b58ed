package etcdotel

import (
	"context"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
)

// UnaryClientInterceptor returns a gRPC interceptor that writes the trace
// context of the span in each request's ctx (the operation's span, when
// [Observer] is the Client's Observer) into the request's metadata, in the
// format of the [WithPropagator] option, so that an etcd server run with
// distributed tracing on (--enable-distributed-tracing) links its spans to
// the caller's. It sends nothing when ctx holds no trace context.
//
// Add it to [etcdkit.Config.UnaryInterceptors], which chains it inside
// clientv3's own interceptors:
//
//	cfg.Observer = etcdotel.Observer()
//	cfg.UnaryInterceptors = append(cfg.UnaryInterceptors, etcdotel.UnaryClientInterceptor())
//
// Never install it with grpc.WithUnaryInterceptor in clientv3's
// DialOptions: gRPC keeps only the last interceptor given that way, and
// clientv3 installs its own there, the one that retries requests and
// refreshes auth tokens, which would then be silently dropped
// (kubernetes/kubernetes#105069). grpc.WithChainUnaryInterceptor, which
// Config.UnaryInterceptors uses, adds to the chain instead.
//
// Streams (watches, lease keep-alives) are not covered: clientv3 shares one
// stream among the watches of many callers, so it carries no one caller's
// trace context.
func UnaryClientInterceptor(opts ...Option) grpc.UnaryClientInterceptor {
	prop := newConfig(opts).propagator
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, callOpts ...grpc.CallOption) error {
		carrier := mdCarrier{}
		prop.Inject(ctx, carrier)
		if len(carrier) > 0 {
			kv := make([]string, 0, 2*len(carrier))
			for k, v := range carrier {
				kv = append(kv, k, v)
			}
			ctx = metadata.AppendToOutgoingContext(ctx, kv...)
		}
		return invoker(ctx, method, req, reply, cc, callOpts...)
	}
}

// mdCarrier collects what a propagator writes. gRPC metadata keys are lower
// case, as the propagators' fields are.
type mdCarrier map[string]string

func (c mdCarrier) Get(key string) string { return c[key] }

func (c mdCarrier) Set(key, value string) { c[key] = value }

func (c mdCarrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	return keys
}
