package etcdtest

import (
	"context"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// RPC names one of etcd's unary calls, for [Faults]: the last part of its
// gRPC method name.
type RPC string

// The calls whose outcome matters most when it is unknown.
const (
	RPCRange       RPC = "KV/Range"
	RPCPut         RPC = "KV/Put"
	RPCDeleteRange RPC = "KV/DeleteRange"
	RPCTxn         RPC = "KV/Txn"
	RPCLeaseGrant  RPC = "Lease/LeaseGrant"
	RPCLeaseRevoke RPC = "Lease/LeaseRevoke"
)

// Outcome is what a call that [Faults] picked does.
type Outcome int

const (
	// CommitThenFail sends the call and lets the server apply it, then
	// throws the answer away and fails the call with gRPC's Unavailable,
	// as when a connection breaks after the request went out. clientv3 does
	// not retry a write that failed that way.
	CommitThenFail Outcome = iota + 1
	// CommitThenTimeout sends the call and lets the server apply it, then
	// holds the answer until the caller's ctx ends, as when the answer is
	// lost: the caller sees its own deadline pass.
	CommitThenTimeout
	// FailThenCommit fails the call with Unavailable at once and sends it
	// later (after the delay given to [Faults.Inject]): a request that was
	// stuck in the network and lands after the caller has moved on, for
	// instance after its clean-up ran. Its answer reaches nothing of the
	// caller's: not the reply, nor what a call option such as grpc.Peer
	// points at.
	FailThenCommit
	// FailBeforeSend fails the call with Unavailable without sending it: an
	// unambiguous failure, for contrast.
	FailBeforeSend
)

func (o Outcome) String() string {
	switch o {
	case CommitThenFail:
		return "commit then fail"
	case CommitThenTimeout:
		return "commit then time out"
	case FailThenCommit:
		return "fail then commit"
	case FailBeforeSend:
		return "fail before send"
	}
	return "no fault"
}

// Faults makes chosen unary calls of the clients it is given to have
// ambiguous outcomes: applied by the server though the caller sees an
// error, or applied after the caller saw one. Give it to a client with
// [WithFaults] ([Server.Client], [Cluster.Client]), or put
// [Faults.UnaryInterceptor] in etcdkit.Config.UnaryInterceptors yourself.
//
// Calls are picked by [Faults.Inject] (the next n calls of one RPC) and by
// [Faults.SetRate] (each call of the named RPCs, at random). A Faults is
// safe for concurrent use; its zero value injects nothing.
type Faults struct {
	mu    sync.Mutex
	plans []*plan
	rate  float64
	rpcs  []RPC
	rng   *rand.Rand

	injected atomic.Int64
	late     sync.WaitGroup // FailThenCommit sends still to come
}

type plan struct {
	rpc     RPC
	outcome Outcome
	left    int
	delay   time.Duration
}

// NewFaults returns a Faults that injects nothing until told to.
func NewFaults() *Faults { return &Faults{} }

// Inject makes the next n calls of rpc have outcome. For [FailThenCommit],
// delay is how long after the failure the call is sent; other outcomes
// ignore it. Plans are used in the order they were made.
func (f *Faults) Inject(rpc RPC, outcome Outcome, n int, delay time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.plans = append(f.plans, &plan{rpc: rpc, outcome: outcome, left: n, delay: delay})
}

// SetRate makes each call of the given RPCs, beyond those planned with
// [Faults.Inject], commit then fail ([CommitThenFail]) with probability
// rate, drawn from a generator seeded with seed so that a failing run can
// be repeated. A rate of 0 turns it off.
func (f *Faults) SetRate(rate float64, seed uint64, rpcs ...RPC) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rate, f.rpcs = rate, rpcs
	f.rng = rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
}

// Clear drops every plan and turns the random rate off.
func (f *Faults) Clear() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.plans, f.rate = nil, 0
}

// Injected returns how many calls have had a fault so far.
func (f *Faults) Injected() int64 { return f.injected.Load() }

// Wait waits until every call that [FailThenCommit] delayed has been sent
// and answered (or failed), so that nothing lands after it returns.
func (f *Faults) Wait() { f.late.Wait() }

// pick returns what the call to method does, using up one planned call.
func (f *Faults) pick(method string) (Outcome, time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, p := range f.plans {
		if !strings.HasSuffix(method, string(p.rpc)) {
			continue
		}
		p.left--
		if p.left <= 0 {
			f.plans = append(f.plans[:i:i], f.plans[i+1:]...)
		}
		return p.outcome, p.delay
	}
	if f.rate > 0 && f.rng.Float64() < f.rate {
		for _, r := range f.rpcs {
			if strings.HasSuffix(method, string(r)) {
				return CommitThenFail, 0
			}
		}
	}
	return 0, 0
}

// UnaryInterceptor returns the gRPC interceptor that injects the faults.
// It must run inside clientv3's own interceptors, as
// etcdkit.Config.UnaryInterceptors puts it, so that it sees every attempt.
func (f *Faults) UnaryInterceptor() grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		outcome, delay := f.pick(method)
		if outcome == 0 {
			return invoker(ctx, method, req, reply, cc, opts...)
		}
		f.injected.Add(1)
		switch outcome {
		case CommitThenFail, CommitThenTimeout:
			if err := invoker(ctx, method, req, reply, cc, opts...); err != nil {
				return err // it failed on its own: nothing to inject
			}
			if outcome == CommitThenTimeout {
				<-ctx.Done()
				return status.FromContextError(ctx.Err()).Err()
			}
		case FailThenCommit:
			// The caller's reply is not touched after it is told of the
			// failure: the late answer goes into a fresh message.
			m, ok := reply.(proto.Message)
			if !ok {
				return invoker(ctx, method, req, reply, cc, opts...)
			}
			f.late.Add(1)
			go f.sendLate(context.WithoutCancel(ctx), delay, method, req, m.ProtoReflect().New().Interface(), cc, invoker, opts)
		}
		return status.Errorf(codes.Unavailable, "etcdtest: injected fault on %s: %s", method, outcome)
	}
}

// sendLate sends a call whose caller was already told it failed. The reply
// goes nowhere: only the server's side effect matters.
func (f *Faults) sendLate(ctx context.Context, delay time.Duration, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts []grpc.CallOption) {
	defer f.late.Done()
	time.Sleep(delay)
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	_ = invoker(ctx, method, req, reply, cc, lateOptions(opts)...)
}

// lateOptions returns opts without those that write the call's answer into
// the caller's memory (its peer, header, trailer) or call the caller back
// when it ends: the caller was told the call failed and has moved on,
// reading or reusing that memory, and clientv3's retries pass such an
// option on every attempt.
func lateOptions(opts []grpc.CallOption) []grpc.CallOption {
	out := make([]grpc.CallOption, 0, len(opts))
	for _, o := range opts {
		switch o.(type) {
		case grpc.PeerCallOption, grpc.HeaderCallOption, grpc.TrailerCallOption, grpc.OnFinishCallOption:
			continue
		}
		out = append(out, o)
	}
	return out
}
