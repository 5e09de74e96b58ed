package discovery_test

import (
	"context"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/naming/endpoints"

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
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { // the manager's keys have no lease
		if _, err := cli.Raw().Delete(context.Background(), svc+"/", clientv3.WithPrefix()); err != nil {
			t.Error(err)
		}
	})
	if err := em.AddEndpoint(ctx, svc+"/m1", endpoints.Endpoint{Addr: "10.0.0.1:80", Metadata: map[string]string{"zone": "z1"}}); err != nil {
		t.Fatal(err)
	}
	if err := em.AddEndpoint(ctx, svc+"/m2", endpoints.Endpoint{Addr: "10.0.0.2:80"}); err != nil {
		t.Fatal(err)
	}
	reg, err := discovery.Register(ctx, cli, svc, discovery.Instance{ID: "r1", Addr: "10.0.0.3:80", Metadata: map[string]string{"zone": "z3"}})
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close(ctx)

	got, err := discovery.Lookup(ctx, cli, svc)
	if err != nil {
		t.Fatal(err)
	}
	want := []discovery.Instance{
		{ID: "m1", Addr: "10.0.0.1:80", Metadata: map[string]string{"zone": "z1"}},
		{ID: "m2", Addr: "10.0.0.2:80"},
		{ID: "r1", Addr: "10.0.0.3:80", Metadata: map[string]string{"zone": "z3"}},
	}
	if !equalInstances(got, want) {
		t.Fatalf("Lookup: got %+v, want %+v", got, want)
	}

	list, err := em.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ep, ok := list[svc+"/r1"]
	if md, _ := ep.Metadata.(map[string]any); !ok || ep.Addr != "10.0.0.3:80" || md["zone"] != "z3" {
		t.Errorf("endpoints.Manager List: %s/r1 is %+v (found %v), want Addr 10.0.0.3:80 and zone z3", svc, ep, ok)
	}

	// Metadata that is not a map of strings is reported, beside the rest.
	if err := em.AddEndpoint(ctx, svc+"/m3", endpoints.Endpoint{Addr: "10.0.0.4:80", Metadata: 42}); err != nil {
		t.Fatal(err)
	}
	got, err = discovery.Lookup(ctx, cli, svc)
	if !isDecodeError(err) || !equalInstances(got, want) {
		t.Errorf("Lookup with a bad value: got %+v, %v; want %+v and a DecodeError", got, err, want)
	}
}

func TestSetCallbacks(t *testing.T) {
	t.Parallel()
	cli := testServer.Client(t)
	ctx := testCtx(t)
	svc := serviceName(t)
	first, err := discovery.Register(ctx, cli, svc, discovery.Instance{ID: "a", Addr: "10.0.0.1:80"})
	if err != nil {
		t.Fatal(err)
	}
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
	if err != nil {
		t.Fatal(err)
	}
	defer set.Close()
	next := func(op, id, addr string) {
		t.Helper()
		select {
		case c := <-calls:
			if c.op != op || c.inst.ID != id || c.inst.Addr != addr {
				t.Fatalf("got %s %+v, want %s %s at %s", c.op, c.inst, op, id, addr)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no callback, want %s %s", op, id)
		}
	}
	next("add", "a", "10.0.0.1:80") // present at start: told before NewSet returned

	second, err := discovery.Register(ctx, cli, svc, discovery.Instance{ID: "b", Addr: "10.0.0.2:80", Metadata: map[string]string{"v": "1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close(ctx)
	next("add", "b", "10.0.0.2:80")
	snap := set.Snapshot()
	if len(snap) != 2 || snap[0].ID != "a" || snap[1].ID != "b" || snap[1].Metadata["v"] != "1" {
		t.Errorf("Snapshot: got %+v, want a and b (with v=1)", snap)
	}

	if err := first.Close(ctx); err != nil {
		t.Fatal(err)
	}
	next("remove", "a", "10.0.0.1:80")

	// b moves: it is told as an add of its new state.
	moved, err := discovery.Register(ctx, cli, svc, discovery.Instance{ID: "b", Addr: "10.0.0.9:80"})
	if err != nil {
		t.Fatal(err)
	}
	defer moved.Close(ctx)
	next("add", "b", "10.0.0.9:80")
	if snap := set.Snapshot(); len(snap) != 1 || snap[0].Addr != "10.0.0.9:80" {
		t.Errorf("Snapshot after b moved: got %+v, want only b at 10.0.0.9:80", snap)
	}

	set.Close()
	<-set.Done()
	if err := set.Err(); err != nil {
		t.Errorf("Err after Close: %v", err)
	}
	select {
	case c := <-calls:
		t.Errorf("unexpected callback %s %+v", c.op, c.inst)
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
	if err != nil {
		t.Fatal(err)
	}
	defer set.Close()
	inst := discovery.Instance{ID: "a", Addr: "10.0.0.1:80"}
	for range 2 {
		reg, err := discovery.Register(ctx, cli, svc, inst)
		if err != nil {
			t.Fatal(err)
		}
		defer reg.Close(ctx)
	}
	// A marker after both: once it is told, so was everything before it.
	marker, err := discovery.Register(ctx, cli, svc, discovery.Instance{ID: "z", Addr: "10.0.0.2:80"})
	if err != nil {
		t.Fatal(err)
	}
	defer marker.Close(ctx)
	var ids []string
	for len(ids) == 0 || ids[len(ids)-1] != "z" {
		select {
		case i := <-adds:
			ids = append(ids, i.ID)
		case <-time.After(10 * time.Second):
			t.Fatalf("adds so far %v, want the marker z", ids)
		}
	}
	if len(ids) != 2 || ids[0] != "a" {
		t.Errorf("adds: got %v, want [a z]", ids)
	}
}
