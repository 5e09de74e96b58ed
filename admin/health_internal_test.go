package admin

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// The lag verdict on statuses as members report them: a few entries behind
// is normal, LagLimit or more is lagging. TestHealth_LaggingMember makes a
// member lag in a live cluster.
func TestJudge_Lagging(t *testing.T) {
	r := &Report{ClusterID: 7, Members: []Member{
		{ID: 1, Name: "m0", Endpoint: "e0", Reachable: true, ClusterID: 7, RaftIndex: 5000, AppliedIndex: 5000, leaderSeen: 1, Leader: true},
		{ID: 2, Name: "m1", Endpoint: "e1", Reachable: true, ClusterID: 7, RaftIndex: 5000, AppliedIndex: 4990, leaderSeen: 1},
		{ID: 3, Name: "m2", Endpoint: "e2", Reachable: true, ClusterID: 7, RaftIndex: 3000, AppliedIndex: 3000, leaderSeen: 1},
	}}
	r.judge()
	assert.True(t, r.Quorum)
	assert.False(t, r.Healthy)
	assert.Equal(t, uint64(10), r.Members[1].Lag)
	assert.False(t, r.Members[1].Has(Lagging), "10 entries behind is normal")
	assert.Equal(t, uint64(2000), r.Members[2].Lag)
	assert.True(t, r.Members[2].Has(Lagging))
	assert.Equal(t, []string{"member m2: lagging: 2000 entries behind the leader"}, r.Reasons)
}

// A member that knows no leader while a quorum follows one is not hearing
// from it; the reason says which leader the others follow.
func TestJudge_NoLeaderWhileQuorumHasOne(t *testing.T) {
	r := &Report{ClusterID: 7, Members: []Member{
		{ID: 1, Name: "m0", Endpoint: "e0", Reachable: true, ClusterID: 7, RaftIndex: 50, AppliedIndex: 50, leaderSeen: 1, Leader: true},
		{ID: 2, Name: "m1", Endpoint: "e1", Reachable: true, ClusterID: 7, RaftIndex: 50, AppliedIndex: 50, leaderSeen: 1},
		{ID: 3, Name: "m2", Endpoint: "e2", Reachable: true, ClusterID: 7, RaftIndex: 40, AppliedIndex: 40, Problems: []Problem{NoLeader}},
	}}
	r.judge()
	assert.True(t, r.Quorum)
	assert.Equal(t, []string{"member m2: no leader, while m0 leads 2 of 3 voting members: " +
		"it does not hear from the leader (cut off from its peers, or just started)"}, r.Reasons)

	r = &Report{ClusterID: 7, Members: []Member{
		{ID: 1, Name: "m0", Endpoint: "e0", Reachable: true, ClusterID: 7, Problems: []Problem{NoLeader}},
		{ID: 2, Name: "m1", Endpoint: "e1", Reachable: true, ClusterID: 7, Problems: []Problem{NoLeader}},
	}}
	r.judge()
	assert.Equal(t, []string{"no quorum: 0 of 2 voting members answer and agree on a leader",
		"member m0: no leader", "member m1: no leader"}, r.Reasons, "without a leader, there is none to name")
}
