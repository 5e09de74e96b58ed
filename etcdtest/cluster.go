package etcdtest

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/etcdkit/etcdkit"
)

// Cluster is a cluster of etcd members running in this process, on
// loopback. Make one with [StartCluster]. Each member is a [Server];
// members are numbered from 0.
type Cluster struct {
	tb       testing.TB
	members  []*Server
	learners []*Server // added by AddLearner: they do not vote

	cutMu    sync.Mutex
	isolated []uint64 // IDs of the members cut off by Isolate, once per call
}

// StartCluster starts a cluster of n members for the test and returns once
// every member serves clients; it stops them and removes their data when
// the test ends. Members use the same options, addresses picked as for
// [Start], and raft timings short enough that a stopped leader is replaced
// within about a second. StartCluster fails tb if n < 1 or if the cluster
// does not serve within 20 seconds.
//
// The methods of Cluster that take no testing.TB report failures through
// the tb given here, so call them from that test's goroutine; in a subtest,
// use [Cluster.Member] with the subtest's tb instead.
func StartCluster(tb testing.TB, n int, opts ...Option) *Cluster {
	tb.Helper()
	if n < 1 {
		tb.Fatalf("etcdtest: StartCluster: a cluster needs at least one member, got %d", n)
	}
	ms, err := startMembers(n, buildOptions(opts), clusterTiming)
	if err != nil {
		tb.Fatal(err)
	}
	c := &Cluster{tb: tb, members: ms}
	tb.Cleanup(func() {
		if err := c.Close(); err != nil {
			tb.Error(err)
		}
	})
	return c
}

// Size returns the number of members.
func (c *Cluster) Size() int { return len(c.members) }

// Endpoints returns the client URLs of all members, in member order,
// whether they run or not.
func (c *Cluster) Endpoints() []string {
	eps := make([]string, 0, len(c.members))
	for _, m := range c.members {
		eps = append(eps, m.Endpoints()...)
	}
	return eps
}

// Config returns an [etcdkit.Config] with the endpoints of all members and,
// with [WithTLS], the members' client TLS config. Like [Server.Config], it
// carries no credentials.
func (c *Cluster) Config() etcdkit.Config {
	return etcdkit.Config{Endpoints: c.Endpoints(), TLS: c.members[0].ClientTLS()}
}

// Client returns an [etcdkit.Client] connected to all members, changed by
// opts; it is
// closed when the test ends. It keeps working while a quorum of members
// runs, whichever they are.
func (c *Cluster) Client(tb testing.TB, opts ...ClientOption) *etcdkit.Client {
	tb.Helper()
	return newClientWith(tb, c.Config(), opts)
}

// RawClient returns a plain clientv3 client of all members, closed when the
// test ends.
func (c *Cluster) RawClient(tb testing.TB) *clientv3.Client {
	tb.Helper()
	return newRawClient(tb, c.Endpoints(), c.members[0].ClientTLS())
}

// Member returns member i, from 0 to [Cluster.Size]-1. It fails the
// cluster's tb if i is out of range.
func (c *Cluster) Member(i int) *Server {
	c.tb.Helper()
	if i < 0 || i >= len(c.members) {
		c.tb.Fatalf("etcdtest: member %d out of range: the cluster has %d members", i, len(c.members))
	}
	return c.members[i]
}

// StopMember stops member i, keeping its data; see [Server.Stop]. When the
// member is the leader, it hands leadership over before it stops.
func (c *Cluster) StopMember(i int) {
	c.tb.Helper()
	c.Member(i).Stop()
}

// RestartMember stops member i if it runs, starts it again on the same
// addresses with the same data, and waits until it has rejoined the
// cluster, which needs a quorum of members running. Failures fail the
// cluster's tb; see [Server.Restart].
func (c *Cluster) RestartMember(i int) {
	c.tb.Helper()
	c.Member(i).Restart(c.tb)
}

// Leader returns the index of the current leader, or -1 if there is none:
// a running member counts as leader only when it believes it is and a
// quorum of the cluster's members agrees.
func (c *Cluster) Leader() int {
	votes := map[uint64]int{} // leader ID as seen by each running member
	index := map[uint64]int{} // member ID to index, for running members
	for i, m := range c.members {
		in := m.current()
		if in == nil || slices.Contains(c.learners, m) {
			continue
		}
		index[uint64(in.etcd.Server.MemberID())] = i
		if lead := uint64(in.etcd.Server.Leader()); lead != 0 {
			votes[lead]++
		}
	}
	quorum := (len(c.members)-len(c.learners))/2 + 1
	for id, n := range votes {
		i, ok := index[id]
		if !ok || n < quorum {
			continue
		}
		// The leader must still see itself as such, or it has stepped down.
		if in := c.members[i].current(); in != nil && uint64(in.etcd.Server.Leader()) == id {
			return i
		}
	}
	return -1
}

// WaitLeader waits until the cluster has a leader (see [Cluster.Leader])
// and returns its index. It fails tb if there is none within 20 seconds,
// for instance because less than a quorum of members runs.
func (c *Cluster) WaitLeader(tb testing.TB) int {
	tb.Helper()
	deadline := time.Now().Add(readyTimeout)
	for {
		if i := c.Leader(); i >= 0 {
			return i
		}
		if time.Now().After(deadline) {
			tb.Fatalf("etcdtest: no leader after %v; running members: %s", readyTimeout, c.running())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// running lists the running members, for error messages.
func (c *Cluster) running() string {
	var names []string
	for i, m := range c.members {
		if m.Running() {
			names = append(names, fmt.Sprint(i))
		}
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

// Close stops every member and removes their data. It is safe to call more
// than once. [StartCluster] calls it when the test ends. It returns the
// errors of the members' [Server.Close], joined: only failures to remove a
// data directory; every member is stopped all the same.
func (c *Cluster) Close() error {
	return closeMembers(c.members)
}
