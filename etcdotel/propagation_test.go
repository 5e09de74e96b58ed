package etcdotel_test

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/etcdkit/etcdkit"
	"github.com/etcdkit/etcdkit/etcdotel"
	"github.com/etcdkit/etcdkit/etcdtest"
)

// headers records the traceparent metadata of the requests it sees.
type headers struct {
	mu   sync.Mutex
	seen map[string][]string // by gRPC method
}

func (h *headers) interceptor() grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		md, _ := metadata.FromOutgoingContext(ctx)
		h.mu.Lock()
		h.seen[method] = append(h.seen[method], md.Get("traceparent")...)
		h.mu.Unlock()
		return invoker(ctx, method, req, reply, cc, opts...)
	}
}

func (h *headers) of(method string) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.seen[method]
}

// TestUnaryClientInterceptor: with the interceptor in
// Config.UnaryInterceptors, a request carries the W3C trace context of its
// operation's span; without it, or outside any trace, none.
func TestUnaryClientInterceptor(t *testing.T) {
	t.Parallel()
	const rangeRPC = "/etcdserverpb.KV/Range"
	tel := newTelemetry(t)
	obs := tel.observer()
	connect := func(propagate bool) (*etcdkit.KV[string], *headers) {
		h := &headers{seen: map[string][]string{}}
		cli := testServer.Client(t, etcdtest.WithClientConfig(func(c *etcdkit.Config) {
			c.Observer = obs
			if propagate {
				c.UnaryInterceptors = append(c.UnaryInterceptors, etcdotel.UnaryClientInterceptor())
			}
			c.UnaryInterceptors = append(c.UnaryInterceptors, h.interceptor())
		}))
		return etcdkit.NewKV(cli, testPrefix(t), etcdkit.String()), h
	}
	ctx := testCtx(t)

	kv, h := connect(true)
	_, err := kv.Put(ctx, "k", "v")
	require.NoError(t, err)
	_, err = kv.Get(ctx, "k")
	require.NoError(t, err)
	get := tel.span(t, "get "+testPrefix(t))
	sc := get.SpanContext()
	want := fmt.Sprintf("00-%s-%s-01", sc.TraceID(), sc.SpanID())
	assert.Equal(t, []string{want}, h.of(rangeRPC), "the get's trace context, sent with its request")

	kv, h = connect(false)
	_, err = kv.Get(ctx, "k")
	require.NoError(t, err)
	assert.Empty(t, h.of(rangeRPC), "no trace context is sent unless asked")

	plain, h := func() (*etcdkit.KV[string], *headers) {
		h := &headers{seen: map[string][]string{}}
		cli := testServer.Client(t, etcdtest.WithClientConfig(func(c *etcdkit.Config) {
			c.UnaryInterceptors = append(c.UnaryInterceptors, etcdotel.UnaryClientInterceptor(), h.interceptor())
		}))
		return etcdkit.NewKV(cli, testPrefix(t), etcdkit.String()), h
	}()
	_, err = plain.Get(ctx, "k")
	require.NoError(t, err)
	assert.Empty(t, h.of(rangeRPC), "outside any trace, nothing is sent")
}

// TestNoOpenTelemetryElsewhere: the packages a user imports without
// etcdotel do not depend on OpenTelemetry.
func TestNoOpenTelemetryElsewhere(t *testing.T) {
	t.Parallel()
	_, err := exec.LookPath("go")
	require.NoError(t, err, "the go command lists the dependencies")
	pkgs := []string{"github.com/etcdkit/etcdkit", "github.com/etcdkit/etcdkit/discovery", "github.com/etcdkit/etcdkit/admin"}
	out, err := exec.CommandContext(testCtx(t), "go", append([]string{"list", "-deps"}, pkgs...)...).CombinedOutput()
	require.NoError(t, err, "go list: %s", out)
	for _, dep := range strings.Fields(string(out)) {
		assert.False(t, strings.HasPrefix(dep, "go.opentelemetry.io/"), "%s is a dependency of %v", dep, pkgs)
	}
}
