package etcdtest_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"

	"github.com/etcdkit/etcdkit/etcdtest"
)

// TestAddLearner: the learner joins, receives the cluster's data, serves
// it, and is not counted by Leader: with it and one voter stopped, the two
// voters left are a quorum of the three.
func TestAddLearner(t *testing.T) {
	cl := etcdtest.StartCluster(t, 3, etcdtest.WithEmbedConfig(func(cfg *embed.Config) {
		cfg.StrictReconfigCheck = false
	}))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := cl.RawClient(t).Put(ctx, "k", "v")
	require.NoError(t, err)
	l := cl.AddLearner(t)
	require.Equal(t, 4, cl.Size())
	// A learner serves serializable reads only.
	resp, err := l.RawClient(t).Get(ctx, "k", clientv3.WithSerializable())
	require.NoError(t, err)
	require.Len(t, resp.Kvs, 1, "the key, read on the learner")
	assert.Equal(t, "v", string(resp.Kvs[0].Value))

	leader := cl.WaitLeader(t)
	cl.StopMember(3)
	cl.StopMember((leader + 1) % 3)
	assert.GreaterOrEqual(t, cl.WaitLeader(t), 0, "a leader with two of three voters running")
}
