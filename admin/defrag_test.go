package admin_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/etcdkit/etcdkit"
	"github.com/etcdkit/etcdkit/admin"
	"github.com/etcdkit/etcdkit/etcdtest"
)

// After writing and deleting a lot and compacting, Defragment shrinks the
// database file of every member, one at a time with the leader last; a
// dry run changes nothing; with a member down it refuses.
func TestDefragment(t *testing.T) {
	cl := etcdtest.StartCluster(t, 3)
	cli := cl.Client(t)
	ctx := testCtx(t)
	raw := cli.Raw()
	val := strings.Repeat("x", 8<<10)
	for b := range 10 { // 8 MiB written in 10 transactions
		ops := make([]clientv3.Op, 100)
		for i := range ops {
			ops[i] = clientv3.OpPut(fmt.Sprint("k", b*100+i), val)
		}
		_, err := raw.Txn(ctx).Then(ops...).Commit()
		require.NoError(t, err)
	}
	resp, err := raw.Delete(ctx, "k", clientv3.WithPrefix())
	require.NoError(t, err)
	_, err = raw.Compact(ctx, resp.Header.Revision, clientv3.WithCompactPhysical())
	require.NoError(t, err)

	// Followers apply the compaction, and free its space, a moment after
	// the member that answered it: wait (bounded) until every member shows
	// the space as free. On a loaded machine a follower's apply can lag by
	// many seconds, hence the minute.
	var dry *admin.DefragReport
	require.Eventually(t, func() bool {
		dry, err = admin.Defragment(ctx, cli, admin.FreeOver(0.5, 1<<20), admin.DryRun())
		if err != nil || len(dry.Members) != 3 {
			return false
		}
		for _, d := range dry.Members {
			if !d.Defragmented {
				return false
			}
		}
		return true
	}, time.Minute, 100*time.Millisecond, "every member would be defragmented after the compaction")
	for _, d := range dry.Members {
		assert.Equal(t, d.Before, d.After, "a dry run changes nothing")
	}

	var order []admin.Defragged
	rep, err := admin.Defragment(ctx, cli, admin.FreeOver(0.5, 1<<20), admin.OnMember(func(d admin.Defragged) {
		order = append(order, d)
	}))
	require.NoError(t, err)
	require.Len(t, rep.Members, 3)
	assert.Equal(t, rep.Members, order)
	for i, d := range rep.Members {
		assert.True(t, d.Defragmented, d.Name)
		assert.Greater(t, d.Before, d.After, "%s shrank", d.Name)
		assert.Equal(t, i == 2, d.Leader, "only the last one is the leader: %+v", rep.Members)
	}

	r, err := admin.Health(ctx, cli)
	require.NoError(t, err)
	for _, m := range r.Members {
		assert.Less(t, m.DBSize, dry.Members[0].Before, m.Name)
	}

	// Nothing left to free: skipped by the rule.
	rep, err = admin.Defragment(ctx, cli, admin.FreeOver(0.5, 1<<20))
	require.NoError(t, err)
	for _, d := range rep.Members {
		assert.False(t, d.Defragmented, d.Name)
		assert.NotEmpty(t, d.Skipped)
	}

	leader := cl.WaitLeader(t)
	cl.StopMember((leader + 1) % 3)
	rep, err = admin.Defragment(ctx, cli, admin.DefragAlways())
	require.ErrorIs(t, err, admin.ErrMemberDown)
	assert.Contains(t, err.Error(), "unreachable")
	assert.Empty(t, rep.Members, "no member was defragmented")
	assert.NotErrorIs(t, err, etcdkit.ErrUnavailable)
}
