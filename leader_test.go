package etcdkit_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/etcdkit/etcdkit"
	"github.com/etcdkit/etcdkit/etcdtest"
)

// leaderWait bounds every wait of these tests for something a run does.
const leaderWait = 20 * time.Second

// termRec is what a test's fn saw of one term.
type termRec struct {
	term  *etcdkit.Term
	cause error // context.Cause of fn's ctx, once it ended
}

// leaderRun runs RunAsLeader in the background and records its terms.
type leaderRun struct {
	started chan *etcdkit.Term
	ended   chan termRec
	done    chan error
	cancel  context.CancelFunc

	mu     sync.Mutex
	events []etcdkit.LeaderEvent
}

// runLeader starts RunAsLeader(name, value) on cli. Each term runs body
// (nil: wait for the ctx to end and return its error), after reporting its
// start; the end is reported once the ctx ended or body returned.
func runLeader(t *testing.T, cli *etcdkit.Client, name, value string,
	body func(ctx context.Context, term *etcdkit.Term) error, opts ...etcdkit.LeaderOption) *leaderRun {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	r := &leaderRun{started: make(chan *etcdkit.Term, 16), ended: make(chan termRec, 16), done: make(chan error, 1), cancel: cancel}
	opts = append(opts, etcdkit.OnLeaderEvent(func(ev etcdkit.LeaderEvent) {
		r.mu.Lock()
		r.events = append(r.events, ev)
		r.mu.Unlock()
	}))
	go func() {
		r.done <- cli.RunAsLeader(ctx, name, value, func(ctx context.Context, term *etcdkit.Term) error {
			r.started <- term
			defer func() { r.ended <- termRec{term: term, cause: context.Cause(ctx)} }()
			if body != nil {
				return body(ctx, term)
			}
			<-ctx.Done()
			return ctx.Err()
		}, opts...)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(leaderWait):
			t.Error("RunAsLeader did not return after its ctx ended")
		}
	})
	return r
}

func (r *leaderRun) nextStart(t *testing.T) *etcdkit.Term {
	t.Helper()
	select {
	case term := <-r.started:
		return term
	case <-time.After(leaderWait):
		require.FailNow(t, "no term started in time")
	}
	return nil
}

func (r *leaderRun) nextEnd(t *testing.T) termRec {
	t.Helper()
	select {
	case rec := <-r.ended:
		return rec
	case <-time.After(leaderWait):
		require.FailNow(t, "no term ended in time")
	}
	return termRec{}
}

func (r *leaderRun) result(t *testing.T) error {
	t.Helper()
	select {
	case err := <-r.done:
		r.done <- err // for the cleanup
		return err
	case <-time.After(leaderWait):
		require.FailNow(t, "RunAsLeader did not return in time")
	}
	return nil
}

func (r *leaderRun) eventLog() []etcdkit.LeaderEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]etcdkit.LeaderEvent(nil), r.events...)
}

// observed reports whether a leader with fence was observed.
func (r *leaderRun) observed(fence int64) bool {
	for _, ev := range r.eventLog() {
		if ev.Kind == etcdkit.LeaderObserved && ev.Leader.Fence == fence {
			return true
		}
	}
	return false
}

// requireNoStart checks that no term of r has started so far.
func (r *leaderRun) requireNoStart(t *testing.T, why string) {
	t.Helper()
	select {
	case term := <-r.started:
		require.FailNow(t, why, "a term started with fence %d", term.Fence())
	default:
	}
}

// candidateKeys reads the keys under name's prefix.
func candidateKeys(t *testing.T, raw *clientv3.Client, name string) []string {
	t.Helper()
	resp, err := raw.Get(testCtx(t), name+"/", clientv3.WithPrefix(), clientv3.WithKeysOnly())
	require.NoError(t, err)
	keys := make([]string, len(resp.Kvs))
	for i, kv := range resp.Kvs {
		keys[i] = string(kv.Key)
	}
	return keys
}

