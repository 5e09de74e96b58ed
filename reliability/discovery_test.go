package reliability_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/etcdkit/etcdkit"
	"github.com/etcdkit/etcdkit/discovery"
	"github.com/etcdkit/etcdkit/etcdtest"
)

// registrationTTL is the registration's lease TTL: partitions of 1.5 to
// 2.5 times it make the server expire the lease.
const registrationTTL = 2 * time.Second

// registrationFault is a fault that lasts until apply returns: when it
// returns, the fault has healed.
type registrationFault struct {
	name  string
	apply func(t *testing.T, c *faultyClient, raw *clientv3.Client, key string, rng *rand.Rand) string
}

func blockingPartition(name string, dir etcdtest.Direction, from, to time.Duration) registrationFault {
	return registrationFault{name, func(t *testing.T, c *faultyClient, _ *clientv3.Client, _ string, rng *rand.Rand) string {
		d := from + time.Duration(rng.Int64N(int64(to-from)))
		c.proxy.Blackhole(dir)
		time.Sleep(d)
		c.proxy.Heal()
		return fmt.Sprintf("for %v", d.Round(time.Millisecond))
	}}
}

// revokeRegistration revokes the registration's lease from another client,
// the next writes of the registered client made ambiguous half the time.
var revokeRegistration = registrationFault{"lease revoked, writes ambiguous", func(t *testing.T, c *faultyClient, raw *clientv3.Client, key string, rng *rand.Rand) string {
	c.ambiguousFor(0.5, rng.Uint64(), 2*registrationTTL)
	ctx, cancel := opCtx(t.Context())
	defer cancel()
	resp, err := raw.Get(ctx, key)
	require.NoError(t, err)
	if len(resp.Kvs) == 0 {
		return "no key"
	}
	_, err = raw.Revoke(ctx, clientv3.LeaseID(resp.Kvs[0].Lease))
	require.NoError(t, err)
	return fmt.Sprintf("lease %x", resp.Kvs[0].Lease)
}}

// deleteRegistration deletes the registration's key from another client.
var deleteRegistration = registrationFault{"key deleted by another client", func(t *testing.T, _ *faultyClient, raw *clientv3.Client, key string, _ *rand.Rand) string {
	ctx, cancel := opCtx(t.Context())
	defer cancel()
	_, err := raw.Delete(ctx, key)
	require.NoError(t, err)
	return key
}}

var registrationFaults = []registrationFault{
	blockingPartition("partition both ways, past the TTL", etcdtest.BothWays, 3*registrationTTL/2, 5*registrationTTL/2),
	blockingPartition("partition: requests lost, past the TTL", etcdtest.ToServer, 3*registrationTTL/2, 5*registrationTTL/2),
	blockingPartition("partition: answers lost, past the TTL", etcdtest.ToClient, 3*registrationTTL/2, 5*registrationTTL/2),
	blockingPartition("partition both ways, within the TTL", etcdtest.BothWays, registrationTTL/4, registrationTTL/2),
	{"drop connections", func(_ *testing.T, c *faultyClient, _ *clientv3.Client, _ string, _ *rand.Rand) string {
		c.proxy.Drop()
		return ""
	}},
	revokeRegistration,
}

// testRegistrationComesBack registers an instance through a faulty client,
// applies faults one at a time, and after each one checks that a client
// without faults finds the instance again within two TTLs and some slack.
func testRegistrationComesBack(t *testing.T, faults []registrationFault, n int) {
	cl := etcdtest.StartCluster(t, 3)
	c := newFaultyClients(t, cl, 1)[0]
	direct := cl.Client(t)
	raw := cl.RawClient(t)
	inst := discovery.Instance{ID: "i1", Addr: "127.0.0.1:7001"}
	reg, err := discovery.Register(t.Context(), c.cli, "rsvc", inst, discovery.WithTTL(registrationTTL))
	require.NoError(t, err)
	defer func() {
		ctx, cancel := opCtx(context.WithoutCancel(t.Context()))
		defer cancel()
		assert.NoError(t, reg.Close(ctx))
	}()
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 5))
	bound := 2*registrationTTL + 5*time.Second
	var slowest time.Duration
	var inj injector
	for i := range n {
		f := faults[rng.IntN(len(faults))]
		what := f.apply(t, c, raw, reg.Key(), rng)
		c.heal()
		inj.count(f.name)
		took, ok := waitRegistered(t, direct, inst, bound)
		require.True(t, ok, "after fault %d (%s, %s), the instance was not registered again within %v", i+1, f.name, what, bound)
		slowest = max(slowest, took)
		t.Logf("fault %d: %s (%s): found %v after it healed", i+1, f.name, what, took.Round(time.Millisecond))
	}
	t.Logf("%d faults (%s); the instance was found each time, at most %v after the fault healed (bound %v)",
		inj.total(), inj.summary(), slowest.Round(time.Millisecond), bound)
}

// waitRegistered waits until Lookup finds exactly inst, and returns how
// long that took.
func waitRegistered(t *testing.T, c *etcdkit.Client, inst discovery.Instance, bound time.Duration) (time.Duration, bool) {
	t.Helper()
	start := time.Now()
	for time.Since(start) < bound {
		ctx, cancel := opCtx(t.Context())
		found, err := discovery.Lookup(ctx, c, "rsvc")
		cancel()
		if err == nil && len(found) == 1 && found[0].ID == inst.ID && found[0].Addr == inst.Addr {
			return time.Since(start), true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return time.Since(start), false
}

// TestDiscovery_RegistrationComesBackUnderClientFaults: a registration
// whose client is partitioned past its TTL (the server expires its lease),
// whose connections drop, or whose lease is revoked while its writes are
// ambiguous, is found again by another client within two TTLs of the
// fault's end (plus slack for a retry pause).
func TestDiscovery_RegistrationComesBackUnderClientFaults(t *testing.T) {
	t.Parallel()
	testRegistrationComesBack(t, registrationFaults, budget(4, 40))
}

// TestDiscovery_RegistrationComesBackAfterKeyDeleted: a Registration
// "stays registered until Close", so a key deleted by another client comes
// back too.
func TestDiscovery_RegistrationComesBackAfterKeyDeleted(t *testing.T) {
	t.Parallel()
	testRegistrationComesBack(t, []registrationFault{deleteRegistration}, budget(2, 10))
}
