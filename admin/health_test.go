package admin_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.etcd.io/etcd/server/v3/embed"

	"github.com/etcdkit/etcdkit"
	"github.com/etcdkit/etcdkit/admin"
	"github.com/etcdkit/etcdkit/etcdtest"
)

func TestHealth_Healthy(t *testing.T) {
	cli := testCluster.Client(t)
	r, err := admin.Health(testCtx(t), cli)
	require.NoError(t, err)
	assert.True(t, r.Healthy, "report:\n%s", r)
	assert.True(t, r.Quorum)
	assert.Empty(t, r.Reasons)
	require.Len(t, r.Members, 3)
	leaders := 0
	for _, m := range r.Members {
		assert.True(t, m.Reachable, "member %s", m.Name)
		assert.Equal(t, r.ClusterID, m.ClusterID)
		assert.NotEmpty(t, m.Version)
		assert.Positive(t, m.DBSize)
		assert.Positive(t, m.Quota, "etcd reports its default quota")
		if m.Leader {
			leaders++
			assert.Equal(t, r.LeaderID, m.ID)
		}
	}
	assert.Equal(t, 1, leaders)
	assert.Equal(t, 3, r.Agreeing)
	assert.Contains(t, r.String(), "healthy")
}

// A member stopped is reported unreachable with its endpoint, the cluster
// keeps its quorum but is not healthy; with two of three down, it loses it.
func TestHealth_StoppedMember(t *testing.T) {
	cl := etcdtest.StartCluster(t, 3)
	cli := cl.Client(t)
	leader := cl.WaitLeader(t)
	down := (leader + 1) % 3
	cl.StopMember(down)

	r, err := admin.Health(testCtx(t), cli)
	require.NoError(t, err)
	assert.False(t, r.Healthy)
	assert.True(t, r.Quorum, "two of three members still run:\n%s", r)
	m := memberNamed(t, r, fmt.Sprintf("m%d", down))
	assert.False(t, m.Reachable)
	assert.True(t, m.Has(admin.Unreachable), "problems: %v", m.Problems)
	assert.Error(t, m.Err)
	require.Len(t, r.Reasons, 1, "report:\n%s", r)
	assert.Contains(t, r.Reasons[0], "unreachable")
	assert.Contains(t, r.Reasons[0], m.Endpoint)
	assert.Contains(t, r.String(), "UNHEALTHY")

	cl.StopMember((down + 1) % 3)
	r, err = admin.Health(testCtx(t), cli)
	require.NoError(t, err, "the remaining member still lists the members")
	assert.False(t, r.Quorum, "report:\n%s", r)
	assert.Contains(t, strings.Join(r.Reasons, "\n"), "no quorum")
}

// A learner added but not started yet is in the report as a learner that
// has not started, and does not count against the quorum.
func TestHealth_Learner(t *testing.T) {
	// etcd refuses to add members until the cluster has been connected for
	// five seconds, unless the check is off.
	cl := etcdtest.StartCluster(t, 3, etcdtest.WithEmbedConfig(func(cfg *embed.Config) {
		cfg.StrictReconfigCheck = false
	}))
	cli := cl.Client(t)
	_, err := cli.Raw().MemberAddAsLearner(testCtx(t), []string{"http://127.0.0.1:9"})
	require.NoError(t, err)

	r, err := admin.Health(testCtx(t), cli)
	require.NoError(t, err)
	require.Len(t, r.Members, 4)
	assert.Equal(t, 3, r.Voters)
	assert.True(t, r.Quorum)
	var learner *admin.Member
	for i := range r.Members {
		if r.Members[i].Learner {
			learner = &r.Members[i]
		}
	}
	require.NotNil(t, learner, "report:\n%s", r)
	assert.True(t, learner.Has(admin.NotStarted), "problems: %v", learner.Problems)
	assert.Contains(t, r.String(), "learner")
}