// waitCandidates waits until n keys are under name's prefix.
func waitCandidates(t *testing.T, raw *clientv3.Client, name string, n int) {
	t.Helper()
	require.Eventually(t, func() bool { return len(candidateKeys(t, raw, name)) == n },
		leaderWait, 10*time.Millisecond, "waiting for %d candidates of %s", n, name)
}

func leaderName(t *testing.T) string { return "leader-" + testPrefix(t) }

// TestRunAsLeader_RunsResignsAndCampaignsAgain: the first candidate's fn
// runs while the second waits; when it returns, the first resigns, the
// second's fn runs with a greater fence, and the first campaigns again and
// leads after the second. A cancelled run returns nil and leaves no key.
func TestRunAsLeader_RunsResignsAndCampaignsAgain(t *testing.T) {
	t.Parallel()
	a, b := newClient(t), newClient(t)
	raw := testServer.RawClient(t)
	name := leaderName(t)
	release := make(chan struct{})
	first := true
	ra := runLeader(t, a, name, "a", func(ctx context.Context, _ *etcdkit.Term) error {
		if first {
			first = false
			<-release
			return nil
		}
		<-ctx.Done()
		return ctx.Err()
	})
	ta := ra.nextStart(t)
	assert.Equal(t, "a", ta.Value())
	assert.Equal(t, name+"/", ta.Key()[:len(name)+1])
	assert.False(t, ta.Started().IsZero())
	rb := runLeader(t, b, name, "b", nil)
	waitCandidates(t, raw, name, 2)
	rb.requireNoStart(t, "the second candidate runs while the first leads")
	lead, err := a.Leader(testCtx(t), name)
	require.NoError(t, err)
	assert.Equal(t, "a", lead)

	close(release)
	tb := rb.nextStart(t)
	assert.Greater(t, tb.Fence(), ta.Fence(), "the next leader's fence grows")
	ra.nextEnd(t)
	waitCandidates(t, raw, name, 2) // a campaigns again, behind b

	rb.cancel()
	require.NoError(t, rb.result(t), "a cancelled run returns nil")
	ta2 := ra.nextStart(t)
	assert.Greater(t, ta2.Fence(), tb.Fence())
	ra.cancel()
	require.NoError(t, ra.result(t))
	assert.Empty(t, candidateKeys(t, raw, name), "no key left behind")
}

// TestRunAsLeader_ReturnsFnError: an error of fn's own ends the run with
// it, after resigning.
func TestRunAsLeader_ReturnsFnError(t *testing.T) {
	t.Parallel()
	cli := newClient(t)
	raw := testServer.RawClient(t)
	name := leaderName(t)
	boom := errors.New("boom")
	r := runLeader(t, cli, name, "a", func(context.Context, *etcdkit.Term) error { return boom })
	require.ErrorIs(t, r.result(t), boom)
	assert.Empty(t, candidateKeys(t, raw, name), "no key left behind")
	var stops []etcdkit.LeaderEvent
	for _, ev := range r.eventLog() {
		if ev.Kind == etcdkit.LeaderStopped {
			stops = append(stops, ev)
		}
	}
	require.Len(t, stops, 1)
	assert.ErrorIs(t, stops[0].Err, boom, "the stop says why")
}

// TestRunAsLeader_CancelReturnsNil: cancelling the run's ctx ends fn's ctx,
// and the run returns nil once fn returned, its lease revoked.
func TestRunAsLeader_CancelReturnsNil(t *testing.T) {
	t.Parallel()
	cli := newClient(t)
	raw := testServer.RawClient(t)
	name := leaderName(t)
	r := runLeader(t, cli, name, "a", nil)
	term := r.nextStart(t)
	resp, err := raw.Get(testCtx(t), term.Key())
	require.NoError(t, err)
	require.Len(t, resp.Kvs, 1)
	lease := clientv3.LeaseID(resp.Kvs[0].Lease)

	r.cancel()
	rec := r.nextEnd(t)
	assert.ErrorIs(t, rec.cause, context.Canceled)
	require.NoError(t, r.result(t))
	assert.Empty(t, candidateKeys(t, raw, name), "no key left behind")
	ttl, err := raw.TimeToLive(testCtx(t), lease)
	require.NoError(t, err)
	assert.EqualValues(t, -1, ttl.TTL, "the run's lease is revoked")
}

