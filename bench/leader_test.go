package bench_test

import (
	"context"
	"path"
	"strconv"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/etcdkit/etcdkit"
)

// candidate runs singleton work as one replica would, sending the lease
// behind each term it starts, until ctx ends.
type candidate func(ctx context.Context, name, id string, started chan<- clientv3.LeaseID)

// BenchmarkLeaderFailover times one failover: from the moment the leader's
// lease is revoked to the moment the next candidate's work starts, with two
// candidates on one name. raw is concurrency.Election with the loop a
// service writes around it (a session per term, Campaign, work until the
// session ends, Resign); etcdkit is RunAsLeader.
func BenchmarkLeaderFailover(b *testing.B) {
	c, rc := clients(b)
	b.Run("impl=raw", func(b *testing.B) { benchFailover(b, rc, rawCandidate(rc)) })
	b.Run("impl=etcdkit", func(b *testing.B) { benchFailover(b, rc, kitCandidate(c)) })
}

func benchFailover(b *testing.B, rc *clientv3.Client, run candidate) {
	name := newPrefix("leader") + "job"
	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan clientv3.LeaseID)
	var wg sync.WaitGroup
	for _, id := range []string{"a", "b"} {
		wg.Go(func() { run(ctx, name, id, started) })
	}
	defer func() { cancel(); wg.Wait() }()
	lease := nextLeader(b, started)
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		waitCandidates(b, rc, name, 2) // the revoked one has campaigned again
		b.StartTimer()
		if _, err := rc.Revoke(ctx, lease); err != nil {
			b.Fatal(err)
		}
		lease = nextLeader(b, started)
	}
}

func nextLeader(b *testing.B, started <-chan clientv3.LeaseID) clientv3.LeaseID {
	select {
	case l := <-started:
		return l
	case <-time.After(30 * time.Second):
		b.Fatal("no leader started within 30s")
	}
	return 0
}

func waitCandidates(b *testing.B, rc *clientv3.Client, name string, n int64) {
	for range 3000 {
		resp, err := rc.Get(context.Background(), name+"/", clientv3.WithPrefix(), clientv3.WithCountOnly())
		if err != nil {
			b.Fatal(err)
		}
		if resp.Count == n {
			return
		}
		time.Sleep(time.Millisecond)
	}
	b.Fatalf("not %d candidates within 3s+", n)
}

// leaseOf reads the lease from an election key: the name, "/", the lease
// ID in hex.
func leaseOf(key string) clientv3.LeaseID {
	id, _ := strconv.ParseInt(path.Base(key), 16, 64)
	return clientv3.LeaseID(id)
}

func announce(ctx context.Context, started chan<- clientv3.LeaseID, l clientv3.LeaseID) {
	select {
	case started <- l:
	case <-ctx.Done():
	}
}

func kitCandidate(c *etcdkit.Client) candidate {
	return func(ctx context.Context, name, id string, started chan<- clientv3.LeaseID) {
		_ = c.RunAsLeader(ctx, name, id, func(fctx context.Context, term *etcdkit.Term) error {
			announce(fctx, started, leaseOf(term.Key()))
			<-fctx.Done()
			return fctx.Err()
		}, etcdkit.LeaderTTL(10*time.Second), etcdkit.LeaderBackoff(10*time.Millisecond, time.Second))
	}
}

func rawCandidate(rc *clientv3.Client) candidate {
	return func(ctx context.Context, name, id string, started chan<- clientv3.LeaseID) {
		for ctx.Err() == nil {
			s, err := concurrency.NewSession(rc, concurrency.WithTTL(10), concurrency.WithContext(ctx))
			if err != nil {
				continue
			}
			e := concurrency.NewElection(s, name)
			if err := e.Campaign(ctx, id); err == nil {
				announce(ctx, started, s.Lease())
				select { // the work runs until the session ends
				case <-s.Done():
				case <-ctx.Done():
				}
				rctx, cancel := context.WithTimeout(context.Background(), time.Second)
				_ = e.Resign(rctx)
				cancel()
			}
			_ = s.Close()
		}
	}
}
