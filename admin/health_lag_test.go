package admin_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/etcdkit/etcdkit/admin"
	"github.com/etcdkit/etcdkit/etcdtest"
)

// A follower cut off from its peers while the others commit more than
// LagLimit entries is reported lagging, by how much, while the cluster
// keeps its quorum. Healed, it catches up and the cluster is healthy
// again.
func TestHealth_LaggingMember(t *testing.T) {
	cl := etcdtest.StartCluster(t, 3)
	leader := cl.WaitLeader(t)
	x := (leader + 1) % 3
	name := fmt.Sprintf("m%d", x)
	// Clients of the majority: a request the isolated member took would
	// wait for the cut to heal.
	cli := cl.Member(leader).Client(t)
	heal := cl.Isolate(t, x)
	ctx := testCtx(t)
	putMany(ctx, t, cl.Member(leader).RawClient(t), prefix(t), admin.LagLimit+200)

	r, err := admin.Health(ctx, cli)
	require.NoError(t, err)
	assert.False(t, r.Healthy)
	assert.True(t, r.Quorum, "two of three members agree on the leader:\n%s", r)
	m := memberNamed(t, r, name)
	lead := memberNamed(t, r, fmt.Sprintf("m%d", leader))
	require.True(t, m.Reachable, "clients still reach it: %v", m.Err)
	require.True(t, lead.Leader, "report:\n%s", r)
	assert.Equal(t, lead.RaftIndex-m.AppliedIndex, m.Lag, "the leader's committed index minus its applied index")
	assert.GreaterOrEqual(t, m.Lag, uint64(admin.LagLimit))
	assert.True(t, m.Has(admin.Lagging), "problems: %v", m.Problems)
	assert.False(t, memberNamed(t, r, fmt.Sprintf("m%d", 3-leader-x)).Has(admin.Lagging), "the follower that was not cut off")
	reasons := strings.Join(r.Reasons, "\n")
	assert.Contains(t, reasons, fmt.Sprintf("member %s: lagging: %d entries behind the leader", name, m.Lag))
	if m.Has(admin.NoLeader) { // once its election timeout passed without a heartbeat
		assert.Contains(t, reasons, fmt.Sprintf("member %s: no leader, while %s leads 2 of 3 voting members", name, lead.Name))
	}

	heal()
	deadline := time.Now().Add(20 * time.Second)
	for !r.Healthy && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		r, err = admin.Health(ctx, cli)
		require.NoError(t, err)
	}
	assert.True(t, r.Healthy, "healed, it catches up:\n%s", r)
}

// putMany writes n keys under prefix, each its own raft entry, from a few
// goroutines at once.
func putMany(ctx context.Context, t *testing.T, raw *clientv3.Client, prefix string, n int) {
	t.Helper()
	const writers = 8
	errs := make([]error, writers)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := w; i < n && errs[w] == nil; i += writers {
				_, errs[w] = raw.Put(ctx, fmt.Sprintf("%s%d", prefix, i), "v")
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
}
