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

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

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
			require.ErrorIs(t, err, tt.want, "Register")
			assert.Nil(t, reg, "Register returned a registration with error %v", err)
			assert.ErrorContains(t, err, tt.mention, "the error should mention the bad value")
			assert.True(t, strings.HasPrefix(err.Error(), "etcdkit: register"), "error %q should start with \"etcdkit: register\"", err)
		})
	}
	t.Run("lookup empty service", func(t *testing.T) {
		_, err := discovery.Lookup(ctx, cli, "")
		assert.ErrorIs(t, err, etcdkit.ErrInvalidArgument, "Lookup(\"\")")
	})
	t.Run("set empty service", func(t *testing.T) {
		_, err := discovery.NewSet(ctx, cli, "")
		assert.ErrorIs(t, err, etcdkit.ErrInvalidArgument, "NewSet(\"\")")
	})
	t.Run("nil client", func(t *testing.T) {
		_, err := discovery.Register(ctx, nil, "svc", ok)
		assert.ErrorIs(t, err, etcdkit.ErrInvalidArgument, "Register(nil client)")
	})
}

func TestRegisterLookupClose(t *testing.T) {
	t.Parallel()
	cli := testServer.Client(t)
	ctx := testCtx(t)
	svc := serviceName(t)

	got, err := discovery.Lookup(ctx, cli, svc)
	require.NoError(t, err, "Lookup before any registration")
	require.Empty(t, got, "Lookup before any registration")
	b := discovery.Instance{ID: "b", Addr: "10.0.0.2:80", Metadata: map[string]string{"zone": "z2"}}
	a := discovery.Instance{ID: "a", Addr: "10.0.0.1:80"}
	regB, err := discovery.Register(ctx, cli, svc, b)
	require.NoError(t, err)
	regA, err := discovery.Register(ctx, cli, svc, a, discovery.WithTTL(2*time.Second))
	require.NoError(t, err)
	// A key of a service nested under this one is not an instance of it.
	nested, err := discovery.Register(ctx, cli, svc+"/nested", discovery.Instance{ID: "x", Addr: "10.0.0.9:80"})
	require.NoError(t, err)
	defer nested.Close(ctx)

	got, err = discovery.Lookup(ctx, cli, svc)
	require.NoError(t, err)
	want := []discovery.Instance{a, b}
	require.True(t, equalInstances(got, want), "Lookup: got %+v, want %+v (sorted by ID)", got, want)
	assert.Equal(t, svc+"/a", regA.Key(), "Key")
	leaseA := leaseOf(t, cli, regA.Key())
	require.NotZero(t, leaseA, "%s is not attached to a lease", regA.Key())

	require.NoError(t, regA.Close(ctx), "Close")
	require.NoError(t, regA.Close(ctx), "second Close")
	got, err = discovery.Lookup(ctx, cli, svc)
	require.NoError(t, err)
	want = []discovery.Instance{b}
	require.True(t, equalInstances(got, want), "Lookup after Close of a: got %+v, want %+v", got, want)
	ttl, err := cli.Raw().TimeToLive(ctx, clientv3.LeaseID(leaseA))
	require.NoError(t, err)
	assert.EqualValues(t, -1, ttl.TTL, "TTL of a's lease after Close: want -1 (revoked)")
	require.NoError(t, regB.Close(ctx))
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
	require.NoError(t, err)
	defer reg.Close(ctx)
	got, err := discovery.LookupOf[meta](ctx, cli, svc)
	require.NoError(t, err)
	require.Len(t, got, 1, "LookupOf")
	require.Equal(t, inst.Metadata, got[0].Metadata, "LookupOf")
	// A map of strings cannot hold this metadata: reported, not zeroed.
	asStrings, err := discovery.Lookup(ctx, cli, svc)
	assert.Empty(t, asStrings, "Lookup as strings")
	assert.True(t, isDecodeError(err), "Lookup as strings: err = %v, want a DecodeError", err)
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
	require.Nil(t, reg, "Register with etcd down")
	require.True(t, errors.Is(err, etcdkit.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded),
		"Register with etcd down: err = %v, want ErrUnavailable or DeadlineExceeded", err)
	t.Logf("Register with etcd down: %v", err)
	assert.ErrorContains(t, err, svc+"/i", "the error does not name the key")
	srv.Restart(t)
	raw := srv.RawClient(t)
	resp, err := raw.Get(testCtx(t), svc+"/", clientv3.WithPrefix())
	require.NoError(t, err)
	leases, err := raw.Leases(testCtx(t))
	require.NoError(t, err)
	assert.Zero(t, resp.Count, "keys left behind by a failed Register")
	assert.Empty(t, leases.Leases, "leases left behind by a failed Register")
}

