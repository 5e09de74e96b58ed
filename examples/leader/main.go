// Command leader shows singleton work: three replicas of a service (three
// clients, as if three processes, each behind a network it can lose) run a
// reconciler with RunAsLeader, so that exactly one runs it at a time. The
// leader is cut off from etcd; its job stops once its lease can no longer
// be relied on, and only then does another replica take over. The printed
// timeline shows the old job stopped before the new one started.
//
// It connects to $ETCD_ENDPOINTS (see etcdkit.ConfigFromEnv); when that is
// not set, it starts an embedded etcd of its own, so it runs anywhere:
//
//	go run ./examples/leader
package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"sync"
	"time"

	"github.com/etcdkit/etcdkit"
	"github.com/etcdkit/etcdkit/etcdtest"
)

const (
	election = "examples/leader/reconciler"
	ttl      = 2 * time.Second // short, so that the demo takes seconds
)

func main() {
	if err := run(); err != nil {
		log.Print(err)
		os.Exit(1)
	}
}

// replica is one instance of the service, with its own network to etcd.
type replica struct {
	name  string
	net   *etcdtest.Proxy
	cli   *etcdkit.Client
	state *etcdkit.KV[string]
}

// timeline prints what happens, with the time since the start, and keeps
// when each job started and stopped.
type timeline struct {
	start  time.Time
	mu     sync.Mutex
	starts chan string // who started a job
	jobs   []job
}

type job struct {
	who           string
	fence         int64
	started, done time.Time
}

func (tl *timeline) say(format string, args ...any) {
	fmt.Printf("%5.2fs  %s\n", time.Since(tl.start).Seconds(), fmt.Sprintf(format, args...))
}

func run() error {
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Second)
	defer cancel()
	cfg, stopServer, err := etcdtest.ConfigFromEnvOrRun()
	if err != nil {
		return err
	}
	defer stopServer()
	replicas := make([]*replica, 3)
	for i := range replicas {
		if replicas[i], err = connect(ctx, cfg, fmt.Sprintf("replica-%d", i+1)); err != nil {
			return err
		}
		defer replicas[i].close()
	}

	tl := &timeline{start: time.Now(), starts: make(chan string, 16)}
	runCtx, stopRuns := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for _, r := range replicas {
		wg.Go(func() {
			if err := r.serve(runCtx, tl); err != nil {
				tl.say("%s: RunAsLeader: %v", r.name, err)
			}
		})
	}
	err = failover(ctx, replicas, tl)
	stopRuns()
	wg.Wait()
	if err != nil {
		return err
	}
	return tl.check()
}

func connect(ctx context.Context, cfg etcdkit.Config, name string) (*replica, error) {
	p, err := etcdtest.RunProxy(cfg)
	if err != nil {
		return nil, err
	}
	cli, err := etcdkit.New(ctx, p.Config())
	if err != nil {
		p.Close()
		return nil, err
	}
	return &replica{name: name, net: p, cli: cli, state: etcdkit.NewKV(cli, "examples/leader/state/", etcdkit.String())}, nil
}

func (r *replica) close() {
	r.net.Heal() // so that the client can revoke its leases
	r.cli.Close()
	r.net.Close()
}

// serve runs the reconciler whenever this replica leads, until ctx ends.
func (r *replica) serve(ctx context.Context, tl *timeline) error {
	return r.cli.RunAsLeader(ctx, election, r.name, func(ctx context.Context, term *etcdkit.Term) error {
		tl.say("%s: job started (fence %d)", r.name, term.Fence())
		at := len(tl.record(job{who: r.name, fence: term.Fence(), started: time.Now()}))
		select {
		case tl.starts <- r.name:
		default: // nobody waits for more starts
		}
		for {
			// Every write is guarded by the term: once another replica
			// leads, this one's writes are refused.
			res, err := r.cli.Txn(ctx).If(term.Held()).Then(r.state.PutOp("owner", r.name)).Commit()
			if err == nil && !res.Succeeded {
				tl.say("%s: write refused: no longer the leader", r.name)
			}
			select {
			case <-ctx.Done():
				tl.finish(at-1, time.Now())
				tl.say("%s: job stopped: %v", r.name, context.Cause(ctx))
				return ctx.Err()
			case <-time.After(300 * time.Millisecond):
			}
		}
	}, etcdkit.LeaderTTL(ttl), etcdkit.LeaderStopGrace(time.Second), etcdkit.LeaderBackoff(100*time.Millisecond, time.Second))
}

func (tl *timeline) record(j job) []job {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	tl.jobs = append(tl.jobs, j)
	return tl.jobs
}

func (tl *timeline) finish(i int, at time.Time) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	tl.jobs[i].done = at
}

// failover waits for a leader, cuts it off, and waits for another replica
// to take over; then it heals the network.
func failover(ctx context.Context, replicas []*replica, tl *timeline) error {
	first, err := nextStart(ctx, tl)
	if err != nil {
		return err
	}
	time.Sleep(500 * time.Millisecond) // let it work a little
	var leader *replica
	for _, r := range replicas {
		if r.name == first {
			leader = r
		}
	}
	tl.say("%s: cut off from etcd", leader.name)
	leader.net.Blackhole(etcdtest.BothWays)
	next, err := nextStart(ctx, tl)
	if err != nil {
		return err
	}
	if next == leader.name {
		return errors.New("the cut-off replica started a job")
	}
	time.Sleep(500 * time.Millisecond)
	tl.say("%s: network back", leader.name)
	leader.net.Heal()
	time.Sleep(500 * time.Millisecond)
	tl.say("shutting down")
	return nil
}

func nextStart(ctx context.Context, tl *timeline) (string, error) {
	select {
	case who := <-tl.starts:
		return who, nil
	case <-ctx.Done():
		return "", errors.New("no replica started the job in time")
	}
}

// check verifies the timeline: each job stopped before the next started.
func (tl *timeline) check() error {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	for i := 1; i < len(tl.jobs); i++ {
		prev, next := tl.jobs[i-1], tl.jobs[i]
		if prev.done.IsZero() || !prev.done.Before(next.started) {
			return fmt.Errorf("%s's job (fence %d) had not stopped when %s's started", prev.who, prev.fence, next.who)
		}
		fmt.Printf("%s's job stopped %v before %s's started\n", prev.who,
			next.started.Sub(prev.done).Round(time.Millisecond), next.who)
	}
	return nil
}
