package admin

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/etcdkit/etcdkit"
	"github.com/etcdkit/etcdkit/internal/errs"
)

// DefragReport is what [Defragment] did, member by member, in the order it
// went.
type DefragReport struct {
	DryRun  bool
	Members []Defragged
}

// Defragged is one member's part of a [DefragReport].
type Defragged struct {
	ID       uint64
	Name     string
	Endpoint string
	Leader   bool // it led the cluster when its turn came

	Defragmented bool   // it was defragmented (with DryRun: it would have been)
	Skipped      string // why it was not, when not Defragmented
	Before       int64  // database file size before, in bytes
	InUse        int64  // bytes of it in use, before
	After        int64  // database file size after; Before when not defragmented
	Took         time.Duration
}

// Defragment rewrites the database file of each member whose free space
// passes the rule (by default: over half the file and over 16 MiB; see
// [FreeOver], [DefragAlways]), giving the free pages back to the file
// system. A member blocks reads and writes while it is defragmented, so
// Defragment goes one member at a time, followers first and the leader
// last (leadership can move meanwhile: the member leading when its turn
// comes waits until the end), and before each member checks with
// [Health] that every member answers and the cluster has a quorum.
// With [DryRun] it reports what it would do and changes nothing.
//
// When a member is down, the cluster has no quorum or no leader,
// Defragment stops before the next member and returns the report so far
// with an error matching [ErrMemberDown] that names the reason. A member
// whose defragmentation fails stops it too, with that error (matching
// [etcdkit.ErrUnavailable] or ctx's error). A nil client or a bad option is
// [etcdkit.ErrInvalidArgument].
func Defragment(ctx context.Context, c *etcdkit.Client, opts ...DefragOption) (*DefragReport, error) {
	o := defragOptions{ratio: 0.5, minFree: 16 << 20}
	for _, opt := range opts {
		if opt != nil {
			opt.applyDefrag(&o)
		}
	}
	if err := checkClient("defragment", c); err != nil {
		return nil, err
	}
	if o.ratio < 0 || o.ratio > 1 || o.minFree < 0 {
		return nil, invalid("defragment", "free-space rule %v of the file and %d bytes: want a ratio in [0, 1] and bytes >= 0", o.ratio, o.minFree)
	}
	ctx, end := c.Observe(ctx, "defragment", "", "")
	rep, err := defragment(ctx, c, o)
	end(0, err)
	return rep, err
}

func defragment(ctx context.Context, c *etcdkit.Client, o defragOptions) (*DefragReport, error) {
	rep := &DefragReport{DryRun: o.dryRun}
	done := map[uint64]bool{}
	for {
		next, err := nextToDefrag(ctx, c, done)
		if err != nil || next == nil {
			return rep, err
		}
		done[next.ID] = true
		d, err := defragOne(ctx, c.Raw(), *next, o)
		rep.Members = append(rep.Members, d)
		if err != nil {
			return rep, err
		}
		if o.onMember != nil {
			o.onMember(d)
		}
	}
}

// nextToDefrag checks the cluster's health and picks the first member not
// done yet that is not the leader; the leader when it is the last one; nil
// when all are done.
func nextToDefrag(ctx context.Context, c *etcdkit.Client, done map[uint64]bool) (*Member, error) {
	r, err := Health(ctx, c)
	if err != nil {
		return nil, err
	}
	if why := downReasons(r); why != "" {
		return nil, &errs.Op{Pkg: "admin", Op: "defragment", Err: fmt.Errorf("%w: %s", ErrMemberDown, why)}
	}
	var leader *Member
	for i := range r.Members {
		m := &r.Members[i]
		switch {
		case done[m.ID]:
		case m.ID == r.LeaderID:
			leader = m
		default:
			return m, nil
		}
	}
	return leader, nil
}

// downReasons says what makes defragmenting unsafe now: problems other
// than alarms and lag, which defragmenting does not worsen.
func downReasons(r *Report) string {
	var why []string
	if !r.Quorum {
		why = append(why, fmt.Sprintf("%v: %d of %d voting members answer and agree on a leader", NoQuorum, r.Agreeing, r.Voters))
	}
	for _, m := range r.Members {
		for _, p := range m.Problems {
			if slices.Contains([]Problem{Unreachable, NotStarted, NoLeader, OtherCluster}, p) {
				why = append(why, m.reason(p))
			}
		}
	}
	return strings.Join(why, "; ")
}

func defragOne(ctx context.Context, raw *clientv3.Client, m Member, o defragOptions) (Defragged, error) {
	d := Defragged{ID: m.ID, Name: m.Name, Endpoint: m.Endpoint, Leader: m.Leader,
		Before: m.DBSize, InUse: m.DBSizeInUse, After: m.DBSize}
	if why := o.skip(m); why != "" {
		d.Skipped = why
		return d, nil
	}
	d.Defragmented = true
	if o.dryRun {
		return d, nil
	}
	start := time.Now()
	if _, err := raw.Defragment(ctx, m.Endpoint); err != nil {
		return d, wrap(fmt.Sprintf("defragment member %s at %s", m.label(), m.Endpoint), ctxErr(ctx, err))
	}
	d.Took = time.Since(start)
	if st, err := memberStatus(ctx, raw, m.Endpoint); err == nil {
		d.After = st.DbSize
	}
	return d, nil
}

func memberStatus(ctx context.Context, raw *clientv3.Client, ep string) (*pb.StatusResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, ProbeTimeout)
	defer cancel()
	st, err := raw.Status(ctx, ep)
	if err != nil {
		return nil, err
	}
	return (*pb.StatusResponse)(st), nil
}

// Disarm clears the NOSPACE alarms of every member, so that the cluster
// accepts writes again, and returns the alarms it cleared, as "NOSPACE on <member ID in hex>".
// Run it after compacting and defragmenting: while a database is still over
// its quota, etcd raises the alarm again at the next write. CORRUPT alarms
// are left alone: they need an operator. The error matches
// [etcdkit.ErrUnavailable] or ctx's error; a nil client is
// [etcdkit.ErrInvalidArgument].
func Disarm(ctx context.Context, c *etcdkit.Client) ([]string, error) {
	if err := checkClient("disarm", c); err != nil {
		return nil, err
	}
	raw := c.Raw()
	list, err := raw.AlarmList(ctx)
	if err != nil {
		return nil, wrap("disarm: list alarms", ctxErr(ctx, err))
	}
	var cleared []string
	for _, a := range list.Alarms {
		if a.Alarm != pb.AlarmType_NOSPACE {
			continue
		}
		if _, err := raw.AlarmDisarm(ctx, (*clientv3.AlarmMember)(a)); err != nil {
			return cleared, wrap(fmt.Sprintf("disarm NOSPACE of member %x", a.MemberID), ctxErr(ctx, err))
		}
		cleared = append(cleared, fmt.Sprintf("%v on %x", a.Alarm, a.MemberID))
	}
	return cleared, nil
}
