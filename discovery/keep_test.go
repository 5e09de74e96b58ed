package discovery_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/etcdkit/etcdkit"
	"github.com/etcdkit/etcdkit/discovery"
	"github.com/etcdkit/etcdkit/etcdtest"
)

// keepTTL is the lease TTL of the tests of a registration keeping its key.
const keepTTL = 2 * time.Second

// stored is what etcd holds at a key: its value and lease; a zero stored
// when the key does not exist.
type stored struct {
	Value string
	Lease int64
}

func storedAt(t testing.TB, raw *clientv3.Client, key string) stored {
	t.Helper()
	resp, err := raw.Get(testCtx(t), key)
	require.NoError(t, err)
	if len(resp.Kvs) == 0 {
		return stored{}
	}
	return stored{Value: string(resp.Kvs[0].Value), Lease: resp.Kvs[0].Lease}
}

// waitStored waits, for at most two TTLs, until key holds want.
func waitStored(t testing.TB, raw *clientv3.Client, key string, want stored, what string) {
	t.Helper()
	waitFor(t, 2*keepTTL, what, func() bool { return storedAt(t, raw, key) == want })
}

// staysGone checks, for one TTL, that nothing puts key back.
func staysGone(t testing.TB, raw *clientv3.Client, key string) {
	t.Helper()
	deadline := time.Now().Add(keepTTL)
	for time.Now().Before(deadline) {
		require.Equal(t, stored{}, storedAt(t, raw, key), "%s is back after Close", key)
		time.Sleep(50 * time.Millisecond)
	}
}

func TestRegistrationPutsBackItsKey(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		touch func(ctx context.Context, raw *clientv3.Client, key string) error
	}{
		{"deleted", func(ctx context.Context, raw *clientv3.Client, key string) error {
			_, err := raw.Delete(ctx, key)
			return err
		}},
		{"overwritten without a lease", func(ctx context.Context, raw *clientv3.Client, key string) error {
			_, err := raw.Put(ctx, key, `{"Op":0,"Addr":"10.9.9.9:1"}`)
			return err
		}},
		{"our lease, another value", func(ctx context.Context, raw *clientv3.Client, key string) error {
			resp, err := raw.Get(ctx, key)
			if err != nil {
				return err
			}
			_, err = raw.Put(ctx, key, "not an instance", clientv3.WithLease(clientv3.LeaseID(resp.Kvs[0].Lease)))
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cli := testServer.Client(t)
			raw := testServer.RawClient(t)
			ctx := testCtx(t)
			reg, err := discovery.Register(ctx, cli, serviceName(t), discovery.Instance{ID: "i", Addr: "10.0.0.1:80"}, discovery.WithTTL(keepTTL))
			require.NoError(t, err)
			defer reg.Close(ctx)
			ours := storedAt(t, raw, reg.Key())
			require.NotZero(t, ours.Lease)

			require.NoError(t, tt.touch(ctx, raw, reg.Key()))
			// Put back under the same lease: by the registration, not by
			// a re-registration after a lost lease.
			waitStored(t, raw, reg.Key(), ours, "the instance put back under its lease")

			require.NoError(t, reg.Close(ctx))
			staysGone(t, raw, reg.Key())
		})
	}
}

func TestRegistrationBackAfterOtherCloses(t *testing.T) {
	t.Parallel()
	cli := testServer.Client(t)
	raw := testServer.RawClient(t)
	ctx := testCtx(t)
	svc := serviceName(t)
	first, err := discovery.Register(ctx, cli, svc, discovery.Instance{ID: "i", Addr: "10.0.0.1:80"}, discovery.WithTTL(keepTTL))
	require.NoError(t, err)
	defer first.Close(ctx)
	ours := storedAt(t, raw, first.Key())

	second, err := discovery.Register(ctx, testServer.Client(t), svc, discovery.Instance{ID: "i", Addr: "10.0.0.2:80"}, discovery.WithTTL(keepTTL))
	require.NoError(t, err)
	theirs := storedAt(t, raw, second.Key())
	require.NotEqual(t, ours, theirs, "the second registration replaces the first")
	// The last to register wins while both are open: the first leaves the
	// key to the second.
	deadline := time.Now().Add(keepTTL)
	for time.Now().Before(deadline) {
		require.Equal(t, theirs, storedAt(t, raw, second.Key()), "the key, while both registrations are open")
		time.Sleep(50 * time.Millisecond)
	}

	require.NoError(t, second.Close(ctx))
	waitStored(t, raw, first.Key(), ours, "the first instance back after the second closed")
}

