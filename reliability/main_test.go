package reliability_test

import (
	"context"
	"flag"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/etcdkit/etcdkit/etcdtest"
)

var long = flag.Bool("long", false, "run the long form: more operations, more faults, minutes instead of seconds")

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// budget returns the short or the long value.
func budget[T any](short, longer T) T {
	if *long {
		return longer
	}
	return short
}

// fault is one fault the injector can apply to a cluster.
type fault struct {
	name  string
	apply func(t *testing.T, cl *etcdtest.Cluster, rng *rand.Rand) string
}

// stopRestartMember stops a random member and brings it back.
var stopRestartMember = fault{"stop/restart member", func(t *testing.T, cl *etcdtest.Cluster, rng *rand.Rand) string {
	i := rng.IntN(cl.Size())
	cl.StopMember(i)
	time.Sleep(time.Duration(100+rng.IntN(400)) * time.Millisecond)
	cl.RestartMember(i)
	return "member " + string(rune('0'+i))
}}

// stopLeader stops the current leader and brings it back after a new one
// was elected.
var stopLeader = fault{"stop leader", func(t *testing.T, cl *etcdtest.Cluster, rng *rand.Rand) string {
	i := cl.WaitLeader(t)
	cl.StopMember(i)
	cl.WaitLeader(t)
	time.Sleep(time.Duration(100+rng.IntN(300)) * time.Millisecond)
	cl.RestartMember(i)
	return "leader " + string(rune('0'+i))
}}

// injector applies faults from the test goroutine (etcdtest reports failures
// through t) until stop is closed or the budget of faults is spent, and
// counts them.
type injector struct {
	mu     sync.Mutex
	counts map[string]int
}

func (in *injector) run(t *testing.T, cl *etcdtest.Cluster, faults []fault, max int, pause time.Duration, stop <-chan struct{}) {
	t.Helper()
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	for n := 0; n < max; n++ {
		select {
		case <-stop:
			return
		case <-time.After(pause):
		}
		f := faults[rng.IntN(len(faults))]
		what := f.apply(t, cl, rng)
		in.count(f.name)
		t.Logf("fault %d: %s (%s)", n+1, f.name, what)
	}
}

func (in *injector) count(name string) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.counts == nil {
		in.counts = map[string]int{}
	}
	in.counts[name]++
}

// summary lists the faults applied, by kind.
func (in *injector) summary() string {
	in.mu.Lock()
	defer in.mu.Unlock()
	names := slices.Sorted(maps.Keys(in.counts))
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = fmt.Sprintf("%s: %d", n, in.counts[n])
	}
	return strings.Join(parts, ", ")
}

func (in *injector) total() int {
	in.mu.Lock()
	defer in.mu.Unlock()
	n := 0
	for _, c := range in.counts {
		n += c
	}
	return n
}

// opCtx bounds one operation of a workload.
func opCtx(parent context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(parent, 3*time.Second)
}
