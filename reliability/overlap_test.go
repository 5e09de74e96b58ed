package reliability_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/etcdkit/etcdkit"
	"github.com/etcdkit/etcdkit/etcdtest"
)

// overlapTTL is the lease TTL of the holders: short, so that partitions
// outlast it often.
const overlapTTL = 2 * time.Second

// holding is what a Lock and a Leadership share.
type holding interface {
	Lost() <-chan struct{}
	Fence() int64
	Held() etcdkit.Cond
}

// mutex takes and gives back one kind of exclusive holding.
type mutex struct {
	take    func(ctx context.Context, cli *etcdkit.Client, who string) (holding, error)
	release func(ctx context.Context, h holding) error
}

var lockMutex = mutex{
	take: func(ctx context.Context, cli *etcdkit.Client, _ string) (holding, error) {
		return cli.Lock(ctx, "ov", etcdkit.LockTTL(overlapTTL))
	},
	release: func(ctx context.Context, h holding) error { return h.(*etcdkit.Lock).Unlock(ctx) },
}

var electionMutex = mutex{
	take: func(ctx context.Context, cli *etcdkit.Client, who string) (holding, error) {
		return cli.Campaign(ctx, "ov", who, etcdkit.LockTTL(overlapTTL))
	},
	release: func(ctx context.Context, h holding) error { return h.(*etcdkit.Leadership).Resign(ctx) },
}

// section is one critical section as its holder saw it: it starts when the
// lock was returned and ends when the holder began to release it or saw it
// lost, whichever came first.
type section struct {
	who        string
	fence      int64
	start, end time.Time
	lost       bool // ended by Lost closing, not by the release
}

// sectionLog is the one in-process record of every holder's section.
type sectionLog struct {
	mu       sync.Mutex
	sections []section
}

func (sl *sectionLog) add(s section) {
	sl.mu.Lock()
	defer sl.mu.Unlock()
	sl.sections = append(sl.sections, s)
}

// overlapWorker takes the mutex again and again through one faulty client;
// while it holds it, it makes guarded writes to a log named by fence, as
// lockWorker does, and watches Lost.
func overlapWorker(ctx context.Context, c *faultyClient, m mutex, sl *sectionLog, st *lockStats) {
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), uint64(len(c.name))))
	log := etcdkit.NewKV(c.cli, "ov-log/", etcdkit.String())
	for n := 0; ctx.Err() == nil; n++ {
		lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		h, err := m.take(lctx, c.cli, c.name)
		cancel()
		if err != nil {
			sleepCtx(ctx, 50*time.Millisecond) // unavailable during a fault, or ctx over
			continue
		}
		s := section{who: c.name, fence: h.Fence(), start: time.Now()}
		lostAt := make(chan time.Time, 1)
		released := make(chan struct{})
		var watcher sync.WaitGroup
		watcher.Go(func() {
			select {
			case <-h.Lost():
				lostAt <- time.Now()
			case <-released:
			}
		})
		st.sections.Add(1)
		c.busy.Store(true)
		hold(ctx, c.cli, log, h, fmt.Sprintf("%s-%d", c.name, n), rng, st)
		s.end = time.Now()
		c.busy.Store(false)
		releaseBounded(ctx, m, h)
		close(released)
		watcher.Wait()
		select {
		case at := <-lostAt:
			if at.Before(s.end) {
				s.end, s.lost = at, true
			}
		default:
		}
		sl.add(s)
	}
}

// hold stays in the critical section for a random short while, making up
// to three guarded writes, and leaves early when the holding is lost.
func hold(ctx context.Context, cli *etcdkit.Client, log *etcdkit.KV[string], h holding, id string, rng *rand.Rand, st *lockStats) {
	for i := range 3 {
		wctx, cancel := opCtx(ctx)
		key := fmt.Sprintf("%020d-%s-%d", h.Fence(), id, i)
		res, err := cli.Txn(wctx).If(h.Held()).Then(log.PutOp(key, id)).Commit()
		cancel()
		switch {
		case err != nil: // ambiguous: the log shows whether it happened
		case res.Succeeded:
			st.written.Add(1)
		default:
			st.refused.Add(1)
			select {
			case <-h.Lost():
			case <-time.After(5 * time.Second):
				st.unnoticed.Add(1)
			}
			return
		}
		select {
		case <-h.Lost():
			return
		case <-ctx.Done():
			return
		case <-time.After(time.Duration(rng.IntN(800)) * time.Millisecond):
		}
	}
}

