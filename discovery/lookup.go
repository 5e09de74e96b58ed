package discovery

import (
	"context"
	"errors"
	"fmt"

	"github.com/etcdkit/etcdkit"
	"github.com/etcdkit/etcdkit/internal/errs"
)

// LookupOption changes what [Lookup] returns; [WithStatus] is one.
type LookupOption interface {
	applyLookup(*lookupOptions)
}

type lookupOptions struct {
	filter *StatusFilter // nil: every instance
}

// Lookup returns the instances of service registered now, sorted by ID,
// whether [Register] or etcd's endpoints.Manager registered them, whatever
// their status unless [WithStatus] says otherwise. A service with no
// instance gives an empty slice and no error.
//
// An instance whose value does not decode (not an endpoint record, or
// metadata that is not a map of strings) is left out, and reported as an
// [*etcdkit.DecodeError] in the returned error beside the instances that
// did decode. Lookup fails with an error matching
// [etcdkit.ErrInvalidArgument] for a bad service name or option,
// [etcdkit.ErrUnavailable] or ctx's error when etcd does not answer, and
// [etcdkit.ErrClosed] after the client's Close.
func Lookup(ctx context.Context, c *etcdkit.Client, service string, opts ...LookupOption) ([]Instance, error) {
	return LookupOf[map[string]string](ctx, c, service, opts...)
}

// LookupOf is [Lookup] for instances with metadata of type M.
func LookupOf[M any](ctx context.Context, c *etcdkit.Client, service string, opts ...LookupOption) ([]InstanceOf[M], error) {
	if err := checkService("lookup", service); err != nil {
		return nil, err
	}
	var o lookupOptions
	for _, opt := range opts {
		if opt != nil {
			opt.applyLookup(&o)
		}
	}
	if c == nil {
		return nil, &errs.Op{Op: "lookup", Key: service, Err: fmt.Errorf("%w: nil client", etcdkit.ErrInvalidArgument)}
	}
	if o.filter != nil && o.filter.err != nil {
		return nil, &errs.Op{Op: "lookup", Key: service, Err: o.filter.err}
	}
	ctx, end := c.Observe(ctx, "lookup", service+"/", "")
	found, err := lookup[M](ctx, c, service, o)
	end(0, err)
	return found, err
}

// lookup lists the instances of service that o keeps.
func lookup[M any](ctx context.Context, c *etcdkit.Client, service string, o lookupOptions) ([]InstanceOf[M], error) {
	found := []InstanceOf[M]{}
	var bad []error
	for e, err := range instances[M](c, service).List(ctx) {
		switch {
		case err == nil:
			if validID(e.Key) && o.filter.keeps(healthOf(e.Value.Health).Status) {
				found = append(found, instanceOf(e.Key, e.Value))
			}
		default:
			// Declared here, on the error path only: it escapes.
			var de *etcdkit.DecodeError
			if !errors.As(err, &de) {
				return nil, &errs.Op{Op: "lookup", Key: service, Err: err}
			}
			if validID(de.Key) { // else it belongs to a nested service
				bad = append(bad, err)
			}
		}
	}
	if len(bad) > 0 {
		return found, &errs.Op{Op: "lookup", Key: service, Err: errors.Join(bad...)}
	}
	return found, nil
}