// TestRegistrationResumesAfterCompaction checks that a registration whose
// watch was cut by a restart, with the revisions it had not seen compacted
// meanwhile, reads its key again and still puts it back.
func TestRegistrationResumesAfterCompaction(t *testing.T) {
	t.Parallel()
	srv := etcdtest.Start(t)
	raw := srv.RawClient(t)
	ctx := testCtx(t)
	svc := serviceName(t)
	first, err := discovery.Register(ctx, srv.Client(t), svc, discovery.Instance{ID: "i", Addr: "10.0.0.1:80"}, discovery.WithTTL(keepTTL))
	require.NoError(t, err)
	defer first.Close(ctx)
	ours := storedAt(t, raw, first.Key())
	second, err := discovery.Register(ctx, srv.Client(t), svc, discovery.Instance{ID: "i", Addr: "10.0.0.2:80"}, discovery.WithTTL(keepTTL))
	require.NoError(t, err)

	var rev int64
	for range 10 { // revisions the first registration's watch does not see
		resp, err := raw.Put(ctx, svc+"-filler", "x")
		require.NoError(t, err)
		rev = resp.Header.Revision
	}
	srv.Compact(t, rev)
	srv.Restart(t)

	require.NoError(t, second.Close(ctx))
	waitStored(t, raw, first.Key(), ours, "the first instance back after a compaction, a restart and the second's Close")

	// Once more, with the key deleted outright after another compaction.
	resp, err := raw.Put(ctx, svc+"-filler", "x")
	require.NoError(t, err)
	srv.Compact(t, resp.Header.Revision)
	srv.Restart(t)
	_, err = raw.Delete(ctx, first.Key())
	require.NoError(t, err)
	waitStored(t, raw, first.Key(), ours, "the instance back after a delete that followed a restart")
}

func TestRegistrationCloseKeyStaysGone(t *testing.T) {
	t.Parallel()
	t.Run("closed", func(t *testing.T) {
		t.Parallel()
		raw := testServer.RawClient(t)
		ctx := testCtx(t)
		reg, err := discovery.Register(ctx, testServer.Client(t), serviceName(t), discovery.Instance{ID: "i", Addr: "10.0.0.1:80"}, discovery.WithTTL(keepTTL))
		require.NoError(t, err)
		require.NoError(t, reg.Close(ctx))
		staysGone(t, raw, reg.Key())
	})
	t.Run("a put back landing after Close", func(t *testing.T) {
		t.Parallel()
		raw := testServer.RawClient(t)
		ctx := testCtx(t)
		f := etcdtest.NewFaults()
		reg, err := discovery.Register(ctx, testServer.Client(t, etcdtest.WithFaults(f)), serviceName(t), discovery.Instance{ID: "i", Addr: "10.0.0.1:80"}, discovery.WithTTL(keepTTL))
		require.NoError(t, err)
		ours := storedAt(t, raw, reg.Key())
		// The put back fails at once, and is sent one second later.
		f.Inject(etcdtest.RPCPut, etcdtest.FailThenCommit, 1, time.Second)
		_, err = raw.Delete(ctx, reg.Key())
		require.NoError(t, err)
		waitFor(t, 2*keepTTL, "the put back failed", func() bool { return f.Injected() == 1 })
		waitStored(t, raw, reg.Key(), ours, "the instance put back by a later attempt")
		require.NoError(t, reg.Close(ctx))
		f.Wait() // the late put lands, on a revoked lease
		staysGone(t, raw, reg.Key())
	})
	// A Close whose revoke fails, or commits unseen, leaves the lease
	// without keep-alive: it expires, and the key with it.
	for _, outcome := range []etcdtest.Outcome{etcdtest.FailBeforeSend, etcdtest.CommitThenTimeout} {
		t.Run("revoke: "+outcome.String(), func(t *testing.T) {
			t.Parallel()
			raw := testServer.RawClient(t)
			ctx := testCtx(t)
			f := etcdtest.NewFaults()
			reg, err := discovery.Register(ctx, testServer.Client(t, etcdtest.WithFaults(f)), serviceName(t), discovery.Instance{ID: "i", Addr: "10.0.0.1:80"}, discovery.WithTTL(keepTTL))
			require.NoError(t, err)
			f.Inject(etcdtest.RPCLeaseRevoke, outcome, 1000, 0) // every retry too
			cctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
			defer cancel()
			err = reg.Close(cctx)
			assert.Error(t, err, "Close whose revoke failed")
			t.Logf("Close: %v", err)
			waitStored(t, raw, reg.Key(), stored{}, "the key gone with its lease")
			staysGone(t, raw, reg.Key())
			assert.Equal(t, err, reg.Close(ctx), "a second Close returns the first one's result")
		})
	}
}

