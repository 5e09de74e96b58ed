package discovery_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/naming/endpoints"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/etcdkit/etcdkit/discovery"
)

// TestLookupSeesEndpointsManager checks both directions of the wire format
// against etcd's own naming package.
func TestLookupSeesEndpointsManager(t *testing.T) {
	t.Parallel()
	cli := testServer.Client(t)
	ctx := testCtx(t)
	svc := serviceName(t)
	em, err := endpoints.NewManager(cli.Raw(), svc)
	require.NoError(t, err)
	t.Cleanup(func() { // the manager's keys have no lease
		_, err = cli.Raw().Delete(context.Background(), svc+"/", clientv3.WithPrefix())
		assert.NoError(t, err)
	})
	require.NoError(t, em.AddEndpoint(ctx, svc+"/m1", endpoints.Endpoint{Addr: "10.0.0.1:80", Metadata: map[string]string{"zone": "z1"}}))
	require.NoError(t, em.AddEndpoint(ctx, svc+"/m2", endpoints.Endpoint{Addr: "10.0.0.2:80"}))
	reg, err := discovery.Register(ctx, cli, svc, discovery.Instance{ID: "r1", Addr: "10.0.0.3:80", Metadata: map[string]string{"zone": "z3"}})
	require.NoError(t, err)
	defer reg.Close(ctx)

	got, err := discovery.Lookup(ctx, cli, svc)
	require.NoError(t, err)
	want := []discovery.Instance{
		{ID: "m1", Addr: "10.0.0.1:80", Metadata: map[string]string{"zone": "z1"}},
		{ID: "m2", Addr: "10.0.0.2:80"},
		{ID: "r1", Addr: "10.0.0.3:80", Metadata: map[string]string{"zone": "z3"}},
	}
	require.True(t, equalInstances(got, want), "Lookup: got %+v, want %+v", got, want)

	list, err := em.List(ctx)
	require.NoError(t, err)
	if ep, ok := list[svc+"/r1"]; assert.True(t, ok, "endpoints.Manager List: %s/r1 not found", svc) {
		md, _ := ep.Metadata.(map[string]any)
		assert.Equal(t, "10.0.0.3:80", ep.Addr, "endpoints.Manager List: Addr of r1")
		assert.Equal(t, "z3", md["zone"], "endpoints.Manager List: zone of r1")
	}

	// Metadata that is not a map of strings is reported, beside the rest.
	require.NoError(t, em.AddEndpoint(ctx, svc+"/m3", endpoints.Endpoint{Addr: "10.0.0.4:80", Metadata: 42}))
	got, err = discovery.Lookup(ctx, cli, svc)
	assert.True(t, isDecodeError(err), "Lookup with a bad value: err = %v, want a DecodeError", err)
	assert.True(t, equalInstances(got, want), "Lookup with a bad value: got %+v, want %+v beside the error", got, want)
}

func TestSetCallbacks(t *testing.T) {
	t.Parallel()
	cli := testServer.Client(t)
	ctx := testCtx(t)
	svc := serviceName(t)
	first, err := discovery.Register(ctx, cli, svc, discovery.Instance{ID: "a", Addr: "10.0.0.1:80"})
	require.NoError(t, err)
	defer first.Close(ctx)

	// One channel for both callbacks keeps their order visible.
	type call struct {
		op   string
		inst discovery.Instance
	}
	calls := make(chan call, 16)
	set, err := discovery.NewSet(ctx, cli, svc,
		discovery.OnAdd(func(i discovery.Instance) { calls <- call{"add", i} }),
		discovery.OnRemove(func(i discovery.Instance) { calls <- call{"remove", i} }))
	require.NoError(t, err)
	defer set.Close()
	next := func(op, id, addr string) {
		t.Helper()
		select {
		case c := <-calls:
			require.Equal(t, call{op, discovery.Instance{ID: id, Addr: addr}},
				call{c.op, discovery.Instance{ID: c.inst.ID, Addr: c.inst.Addr}}, "callback (Metadata not compared)")
		case <-time.After(10 * time.Second):
			require.FailNow(t, fmt.Sprintf("no callback, want %s %s", op, id))
		}
	}
	next("add", "a", "10.0.0.1:80") // present at start: told before NewSet returned

	second, err := discovery.Register(ctx, cli, svc, discovery.Instance{ID: "b", Addr: "10.0.0.2:80", Metadata: map[string]string{"v": "1"}})
	require.NoError(t, err)
	defer second.Close(ctx)
	next("add", "b", "10.0.0.2:80")
	if snap := set.Snapshot(); assert.Len(t, snap, 2, "Snapshot: want a and b") {
		assert.Equal(t, "a", snap[0].ID, "Snapshot")
		assert.Equal(t, "b", snap[1].ID, "Snapshot")
		assert.Equal(t, "1", snap[1].Metadata["v"], "Snapshot: b's metadata")
	}

	require.NoError(t, first.Close(ctx))
	next("remove", "a", "10.0.0.1:80")

	// b moves: it is told as an add of its new state.
	moved, err := discovery.Register(ctx, cli, svc, discovery.Instance{ID: "b", Addr: "10.0.0.9:80"})
	require.NoError(t, err)
	defer moved.Close(ctx)
	next("add", "b", "10.0.0.9:80")
	if snap := set.Snapshot(); assert.Len(t, snap, 1, "Snapshot after b moved: want only b") {
		assert.Equal(t, "10.0.0.9:80", snap[0].Addr, "Snapshot after b moved: b's Addr")
	}

	set.Close()
	<-set.Done()
	assert.NoError(t, set.Err(), "Err after Close")
	select {
	case c := <-calls:
		assert.Fail(t, "unexpected callback", "%s %+v", c.op, c.inst)
	default:
	}
}

// TestSetSameInstanceAgain checks that a registration renewed under a new
// lease, with the same address and metadata, is not reported as a change.
func TestSetSameInstanceAgain(t *testing.T) {
	t.Parallel()
	cli := testServer.Client(t)
	ctx := testCtx(t)
	svc := serviceName(t)
	adds := make(chan discovery.Instance, 16)
	set, err := discovery.NewSet(ctx, cli, svc, discovery.OnAdd(func(i discovery.Instance) { adds <- i }))
	require.NoError(t, err)
	defer set.Close()
	inst := discovery.Instance{ID: "a", Addr: "10.0.0.1:80"}
	for range 2 {
		reg, err := discovery.Register(ctx, cli, svc, inst)
		require.NoError(t, err)
		defer reg.Close(ctx)
	}
	// A marker after both: once it is told, so was everything before it.
	marker, err := discovery.Register(ctx, cli, svc, discovery.Instance{ID: "z", Addr: "10.0.0.2:80"})
	require.NoError(t, err)
	defer marker.Close(ctx)
	var ids []string
	for len(ids) == 0 || ids[len(ids)-1] != "z" {
		select {
		case i := <-adds:
			ids = append(ids, i.ID)
		case <-time.After(10 * time.Second):
			require.FailNow(t, fmt.Sprintf("adds so far %v, want the marker z", ids))
		}
	}
	assert.Equal(t, []string{"a", "z"}, ids, "adds")
}
