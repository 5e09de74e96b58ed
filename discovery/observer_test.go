package discovery_test

import (
	"context"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/etcdkit/etcdkit"
	"github.com/etcdkit/etcdkit/discovery"
	"github.com/etcdkit/etcdkit/etcdtest"
)

// endings is an Observer that keeps the operations that ended.
type endings struct {
	mu  sync.Mutex
	ops []etcdkit.Operation
}

func (e *endings) OperationStart(ctx context.Context, _ etcdkit.Operation) context.Context {
	return ctx
}

func (e *endings) OperationEnd(_ context.Context, op etcdkit.Operation) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.ops = append(e.ops, op)
}

func (e *endings) Notice(context.Context, etcdkit.Notice) {}

func (e *endings) named(name string) []etcdkit.Operation {
	e.mu.Lock()
	defer e.mu.Unlock()
	var ops []etcdkit.Operation
	for _, op := range e.ops {
		if op.Name == name {
			ops = append(ops, op)
		}
	}
	return ops
}

// TestObserver_RegisterLookupDeregister: registering, looking up and
// deregistering are reported to the client's Observer, with the service's
// prefix.
func TestObserver_RegisterLookupDeregister(t *testing.T) {
	t.Parallel()
	rec := &endings{}
	cli := testServer.Client(t, etcdtest.WithClientConfig(func(cfg *etcdkit.Config) { cfg.Observer = rec }))
	ctx := testCtx(t)
	service := serviceName(t)
	reg, err := discovery.Register(ctx, cli, service, discovery.Instance{ID: "i1", Addr: "127.0.0.1:1"})
	require.NoError(t, err)
	_, err = discovery.Lookup(ctx, cli, service)
	require.NoError(t, err)
	require.NoError(t, reg.Close(ctx))

	for _, name := range []string{"register", "lookup", "deregister"} {
		ops := rec.named(name)
		if assert.Len(t, ops, 1, name) {
			assert.Equal(t, service+"/", ops[0].Prefix, name)
			assert.NoError(t, ops[0].Err, name)
		}
	}
	if ops := rec.named("register"); len(ops) == 1 {
		assert.Equal(t, "i1", ops[0].Key)
		assert.Positive(t, ops[0].Revision)
	}
}