// TestRegistrationEndsWithClient checks that a registration keeping its key
// stops when its client closes: the key goes with the revoked lease, nothing
// puts it back, and TestMain's leak check finds no goroutine left.
func TestRegistrationEndsWithClient(t *testing.T) {
	t.Parallel()
	raw := testServer.RawClient(t)
	ctx := testCtx(t)
	owner, err := etcdkit.New(ctx, testServer.Config())
	require.NoError(t, err)
	reg, err := discovery.Register(ctx, owner, serviceName(t), discovery.Instance{ID: "i", Addr: "10.0.0.1:80"}, discovery.WithTTL(keepTTL))
	require.NoError(t, err)
	_, err = raw.Delete(ctx, reg.Key())
	require.NoError(t, err)
	require.NoError(t, owner.Close())
	staysGone(t, raw, reg.Key())
	assert.NoError(t, reg.Close(ctx))
}

// TestRegistrationChecksAmbiguousPutBack checks that a put back that failed
// after etcd applied it is found by reading the key, not written twice.
func TestRegistrationChecksAmbiguousPutBack(t *testing.T) {
	t.Parallel()
	raw := testServer.RawClient(t)
	ctx := testCtx(t)
	f := etcdtest.NewFaults()
	reg, err := discovery.Register(ctx, testServer.Client(t, etcdtest.WithFaults(f)), serviceName(t), discovery.Instance{ID: "i", Addr: "10.0.0.1:80"}, discovery.WithTTL(keepTTL))
	require.NoError(t, err)
	defer reg.Close(ctx)
	ours := storedAt(t, raw, reg.Key())
	f.Inject(etcdtest.RPCPut, etcdtest.CommitThenFail, 1, 0)
	_, err = raw.Delete(ctx, reg.Key())
	require.NoError(t, err)
	waitStored(t, raw, reg.Key(), ours, "the instance put back")
	require.Equal(t, int64(1), f.Injected(), "the put back committed, then failed")
	// The registration reads the key after a short pause; give it a TTL.
	deadline := time.Now().Add(keepTTL)
	for time.Now().Before(deadline) {
		resp, err := raw.Get(ctx, reg.Key())
		require.NoError(t, err)
		require.Len(t, resp.Kvs, 1)
		require.Equal(t, int64(1), resp.Kvs[0].Version, "puts since the delete: the one that failed after committing, no other")
		time.Sleep(50 * time.Millisecond)
	}
}

func TestRegisterMetadataThatDoesNotEncode(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	svc := serviceName(t)
	inst := discovery.InstanceOf[chan int]{ID: "i", Addr: "10.0.0.1:80", Metadata: make(chan int)}
	reg, err := discovery.RegisterOf(ctx, testServer.Client(t), svc, inst)
	require.ErrorIs(t, err, etcdkit.ErrInvalidArgument)
	assert.Nil(t, reg)
	assert.Contains(t, err.Error(), svc+"/i")
	resp, err := testServer.RawClient(t).Get(ctx, svc+"/", clientv3.WithPrefix())
	require.NoError(t, err)
	assert.Zero(t, resp.Count, "keys left behind")
}
