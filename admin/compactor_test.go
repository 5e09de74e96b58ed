package admin_test

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/etcdkit/etcdkit"
	"github.com/etcdkit/etcdkit/admin"
	"github.com/etcdkit/etcdkit/etcdtest"
)

// compaction is a Compaction and which of the compactors made it.
type compaction struct {
	admin.Compaction
	by int
}

// runCompactors runs one compactor per client, each with its own client of
// cl, while a writer puts a key every few milliseconds, until want
// compactions were made. It returns the compactions and the revisions
// written, with when.
func runCompactors(t *testing.T, cl *etcdtest.Cluster, keep admin.Retention, want int) ([]compaction, []written) {
	t.Helper()
	ctx, cancel := context.WithCancel(testCtx(t))
	defer cancel()
	var mu sync.Mutex
	var got []compaction
	enough := make(chan struct{})
	var wg sync.WaitGroup
	for i := range 3 {
		cp, err := admin.NewCompactor(cl.Client(t), keep, admin.CompactEvery(50*time.Millisecond),
			admin.CompactorKey(prefix(t)+"compactor"),
			admin.OnCompact(func(c admin.Compaction) {
				mu.Lock()
				defer mu.Unlock()
				got = append(got, compaction{c, i})
				if len(got) == want {
					close(enough)
				}
			}))
		require.NoError(t, err)
		wg.Go(func() { assert.ErrorIs(t, cp.Run(ctx), context.Canceled) })
	}
	ws := writeUntil(t, cl.Client(t), prefix(t), enough)
	cancel()
	wg.Wait()
	return got, ws
}

type written struct {
	rev int64
	at  time.Time
}

// writeUntil puts a key every 5ms until stop closes (at most 20s).
func writeUntil(t *testing.T, cli *etcdkit.Client, pfx string, stop <-chan struct{}) []written {
	t.Helper()
	kv := etcdkit.NewKV(cli, pfx, etcdkit.String())
	var ws []written
	deadline := time.After(20 * time.Second)
	for i := 0; ; i++ {
		select {
		case <-stop:
			return ws
		case <-deadline:
			t.Fatalf("not enough compactions within 20s")
		case <-time.After(5 * time.Millisecond):
		}
		at := time.Now()
		rev, err := kv.Put(testCtx(t), fmt.Sprint("k", i%10), "v")
		require.NoError(t, err)
		ws = append(ws, written{rev, at})
	}
}

// Three compactors share a key: each round is won by one of them, so no
// two compactions have the same round; what is older than the last
// compaction is gone, the rest is readable.
func TestCompactor_KeepRevisions(t *testing.T) {
	cl := etcdtest.StartCluster(t, 3)
	got, ws := runCompactors(t, cl, admin.KeepRevisions(20), 4)
	rounds := map[int64]int{}
	for _, c := range got {
		rounds[c.Round]++
	}
	for r, n := range rounds {
		assert.Equal(t, 1, n, "round %d had %d compactions: %v", r, n, got)
	}
	// Callbacks of different compactors can come out of order.
	slices.SortFunc(got, func(a, b compaction) int { return cmp.Compare(a.Round, b.Round) })
	for i := 1; i < len(got); i++ {
		assert.Greater(t, got[i].Revision, got[i-1].Revision, "compactions go forward")
	}
	last := got[len(got)-1]
	raw := cl.RawClient(t)
	_, err := raw.Get(testCtx(t), "x", clientv3.WithRev(last.Revision-1))
	assert.ErrorIs(t, err, rpctypes.ErrCompacted)
	// The compactors have stopped; one may have compacted without
	// reporting it (its call was cancelled), but never more than asked.
	cur, err := raw.Get(testCtx(t), "x")
	require.NoError(t, err)
	_, err = raw.Get(testCtx(t), "x", clientv3.WithRev(cur.Header.Revision-20))
	assert.NoError(t, err, "the last 20 revisions are kept")
	assert.NotEmpty(t, ws)
}

// With KeepFor, every revision written within the retention before a
// compaction is kept, and those before the compaction revision are gone.
func TestCompactor_KeepFor(t *testing.T) {
	cl := etcdtest.StartCluster(t, 3)
	const keep = 300 * time.Millisecond
	got, ws := runCompactors(t, cl, admin.KeepFor(keep), 2)
	last := slices.MaxFunc(got, func(a, b compaction) int { return cmp.Compare(a.Revision, b.Revision) }).Compaction
	require.False(t, last.Since.IsZero())
	assert.LessOrEqual(t, last.Since, last.At.Add(-keep), "Since is at least keep before the compaction")
	// The compactors have stopped: what was written within keep from now
	// must be readable, even if a compaction went unreported because Run
	// was cancelled during its call.
	cutoff := time.Now().Add(-keep)
	raw := cl.RawClient(t)
	for _, w := range ws {
		_, err := raw.Get(testCtx(t), "x", clientv3.WithRev(w.rev))
		if w.rev < last.Revision {
			assert.ErrorIs(t, err, rpctypes.ErrCompacted, "revision %d, compacted to %d", w.rev, last.Revision)
		}
		if !w.at.Before(cutoff) {
			assert.NoError(t, err, "revision %d written %v ago", w.rev, time.Since(w.at))
		}
		if !w.at.Before(last.At.Add(-keep)) {
			assert.GreaterOrEqual(t, w.rev, last.Revision, "written %v before the compaction, within the retention", last.At.Sub(w.at))
		}
	}
}

// Run ends with the client, and refuses a second concurrent call.
func TestCompactor_StopsWithClient(t *testing.T) {
	cli := testCluster.Client(t)
	cp, err := admin.NewCompactor(cli, admin.KeepRevisions(1000), admin.CompactEvery(10*time.Millisecond),
		admin.CompactorKey(prefix(t)+"compactor"))
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- cp.Run(testCtx(t)) }()
	// The first round writes the key.
	require.Eventually(t, func() bool {
		resp, err := cli.Raw().Get(testCtx(t), prefix(t)+"compactor")
		return err == nil && len(resp.Kvs) == 1
	}, 10*time.Second, 10*time.Millisecond)
	require.ErrorIs(t, cp.Run(testCtx(t)), etcdkit.ErrInvalidArgument)
	require.NoError(t, cli.Close())
	select {
	case err := <-done:
		assert.ErrorIs(t, err, etcdkit.ErrClosed)
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not end when the client closed")
	}
}
