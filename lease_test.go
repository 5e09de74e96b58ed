package etcdkit_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/etcdkit/etcdkit"
	"github.com/etcdkit/etcdkit/etcdtest"
	clientv3 "go.etcd.io/etcd/client/v3"
)

func clientv3LeaseID(l *etcdkit.Lease) clientv3.LeaseID { return clientv3.LeaseID(l.ID()) }

// waitClosed fails the test unless ch closes within limit: a liveness
// bound, generous enough never to be a timing assertion.
func waitClosed(t *testing.T, ch <-chan struct{}, limit time.Duration, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(limit):
		t.Fatalf("%s: not closed within %v", what, limit)
	}
}

func TestGrantRejectsShortTTL(t *testing.T) {
	t.Parallel()
	cli := etcdtest.Start(t).Client(t)
	for _, ttl := range []time.Duration{0, -time.Second, 999 * time.Millisecond} {
		_, err := cli.Grant(t.Context(), ttl)
		if !errors.Is(err, etcdkit.ErrInvalidTTL) {
			t.Errorf("Grant(%v) = %v, want ErrInvalidTTL", ttl, err)
		}
	}
}

func TestGrantReportsServerTTL(t *testing.T) {
	t.Parallel()
	cli := etcdtest.Start(t).Client(t)
	l, err := cli.Grant(t.Context(), 1500*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	ttl, err := cli.Raw().TimeToLive(t.Context(), clientv3LeaseID(l))
	if err != nil {
		t.Fatal(err)
	}
	if l.TTL() != time.Duration(ttl.GrantedTTL)*time.Second || l.TTL() < 2*time.Second {
		t.Errorf("TTL() = %v, server granted %ds (asked 1.5s, rounded up to 2s)", l.TTL(), ttl.GrantedTTL)
	}
	if l.Err() != nil {
		t.Errorf("Err() = %v on a live lease", l.Err())
	}
}

func TestLeaseKeepAliveOutlivesTTL(t *testing.T) {
	t.Parallel()
	cli := etcdtest.Start(t).Client(t)
	kv := etcdkit.NewKV(cli, testPrefix(t), etcdkit.String())
	l, err := cli.Grant(t.Context(), 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(t.Context(), "k", "v", etcdkit.WithLease(l)); err != nil {
		t.Fatal(err)
	}
	if err := l.KeepAlive(); err != nil {
		t.Fatal(err)
	}
	if err := l.KeepAlive(); err != nil {
		t.Fatalf("second KeepAlive: %v", err)
	}
	// A caller's ctx ending does not stop the keep-alive.
	select {
	case <-l.Done():
		t.Fatalf("lease ended while kept alive: %v", l.Err())
	case <-time.After(3 * l.TTL()):
	}
	e, err := kv.Get(t.Context(), "k")
	if err != nil {
		t.Fatalf("key of a kept-alive lease after 3×TTL: %v", err)
	}
	if e.Lease != l.ID() {
		t.Errorf("entry lease = %x, want %x", e.Lease, l.ID())
	}
}

func TestLeaseRevoke(t *testing.T) {
	t.Parallel()
	cli := etcdtest.Start(t).Client(t)
	kv := etcdkit.NewKV(cli, testPrefix(t), etcdkit.String())
	l, err := cli.Grant(t.Context(), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(t.Context(), "k", "v", etcdkit.WithLease(l)); err != nil {
		t.Fatal(err)
	}
	if err := l.KeepAlive(); err != nil {
		t.Fatal(err)
	}
	if err := l.Revoke(t.Context()); err != nil {
		t.Fatal(err)
	}
	waitClosed(t, l.Done(), time.Second, "Done after Revoke")
	if !errors.Is(l.Err(), etcdkit.ErrLeaseRevoked) {
		t.Errorf("Err() = %v, want ErrLeaseRevoked", l.Err())
	}
	if _, err := kv.Get(t.Context(), "k"); !errors.Is(err, etcdkit.ErrNotFound) {
		t.Errorf("Get of a revoked lease's key = %v, want ErrNotFound", err)
	}
	if err := l.Revoke(t.Context()); err != nil {
		t.Errorf("second Revoke = %v, want nil", err)
	}
	if err := l.KeepAlive(); !errors.Is(err, etcdkit.ErrLeaseRevoked) {
		t.Errorf("KeepAlive after Revoke = %v, want ErrLeaseRevoked", err)
	}
}

func TestLeaseExpiresWithoutKeepAlive(t *testing.T) {
	t.Parallel()
	cli := etcdtest.Start(t).Client(t)
	l, err := cli.Grant(t.Context(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	waitClosed(t, l.Done(), 3*l.TTL(), "Done of a lease not kept alive")
	if !errors.Is(l.Err(), etcdkit.ErrLeaseLost) {
		t.Errorf("Err() = %v, want ErrLeaseLost", l.Err())
	}
}

func TestLeaseExpiredOnServer(t *testing.T) {
	t.Parallel()
	cli := etcdtest.Start(t).Client(t)
	l, err := cli.Grant(t.Context(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.KeepAlive(); err != nil {
		t.Fatal(err)
	}
	// Someone else revokes it: to this holder, it is gone.
	if _, err := cli.Raw().Revoke(t.Context(), clientv3LeaseID(l)); err != nil {
		t.Fatal(err)
	}
	waitClosed(t, l.Done(), 3*l.TTL(), "Done of a lease revoked elsewhere")
	if !errors.Is(l.Err(), etcdkit.ErrLeaseExpired) {
		t.Errorf("Err() = %v, want ErrLeaseExpired", l.Err())
	}
}

func TestLeaseKeepAliveUnreachable(t *testing.T) {
	t.Parallel()
	srv := etcdtest.Start(t)
	cli := srv.Client(t)
	l, err := cli.Grant(t.Context(), 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.KeepAlive(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond) // at least one refresh
	srv.Stop()
	stopped := time.Now()
	waitClosed(t, l.Done(), 3*l.TTL(), "Done with the server stopped")
	t.Logf("Done closed %v after the server stopped (TTL %v)", time.Since(stopped), l.TTL())
	// Nobody could ask the server: the lease is lost, not known to be expired.
	if !errors.Is(l.Err(), etcdkit.ErrLeaseLost) {
		t.Errorf("Err() = %v, want ErrLeaseLost", l.Err())
	}
}

func TestClientCloseEndsLeases(t *testing.T) {
	t.Parallel()
	srv := etcdtest.Start(t)
	cli := srv.Client(t)
	other := srv.Client(t)
	kv := etcdkit.NewKV(other, t.Name()+"/", etcdkit.String())
	kept, err := cli.Grant(t.Context(), 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := kept.KeepAlive(); err != nil {
		t.Fatal(err)
	}
	plain, err := cli.Grant(t.Context(), 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	for key, l := range map[string]*etcdkit.Lease{"kept": kept, "plain": plain} {
		if _, err := kv.Put(t.Context(), key, "v", etcdkit.WithLease(l)); err != nil {
			t.Fatal(err)
		}
	}
	if err := cli.Close(); err != nil {
		t.Fatal(err)
	}
	for _, l := range []*etcdkit.Lease{kept, plain} {
		waitClosed(t, l.Done(), time.Second, "Done after Client.Close")
		if !errors.Is(l.Err(), etcdkit.ErrClosed) {
			t.Errorf("Err() = %v, want ErrClosed", l.Err())
		}
	}
	if _, err := kv.Get(t.Context(), "kept"); !errors.Is(err, etcdkit.ErrNotFound) {
		t.Errorf("key of a kept-alive lease after Close: %v, want ErrNotFound (revoked)", err)
	}
	if _, err := kv.Get(t.Context(), "plain"); err != nil {
		t.Errorf("key of a lease nobody kept alive after Close: %v, want it left to its TTL", err)
	}
	if err := kept.KeepAlive(); err == nil {
		t.Error("KeepAlive after Close succeeded")
	}
	if _, err := cli.Grant(context.Background(), time.Minute); !errors.Is(err, etcdkit.ErrClosed) {
		t.Errorf("Grant after Close = %v, want ErrClosed", err)
	}
}

func TestLeaseSurvivesRestart(t *testing.T) {
	t.Parallel()
	srv := etcdtest.Start(t)
	cli := srv.Client(t)
	kv := etcdkit.NewKV(cli, testPrefix(t), etcdkit.String())
	l, err := cli.Grant(t.Context(), 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.KeepAlive(); err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(t.Context(), "k", "v", etcdkit.WithLease(l)); err != nil {
		t.Fatal(err)
	}
	srv.Restart(t)
	select {
	case <-l.Done():
		t.Fatalf("lease lost across a quick restart: %v", l.Err())
	case <-time.After(2 * l.TTL()):
	}
	if _, err := kv.Get(t.Context(), "k"); err != nil {
		t.Errorf("key of a kept-alive lease after a restart and 2×TTL: %v", err)
	}
}
