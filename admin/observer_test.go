package admin_test

import (
	"bytes"
	"context"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/etcdkit/etcdkit"
	"github.com/etcdkit/etcdkit/admin"
	"github.com/etcdkit/etcdkit/etcdtest"
)

// endings is an Observer that keeps the names of the operations that ended
// without an error.
type endings struct {
	mu    sync.Mutex
	names []string
}

func (e *endings) OperationStart(ctx context.Context, _ etcdkit.Operation) context.Context {
	return ctx
}

func (e *endings) OperationEnd(_ context.Context, op etcdkit.Operation) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if op.Err == nil {
		e.names = append(e.names, op.Name)
	}
}

func (e *endings) Notice(context.Context, etcdkit.Notice) {}

// TestObserver_AdminTasks: health, defragment, export and import are
// reported to the client's Observer.
func TestObserver_AdminTasks(t *testing.T) {
	t.Parallel()
	rec := &endings{}
	cli := testCluster.Client(t, etcdtest.WithClientConfig(func(cfg *etcdkit.Config) { cfg.Observer = rec }))
	ctx := testCtx(t)
	p := prefix(t)
	_, err := etcdkit.NewKV(cli, p, etcdkit.String()).Put(ctx, "k", "v")
	require.NoError(t, err)

	_, err = admin.Health(ctx, cli)
	require.NoError(t, err)
	_, err = admin.Defragment(ctx, cli, admin.DryRun())
	require.NoError(t, err)
	var buf bytes.Buffer
	_, err = admin.Export(ctx, cli, p, &buf)
	require.NoError(t, err)
	_, err = admin.Import(ctx, cli, &buf)
	require.NoError(t, err)

	rec.mu.Lock()
	defer rec.mu.Unlock()
	for _, name := range []string{"health", "defragment", "export", "import"} {
		assert.Contains(t, rec.names, name)
	}
}