// TestRunAsLeader_KeyDeletedEndsFn: deleting the leader's key from another
// client ends fn's ctx with ErrLeaseExpired; the run campaigns again on the
// same lease and leads with a greater fence. Its events come exactly once
// each, in order, and the observed leaders carry their value and fence.
func TestRunAsLeader_KeyDeletedEndsFn(t *testing.T) {
	t.Parallel()
	cli := newClient(t)
	raw := testServer.RawClient(t)
	name := leaderName(t)
	r := runLeader(t, cli, name, "a", nil)
	t1 := r.nextStart(t)
	require.Eventually(t, func() bool { return r.observed(t1.Fence()) }, leaderWait, 10*time.Millisecond,
		"the first term is observed")
	_, err := raw.Delete(testCtx(t), t1.Key())
	require.NoError(t, err)
	rec := r.nextEnd(t)
	assert.ErrorIs(t, rec.cause, etcdkit.ErrLeaseExpired, "fn's ctx says the key is gone")
	t2 := r.nextStart(t)
	assert.Greater(t, t2.Fence(), t1.Fence())
	assert.Equal(t, t1.Key(), t2.Key(), "the same lease campaigns again")
	require.Eventually(t, func() bool { return r.observed(t2.Fence()) }, leaderWait, 10*time.Millisecond,
		"the second term is observed")
	r.cancel()
	require.NoError(t, r.result(t))

	var terms []etcdkit.LeaderEvent
	observed := map[int64]string{}
	for _, ev := range r.eventLog() {
		assert.Equal(t, name, ev.Name)
		switch ev.Kind {
		case etcdkit.LeaderStarted, etcdkit.LeaderStopped:
			terms = append(terms, ev)
		case etcdkit.LeaderObserved:
			observed[ev.Leader.Fence] = ev.Leader.Value
		}
	}
	require.Len(t, terms, 4, "a start and a stop for each of the two terms: %v", terms)
	for i, want := range []struct {
		kind  etcdkit.LeaderEventKind
		fence int64
	}{{etcdkit.LeaderStarted, t1.Fence()}, {etcdkit.LeaderStopped, t1.Fence()},
		{etcdkit.LeaderStarted, t2.Fence()}, {etcdkit.LeaderStopped, t2.Fence()}} {
		assert.Equal(t, want.kind, terms[i].Kind, "event %d", i)
		assert.Equal(t, want.fence, terms[i].Leader.Fence, "event %d", i)
	}
	assert.ErrorIs(t, terms[1].Err, etcdkit.ErrLeaseExpired)
	assert.Equal(t, map[int64]string{t1.Fence(): "a", t2.Fence(): "a"}, observed, "each leader observed with its fence")
}

