package reliability_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/etcdkit/etcdkit"
	"github.com/etcdkit/etcdkit/etcdtest"
)

// leaderRunTTL is the lease TTL of the RunAsLeader runs: short, so that a
// partitioned leader loses its term within the test's rounds.
const leaderRunTTL = 2 * time.Second

// termSpan is one term as its fn saw it: from fn's start to the moment
// fn's ctx ended (zero while it runs).
type termSpan struct {
	who        string
	term       *etcdkit.Term
	start, end time.Time
	cause      error // context.Cause of fn's ctx
}

// termLog is the one in-process record of every client's terms.
type termLog struct {
	mu     sync.Mutex
	spans  []*termSpan
	probed map[int64]bool // stale terms whose probe got an answer

	written, refused atomic.Int64 // the leaders' guarded writes
	staleProbes      atomic.Int64 // guarded writes tried with a term that had a successor
	staleAccepted    atomic.Int64 // ... and accepted: a stale term wrote
}

func (tl *termLog) begin(who string, term *etcdkit.Term) *termSpan {
	s := &termSpan{who: who, term: term, start: time.Now()}
	tl.mu.Lock()
	defer tl.mu.Unlock()
	tl.spans = append(tl.spans, s)
	return s
}

func (tl *termLog) end(s *termSpan, cause error) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	s.end, s.cause = time.Now(), cause
}

// snapshot returns copies of the spans so far.
func (tl *termLog) snapshot() []termSpan {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	out := make([]termSpan, len(tl.spans))
	for i, s := range tl.spans {
		out[i] = *s
	}
	return out
}

