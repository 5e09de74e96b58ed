package etcdtest_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/etcdkit/etcdkit/etcdtest"
)

// An isolated member applies nothing while the others commit, and catches
// up once healed; clients still reach it.
func TestClusterIsolate(t *testing.T) {
	cl := etcdtest.StartCluster(t, 3)
	leader := cl.WaitLeader(t)
	x := (leader + 1) % 3
	majority := cl.Member(leader).RawClient(t)
	isolated := cl.Member(x).RawClient(t)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	_, err := majority.Put(ctx, "isolate/before", "v")
	require.NoError(t, err)
	before := waitApplied(t, isolated, cl.Member(x), appliedOf(t, majority, cl.Member(leader)))

	heal := cl.Isolate(t, x)
	for i := range 50 {
		_, err := majority.Put(ctx, fmt.Sprintf("isolate/%d", i), "v")
		require.NoError(t, err, "the other two members are a quorum")
	}
	committed := appliedOf(t, majority, cl.Member(leader))
	require.GreaterOrEqual(t, committed, before+50)
	assert.Equal(t, before, appliedOf(t, isolated, cl.Member(x)), "the isolated member applied nothing")
	_, err = isolated.Get(ctx, "isolate/49", clientv3.WithSerializable())
	require.NoError(t, err, "clients still reach the isolated member")

	heal()
	waitApplied(t, isolated, cl.Member(x), committed)
	resp, err := isolated.Get(ctx, "isolate/49", clientv3.WithSerializable())
	require.NoError(t, err)
	assert.Len(t, resp.Kvs, 1, "the isolated member caught up")
}

// A member isolated twice stays isolated until both heal.
func TestClusterIsolateTwice(t *testing.T) {
	cl := etcdtest.StartCluster(t, 3)
	leader := cl.WaitLeader(t)
	x := (leader + 1) % 3
	majority := cl.Member(leader).RawClient(t)
	isolated := cl.Member(x).RawClient(t)
	// As in TestClusterIsolate, the member first applies what it already
	// knows is committed: an entry of the cluster's start whose commit it
	// learned before being cut off would otherwise be applied meanwhile.
	waitApplied(t, isolated, cl.Member(x), appliedOf(t, majority, cl.Member(leader)))
	heal1 := cl.Isolate(t, x)
	heal2 := cl.Isolate(t, x)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	heal1()
	heal1() // a second call does nothing
	before := appliedOf(t, isolated, cl.Member(x))
	for i := range 50 {
		_, err := majority.Put(ctx, fmt.Sprintf("twice/%d", i), "v")
		require.NoError(t, err)
	}
	assert.Equal(t, before, appliedOf(t, isolated, cl.Member(x)), "still isolated by the other call")
	heal2()
	waitApplied(t, isolated, cl.Member(x), appliedOf(t, majority, cl.Member(leader)))
}

// appliedOf returns the applied raft index of member m, asked through cli.
func appliedOf(t *testing.T, cli *clientv3.Client, m *etcdtest.Server) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	st, err := cli.Status(ctx, m.Endpoints()[0])
	require.NoError(t, err)
	return st.RaftAppliedIndex
}

// waitApplied waits until member m has applied index, and returns its
// applied index.
func waitApplied(t *testing.T, cli *clientv3.Client, m *etcdtest.Server, index uint64) uint64 {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		got := appliedOf(t, cli, m)
		if got >= index {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("member applied %d after 20s, want %d", got, index)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
