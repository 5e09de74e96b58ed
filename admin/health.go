package admin

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/etcdkit/etcdkit"
)

const (
	// ProbeTimeout bounds how long [Health] waits for each member's answer
	// (or ctx's deadline, if sooner). A member that has not answered by then
	// is reported [Unreachable].
	ProbeTimeout = 2 * time.Second
	// LagLimit is how many raft entries a member's applied index may be
	// behind the leader's committed index before [Health] reports it
	// [Lagging]. A healthy member stays within a few entries.
	LagLimit = 1000
)

// Problem is one thing wrong with a member or the cluster.
type Problem int

// The problems [Health] reports.
const (
	Unreachable  Problem = iota + 1 // the member did not answer within ProbeTimeout
	NotStarted                      // the member was added but never started: it has no client URL
	NoLeader                        // the member knows no leader
	Lagging                         // the member applied LagLimit or more entries fewer than the leader committed
	NoSpace                         // the NOSPACE alarm is raised: the database is over its quota, writes fail
	Corrupt                         // the CORRUPT alarm is raised: the member's data differs from the others'
	OtherCluster                    // the member answers with another cluster ID than the member list's
	NoQuorum                        // (cluster) fewer than a majority of voting members answer and agree on a leader
)

var problemNames = map[Problem]string{
	Unreachable: "unreachable", NotStarted: "not started", NoLeader: "no leader",
	Lagging: "lagging", NoSpace: "alarm NOSPACE", Corrupt: "alarm CORRUPT",
	OtherCluster: "other cluster", NoQuorum: "no quorum",
}

func (p Problem) String() string {
	if s, ok := problemNames[p]; ok {
		return s
	}
	return fmt.Sprintf("Problem(%d)", int(p))
}

// Member is the health of one member of the cluster, as it answered
// [Health]'s status request.
type Member struct {
	ID       uint64 // the member ID, as etcdctl shows it in hex
	Name     string // empty until the member has started
	Endpoint string // the client URL probed; empty if it has none

	Reachable bool          // it answered
	Err       error         // why it did not, when not Reachable
	Latency   time.Duration // round trip of the status request on an open connection

	Leader       bool   // it is the leader
	Learner      bool   // it is a learner (a non-voting member catching up)
	RaftTerm     uint64 // its raft term
	RaftIndex    uint64 // its committed raft index
	AppliedIndex uint64 // its applied raft index
	Lag          uint64 // the leader's committed index minus its applied index; 0 when unknown

	DBSize      int64 // bytes of the database file
	DBSizeInUse int64 // bytes of it holding data; the rest is free until defragmented
	Quota       int64 // the space quota (--quota-backend-bytes); 0 when the member does not say

	Version   string    // the etcd version it runs
	ClusterID uint64    // the cluster ID it answered with
	Alarms    []string  // alarms raised for it: "NOSPACE", "CORRUPT"
	Problems  []Problem // what is wrong with it; empty when healthy

	leaderSeen uint64 // the leader it names
}

// QuotaUsed returns DBSize/Quota, the share of the quota the database file
// takes, or 0 when the quota is unknown. At 1, etcd raises NOSPACE.
func (m Member) QuotaUsed() float64 {
	if m.Quota <= 0 {
		return 0
	}
	return float64(m.DBSize) / float64(m.Quota)
}

// Report is the health of a cluster: every member of its member list
// (learners and members that never started included), and the verdict.
type Report struct {
	ClusterID uint64   // as the member list says
	LeaderID  uint64   // the leader a quorum agrees on; 0 if none
	Members   []Member // in member list order
	Voters    int      // members that are not learners
	Agreeing  int      // voters that answer and agree on LeaderID
	Quorum    bool     // Agreeing is a majority of Voters
	Healthy   bool     // quorum, and no member has a problem
	Reasons   []string // why not Healthy, one line each
	Alarms    []string // alarms raised, "NOSPACE on m1"; with Reasons when alarms could not be listed
}

// Health probes every member of the cluster c is connected to, not only
// c's endpoints: it reads the member list, then asks each member, in
// parallel and over its own connection with c's TLS settings and
// credentials, for its status, and lists the cluster's alarms. Each probe is
// bounded by [ProbeTimeout]; a member that does not answer is a problem in
// the report, not an error.
//
// Health fails only when the member list cannot be read: the error matches
// [etcdkit.ErrUnavailable] when no endpoint of c answers, and ctx's error
// when ctx ends. A nil client is [etcdkit.ErrInvalidArgument], a closed one
// [etcdkit.ErrClosed].
func Health(ctx context.Context, c *etcdkit.Client) (*Report, error) {
	if err := checkClient("health", c); err != nil {
		return nil, err
	}
	ctx, end := c.Observe(ctx, "health", "", "")
	r, err := health(ctx, c)
	end(0, err)
	return r, err
}

