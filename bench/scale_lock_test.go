package bench_test

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"go.uber.org/zap"
	"google.golang.org/grpc"

	"github.com/stretchr/testify/require"

	"github.com/etcdkit/etcdkit"
)

// rpcCounter counts what one client sends and receives, through the gRPC
// interceptors it is given: unary requests, watch streams opened, watch
// create requests (each one a watcher on the server) and watch events
// received.
type rpcCounter struct {
	unary, streams, watchCreates, watchEvents atomic.Int64
}

// rpcCounts is a reading of an rpcCounter.
type rpcCounts struct{ unary, streams, watchCreates, watchEvents int64 }

func (c *rpcCounter) read() rpcCounts {
	return rpcCounts{c.unary.Load(), c.streams.Load(), c.watchCreates.Load(), c.watchEvents.Load()}
}

func (a rpcCounts) minus(b rpcCounts) rpcCounts {
	return rpcCounts{a.unary - b.unary, a.streams - b.streams, a.watchCreates - b.watchCreates, a.watchEvents - b.watchEvents}
}

func (c *rpcCounter) unaryInterceptor(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	c.unary.Add(1)
	return invoker(ctx, method, req, reply, cc, opts...)
}

func (c *rpcCounter) streamInterceptor(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	s, err := streamer(ctx, desc, cc, method, opts...)
	if err != nil || method != "/etcdserverpb.Watch/Watch" {
		return s, err
	}
	c.streams.Add(1)
	return &countedWatch{ClientStream: s, c: c}, nil
}

// countedWatch counts the watch requests and events of one watch stream.
type countedWatch struct {
	grpc.ClientStream
	c *rpcCounter
}

func (s *countedWatch) SendMsg(m any) error {
	if r, ok := m.(*pb.WatchRequest); ok && r.GetCreateRequest() != nil {
		s.c.watchCreates.Add(1)
	}
	return s.ClientStream.SendMsg(m)
}

func (s *countedWatch) RecvMsg(m any) error {
	err := s.ClientStream.RecvMsg(m)
	if r, ok := m.(*pb.WatchResponse); ok && err == nil {
		s.c.watchEvents.Add(int64(len(r.Events)))
	}
	return err
}

// countedClients returns an etcdkit client and a raw clientv3 client of
// their own, each counted by its own rpcCounter; they are closed when b ends.
func countedClients(b *testing.B) (*etcdkit.Client, *rpcCounter, *clientv3.Client, *rpcCounter) {
	b.Helper()
	clients(b) // the server, and kitConfig
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	kc, rc := &rpcCounter{}, &rpcCounter{}
	cfg := kitConfig
	cfg.UnaryInterceptors = []grpc.UnaryClientInterceptor{kc.unaryInterceptor}
	cfg.StreamInterceptors = []grpc.StreamClientInterceptor{kc.streamInterceptor}
	c, err := etcdkit.New(ctx, cfg)
	require.NoError(b, err)
	b.Cleanup(func() { _ = c.Close() })
	r, err := clientv3.New(clientv3.Config{
		Endpoints: cfg.Endpoints, DialTimeout: 5 * time.Second, Logger: zap.NewNop(),
		DialOptions: []grpc.DialOption{
			grpc.WithChainUnaryInterceptor(rc.unaryInterceptor),
			grpc.WithChainStreamInterceptor(rc.streamInterceptor),
		},
	})
	require.NoError(b, err)
	b.Cleanup(func() { _ = r.Close() })
	return c, kc, r, rc
}

// BenchmarkScaleLock has waiters+1 callers take turns at one lock: each
// takes it, releases it and queues again, so that every release hands the
// lock to the next of waiters queued callers. An op is one handover. It
// reports the requests and watch events the client sent and received per
// handover: with each waiter watching only the key before its own, they do
// not grow with the waiters. impl=raw is concurrency.Mutex, one session per
// caller; etcdkit gives each caller its own lease too (one client's Lock
// calls on a name exclude each other).
func BenchmarkScaleLock(b *testing.B) {
	for _, waiters := range []int{1, 10, 100} {
		b.Run("waiters="+strconv.Itoa(waiters), func(b *testing.B) {
			kc, kcount, rc, rcount := countedClients(b)
			name := newPrefix("scale-lock") + "l"
			rawTurn := func(ctx context.Context, w int) (func(context.Context) error, func(), error) {
				s, err := concurrency.NewSession(rc, concurrency.WithTTL(30))
				if err != nil {
					return nil, nil, err
				}
				return func(ctx context.Context) error {
					m := concurrency.NewMutex(s, name)
					if err := m.Lock(ctx); err != nil {
						return err
					}
					return m.Unlock(context.WithoutCancel(ctx))
				}, func() { _ = s.Close() }, nil
			}
			kitTurn := func(ctx context.Context, w int) (func(context.Context) error, func(), error) {
				return func(ctx context.Context) error {
					l, err := kc.Lock(ctx, name)
					if err != nil {
						return err
					}
					return l.Unlock(context.WithoutCancel(ctx))
				}, func() {}, nil
			}
			impls := []struct {
				name  string
				turn  func(context.Context, int) (func(context.Context) error, func(), error)
				count *rpcCounter
			}{{"raw", rawTurn, rcount}, {"etcdkit", kitTurn, kcount}}
			if rawSecond(b.Name()) {
				impls[0], impls[1] = impls[1], impls[0]
			}
			for _, x := range impls {
				b.Run("impl="+x.name, func(b *testing.B) { runHandovers(b, waiters+1, x.turn, x.count) })
			}
		})
	}
}

// runHandovers runs callers goroutines that each take a turn at the lock
// again and again, until b.N turns were taken after every caller has had
// one, and reports the counts per turn.
func runHandovers(b *testing.B, callers int, mk func(context.Context, int) (func(context.Context) error, func(), error), count *rpcCounter) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var (
		turns    atomic.Int64
		warm     = int64(callers)
		goal     = warm + int64(b.N)
		warmed   = make(chan struct{})
		reached  = make(chan struct{})
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
	)
	for w := range callers {
		turn, stop, err := mk(ctx, w)
		require.NoError(b, err)
		wg.Go(func() {
			defer stop()
			for ctx.Err() == nil {
				err := turn(ctx)
				if err != nil {
					if ctx.Err() == nil || !errors.Is(err, context.Canceled) {
						errOnce.Do(func() { firstErr = err; cancel() })
					}
					return
				}
				switch turns.Add(1) {
				case warm:
					close(warmed)
				case goal:
					close(reached)
				}
			}
		})
	}
	var before, after rpcCounts
	select {
	case <-warmed:
	case <-ctx.Done():
	}
	before = count.read()
	b.ResetTimer()
	select {
	case <-reached:
	case <-ctx.Done():
	}
	b.StopTimer()
	after = count.read()
	cancel()
	wg.Wait()
	require.NoError(b, firstErr)
	d, n := after.minus(before), float64(b.N)
	b.ReportMetric(float64(d.unary)/n, "rpcs/handover")
	b.ReportMetric(float64(d.watchCreates)/n, "watches/handover")
	b.ReportMetric(float64(d.watchEvents)/n, "events/handover")
}
