package reliability_test

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/etcdkit/etcdkit"
	"github.com/etcdkit/etcdkit/etcdtest"
)

// faultyClient reaches the cluster through a proxy and a fault interceptor
// of its own, so that it alone can be cut off or see ambiguous outcomes
// while the other clients go on.
type faultyClient struct {
	name   string
	proxy  *etcdtest.Proxy
	faults *etcdtest.Faults
	cli    *etcdkit.Client

	// busy is set while the client is in the middle of what a fault hurts
	// most (holding a lock, an unacknowledged item): half the faults go to
	// busy clients.
	busy atomic.Bool

	mu     sync.Mutex
	window *time.Timer // ends the current ambiguous-commit window
}

// newFaultyClients makes n clients, each behind its own proxy and faults.
func newFaultyClients(t *testing.T, cl *etcdtest.Cluster, n int, opts ...etcdtest.ClientOption) []*faultyClient {
	t.Helper()
	out := make([]*faultyClient, n)
	for i := range out {
		c := &faultyClient{name: fmt.Sprintf("c%d", i), proxy: cl.Proxy(t), faults: etcdtest.NewFaults()}
		c.cli = c.proxy.Client(t, append([]etcdtest.ClientOption{etcdtest.WithFaults(c.faults)}, opts...)...)
		out[i] = c
	}
	return out
}

// ambiguousFor makes each write of the client commit then fail with
// probability rate, for d.
func (c *faultyClient) ambiguousFor(rate float64, seed uint64, d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.window != nil {
		c.window.Stop()
	}
	c.faults.SetRate(rate, seed, etcdtest.RPCTxn, etcdtest.RPCPut, etcdtest.RPCDeleteRange)
	c.window = time.AfterFunc(d, func() { c.faults.SetRate(0, 0) })
}

// heal ends every fault of the client and waits until no delayed write of
// it can still land.
func (c *faultyClient) heal() {
	c.mu.Lock()
	if c.window != nil {
		c.window.Stop()
	}
	c.mu.Unlock()
	c.faults.Clear()
	c.proxy.Heal()
	c.faults.Wait()
}

// clientFault is one fault the injector can apply to one client. ttl is
// the lease TTL of the workload: partitions last from half of it to three
// times it, so that some end before the lease does and some after.
type clientFault struct {
	name  string
	apply func(c *faultyClient, rng *rand.Rand, ttl time.Duration) string
}

func faultSpan(rng *rand.Rand, ttl time.Duration) time.Duration {
	return ttl/2 + time.Duration(rng.Int64N(int64(5*ttl/2)))
}

func partitionFault(name string, dir etcdtest.Direction) clientFault {
	return clientFault{name, func(c *faultyClient, rng *rand.Rand, ttl time.Duration) string {
		d := faultSpan(rng, ttl)
		c.proxy.Partition(dir, d)
		return fmt.Sprintf("%s for %v", c.name, d.Round(time.Millisecond))
	}}
}

var (
	partitionBothWays = partitionFault("partition both ways", etcdtest.BothWays)
	partitionToServer = partitionFault("partition: requests lost", etcdtest.ToServer)
	partitionToClient = partitionFault("partition: answers lost", etcdtest.ToClient)

	dropConnections = clientFault{"drop connections", func(c *faultyClient, _ *rand.Rand, _ time.Duration) string {
		c.proxy.Drop()
		return c.name
	}}

	// ambiguousWrites: a third of the client's writes commit then fail.
	ambiguousWrites = clientFault{"ambiguous-commit window", func(c *faultyClient, rng *rand.Rand, ttl time.Duration) string {
		d := faultSpan(rng, ttl)
		c.ambiguousFor(0.3, rng.Uint64(), d)
		return fmt.Sprintf("%s for %v", c.name, d.Round(time.Millisecond))
	}}

	// lateTxn: the client's next transaction fails at once and lands later,
	// after whatever the caller did about the failure.
	lateTxn = clientFault{"transaction fails then commits", func(c *faultyClient, rng *rand.Rand, _ time.Duration) string {
		d := time.Duration(100+rng.IntN(900)) * time.Millisecond
		c.faults.Inject(etcdtest.RPCTxn, etcdtest.FailThenCommit, 1, d)
		return fmt.Sprintf("%s, lands %v later", c.name, d)
	}}

	// timedOutTxn: the client's next transaction commits and its answer
	// never comes.
	timedOutTxn = clientFault{"transaction commits then times out", func(c *faultyClient, _ *rand.Rand, _ time.Duration) string {
		c.faults.Inject(etcdtest.RPCTxn, etcdtest.CommitThenTimeout, 1, 0)
		return c.name
	}}
)

// allClientFaults is every kind, partitions weighted as the likeliest.
var allClientFaults = []clientFault{
	partitionBothWays, partitionBothWays, partitionToServer, partitionToClient,
	dropConnections, ambiguousWrites, ambiguousWrites, lateTxn, timedOutTxn,
}

// runClients applies faults to random clients, one every pause, until stop
// is closed or max faults were applied; then it heals every client.
func (in *injector) runClients(t *testing.T, clients []*faultyClient, faults []clientFault, ttl time.Duration, max int, pause time.Duration, stop <-chan struct{}) {
	t.Helper()
	defer func() {
		for _, c := range clients {
			c.heal()
		}
	}()
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 11))
	for n := 0; n < max; n++ {
		select {
		case <-stop:
			return
		case <-time.After(pause):
		}
		c := pickClient(rng, clients)
		f := faults[rng.IntN(len(faults))]
		what := f.apply(c, rng, ttl)
		in.count(f.name)
		t.Logf("client fault %d: %s (%s)", n+1, f.name, what)
	}
}

// pickClient picks a client at random, a busy one half the time if any is.
func pickClient(rng *rand.Rand, clients []*faultyClient) *faultyClient {
	if rng.IntN(2) == 0 {
		var busy []*faultyClient
		for _, c := range clients {
			if c.busy.Load() {
				busy = append(busy, c)
			}
		}
		if len(busy) > 0 {
			return busy[rng.IntN(len(busy))]
		}
	}
	return clients[rng.IntN(len(clients))]
}