func health(ctx context.Context, c *etcdkit.Client) (*Report, error) {
	raw := c.Raw()
	ml, err := memberList(ctx, raw)
	if err != nil {
		return nil, wrap("health: member list", ctxErr(ctx, err))
	}
	r := &Report{ClusterID: ml.Header.ClusterId}
	r.Members = probeAll(ctx, raw, ml.Members)
	r.listAlarms(ctx, raw)
	r.judge()
	return r, nil
}

// memberList asks for the cluster's member list through a quorum, so that
// a member just added or removed is counted even by a member that has not
// applied the change yet; without a quorum within half of ProbeTimeout, it
// takes the answering member's own list, which is what can be known then.
func memberList(ctx context.Context, raw *clientv3.Client) (*clientv3.MemberListResponse, error) {
	lctx, cancel := context.WithTimeout(ctx, ProbeTimeout/2)
	ml, err := raw.MemberList(lctx)
	cancel()
	if err == nil || ctx.Err() != nil {
		return ml, err
	}
	lctx, cancel = context.WithTimeout(ctx, ProbeTimeout)
	defer cancel()
	return raw.MemberList(lctx, clientv3.WithSerializable())
}

// ctxErr prefers ctx's own error once it ended, so that a caller's
// cancellation is not reported as an unavailable cluster.
func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

func probeAll(ctx context.Context, raw *clientv3.Client, members []*pb.Member) []Member {
	out := make([]Member, len(members))
	var wg sync.WaitGroup
	for i, pm := range members {
		out[i] = Member{ID: pm.ID, Name: pm.Name, Learner: pm.IsLearner}
		if len(pm.ClientURLs) == 0 {
			continue
		}
		out[i].Endpoint = pm.ClientURLs[0]
		wg.Go(func() { probe(ctx, raw, &out[i]) })
	}
	wg.Wait()
	return out
}

// probe asks one member for its status twice over one connection: the
// first answer proves it reachable, the second measures a round trip
// without the cost of connecting.
func probe(ctx context.Context, raw *clientv3.Client, m *Member) {
	ctx, cancel := context.WithTimeout(ctx, ProbeTimeout)
	defer cancel()
	conn, err := raw.Dial(m.Endpoint)
	if err != nil {
		m.Err = err
		return
	}
	defer conn.Close()
	mc := pb.NewMaintenanceClient(conn)
	if _, err := mc.Status(ctx, &pb.StatusRequest{}); err != nil {
		m.Err = ctxErr(ctx, err)
		return
	}
	start := time.Now()
	st, err := mc.Status(ctx, &pb.StatusRequest{})
	if err != nil {
		m.Err = ctxErr(ctx, err)
		return
	}
	m.Latency = time.Since(start)
	m.Reachable = true
	m.fill(st)
}

func (m *Member) fill(st *pb.StatusResponse) {
	m.Leader = st.Leader == m.ID && st.Leader != 0
	m.Learner = m.Learner || st.IsLearner
	m.RaftTerm, m.RaftIndex, m.AppliedIndex = st.RaftTerm, st.RaftIndex, st.RaftAppliedIndex
	m.DBSize, m.DBSizeInUse, m.Quota = st.DbSize, st.DbSizeInUse, st.DbSizeQuota
	m.Version = st.Version
	if st.Header != nil {
		m.ClusterID = st.Header.ClusterId
	}
	if st.Leader == 0 {
		m.Problems = append(m.Problems, NoLeader)
	}
	m.leaderSeen = st.Leader
}