// A learner that runs is reported reachable, as a learner, with no problem
// once it has caught up, and does not count among the voters: the cluster
// is healthy. Stopped, it is unreachable, and the quorum stands.
func TestHealth_RunningLearner(t *testing.T) {
	cl := etcdtest.StartCluster(t, 3, etcdtest.WithEmbedConfig(func(cfg *embed.Config) {
		cfg.StrictReconfigCheck = false
	}))
	cli := cl.Client(t)
	ctx := testCtx(t)
	_, err := cli.Raw().Put(ctx, prefix(t)+"k", "v")
	require.NoError(t, err)
	cl.AddLearner(t)
	name := fmt.Sprintf("m%d", cl.Size()-1)

	r, err := admin.Health(ctx, cli)
	require.NoError(t, err)
	require.Len(t, r.Members, 4, "report:\n%s", r)
	assert.Equal(t, 3, r.Voters)
	l := memberNamed(t, r, name)
	assert.True(t, l.Learner, "Learner")
	assert.True(t, l.Reachable, "Reachable: %v", l.Err)
	assert.False(t, l.Leader, "Leader")
	assert.Equal(t, r.ClusterID, l.ClusterID, "ClusterID")
	assert.Positive(t, l.AppliedIndex, "AppliedIndex: it receives the cluster's data")
	assert.Empty(t, l.Problems, "Problems")
	assert.True(t, r.Healthy, "report:\n%s", r)
	assert.Contains(t, r.String(), "learner")

	cl.StopMember(cl.Size() - 1)
	r, err = admin.Health(ctx, cli)
	require.NoError(t, err)
	l = memberNamed(t, r, name)
	assert.True(t, l.Has(admin.Unreachable), "problems of the stopped learner: %v", l.Problems)
	assert.True(t, r.Quorum, "a learner does not count against the quorum:\n%s", r)
	assert.False(t, r.Healthy)
}

// A database over its quota raises NOSPACE: writes fail with ErrNoSpace,
// reads keep working, Health names the alarm, and Disarm, after
// compaction and defragmentation, makes writes work again.
func TestHealth_NoSpace(t *testing.T) {
	const quota = 2 << 20
	cl := etcdtest.StartCluster(t, 3, etcdtest.WithEmbedConfig(func(cfg *embed.Config) {
		cfg.QuotaBackendBytes = quota
	}))
	cli := cl.Client(t)
	ctx := testCtx(t)
	kv := etcdkit.NewKV(cli, prefix(t), etcdkit.Bytes())
	_, err := kv.Put(ctx, "keep", []byte("v"))
	require.NoError(t, err)
	big := make([]byte, 100<<10)
	var werr error
	for i := 0; i < 100 && werr == nil; i++ {
		_, werr = kv.Put(ctx, "big", big) // overwriting: only history grows
	}
	require.ErrorIs(t, werr, etcdkit.ErrNoSpace)
	assert.NotErrorIs(t, werr, etcdkit.ErrUnavailable)

	e, err := kv.Get(ctx, "keep")
	require.NoError(t, err, "reads work under the alarm")
	assert.Equal(t, []byte("v"), e.Value)

	r, err := admin.Health(ctx, cli)
	require.NoError(t, err)
	assert.False(t, r.Healthy)
	require.NotEmpty(t, r.Alarms, "report:\n%s", r)
	assert.Contains(t, r.Alarms[0], "NOSPACE")
	hit := false
	for _, m := range r.Members {
		hit = hit || m.Has(admin.NoSpace)
	}
	assert.True(t, hit, "a member has the NOSPACE problem:\n%s", r)
	assert.Contains(t, strings.Join(r.Reasons, "\n"), "NOSPACE")

	rev, err := kv.Put(ctx, "keep", []byte("v2"))
	require.ErrorIs(t, err, etcdkit.ErrNoSpace, "rev %d", rev)
	cur, err := cli.Raw().Get(ctx, "x")
	require.NoError(t, err)
	_, err = cli.Raw().Compact(ctx, cur.Header.Revision)
	require.NoError(t, err)
	_, err = admin.Defragment(ctx, cli, admin.DefragAlways())
	require.NoError(t, err)
	disarmed, err := admin.Disarm(ctx, cli)
	require.NoError(t, err)
	assert.NotEmpty(t, disarmed)

	_, err = kv.Put(ctx, "keep", []byte("v3"))
	require.NoError(t, err, "writes work once disarmed")
	r, err = admin.Health(ctx, cli)
	require.NoError(t, err)
	assert.True(t, r.Healthy, "report:\n%s", r)
}

func memberNamed(t *testing.T, r *admin.Report, name string) admin.Member {
	t.Helper()
	for _, m := range r.Members {
		if m.Name == name {
			return m
		}
	}
	t.Fatalf("no member %s in the report:\n%s", name, r)
	return admin.Member{}
}