// TestRunAsLeader_StopGraceOverrun: a fn that ignores its ctx keeps the
// leadership for the stop grace; then the lease is no longer refreshed and
// the key lapses with it. It is never released while fn runs: the next
// candidate starts only after the overrun, and after fn returned or the
// lease expired.
func TestRunAsLeader_StopGraceOverrun(t *testing.T) {
	t.Parallel()
	const grace = 300 * time.Millisecond
	run := func(t *testing.T, ttl time.Duration) (ra, rb *leaderRun, release chan struct{}, raw *clientv3.Client, lease clientv3.LeaseID) {
		a, b := newClient(t), newClient(t)
		raw = testServer.RawClient(t)
		name := leaderName(t)
		release = make(chan struct{})
		ra = runLeader(t, a, name, "a", func(context.Context, *etcdkit.Term) error {
			<-release // ignores its ctx
			return nil
		}, etcdkit.LeaderTTL(ttl), etcdkit.LeaderStopGrace(grace))
		term := ra.nextStart(t)
		resp, err := raw.Get(testCtx(t), term.Key())
		require.NoError(t, err)
		require.Len(t, resp.Kvs, 1)
		rb = runLeader(t, b, name, "b", nil)
		waitCandidates(t, raw, name, 2)
		ra.cancel()
		return ra, rb, release, raw, clientv3.LeaseID(resp.Kvs[0].Lease)
	}
	overrunAt := func(t *testing.T, r *leaderRun) time.Time {
		t.Helper()
		var at time.Time
		require.Eventually(t, func() bool {
			for _, ev := range r.eventLog() {
				if ev.Kind == etcdkit.LeaderStopOverrun {
					at = ev.At
					return true
				}
			}
			return false
		}, leaderWait, 10*time.Millisecond, "the overrun is reported")
		return at
	}

	t.Run("lapses while fn runs", func(t *testing.T) {
		t.Parallel()
		ra, rb, release, raw, lease := run(t, 2*time.Second)
		defer close(release)
		over := overrunAt(t, ra)
		tb := rb.nextStart(t)
		assert.True(t, tb.Started().After(over), "the next leader starts after the overrun")
		ttl, err := raw.TimeToLive(testCtx(t), lease)
		require.NoError(t, err)
		assert.EqualValues(t, -1, ttl.TTL, "fn still runs: the key went with its expired lease")
	})
	t.Run("released when fn returns", func(t *testing.T) {
		t.Parallel()
		ra, rb, release, _, _ := run(t, 30*time.Second)
		overrunAt(t, ra)
		rb.requireNoStart(t, "the next leader starts while fn runs")
		returned := time.Now()
		close(release)
		tb := rb.nextStart(t)
		assert.True(t, tb.Started().After(returned), "the next leader starts after fn returned")
		require.NoError(t, ra.result(t))
		var kinds []etcdkit.LeaderEventKind
		for _, ev := range ra.eventLog() {
			if ev.Kind != etcdkit.LeaderObserved {
				kinds = append(kinds, ev.Kind)
			}
		}
		assert.Equal(t, []etcdkit.LeaderEventKind{etcdkit.LeaderStarted, etcdkit.LeaderStopOverrun, etcdkit.LeaderStopped}, kinds)
	})
}

// TestRunAsLeader_ClientClose: closing the client ends fn's ctx with
// ErrClosed and the run with an error matching ErrClosed.
func TestRunAsLeader_ClientClose(t *testing.T) {
	t.Parallel()
	cli := testServer.Client(t)
	r := runLeader(t, cli, leaderName(t), "a", nil)
	r.nextStart(t)
	require.NoError(t, cli.Close())
	rec := r.nextEnd(t)
	assert.ErrorIs(t, rec.cause, etcdkit.ErrClosed)
	assert.ErrorIs(t, r.result(t), etcdkit.ErrClosed)
	err := cli.RunAsLeader(t.Context(), "x", "v", func(context.Context, *etcdkit.Term) error { return nil })
	assert.ErrorIs(t, err, etcdkit.ErrClosed, "a run on a closed client")
}

// TestRunAsLeader_BadArguments: bad arguments fail at once, sending
// nothing.
func TestRunAsLeader_BadArguments(t *testing.T) {
	t.Parallel()
	faults := etcdtest.NewFaults()
	cli := testServer.Client(t, etcdtest.WithFaults(faults))
	for _, rpc := range []etcdtest.RPC{etcdtest.RPCLeaseGrant, etcdtest.RPCTxn, etcdtest.RPCRange} {
		faults.Inject(rpc, etcdtest.FailBeforeSend, 1, 0)
	}
	fn := func(context.Context, *etcdkit.Term) error {
		t.Error("fn ran")
		return nil
	}
	for _, tc := range []struct {
		name string
		key  string
		fn   func(context.Context, *etcdkit.Term) error
		opts []etcdkit.LeaderOption
		want error
	}{
		{"empty name", "", fn, nil, etcdkit.ErrEmptyKey},
		{"nil fn", "n", nil, nil, etcdkit.ErrInvalidArgument},
		{"TTL under a second", "n", fn, []etcdkit.LeaderOption{etcdkit.LeaderTTL(999 * time.Millisecond)}, etcdkit.ErrInvalidTTL},
		{"negative stop grace", "n", fn, []etcdkit.LeaderOption{etcdkit.LeaderStopGrace(-time.Second)}, etcdkit.ErrInvalidArgument},
		{"zero least backoff", "n", fn, []etcdkit.LeaderOption{etcdkit.LeaderBackoff(0, time.Second)}, etcdkit.ErrInvalidArgument},
		{"most under least", "n", fn, []etcdkit.LeaderOption{etcdkit.LeaderBackoff(2*time.Second, time.Second)}, etcdkit.ErrInvalidArgument},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := cli.RunAsLeader(t.Context(), tc.key, "v", tc.fn, tc.opts...)
			assert.ErrorIs(t, err, tc.want)
		})
	}
	assert.Zero(t, faults.Injected(), "a request was sent")
}