func TestReregisterAfterLeaseRevoked(t *testing.T) {
	t.Parallel()
	cli := testServer.Client(t)
	ctx := testCtx(t)
	svc := serviceName(t)
	reg, err := discovery.Register(ctx, cli, svc, discovery.Instance{ID: "i", Addr: "10.0.0.1:80"}, discovery.WithTTL(2*time.Second))
	require.NoError(t, err)
	defer reg.Close(ctx)
	before := leaseOf(t, cli, reg.Key())
	// Someone else (an operator with etcdctl) revokes the lease: the key goes.
	_, err = testServer.RawClient(t).Revoke(ctx, clientv3.LeaseID(before))
	require.NoError(t, err)
	waitFor(t, 10*time.Second, "registered again under a new lease", func() bool {
		l := leaseOf(t, cli, reg.Key())
		return l != 0 && l != before
	})
	require.NoError(t, reg.Close(ctx))
	assert.Zero(t, leaseOf(t, cli, reg.Key()), "after Close the key is still there, under this lease")
}

func TestReregisterAfterDataWipe(t *testing.T) {
	t.Parallel()
	var wipe atomic.Bool
	srv := etcdtest.Start(t, etcdtest.WithEmbedConfig(func(cfg *embed.Config) {
		if wipe.Load() {
			// A fresh member on the same address: every key and lease is gone.
			assert.NoError(t, os.RemoveAll(cfg.Dir))
		}
	}))
	cli := srv.Client(t)
	ctx := testCtx(t)
	svc := serviceName(t)
	var regs []*discovery.Registration
	for _, id := range []string{"a", "b"} {
		reg, err := discovery.Register(ctx, cli, svc, discovery.Instance{ID: id, Addr: "10.0.0.1:80"}, discovery.WithTTL(2*time.Second))
		require.NoError(t, err)
		defer reg.Close(ctx)
		regs = append(regs, reg)
	}
	raw := srv.RawClient(t)
	var before int64
	for range 20 { // moves the revision well past what a fresh member has
		resp, err := raw.Put(ctx, svc+"-filler", "x")
		require.NoError(t, err)
		before = resp.Header.Revision
	}
	wipe.Store(true)
	srv.Restart(t)
	wipe.Store(false)
	resp, err := raw.Get(ctx, svc+"-filler")
	require.NoError(t, err)
	require.Zero(t, resp.Count, "data not wiped: keys left")
	require.Less(t, resp.Header.Revision, before, "data not wiped: revision not reset")
	waitFor(t, 15*time.Second, "both instances registered again", func() bool {
		got, err := discovery.Lookup(ctx, cli, svc)
		return err == nil && len(got) == 2
	})
	for _, reg := range regs {
		assert.NoError(t, reg.Close(ctx), "Close %s", reg.Key())
	}
	got, err := discovery.Lookup(ctx, cli, svc)
	assert.NoError(t, err, "Lookup after Close")
	assert.Empty(t, got, "Lookup after Close")
}

func TestCloseWithClient(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	svc := serviceName(t)
	owner, err := etcdkit.New(ctx, testServer.Config())
	require.NoError(t, err)
	reg, err := discovery.Register(ctx, owner, svc, discovery.Instance{ID: "i", Addr: "10.0.0.1:80"})
	require.NoError(t, err)
	require.NoError(t, owner.Close())
	// The client revoked the lease as it closed: the instance is gone now,
	// not one TTL later.
	got, err := discovery.Lookup(ctx, testServer.Client(t), svc)
	assert.NoError(t, err, "Lookup after the client's Close")
	assert.Empty(t, got, "Lookup after the client's Close")
	assert.NoError(t, reg.Close(ctx), "Close after the client's Close")
}

// leaseOf returns the lease of key, 0 if the key does not exist.
func leaseOf(t testing.TB, cli *etcdkit.Client, key string) int64 {
	t.Helper()
	resp, err := cli.Raw().Get(testCtx(t), key)
	require.NoError(t, err)
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
	_, err := discovery.Register(ctx, owner, svc, discovery.Instance{ID: "i", Addr: "10.0.0.1:80"}, discovery.WithTTL(2*time.Second))
	require.NoError(t, err)
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
