package reliability_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/etcdkit/etcdkit"
	"github.com/etcdkit/etcdkit/etcdtest"
)

// kvInput is one call of the workload on one key.
type kvInput struct {
	op     string // get, put, cas, update, delete, create
	key    string
	value  string // put, create: the value written; update: the suffix appended
	expect string // cas: the value read before, which the swap expects
}

// kvOutput is what the call returned. unknown marks a write whose outcome is
// ambiguous (an error after it may have reached the server): it may have
// taken effect at any time after its call, so it is given no return time.
type kvOutput struct {
	unknown bool
	ok      bool   // get: found; cas, create: succeeded; delete: existed; update: key existed
	value   string // get: value found; create: value found when it failed; update: new value
}

// kvModel is a register per key; "" is a missing key (values are never empty).
var kvModel = porcupine.Model{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[string][]porcupine.Operation{}
		for _, op := range history {
			k := op.Input.(kvInput).key
			byKey[k] = append(byKey[k], op)
		}
		var parts [][]porcupine.Operation
		for _, ops := range byKey {
			parts = append(parts, ops)
		}
		return parts
	},
	Init: func() any { return "" },
	Step: func(state, input, output any) (bool, any) {
		return kvStep(state.(string), input.(kvInput), output.(kvOutput))
	},
	DescribeOperation: func(input, output any) string {
		in, out := input.(kvInput), output.(kvOutput)
		return fmt.Sprintf("%s(%s,%q,%q) -> %+v", in.op, in.key, in.value, in.expect, out)
	},
}

func kvStep(state string, in kvInput, out kvOutput) (bool, string) {
	switch in.op {
	case "get":
		return out.ok == (state != "") && (!out.ok || out.value == state), state
	case "put":
		return true, in.value
	case "delete":
		return out.unknown || out.ok == (state != ""), ""
	case "cas":
		if out.unknown {
			if state == in.expect {
				return true, in.value
			}
			return true, state
		}
		if out.ok {
			return state == in.expect, in.value
		}
		return state != in.expect, state
	case "create":
		if out.unknown {
			if state == "" {
				return true, in.value
			}
			return true, state
		}
		if out.ok {
			return state == "", in.value
		}
		return state != "" && out.value == state, state
	case "update":
		if out.unknown {
			if state == "" {
				return true, state
			}
			return true, state + "+" + in.value
		}
		if !out.ok {
			return state == "", state
		}
		return state != "" && out.value == state+"+"+in.value, out.value
	}
	return false, state
}

// recorder keeps the operations of one client.
type recorder struct {
	id  int
	ops []porcupine.Operation
}

func (r *recorder) add(in kvInput, call time.Time, out kvOutput) {
	ret := time.Now().UnixNano()
	if out.unknown {
		ret = math.MaxInt64
	}
	r.ops = append(r.ops, porcupine.Operation{ClientId: r.id, Input: in, Call: call.UnixNano(), Output: out, Return: ret})
}

// kvWorker runs random operations on a few keys until ctx ends or n ops
// are done.
type kvWorker struct {
	kv   *etcdkit.KV[string]
	cli  *etcdkit.Client
	rec  *recorder
	rng  *rand.Rand
	keys []string
	seq  int
}

func (w *kvWorker) run(ctx context.Context, n int) {
	for range n {
		if ctx.Err() != nil {
			return
		}
		w.step(ctx)
	}
}

func (w *kvWorker) nextValue() string {
	w.seq++
	return fmt.Sprintf("c%d.%d", w.rec.id, w.seq)
}

func (w *kvWorker) step(parent context.Context) {
	ctx, cancel := opCtx(parent)
	defer cancel()
	key := w.keys[w.rng.IntN(len(w.keys))]
	switch p := w.rng.IntN(100); {
	case p < 35:
		w.get(ctx, key)
	case p < 55:
		in := kvInput{op: "put", key: key, value: w.nextValue()}
		start := time.Now()
		_, err := w.kv.Put(ctx, key, in.value)
		w.rec.add(in, start, kvOutput{unknown: err != nil, ok: err == nil})
	case p < 70:
		w.cas(ctx, key)
	case p < 80:
		w.update(ctx, key)
	case p < 90:
		in := kvInput{op: "delete", key: key}
		start := time.Now()
		existed, err := w.kv.Delete(ctx, key)
		w.rec.add(in, start, kvOutput{unknown: err != nil, ok: existed})
	default:
		w.create(ctx, key)
	}
}

// get records a read; a failed read has no effect and is left out.
func (w *kvWorker) get(ctx context.Context, key string) (etcdkit.Entry[string], bool) {
	start := time.Now()
	e, err := w.kv.Get(ctx, key)
	switch {
	case err == nil:
		w.rec.add(kvInput{op: "get", key: key}, start, kvOutput{ok: true, value: e.Value})
		return e, true
	case errors.Is(err, etcdkit.ErrNotFound):
		w.rec.add(kvInput{op: "get", key: key}, start, kvOutput{})
	}
	return e, false
}