// TestObserveLeader_NewLeaderWithSameValue: a new leader that campaigned
// with the value of the last one is still sent; ObserveLeaderInfo gives its
// key and fence.
func TestObserveLeader_NewLeaderWithSameValue(t *testing.T) {
	t.Parallel()
	a, b, obs := newClient(t), newClient(t), newClient(t)
	name := leaderName(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	values := obs.ObserveLeader(ctx, name)
	infos := obs.ObserveLeaderInfo(ctx, name)
	la, err := a.Campaign(testCtx(t), name, "same")
	require.NoError(t, err)
	next := func(what string) (string, etcdkit.LeaderInfo) {
		t.Helper()
		var v string
		var li etcdkit.LeaderInfo
		for got := 0; got < 2; {
			select {
			case v = <-values:
				got++
			case li = <-infos:
				got++
			case <-time.After(leaderWait):
				require.FailNow(t, "nothing observed", what)
			}
		}
		return v, li
	}
	v, li := next("the first leader")
	assert.Equal(t, "same", v)
	assert.Equal(t, etcdkit.LeaderInfo{Key: la.Key(), Value: "same", Fence: la.Fence()}, li)

	won := make(chan *etcdkit.Leadership, 1)
	go func() {
		lb, err := b.Campaign(testCtx(t), name, "same")
		assert.NoError(t, err)
		won <- lb
	}()
	waitCandidates(t, testServer.RawClient(t), name, 2)
	require.NoError(t, la.Resign(testCtx(t)))
	lb := <-won
	require.NotNil(t, lb)
	v, li = next("the second leader, with the same value")
	assert.Equal(t, "same", v)
	assert.Equal(t, etcdkit.LeaderInfo{Key: lb.Key(), Value: "same", Fence: lb.Fence()}, li)
	require.NoError(t, lb.Resign(testCtx(t)))
}

// TestRunAsLeader_AmbiguousJoin: a join whose outcome is unknown (it
// committed and failed, or failed and lands later) still leads with one key
// of the run's lease, and the run leaves no key behind, even when the late
// join lands after it returned.
func TestRunAsLeader_AmbiguousJoin(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		outcome etcdtest.Outcome
		delay   time.Duration
	}{
		{"committed then failed", etcdtest.CommitThenFail, 0},
		{"failed then committed", etcdtest.FailThenCommit, 500 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			faults := etcdtest.NewFaults()
			cli := testServer.Client(t, etcdtest.WithFaults(faults))
			raw := testServer.RawClient(t)
			name := leaderName(t)
			faults.Inject(etcdtest.RPCTxn, tc.outcome, 1, tc.delay)
			r := runLeader(t, cli, name, "a", nil, etcdkit.LeaderBackoff(10*time.Millisecond, 100*time.Millisecond))
			term := r.nextStart(t)
			assert.Equal(t, []string{term.Key()}, candidateKeys(t, raw, name), "one key, the term's")
			r.cancel()
			require.NoError(t, r.result(t))
			faults.Wait() // the late join, if any, has landed or failed
			assert.Empty(t, candidateKeys(t, raw, name), "no key left behind")
			assert.EqualValues(t, 1, faults.Injected())
		})
	}
}