// waitRunning waits, bounded, for a term with a fence above after to run.
func (tl *termLog) waitRunning(t *testing.T, after int64, bound time.Duration) (termSpan, bool) {
	t.Helper()
	deadline := time.Now().Add(bound)
	for time.Now().Before(deadline) {
		for _, s := range tl.snapshot() {
			if s.term.Fence() > after && s.end.IsZero() {
				return s, true
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	return termSpan{}, false
}

// probeStale tries a guarded write with every earlier term through a client
// that no fault touches: each of them has a successor now, so each must be
// refused.
func (tl *termLog) probeStale(ctx context.Context, direct *etcdkit.Client, probes *etcdkit.KV[string], current *etcdkit.Term) {
	for _, s := range tl.snapshot() {
		if s.term.Fence() >= current.Fence() || tl.wasProbed(s.term.Fence()) {
			continue
		}
		pctx, cancel := opCtx(ctx)
		res, err := direct.Txn(pctx).If(s.term.Held()).
			Then(probes.PutOp(fmt.Sprintf("%020d-by-%d", s.term.Fence(), current.Fence()), s.who)).Commit()
		cancel()
		if err != nil {
			continue // a member restarting: the stale term is probed again at the next start
		}
		tl.staleProbes.Add(1)
		tl.markProbed(s.term.Fence())
		if res.Succeeded {
			tl.staleAccepted.Add(1)
		}
	}
}

func (tl *termLog) wasProbed(fence int64) bool {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	return tl.probed[fence]
}

func (tl *termLog) markProbed(fence int64) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	if tl.probed == nil {
		tl.probed = map[int64]bool{}
	}
	tl.probed[fence] = true
}

// leaderWorker runs RunAsLeader on one faulty client until ctx ends. Its fn
// records the term, probes the earlier terms, and makes guarded writes to a
// log keyed by fence until its ctx ends.
func leaderWorker(ctx context.Context, c *faultyClient, tl *termLog, direct *etcdkit.Client) error {
	log := etcdkit.NewKV(c.cli, "lr-log/", etcdkit.String())
	probes := etcdkit.NewKV(direct, "lr-stale/", etcdkit.String())
	return c.cli.RunAsLeader(ctx, "lr", c.name, func(fctx context.Context, term *etcdkit.Term) error {
		s := tl.begin(c.name, term)
		// The moment fn's ctx ends, not when fn notices.
		stop := context.AfterFunc(fctx, func() { tl.end(s, context.Cause(fctx)) })
		defer stop()
		c.busy.Store(true)
		defer c.busy.Store(false)
		tl.probeStale(fctx, direct, probes, term)
		for i := 0; fctx.Err() == nil; i++ {
			wctx, cancel := opCtx(fctx)
			key := fmt.Sprintf("%020d-%s-%d", term.Fence(), c.name, i)
			res, err := c.cli.Txn(wctx).If(term.Held()).Then(log.PutOp(key, c.name)).Commit()
			cancel()
			switch {
			case err != nil: // ambiguous or ctx over: the log shows whether it landed
			case res.Succeeded:
				tl.written.Add(1)
			default:
				tl.refused.Add(1)
			}
			sleepCtx(fctx, 100*time.Millisecond)
		}
		return fctx.Err()
	}, etcdkit.LeaderTTL(leaderRunTTL), etcdkit.LeaderStopGrace(500*time.Millisecond),
		etcdkit.LeaderBackoff(50*time.Millisecond, 500*time.Millisecond))
}

// leaderFault is one fault of a round; loses reports whether it takes the
// leadership away (so that the failover is timed).
type leaderFault struct {
	name  string
	loses bool
	apply func(t *testing.T, cl *etcdtest.Cluster, leader *faultyClient, raw *clientv3.Client, rng *rand.Rand) (heal func())
}

var leaderFaults = []leaderFault{
	{"partition the leader's client", true, func(_ *testing.T, _ *etcdtest.Cluster, leader *faultyClient, _ *clientv3.Client, _ *rand.Rand) func() {
		leader.proxy.Blackhole(etcdtest.BothWays)
		return leader.proxy.Heal
	}},
	{"revoke the leader's lease", true, func(t *testing.T, _ *etcdtest.Cluster, _ *faultyClient, raw *clientv3.Client, _ *rand.Rand) func() {
		ctx, cancel := opCtx(t.Context())
		defer cancel()
		resp, err := raw.Get(ctx, "lr/", clientv3.WithFirstCreate()...)
		require.NoError(t, err)
		require.NotEmpty(t, resp.Kvs, "a leader runs, so its key is there")
		_, err = raw.Revoke(ctx, clientv3.LeaseID(resp.Kvs[0].Lease))
		require.NoError(t, err)
		return func() {}
	}},
	{"restart a member", false, func(t *testing.T, cl *etcdtest.Cluster, _ *faultyClient, _ *clientv3.Client, rng *rand.Rand) func() {
		stopRestartMember.apply(t, cl, rng)
		return func() {}
	}},
	{"stop the cluster leader", false, func(t *testing.T, cl *etcdtest.Cluster, _ *faultyClient, _ *clientv3.Client, rng *rand.Rand) func() {
		stopLeader.apply(t, cl, rng)
		return func() {}
	}},
}

// TestRunAsLeader_UnderFaults: three clients, each behind its own proxy,
// run RunAsLeader on one name while, round after round, the leader's client
// is partitioned, the leader's lease is revoked from outside, a member
// restarts, and the cluster's leader stops. In one in-process log of every
// term, from fn's start to the end of fn's ctx, no two terms overlap, except
// where a term's key was taken from it from outside (a revoked lease),
// which no client can foresee; every guarded write tried with a term that
// has a successor is refused, and in the log of the leaders' guarded writes
// fences never go back. After a loss, a new leader runs within about the TTL.
func TestRunAsLeader_UnderFaults(t *testing.T) {
	t.Parallel()
	cl := etcdtest.StartCluster(t, 3)
	clients := newFaultyClients(t, cl, 3)
	direct := cl.Client(t)
	raw := cl.RawClient(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var tl termLog
	var wg sync.WaitGroup
	for _, c := range clients {
		wg.Go(func() {
			if err := leaderWorker(ctx, c, &tl, direct); err != nil {
				t.Errorf("%s: RunAsLeader: %v", c.name, err)
			}
		})
	}
	failovers := map[string][]time.Duration{}
	rounds := budget(8, 40)
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 13))
	for round := range rounds {
		cur, ok := tl.waitRunning(t, 0, 3*leaderRunTTL+20*time.Second)
		require.True(t, ok, "round %d: no leader runs", round)
		f := leaderFaults[round%len(leaderFaults)]
		leader := clients[slices.IndexFunc(clients, func(c *faultyClient) bool { return c.name == cur.who })]
		lossAt := time.Now()
		heal := f.apply(t, cl, leader, raw, rng)
		if f.loses {
			next, ok := tl.waitRunning(t, cur.term.Fence(), leaderRunTTL+10*time.Second)
			require.True(t, ok, "round %d (%s): no new leader after the loss", round, f.name)
			failovers[f.name] = append(failovers[f.name], next.start.Sub(lossAt))
			t.Logf("round %d: %s (%s, fence %d): %s leads after %v", round, f.name, cur.who, cur.term.Fence(),
				next.who, next.start.Sub(lossAt).Round(time.Millisecond))
		} else {
			t.Logf("round %d: %s", round, f.name)
		}
		time.Sleep(300 * time.Millisecond)
		heal()
	}
	_, ok := tl.waitRunning(t, 0, 3*leaderRunTTL+20*time.Second)
	assert.True(t, ok, "a leader runs once the faults are over")
	cancel()
	wg.Wait()

	checkTerms(t, tl.snapshot())
	entries := readLockLog(t, raw, "lr-log/")
	var prev int64
	for _, e := range entries {
		assert.GreaterOrEqual(t, e.fence, prev, "at revision %d, a term wrote after a newer term had", e.rev)
		prev = max(prev, e.fence)
	}
	assert.Zero(t, tl.staleAccepted.Load(), "guarded writes of a term with a successor accepted")
	assert.NotZero(t, tl.staleProbes.Load(), "no stale term was probed: the test proves nothing")
	t.Logf("%d terms, %d guarded writes accepted (%d in the log), %d refused, %d stale-term writes tried, all refused",
		len(tl.snapshot()), tl.written.Load(), len(entries), tl.refused.Load(), tl.staleProbes.Load())
	for _, name := range []string{leaderFaults[0].name, leaderFaults[1].name} {
		d := failovers[name]
		require.NotEmpty(t, d)
		slices.Sort(d)
		t.Logf("failover after %q (TTL %v): median %v, max %v over %d losses", name, leaderRunTTL,
			d[len(d)/2].Round(time.Millisecond), d[len(d)-1].Round(time.Millisecond), len(d))
	}
}

// checkTerms checks that, ordered by start, no term starts before every
// earlier one's ctx ended, unless the earlier term's key was taken from
// outside (its ctx ended with ErrLeaseExpired: the server dropped the
// lease or the key); those overlaps are counted and logged.
func checkTerms(t *testing.T, spans []termSpan) {
	t.Helper()
	slices.SortFunc(spans, func(a, b termSpan) int { return a.start.Compare(b.start) })
	taken, minMargin := 0, time.Duration(1<<63-1)
	for i := 1; i < len(spans); i++ {
		for j, p := range spans[:i] {
			s := spans[i]
			require.False(t, p.end.IsZero(), "%s's term (fence %d) never ended", p.who, p.term.Fence())
			margin := s.start.Sub(p.end)
			if margin > 0 {
				if j == i-1 {
					minMargin = min(minMargin, margin)
				}
				continue
			}
			if errors.Is(p.cause, etcdkit.ErrLeaseExpired) {
				taken++
				t.Logf("%s's term (fence %d) overlapped %s's by %v: its lease was revoked from outside (%v)",
					p.who, p.term.Fence(), s.who, -margin, p.cause)
				continue
			}
			t.Errorf("two leaders at once: %s (fence %d) started %v before %s's term (fence %d) ended (%v)",
				s.who, s.term.Fence(), -margin, p.who, p.term.Fence(), p.cause)
		}
	}
	t.Logf("smallest gap between a term's end and the next start: %s; overlaps after an outside revocation: %d",
		showMargin(minMargin), taken)
}