func (w *kvWorker) cas(ctx context.Context, key string) {
	cur, ok := w.get(ctx, key)
	if !ok {
		return
	}
	in := kvInput{op: "cas", key: key, value: w.nextValue(), expect: cur.Value}
	start := time.Now()
	_, err := w.kv.CompareAndSwap(ctx, key, in.value, cur.ModRevision)
	switch {
	case err == nil:
		w.rec.add(in, start, kvOutput{ok: true})
	case errors.Is(err, etcdkit.ErrConflict):
		w.rec.add(in, start, kvOutput{})
	default:
		w.rec.add(in, start, kvOutput{unknown: true})
	}
}

func (w *kvWorker) update(ctx context.Context, key string) {
	in := kvInput{op: "update", key: key, value: fmt.Sprintf("u%d.%d", w.rec.id, w.seq)}
	w.seq++
	start := time.Now()
	e, err := w.kv.Update(ctx, key, func(cur string) (string, error) { return cur + "+" + in.value, nil })
	switch {
	case err == nil:
		w.rec.add(in, start, kvOutput{ok: true, value: e.Value})
	case errors.Is(err, etcdkit.ErrNotFound):
		w.rec.add(in, start, kvOutput{})
	default:
		w.rec.add(in, start, kvOutput{unknown: true})
	}
}

// create is a transaction: put if missing, else read what is there.
func (w *kvWorker) create(ctx context.Context, key string) {
	in := kvInput{op: "create", key: key, value: w.nextValue()}
	start := time.Now()
	res, err := w.cli.Txn(ctx).If(w.kv.Missing(key)).Then(w.kv.PutOp(key, in.value)).Else(w.kv.GetOp(key)).Commit()
	if err != nil {
		w.rec.add(in, start, kvOutput{unknown: true})
		return
	}
	if res.Succeeded {
		w.rec.add(in, start, kvOutput{ok: true})
		return
	}
	e, err := w.kv.FromResult(res, key)
	if err != nil {
		// The key was there at the txn's revision but the Else read found
		// nothing: that alone would be a violation.
		w.rec.add(in, start, kvOutput{value: "<missing in else branch: " + err.Error() + ">"})
		return
	}
	w.rec.add(in, start, kvOutput{value: e.Value})
}

// TestLinearizable_KVUnderFaults runs a workload of gets, puts, CAS,
// updates, deletes and transactions from several clients while members of a
// three-member cluster stop, restart and lose leadership, then checks the
// whole history for linearizability. Two more clients, each behind its own
// proxy and faults, are partitioned (both ways or one way), have their
// connections dropped and their writes made ambiguous (committed then
// failed, timed out, or landed late) at the same time.
func TestLinearizable_KVUnderFaults(t *testing.T) {
	cl := etcdtest.StartCluster(t, 3)
	const clients, faultyClients = 4, 2
	opsPerClient := budget(300, 1_000_000)
	duration := budget(20*time.Second, 4*time.Minute)
	keys := []string{"a", "b", "c", "d", "e"}

	ctx, cancel := context.WithTimeout(t.Context(), duration)
	defer cancel()
	recs := make([]*recorder, clients+faultyClients)
	faulty := newFaultyClients(t, cl, faultyClients)
	var wg sync.WaitGroup
	for i := range recs {
		var cli *etcdkit.Client
		if i < clients {
			cli = cl.Client(t)
		} else {
			cli = faulty[i-clients].cli
		}
		recs[i] = &recorder{id: i}
		w := &kvWorker{kv: etcdkit.NewKV(cli, "lin/", etcdkit.String()), cli: cli, rec: recs[i],
			rng: rand.New(rand.NewPCG(uint64(i), uint64(time.Now().UnixNano()))), keys: keys}
		wg.Go(func() { w.run(ctx, opsPerClient) })
	}
	stop := make(chan struct{})
	go func() { wg.Wait(); close(stop) }()
	var inj, clientInj injector
	clientsHealed := make(chan struct{})
	go func() {
		defer close(clientsHealed)
		clientInj.runClients(t, faulty, allClientFaults, 2*time.Second, budget(12, 300), budget(1500*time.Millisecond, 700*time.Millisecond), stop)
	}()
	inj.run(t, cl, []fault{stopRestartMember, stopLeader}, budget(3, 1000), budget(1500*time.Millisecond, 2*time.Second), stop)
	<-stop
	<-clientsHealed

	var history []porcupine.Operation
	ambiguous := 0
	for _, r := range recs {
		history = append(history, r.ops...)
		for _, op := range r.ops {
			if op.Output.(kvOutput).unknown {
				ambiguous++
			}
		}
	}
	require.GreaterOrEqual(t, len(history), clients*10, "operations completed: the workload did not run")
	var injected int64
	for _, c := range faulty {
		injected += c.faults.Injected()
	}
	res, info := porcupine.CheckOperationsVerbose(kvModel, history, budget(60*time.Second, 10*time.Minute))
	t.Logf("checked %d operations (%d ambiguous writes) under %d member faults and %d client faults (%s; %d calls with an ambiguous outcome): %v",
		len(history), ambiguous, inj.total(), clientInj.total(), clientInj.summary(), injected, res)
	switch res {
	case porcupine.Illegal:
		var b strings.Builder
		_ = porcupine.Visualize(kvModel, info, &b)
		assert.Fail(t, "history is not linearizable", "porcupine visualization (HTML) has %d bytes", b.Len())
	case porcupine.Unknown:
		assert.Fail(t, "linearizability check timed out: the result is unknown")
	}
}
