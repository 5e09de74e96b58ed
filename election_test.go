package etcdkit_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/etcdkit/etcdkit"
)

// electionNext returns the next value from ch, failing the test if none
// comes within a generous bound.
func electionNext(t *testing.T, ch <-chan string) string {
	t.Helper()
	select {
	case v, ok := <-ch:
		if !ok {
			t.Fatal("observer channel closed early")
		}
		return v
	case <-time.After(20 * time.Second):
		t.Fatal("no leader value observed within 20s")
	}
	return ""
}

func TestElectionHandover(t *testing.T) {
	t.Parallel()
	srv := lockServer(t)
	a, b, obs := srv.Client(t), srv.Client(t), srv.Client(t)
	raw := srv.RawClient(t)
	name := lockName(t)

	if _, err := obs.Leader(t.Context(), name); !errors.Is(err, etcdkit.ErrNoLeader) {
		t.Fatalf("Leader with no candidates = %v, want ErrNoLeader", err)
	}
	octx, ocancel := context.WithCancel(t.Context())
	seen := obs.ObserveLeader(octx, name)

	la, err := a.Campaign(t.Context(), name, "a")
	if err != nil {
		t.Fatal(err)
	}
	if v := electionNext(t, seen); v != "a" {
		t.Errorf("observed %q, want a", v)
	}
	won := make(chan *etcdkit.Leadership, 1)
	go func() {
		lb, err := b.Campaign(t.Context(), name, "b")
		if err != nil {
			t.Error(err)
			close(won)
			return
		}
		won <- lb
	}()
	lockWaitKeys(t, raw, name+"/", 2)
	select {
	case <-won:
		t.Fatal("second candidate leads while the first still does")
	default:
	}
	if v, err := obs.Leader(t.Context(), name); err != nil || v != "a" {
		t.Errorf("Leader = %q, %v; want a", v, err)
	}
	if err := la.Proclaim(t.Context(), "a2"); err != nil {
		t.Fatal(err)
	}
	if v := electionNext(t, seen); v != "a2" {
		t.Errorf("observed %q after Proclaim, want a2", v)
	}

	lost := la.Lost()
	if err := la.Resign(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := la.Resign(t.Context()); err != nil {
		t.Errorf("second Resign: %v", err)
	}
	lockWaitClosed(t, lost, "Lost after Resign")
	var lb *etcdkit.Leadership
	select {
	case lb = <-won:
	case <-time.After(20 * time.Second):
		t.Fatal("second candidate not elected after the first resigned")
	}
	if lb == nil {
		t.FailNow()
	}
	if v := electionNext(t, seen); v != "b" {
		t.Errorf("observed %q after handover, want b", v)
	}
	if lb.Fence() <= la.Fence() {
		t.Errorf("new leader's fence %d not above %d", lb.Fence(), la.Fence())
	}
	if err := la.Proclaim(t.Context(), "stale"); err == nil {
		t.Error("Proclaim after Resign succeeded")
	}
	if v, err := obs.Leader(t.Context(), name); err != nil || v != "b" {
		t.Errorf("Leader = %q, %v; want b", v, err)
	}
	if err := lb.Resign(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := obs.Leader(t.Context(), name); !errors.Is(err, etcdkit.ErrNoLeader) {
		t.Errorf("Leader after all resigned = %v, want ErrNoLeader", err)
	}
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
	if err != nil {
		t.Fatal(err)
	}
	lost := ld.Lost()
	lockRevokeLeaseOf(t, raw, ld.Key())
	lockWaitClosed(t, lost, "Lost after revoking the lease")
	if err := ld.Err(); !errors.Is(err, etcdkit.ErrLeaseExpired) {
		t.Errorf("Err = %v, want ErrLeaseExpired", err)
	}
	if err := ld.Proclaim(t.Context(), "w"); !errors.Is(err, etcdkit.ErrLeaseExpired) {
		t.Errorf("Proclaim after loss = %v, want ErrLeaseExpired", err)
	}
	res, err := cli.Txn(t.Context()).If(ld.Held()).Then(data.PutOp("x", "1")).Commit()
	if err != nil || res.Succeeded {
		t.Errorf("guarded write after loss: succeeded=%v, err=%v; want refused", res.Succeeded, err)
	}
	if err := ld.Resign(t.Context()); err != nil {
		t.Errorf("Resign after loss: %v", err)
	}
}

func TestCampaignCancelled(t *testing.T) {
	t.Parallel()
	srv := lockServer(t)
	a, b, raw := srv.Client(t), srv.Client(t), srv.RawClient(t)
	name := lockName(t)
	la, err := a.Campaign(t.Context(), name, "a")
	if err != nil {
		t.Fatal(err)
	}
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
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Campaign = %v, want context.Canceled", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Campaign did not return after its ctx was cancelled")
	}
	if keys := lockKeysUnder(t, raw, name+"/"); len(keys) != 1 || keys[0] != la.Key() {
		t.Errorf("keys = %q, want only the leader's", keys)
	}
}

func TestElectionWireCompatible(t *testing.T) {
	t.Parallel()
	srv := lockServer(t)
	cli, raw := srv.Client(t), srv.RawClient(t)
	name := lockName(t)
	sess, err := concurrency.NewSession(raw, concurrency.WithTTL(10))
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()

	t.Run("ours leads, concurrency waits", func(t *testing.T) {
		ld, err := cli.Campaign(t.Context(), name, "ours")
		if err != nil {
			t.Fatal(err)
		}
		e := concurrency.NewElection(sess, name)
		resp, err := e.Leader(t.Context())
		if err != nil || string(resp.Kvs[0].Value) != "ours" {
			t.Fatalf("concurrency Leader = %v, %v; want ours", resp, err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
		defer cancel()
		if err := e.Campaign(ctx, "theirs"); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("concurrency Campaign while we lead = %v, want it to wait until its deadline", err)
		}
		if err := ld.Resign(t.Context()); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("concurrency leads, ours waits", func(t *testing.T) {
		e := concurrency.NewElection(sess, name)
		if err := e.Campaign(t.Context(), "theirs"); err != nil {
			t.Fatal(err)
		}
		if v, err := cli.Leader(t.Context(), name); err != nil || v != "theirs" {
			t.Errorf("Leader = %q, %v; want theirs", v, err)
		}
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
			t.Fatal("our Campaign returned while concurrency.Election leads")
		default:
		}
		if err := e.Resign(t.Context()); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-won:
			if err != nil {
				t.Errorf("Campaign after concurrency resigned: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("not elected after concurrency.Election resigned")
		}
	})
}
