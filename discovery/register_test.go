package discovery_test

import (
	"context"
	"errors"
	"maps"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"

	"github.com/etcdkit/etcdkit"
	"github.com/etcdkit/etcdkit/discovery"
	"github.com/etcdkit/etcdkit/etcdtest"
)

func TestRegisterBadInput(t *testing.T) {
	t.Parallel()
	cli := testServer.Client(t)
	ctx := testCtx(t)
	ok := discovery.Instance{ID: "i1", Addr: "127.0.0.1:1"}
	tests := []struct {
		name    string
		service string
		inst    discovery.Instance
		opts    []discovery.RegisterOption
		want    error
		mention string // the bad value, named in the message
	}{
		{"empty service", "", ok, nil, etcdkit.ErrInvalidArgument, "empty service"},
		{"service with trailing slash", "svc/", ok, nil, etcdkit.ErrInvalidArgument, `"svc/"`},
		{"service with leading slash", "/svc", ok, nil, etcdkit.ErrInvalidArgument, `"/svc"`},
		{"empty ID", "svc", discovery.Instance{Addr: "127.0.0.1:1"}, nil, etcdkit.ErrInvalidArgument, "empty instance ID"},
		{"ID with slash", "svc", discovery.Instance{ID: "a/b", Addr: "127.0.0.1:1"}, nil, etcdkit.ErrInvalidArgument, `"a/b"`},
		{"empty Addr", "svc", discovery.Instance{ID: "i1"}, nil, etcdkit.ErrInvalidArgument, `"i1" has an empty Addr`},
		{"TTL under a second", "svc", ok, []discovery.RegisterOption{discovery.WithTTL(500 * time.Millisecond)}, etcdkit.ErrInvalidTTL, "500ms"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg, err := discovery.Register(ctx, cli, tt.service, tt.inst, tt.opts...)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Register: got %v, want an error matching %v", err, tt.want)
			}
			if reg != nil {
				t.Errorf("Register returned a registration with error %v", err)
			}
			if !strings.Contains(err.Error(), tt.mention) || !strings.HasPrefix(err.Error(), "etcdkit: register") {
				t.Errorf("error %q should start with \"etcdkit: register\" and mention %s", err, tt.mention)
			}
		})
	}
	t.Run("lookup empty service", func(t *testing.T) {
		if _, err := discovery.Lookup(ctx, cli, ""); !errors.Is(err, etcdkit.ErrInvalidArgument) {
			t.Errorf("Lookup(\"\"): got %v, want ErrInvalidArgument", err)
		}
	})
	t.Run("set empty service", func(t *testing.T) {
		if _, err := discovery.NewSet(ctx, cli, ""); !errors.Is(err, etcdkit.ErrInvalidArgument) {
			t.Errorf("NewSet(\"\"): got %v, want ErrInvalidArgument", err)
		}
	})
	t.Run("nil client", func(t *testing.T) {
		if _, err := discovery.Register(ctx, nil, "svc", ok); !errors.Is(err, etcdkit.ErrInvalidArgument) {
			t.Errorf("Register(nil client): got %v, want ErrInvalidArgument", err)
		}
	})
}

