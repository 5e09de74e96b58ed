package etcdkit_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/etcdkit/etcdkit"
	"github.com/etcdkit/etcdkit/etcdtest"
)

// itemReads records, through a client's interceptor, how many keys the
// server counted in each read of a queue's items: what such a read costs it.
type itemReads struct {
	items string
	mu    sync.Mutex
	count []int64
}

func (r *itemReads) intercept(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	err := invoker(ctx, method, req, reply, cc, opts...)
	rq, ok := req.(*pb.RangeRequest)
	if rs, isRange := reply.(*pb.RangeResponse); ok && isRange && err == nil && strings.HasPrefix(string(rq.Key), r.items) {
		r.mu.Lock()
		r.count = append(r.count, rs.Count)
		r.mu.Unlock()
	}
	return err
}

func (r *itemReads) take() []int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.count
	r.count = nil
	return c
}

// fillQueue enqueues n items "0".."n-1" through a client of its own.
func fillQueue(t *testing.T, ctx context.Context, prefix string, n int) {
	t.Helper()
	q, err := etcdkit.NewQueue(newClient(t), prefix, etcdkit.String())
	require.NoError(t, err)
	for i := range n {
		_, err := q.Enqueue(ctx, fmt.Sprint(i))
		require.NoError(t, err, "Enqueue")
	}
}

// A Dequeue's read costs the server the same at any queue length: once a
// Queue has read the head, it reads a window of items from there, not
// everything to the end of the prefix, which etcd would count in full.
func TestQueue_DequeueReadsAWindow(t *testing.T) {
	t.Parallel()
	const items = 600
	ctx := testCtx(t)
	prefix := testPrefix(t)
	fillQueue(t, ctx, prefix, items)
	reads := &itemReads{items: prefix + "items/"}
	c := testServer.Client(t, etcdtest.WithClientConfig(func(cfg *etcdkit.Config) {
		cfg.UnaryInterceptors = append(cfg.UnaryInterceptors, reads.intercept)
	}))
	q, err := etcdkit.NewQueue(c, prefix, etcdkit.String())
	require.NoError(t, err)
	for i := range 20 {
		it, err := q.TryDequeue(ctx)
		require.NoError(t, err, "TryDequeue")
		require.Equal(t, fmt.Sprint(i), it.Value, "TryDequeue")
		counted := reads.take()
		require.NotEmpty(t, counted, "reads of the items")
		if i > 0 {
			assert.LessOrEqual(t, maxOf(counted), int64(256), "keys counted by the reads of dequeue %d", i)
		}
	}
}

func maxOf(s []int64) int64 {
	m := s[0]
	for _, v := range s[1:] {
		m = max(m, v)
	}
	return m
}

// A consumer whose window other consumers emptied, and one whose queue was
// cleared and numbered anew (its counter deleted), still finds every item
// in order: a window without items makes it read the whole queue.
func TestQueue_DequeuePastAnEmptiedWindow(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	prefix := testPrefix(t)
	fillQueue(t, ctx, prefix, 300)
	slow, err := etcdkit.NewQueue(newClient(t), prefix, etcdkit.String())
	require.NoError(t, err)
	it, err := slow.TryDequeue(ctx)
	require.NoError(t, err, "TryDequeue")
	require.Equal(t, "0", it.Value)
	fast, err := etcdkit.NewQueue(newClient(t), prefix, etcdkit.String())
	require.NoError(t, err)
	for i := 1; i < 290; i++ {
		it, err := fast.TryDequeue(ctx)
		require.NoError(t, err, "TryDequeue")
		require.Equal(t, fmt.Sprint(i), it.Value)
	}
	for i := 290; i < 300; i++ {
		it, err := slow.TryDequeue(ctx)
		require.NoError(t, err, "TryDequeue past a window others emptied")
		require.Equal(t, fmt.Sprint(i), it.Value)
	}

	_, err = testServer.RawClient(t).Delete(ctx, prefix, clientv3.WithPrefix())
	require.NoError(t, err, "clear the queue and its counter")
	fillQueue(t, ctx, prefix, 3)
	for i := range 3 {
		it, err := slow.TryDequeue(ctx)
		require.NoError(t, err, "TryDequeue after the numbering started again")
		require.Equal(t, fmt.Sprint(i), it.Value)
	}
	_, err = slow.TryDequeue(ctx)
	require.ErrorIs(t, err, etcdkit.ErrNotFound, "TryDequeue on the emptied queue")
}
