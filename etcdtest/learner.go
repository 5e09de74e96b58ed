package etcdtest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.etcd.io/etcd/server/v3/embed"
)

// AddLearner adds a learner to the cluster, as `etcdctl member add
// --learner` does, starts it, and returns it once it serves clients; it
// becomes the cluster's last member ([Cluster.Size]-1) and is stopped with
// the cluster. A learner receives the cluster's data but does not vote, so
// [Cluster.Leader] does not count it. AddLearner fails tb if the member
// cannot be added or does not serve within 20 seconds. etcd refuses new
// members until the cluster has been connected for five seconds unless
// its StrictReconfigCheck is off (see [WithEmbedConfig]); AddLearner
// retries meanwhile.
func (c *Cluster) AddLearner(tb testing.TB) *Server {
	tb.Helper()
	first := c.members[0]
	s, err := newServer(fmt.Sprintf("m%d", len(c.members)), first.opts, first.timing)
	if err != nil {
		tb.Fatalf("etcdtest: add learner: %v", err)
	}
	c.addMember(s) // closed with the cluster from here on
	c.learners = append(c.learners, s)
	peers, err := c.addLearner(tb, s.peerURL.String())
	if err != nil {
		tb.Fatalf("etcdtest: add learner %s: %v", s.name, err)
	}
	s.initialCluster = strings.Join(append(peers, s.name+"="+s.peerURL.String()), ",")
	s.token, s.joining = first.token, true
	s.life.Lock()
	err = s.startInstance()
	s.life.Unlock()
	if err == nil {
		err = s.waitReady(time.Now().Add(readyTimeout))
	}
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// addLearner asks the cluster to add a learner at peerURL, retrying while
// etcd's reconfiguration check refuses, and returns the other members as
// "name=peerURL".
func (c *Cluster) addLearner(tb testing.TB, peerURL string) ([]string, error) {
	raw := c.RawClient(tb)
	deadline := time.Now().Add(readyTimeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		resp, err := raw.MemberAddAsLearner(ctx, []string{peerURL})
		cancel()
		if err == nil {
			var peers []string
			for _, m := range resp.Members {
				if m.ID != resp.Member.ID {
					peers = append(peers, m.Name+"="+m.PeerURLs[0])
				}
			}
			return peers, nil
		}
		if !errors.Is(err, rpctypes.ErrUnhealthy) || time.Now().After(deadline) {
			return nil, err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// joinState is the initial cluster state of a member: new for those that
// start the cluster, existing for one added to it.
func (s *Server) joinState() string {
	if s.joining {
		return embed.ClusterStateFlagExisting
	}
	return embed.ClusterStateFlagNew
}