// listAlarms attaches the cluster's alarms to their members.
func (r *Report) listAlarms(ctx context.Context, raw *clientv3.Client) {
	ctx, cancel := context.WithTimeout(ctx, ProbeTimeout)
	defer cancel()
	resp, err := raw.AlarmList(ctx)
	if err != nil {
		r.Reasons = append(r.Reasons, fmt.Sprintf("alarms unknown: %v", ctxErr(ctx, err)))
		return
	}
	for _, a := range resp.Alarms {
		name := a.Alarm.String()
		owner := fmt.Sprintf("%x", a.MemberID)
		for i := range r.Members {
			m := &r.Members[i]
			if m.ID != a.MemberID {
				continue
			}
			owner = m.label()
			m.Alarms = append(m.Alarms, name)
			switch a.Alarm {
			case pb.AlarmType_NOSPACE:
				m.Problems = append(m.Problems, NoSpace)
			case pb.AlarmType_CORRUPT:
				m.Problems = append(m.Problems, Corrupt)
			}
		}
		r.Alarms = append(r.Alarms, name+" on "+owner)
	}
}

// label names a member in messages: its name, else its ID.
func (m *Member) label() string {
	if m.Name != "" {
		return m.Name
	}
	return fmt.Sprintf("%x", m.ID)
}

// judge finds the leader, the lag of each member, quorum and the verdict.
func (r *Report) judge() {
	r.LeaderID, r.Agreeing = r.agreedLeader()
	var leader *Member
	for i := range r.Members {
		m := &r.Members[i]
		if !m.Learner {
			r.Voters++
		}
		if m.ID == r.LeaderID {
			leader = m
		}
	}
	r.Quorum = r.LeaderID != 0 && r.Agreeing > r.Voters/2
	for i := range r.Members {
		r.Members[i].judge(leader, r.ClusterID)
	}
	r.explain()
}

// agreedLeader returns the leader most reachable voters name, and how many
// name it.
func (r *Report) agreedLeader() (id uint64, votes int) {
	count := map[uint64]int{}
	for _, m := range r.Members {
		if m.Reachable && !m.Learner && m.leaderSeen != 0 {
			count[m.leaderSeen]++
		}
	}
	for lead, n := range count {
		if n > votes || (n == votes && lead < id) {
			id, votes = lead, n
		}
	}
	return id, votes
}

func (m *Member) judge(leader *Member, clusterID uint64) {
	switch {
	case m.Endpoint == "":
		m.Problems = append(m.Problems, NotStarted)
		return
	case !m.Reachable:
		m.Problems = append(m.Problems, Unreachable)
		return
	}
	if m.ClusterID != clusterID {
		m.Problems = append(m.Problems, OtherCluster)
	}
	if leader != nil && leader.Reachable && leader.RaftIndex > m.AppliedIndex {
		m.Lag = leader.RaftIndex - m.AppliedIndex
		if m.Lag >= LagLimit {
			m.Problems = append(m.Problems, Lagging)
		}
	}
}

// explain writes Reasons and the verdict.
func (r *Report) explain() {
	if !r.Quorum {
		r.Reasons = append(r.Reasons, fmt.Sprintf("%v: %d of %d voting members answer and agree on a leader",
			NoQuorum, r.Agreeing, r.Voters))
	}
	for _, m := range r.Members {
		for _, p := range m.Problems {
			why := m.reason(p)
			if p == NoLeader && r.Quorum {
				why += r.unheardLeader()
			}
			r.Reasons = append(r.Reasons, why)
		}
	}
	r.Healthy = len(r.Reasons) == 0
}

// unheardLeader completes the reason of a member that knows no leader
// while a quorum follows one: raft followers learn the leader from its
// heartbeats, so that member has not heard them for an election timeout.
func (r *Report) unheardLeader() string {
	leader := fmt.Sprintf("%x", r.LeaderID)
	for _, m := range r.Members {
		if m.ID == r.LeaderID {
			leader = m.label()
		}
	}
	return fmt.Sprintf(", while %s leads %d of %d voting members: it does not hear from the leader (cut off from its peers, or just started)",
		leader, r.Agreeing, r.Voters)
}

func (m *Member) reason(p Problem) string {
	s := fmt.Sprintf("member %s: %v", m.label(), p)
	switch p {
	case Unreachable:
		s += fmt.Sprintf(" at %s: %v", m.Endpoint, m.Err)
	case Lagging:
		s += fmt.Sprintf(": %d entries behind the leader", m.Lag)
	case NoSpace:
		s += fmt.Sprintf(": database %s of quota %s; compact, defragment, then disarm", bytesText(m.DBSize), bytesText(m.Quota))
	case OtherCluster:
		s += fmt.Sprintf(": cluster ID %x", m.ClusterID)
	}
	return s
}

// Has reports whether the member has problem p.
func (m Member) Has(p Problem) bool { return slices.Contains(m.Problems, p) }