// releaseBounded releases h, retrying while the outcome is unknown (the
// key may still be there), for at most 15 seconds.
func releaseBounded(ctx context.Context, m mutex, h holding) {
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		uctx, cancel := opCtx(context.WithoutCancel(ctx))
		err := m.release(uctx, h)
		cancel()
		if err == nil {
			return
		}
		select {
		case <-h.Lost():
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// checkNoOverlap checks that, ordered by start, no section starts before
// every earlier one ended, and returns the smallest margin between a
// section's start and the latest end before it, overall and where that end
// was a holder seeing Lost.
func checkNoOverlap(t *testing.T, sections []section) (minAny, minLost time.Duration) {
	t.Helper()
	slices.SortFunc(sections, func(a, b section) int { return a.start.Compare(b.start) })
	minAny, minLost = time.Duration(1<<63-1), time.Duration(1<<63-1)
	var prev section
	for i, s := range sections {
		if i > 0 {
			margin := s.start.Sub(prev.end)
			assert.Positive(t, margin, "two holders at once: %s (fence %d) started %v before %s (fence %d) ended (lost: %v)",
				s.who, s.fence, -margin, prev.who, prev.fence, prev.lost)
			minAny = min(minAny, margin)
			if prev.lost {
				minLost = min(minLost, margin)
			}
		}
		if i == 0 || s.end.After(prev.end) {
			prev = s
		}
	}
	return minAny, minLost
}

// showMargin prints a margin, or "none" when no pair of sections had one.
func showMargin(d time.Duration) string {
	if d == time.Duration(1<<63-1) {
		return "none"
	}
	return d.String()
}

// testNoOverlap runs three clients, each behind its own proxy and faults,
// taking m again and again while the faults are injected.
func testNoOverlap(t *testing.T, m mutex) {
	cl := etcdtest.StartCluster(t, 3)
	clients := newFaultyClients(t, cl, 3)
	ctx, cancel := context.WithTimeout(t.Context(), budget(15*time.Second, 3*time.Minute))
	defer cancel()
	var sl sectionLog
	var st lockStats
	var wg sync.WaitGroup
	for _, c := range clients {
		wg.Go(func() { overlapWorker(ctx, c, m, &sl, &st) })
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	var inj injector
	inj.runClients(t, clients, allClientFaults, overlapTTL, budget(11, 300), budget(1200*time.Millisecond, 600*time.Millisecond), ctx.Done())
	cancel()
	<-done

	minAny, minLost := checkNoOverlap(t, sl.sections)
	entries := readLockLog(t, cl.RawClient(t), "ov-log/")
	var prev int64
	for _, e := range entries {
		assert.GreaterOrEqual(t, e.fence, prev, "at revision %d, a holder wrote after a newer holder had: two holders at once", e.rev)
		prev = max(prev, e.fence)
	}
	assert.Zero(t, st.unnoticed.Load(), "holders whose guarded write was refused but who were never told they lost")
	lost := 0
	for _, s := range sl.sections {
		if s.lost {
			lost++
		}
	}
	var ambiguous int64
	for _, c := range clients {
		ambiguous += c.faults.Injected()
	}
	t.Logf("%d critical sections (%d ended by Lost), %d guarded writes accepted (%d in the log), %d refused; "+
		"%d client faults (%s), %d calls with an ambiguous outcome; smallest margin %s, after a Lost %s",
		len(sl.sections), lost, st.written.Load(), len(entries), st.refused.Load(),
		inj.total(), inj.summary(), ambiguous, showMargin(minAny), showMargin(minLost))
	require.NotEmpty(t, sl.sections, "no critical section ran: the test proves nothing")
	requireEveryClientTakes(t, clients, m)
}

// requireEveryClientTakes checks that the faults left nothing behind that
// keeps the mutex taken: once they have healed, each client takes it in
// turn, within about two TTLs of whatever a dead holder left.
func requireEveryClientTakes(t *testing.T, clients []*faultyClient, m mutex) {
	t.Helper()
	for _, c := range clients {
		ctx, cancel := context.WithTimeout(t.Context(), 2*overlapTTL+10*time.Second)
		h, err := m.take(ctx, c.cli, c.name)
		cancel()
		require.NoError(t, err, "%s takes it once the faults healed", c.name)
		ctx, cancel = opCtx(t.Context())
		require.NoError(t, m.release(ctx, h), "%s releases it", c.name)
		cancel()
	}
}

// TestLocks_NoOverlapUnderClientFaults: three clients, each behind its own
// proxy and faults, take one lock with a 2s TTL while they are partitioned
// (both ways or one way, for half a TTL to three TTLs), their connections
// dropped, and their writes made ambiguous. No holder's critical section,
// from Lock's return to its Unlock or to its seeing Lost, overlaps
// another's; no guarded write of an older holder lands after a newer one's.
func TestLocks_NoOverlapUnderClientFaults(t *testing.T) {
	t.Parallel()
	testNoOverlap(t, lockMutex)
}

// TestElections_NoOverlapUnderClientFaults is the same with Campaign and
// Resign: no two leaders at once.
func TestElections_NoOverlapUnderClientFaults(t *testing.T) {
	t.Parallel()
	testNoOverlap(t, electionMutex)
}
