package reliability_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/etcdkit/etcdkit"
	"github.com/etcdkit/etcdkit/etcdtest"
)

// lockStats counts what the lock workers saw.
type lockStats struct {
	sections  atomic.Int64 // critical sections entered
	written   atomic.Int64 // guarded writes the server accepted
	refused   atomic.Int64 // guarded writes refused: the lock was lost
	unnoticed atomic.Int64 // refused writes whose holder never learned it lost the lock
}

// lockWorker takes the lock again and again; inside, it makes guarded
// writes to a log keyed by fence, so the log shows who wrote when.
func lockWorker(ctx context.Context, cli *etcdkit.Client, id string, st *lockStats) {
	log := etcdkit.NewKV(cli, "rl-log/", etcdkit.String())
	for n := 0; ctx.Err() == nil; n++ {
		lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		l, err := cli.Lock(lctx, "rl", etcdkit.LockTTL(2*time.Second))
		cancel()
		if err != nil {
			continue // unavailable during a fault, or ctx over
		}
		st.sections.Add(1)
		for i := range 3 {
			wctx, cancel := opCtx(ctx)
			key := fmt.Sprintf("%020d-%s-%d-%d", l.Fence(), id, n, i)
			res, err := cli.Txn(wctx).If(l.Held()).Then(log.PutOp(key, id)).Commit()
			cancel()
			if err != nil {
				continue // ambiguous: the log shows whether it happened
			}
			if res.Succeeded {
				st.written.Add(1)
				continue
			}
			st.refused.Add(1)
			// The write was refused because the lock is gone: the holder must
			// learn it too, within about its TTL.
			select {
			case <-l.Lost():
			case <-time.After(5 * time.Second):
				st.unnoticed.Add(1)
			}
			break
		}
		uctx, cancel := opCtx(context.WithoutCancel(ctx))
		_ = l.Unlock(uctx)
		cancel()
	}
}

// TestLocks_UnderFaults: several clients contend for one lock while members
// stop, restart and lose leadership. In the log of guarded writes, ordered
// by revision, fences never go back: no write of an older holder lands after
// a newer holder's. A holder whose write is refused learns it lost the lock.
func TestLocks_UnderFaults(t *testing.T) {
	cl := etcdtest.StartCluster(t, 3)
	ctx, cancel := context.WithTimeout(t.Context(), budget(15*time.Second, 2*time.Minute))
	defer cancel()
	var st lockStats
	var wg sync.WaitGroup
	for c := range 3 {
		cli := cl.Client(t)
		for g := range 2 {
			wg.Go(func() { lockWorker(ctx, cli, fmt.Sprintf("c%dg%d", c, g), &st) })
		}
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	var inj injector
	inj.run(t, cl, []fault{stopRestartMember, stopLeader, expireHolder, expireHolder}, budget(6, 1000), budget(time.Second, 2*time.Second), done)
	cancel()
	<-done

	entries := readLockLog(t, cl.RawClient(t), "rl-log/")
	var prev int64
	for _, e := range entries {
		assert.GreaterOrEqual(t, e.fence, prev, "at revision %d, a holder wrote after a later fence had written: two holders at once", e.rev)
		prev = max(prev, e.fence)
	}
	assert.Zero(t, st.unnoticed.Load(), "holders had a write refused but were never told they lost the lock")
	require.NotZero(t, st.sections.Load(), "no critical section ran: the test proves nothing")
	require.NotEmpty(t, entries, "no guarded write in the log: the test proves nothing")
	t.Logf("%d critical sections, %d guarded writes accepted (%d in the log), %d refused, under %d faults",
		st.sections.Load(), st.written.Load(), len(entries), st.refused.Load(), inj.total())
}

// expireHolder revokes the lease of the lock's current holder from outside,
// as if the holder had paused past its TTL: its session is gone while it
// still believes it holds the lock.
var expireHolder = fault{"expire the holder's lease", func(t *testing.T, cl *etcdtest.Cluster, _ *rand.Rand) string {
	raw := cl.RawClient(t)
	ctx, cancel := opCtx(t.Context())
	defer cancel()
	resp, err := raw.Get(ctx, "rl/", clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByCreateRevision, clientv3.SortAscend), clientv3.WithLimit(1))
	if err != nil || len(resp.Kvs) == 0 {
		return "no holder"
	}
	if _, err := raw.Revoke(ctx, clientv3.LeaseID(resp.Kvs[0].Lease)); err != nil {
		return "revoke failed: " + err.Error()
	}
	return "revoked " + string(resp.Kvs[0].Key)
}}

type lockLogEntry struct {
	rev, fence int64
}

// readLockLog reads the guarded writes under prefix, ordered by revision.
func readLockLog(t *testing.T, raw *clientv3.Client, prefix string) []lockLogEntry {
	t.Helper()
	resp, err := raw.Get(t.Context(), prefix, clientv3.WithPrefix())
	require.NoError(t, err)
	var out []lockLogEntry
	for _, kv := range resp.Kvs {
		name := strings.TrimPrefix(string(kv.Key), prefix)
		fence, err := strconv.ParseInt(name[:20], 10, 64)
		require.NoError(t, err, "log key %q", name)
		out = append(out, lockLogEntry{rev: kv.ModRevision, fence: fence})
	}
	slices.SortFunc(out, func(a, b lockLogEntry) int { return int(a.rev - b.rev) })
	return out
}
