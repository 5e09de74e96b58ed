package etcdkit_test

import (
	"context"
	"testing"
	"time"

	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/etcdkit/etcdkit"
)

// electionNext returns the next value from ch, failing the test if none
// comes within a generous bound.
func electionNext(t *testing.T, ch <-chan string) string {
	t.Helper()
	select {
	case v, ok := <-ch:
		require.True(t, ok, "observer channel closed early")
		return v
	case <-time.After(20 * time.Second):
		require.FailNow(t, "no leader value observed within 20s")
	}
	return ""
}

func TestElectionHandover(t *testing.T) {
	t.Parallel()
	srv := lockServer(t)
	a, b, obs := srv.Client(t), srv.Client(t), srv.Client(t)
	raw := srv.RawClient(t)
	name := lockName(t)

	_, err := obs.Leader(t.Context(), name)
	require.ErrorIs(t, err, etcdkit.ErrNoLeader, "Leader with no candidates")
	octx, ocancel := context.WithCancel(t.Context())
	seen := obs.ObserveLeader(octx, name)

	la, err := a.Campaign(t.Context(), name, "a")
	require.NoError(t, err)
	assert.Equal(t, "a", electionNext(t, seen), "observed")
	won := make(chan *etcdkit.Leadership, 1)
	go func() {
		lb, err := b.Campaign(t.Context(), name, "b")
		if !assert.NoError(t, err) {
			close(won)
			return
		}
		won <- lb
	}()
	lockWaitKeys(t, raw, name+"/", 2)
	select {
	case <-won:
		require.FailNow(t, "second candidate leads while the first still does")
	default:
	}
	v, err := obs.Leader(t.Context(), name)
	assert.NoError(t, err, "Leader")
	assert.Equal(t, "a", v, "Leader")
	require.NoError(t, la.Proclaim(t.Context(), "a2"))
	assert.Equal(t, "a2", electionNext(t, seen), "observed after Proclaim")

	lost := la.Lost()
	require.NoError(t, la.Resign(t.Context()))
	assert.NoError(t, la.Resign(t.Context()), "second Resign")
	lockWaitClosed(t, lost, "Lost after Resign")
	var lb *etcdkit.Leadership
	select {
	case lb = <-won:
	case <-time.After(20 * time.Second):
		require.FailNow(t, "second candidate not elected after the first resigned")
	}
	require.NotNil(t, lb, "second candidate's Campaign failed")
	assert.Equal(t, "b", electionNext(t, seen), "observed after handover")
	assert.Greater(t, lb.Fence(), la.Fence(), "new leader's fence not above the old one's")
	assert.Error(t, la.Proclaim(t.Context(), "stale"), "Proclaim after Resign succeeded")
	v, err = obs.Leader(t.Context(), name)
	assert.NoError(t, err, "Leader")
	assert.Equal(t, "b", v, "Leader")
	require.NoError(t, lb.Resign(t.Context()))
	_, err = obs.Leader(t.Context(), name)
	assert.ErrorIs(t, err, etcdkit.ErrNoLeader, "Leader after all resigned")
	ocancel()
	for range seen { // closed once ctx ends
	}
}

func TestElectionLostOnRevoke(t *testing.T) {
	t.Parallel()
	srv := lockServer(t)
	cli, raw := srv.Client(t), srv.RawClient(t)
	name := lockName(t)
	data := etcdkit.NewKV(cli, name+"-data/", etcdkit.String())
	ld, err := cli.Campaign(t.Context(), name, "v")
	require.NoError(t, err)
	lost := ld.Lost()
	lockRevokeLeaseOf(t, raw, ld.Key())
	lockWaitClosed(t, lost, "Lost after revoking the lease")
	assert.ErrorIs(t, ld.Err(), etcdkit.ErrLeaseExpired)
	assert.ErrorIs(t, ld.Proclaim(t.Context(), "w"), etcdkit.ErrLeaseExpired, "Proclaim after loss")
	res, err := cli.Txn(t.Context()).If(ld.Held()).Then(data.PutOp("x", "1")).Commit()
	if assert.NoError(t, err, "guarded write after loss") {
		assert.False(t, res.Succeeded, "guarded write after loss: want refused")
	}
	assert.ErrorIs(t, ld.Resign(t.Context()), etcdkit.ErrLeaseExpired, "Resign after loss: the loss")
	assert.NoError(t, ld.Resign(t.Context()), "second Resign after loss")
}

func TestCampaignCancelled(t *testing.T) {
	t.Parallel()
	srv := lockServer(t)
	a, b, raw := srv.Client(t), srv.Client(t), srv.RawClient(t)
	name := lockName(t)
	la, err := a.Campaign(t.Context(), name, "a")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, err := b.Campaign(ctx, name, "b")
		done <- err
	}()
	lockWaitKeys(t, raw, name+"/", 2)
	cancel()
	select {
	case err := <-done:
		assert.ErrorIs(t, err, context.Canceled, "Campaign")
	case <-time.After(20 * time.Second):
		require.FailNow(t, "Campaign did not return after its ctx was cancelled")
	}
	assert.Equal(t, []string{la.Key()}, lockKeysUnder(t, raw, name+"/"), "keys: want only the leader's")
}

func TestElectionWireCompatible(t *testing.T) {
	t.Parallel()
	srv := lockServer(t)
	cli, raw := srv.Client(t), srv.RawClient(t)
	name := lockName(t)
	sess, err := concurrency.NewSession(raw, concurrency.WithTTL(10))
	require.NoError(t, err)
	defer sess.Close()

	t.Run("ours leads, concurrency waits", func(t *testing.T) {
		ld, err := cli.Campaign(t.Context(), name, "ours")
		require.NoError(t, err)
		e := concurrency.NewElection(sess, name)
		resp, err := e.Leader(t.Context())
		require.NoError(t, err, "concurrency Leader")
		require.Equal(t, "ours", string(resp.Kvs[0].Value), "concurrency Leader")
		ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
		defer cancel()
		assert.ErrorIs(t, e.Campaign(ctx, "theirs"), context.DeadlineExceeded,
			"concurrency Campaign while we lead: want it to wait until its deadline")
		require.NoError(t, ld.Resign(t.Context()))
	})
	t.Run("concurrency leads, ours waits", func(t *testing.T) {
		e := concurrency.NewElection(sess, name)
		require.NoError(t, e.Campaign(t.Context(), "theirs"))
		v, err := cli.Leader(t.Context(), name)
		assert.NoError(t, err, "Leader")
		assert.Equal(t, "theirs", v, "Leader")
		won := make(chan error, 1)
		go func() {
			ld, err := cli.Campaign(t.Context(), name, "ours")
			if err == nil {
				err = ld.Resign(t.Context())
			}
			won <- err
		}()
		lockWaitKeys(t, raw, name+"/", 2)
		select {
		case <-won:
			require.FailNow(t, "our Campaign returned while concurrency.Election leads")
		default:
		}
		require.NoError(t, e.Resign(t.Context()))
		select {
		case err := <-won:
			assert.NoError(t, err, "Campaign after concurrency resigned")
		case <-time.After(20 * time.Second):
			require.FailNow(t, "not elected after concurrency.Election resigned")
		}
	})
}
