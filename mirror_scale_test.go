package etcdkit_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/grpc"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/etcdkit/etcdkit"
	"github.com/etcdkit/etcdkit/etcdtest"
)

// A Mirror lists its keys in pages sized as List's are, after a first page
// of a thousand: etcd counts the keys left in the range for every page, so
// small fixed pages make a listing's time grow with the square of the keys.
func TestMirror_ListsInLargePages(t *testing.T) {
	t.Parallel()
	const keys = 5000
	ctx := testCtx(t)
	prefix := testPrefix(t)
	put, err := etcdkit.NewKV(newClient(t), prefix, etcdkit.String()).PutMany(ctx, func(yield func(string, string) bool) {
		for i := range keys {
			if !yield(fmt.Sprintf("k%05d", i), "v") {
				return
			}
		}
	})
	require.NoError(t, err, "PutMany")
	require.Equal(t, keys, put)
	var ranges atomic.Int64
	c := testServer.Client(t, etcdtest.WithClientConfig(func(cfg *etcdkit.Config) {
		cfg.UnaryInterceptors = append(cfg.UnaryInterceptors, func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
			if r, ok := req.(*pb.RangeRequest); ok && strings.HasPrefix(string(r.Key), prefix) {
				ranges.Add(1)
			}
			return invoker(ctx, method, req, reply, cc, opts...)
		})
	}))
	m, err := etcdkit.NewKV(c, prefix, etcdkit.String()).Mirror(ctx)
	require.NoError(t, err, "Mirror")
	defer m.Close()
	require.Equal(t, keys, m.Len(), "keys mirrored")
	assert.LessOrEqual(t, ranges.Load(), int64(2), "range requests of the listing")
}