func TestRegisterLookupClose(t *testing.T) {
	t.Parallel()
	cli := testServer.Client(t)
	ctx := testCtx(t)
	svc := serviceName(t)

	if got, err := discovery.Lookup(ctx, cli, svc); err != nil || len(got) != 0 {
		t.Fatalf("Lookup before any registration: got %v, %v; want none", got, err)
	}
	b := discovery.Instance{ID: "b", Addr: "10.0.0.2:80", Metadata: map[string]string{"zone": "z2"}}
	a := discovery.Instance{ID: "a", Addr: "10.0.0.1:80"}
	regB, err := discovery.Register(ctx, cli, svc, b)
	if err != nil {
		t.Fatal(err)
	}
	regA, err := discovery.Register(ctx, cli, svc, a, discovery.WithTTL(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	// A key of a service nested under this one is not an instance of it.
	nested, err := discovery.Register(ctx, cli, svc+"/nested", discovery.Instance{ID: "x", Addr: "10.0.0.9:80"})
	if err != nil {
		t.Fatal(err)
	}
	defer nested.Close(ctx)

	got, err := discovery.Lookup(ctx, cli, svc)
	if err != nil {
		t.Fatal(err)
	}
	if want := []discovery.Instance{a, b}; !equalInstances(got, want) {
		t.Fatalf("Lookup: got %+v, want %+v (sorted by ID)", got, want)
	}
	if regA.Key() != svc+"/a" {
		t.Errorf("Key: got %q, want %q", regA.Key(), svc+"/a")
	}
	leaseA := leaseOf(t, cli, regA.Key())
	if leaseA == 0 {
		t.Fatalf("%s is not attached to a lease", regA.Key())
	}

	if err := regA.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := regA.Close(ctx); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	got, err = discovery.Lookup(ctx, cli, svc)
	if err != nil {
		t.Fatal(err)
	}
	if want := []discovery.Instance{b}; !equalInstances(got, want) {
		t.Fatalf("Lookup after Close of a: got %+v, want %+v", got, want)
	}
	ttl, err := cli.Raw().TimeToLive(ctx, clientv3.LeaseID(leaseA))
	if err != nil {
		t.Fatal(err)
	}
	if ttl.TTL != -1 {
		t.Errorf("lease of a after Close: TTL %d, want -1 (revoked)", ttl.TTL)
	}
	if err := regB.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestRegisterTypedMetadata(t *testing.T) {
	t.Parallel()
	cli := testServer.Client(t)
	ctx := testCtx(t)
	svc := serviceName(t)
	type meta struct {
		Weight int
		Tags   []string
	}
	inst := discovery.InstanceOf[meta]{ID: "w", Addr: "10.0.0.1:80", Metadata: meta{Weight: 3, Tags: []string{"gpu"}}}
	reg, err := discovery.RegisterOf(ctx, cli, svc, inst)
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close(ctx)
	got, err := discovery.LookupOf[meta](ctx, cli, svc)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Metadata.Weight != 3 || !slices.Equal(got[0].Metadata.Tags, []string{"gpu"}) {
		t.Fatalf("LookupOf: got %+v, want [%+v]", got, inst)
	}
	// A map of strings cannot hold this metadata: reported, not zeroed.
	if got, err := discovery.Lookup(ctx, cli, svc); len(got) != 0 || !isDecodeError(err) {
		t.Errorf("Lookup as strings: got %+v, %v; want nothing and a DecodeError", got, err)
	}
}

func TestRegisterUnreachable(t *testing.T) {
	t.Parallel()
	srv := etcdtest.Start(t)
	cli := srv.Client(t)
	svc := serviceName(t)
	srv.Stop()
	ctx, cancel := context.WithTimeout(testCtx(t), 2*time.Second)
	defer cancel()
	reg, err := discovery.Register(ctx, cli, svc, discovery.Instance{ID: "i", Addr: "10.0.0.1:80"})
	if reg != nil || !(errors.Is(err, etcdkit.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded)) {
		t.Fatalf("Register with etcd down: got %v, %v; want ErrUnavailable or DeadlineExceeded", reg, err)
	}
	t.Logf("Register with etcd down: %v", err)
	if !strings.Contains(err.Error(), svc+"/i") {
		t.Errorf("error %q does not name the key", err)
	}
	srv.Restart(t)
	raw := srv.RawClient(t)
	resp, err := raw.Get(testCtx(t), svc+"/", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	leases, err := raw.Leases(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if resp.Count != 0 || len(leases.Leases) != 0 {
		t.Errorf("after a failed Register: %d keys and %d leases left behind, want none", resp.Count, len(leases.Leases))
	}
}

func TestReregisterAfterLeaseRevoked(t *testing.T) {
	t.Parallel()
	cli := testServer.Client(t)
	ctx := testCtx(t)
	svc := serviceName(t)
	reg, err := discovery.Register(ctx, cli, svc, discovery.Instance{ID: "i", Addr: "10.0.0.1:80"}, discovery.WithTTL(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close(ctx)
	before := leaseOf(t, cli, reg.Key())
	// Someone else (an operator with etcdctl) revokes the lease: the key goes.
	if _, err := testServer.RawClient(t).Revoke(ctx, clientv3.LeaseID(before)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "registered again under a new lease", func() bool {
		l := leaseOf(t, cli, reg.Key())
		return l != 0 && l != before
	})
	if err := reg.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if l := leaseOf(t, cli, reg.Key()); l != 0 {
		t.Errorf("after Close the key is still there, under lease %x", l)
	}
}

func TestReregisterAfterDataWipe(t *testing.T) {
	t.Parallel()
	var wipe atomic.Bool
	srv := etcdtest.Start(t, etcdtest.WithEmbedConfig(func(cfg *embed.Config) {
		if wipe.Load() {
			// A fresh member on the same address: every key and lease is gone.
			if err := os.RemoveAll(cfg.Dir); err != nil {
				t.Error(err)
			}
		}
	}))
	cli := srv.Client(t)
	ctx := testCtx(t)
	svc := serviceName(t)
	var regs []*discovery.Registration
	for _, id := range []string{"a", "b"} {
		reg, err := discovery.Register(ctx, cli, svc, discovery.Instance{ID: id, Addr: "10.0.0.1:80"}, discovery.WithTTL(2*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		defer reg.Close(ctx)
		regs = append(regs, reg)
	}
	raw := srv.RawClient(t)
	var before int64
	for range 20 { // moves the revision well past what a fresh member has
		resp, err := raw.Put(ctx, svc+"-filler", "x")
		if err != nil {
			t.Fatal(err)
		}
		before = resp.Header.Revision
	}
	wipe.Store(true)
	srv.Restart(t)
	wipe.Store(false)
	resp, err := raw.Get(ctx, svc+"-filler")
	if err != nil {
		t.Fatal(err)
	}
	if resp.Count != 0 || resp.Header.Revision >= before {
		t.Fatalf("data not wiped: %d keys at revision %d (was %d)", resp.Count, resp.Header.Revision, before)
	}
	waitFor(t, 15*time.Second, "both instances registered again", func() bool {
		got, err := discovery.Lookup(ctx, cli, svc)
		return err == nil && len(got) == 2
	})
	for _, reg := range regs {
		if err := reg.Close(ctx); err != nil {
			t.Errorf("Close %s: %v", reg.Key(), err)
		}
	}
	if got, err := discovery.Lookup(ctx, cli, svc); err != nil || len(got) != 0 {
		t.Errorf("after Close: %+v, %v; want none", got, err)
	}
}

func TestCloseWithClient(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	svc := serviceName(t)
	owner, err := etcdkit.New(ctx, testServer.Config())
	if err != nil {
		t.Fatal(err)
	}
	reg, err := discovery.Register(ctx, owner, svc, discovery.Instance{ID: "i", Addr: "10.0.0.1:80"})
	if err != nil {
		t.Fatal(err)
	}
	if err := owner.Close(); err != nil {
		t.Fatal(err)
	}
	// The client revoked the lease as it closed: the instance is gone now,
	// not one TTL later.
	if got, err := discovery.Lookup(ctx, testServer.Client(t), svc); err != nil || len(got) != 0 {
		t.Errorf("after the client's Close: %+v, %v; want none", got, err)
	}
	if err := reg.Close(ctx); err != nil {
		t.Errorf("Close after the client's Close: %v, want nil", err)
	}
}

// leaseOf returns the lease of key, 0 if the key does not exist.
func leaseOf(t testing.TB, cli *etcdkit.Client, key string) int64 {
	t.Helper()
	resp, err := cli.Raw().Get(testCtx(t), key)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) == 0 {
		return 0
	}
	return resp.Kvs[0].Lease
}

func equalInstances(a, b []discovery.Instance) bool {
	return slices.EqualFunc(a, b, func(x, y discovery.Instance) bool {
		return x.ID == y.ID && x.Addr == y.Addr && maps.Equal(x.Metadata, y.Metadata)
	})
}

func isDecodeError(err error) bool {
	var de *etcdkit.DecodeError
	return errors.As(err, &de)
}

// TestClientCloseEndsRetry checks that a registration trying to register
// again, with etcd out of reach, stops when its client closes, without
// Registration.Close; TestMain's leak check fails the package otherwise.
func TestClientCloseEndsRetry(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	svc := serviceName(t)
	link := newCutter(t, testServer)
	owner := link.client(t)
	if _, err := discovery.Register(ctx, owner, svc, discovery.Instance{ID: "i", Addr: "10.0.0.1:80"}, discovery.WithTTL(2*time.Second)); err != nil {
		t.Fatal(err)
	}
	link.Cut()
	cli := testServer.Client(t)
	waitFor(t, 10*time.Second, "the lease expires", func() bool {
		got, err := discovery.Lookup(ctx, cli, svc)
		return err == nil && len(got) == 0
	})
	if err := owner.Close(); err != nil {
		t.Logf("client Close with etcd out of reach: %v", err)
	}
}
