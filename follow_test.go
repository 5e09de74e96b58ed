package etcdkit_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/etcdkit/etcdkit"
	"github.com/etcdkit/etcdkit/etcdtest"
)

type testConfig struct {
	Port int `json:"port"`
}

func validPort(c testConfig) error {
	if c.Port <= 0 || c.Port > 65535 {
		return fmt.Errorf("port %d out of range", c.Port)
	}
	return nil
}

// recv waits for one value from ch.
func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	var v T
	select {
	case v = <-ch:
	case <-time.After(10 * time.Second):
		require.FailNow(t, "no "+what+" within 10s")
	}
	return v
}

func TestFollowValidator(t *testing.T) {
	t.Parallel()
	cli := newClient(t)
	prefix := testPrefix(t)
	kv := etcdkit.NewKV(cli, prefix, etcdkit.JSON[testConfig]())
	ctx := testCtx(t)
	_, err := kv.Put(ctx, "app", testConfig{Port: 80})
	require.NoError(t, err)
	rejected := make(chan error, 10)
	changed := make(chan [2]testConfig, 10)
	live, err := kv.Follow(ctx, "app",
		etcdkit.WithValidator(validPort),
		etcdkit.WithOnReject[testConfig](func(key string, err error) { rejected <- err }),
		etcdkit.OnChange(func(old, new testConfig) { changed <- [2]testConfig{old, new} }),
	)
	require.NoError(t, err)
	defer live.Close()
	require.Equal(t, 80, live.Load().Port, "Load()")

	// Another client writes a value that fails validation.
	writer := etcdkit.NewKV(newClient(t), prefix, etcdkit.JSON[testConfig]())
	_, err = writer.Put(ctx, "app", testConfig{Port: 70000})
	require.NoError(t, err)
	assert.Error(t, recv(t, rejected, "rejection"), "rejection reported with a nil error")
	assert.Equal(t, 80, live.Load().Port, "Load() after a rejected value, want the last good port")
	// A value that does not decode is rejected too.
	_, err = cli.Raw().Put(ctx, prefix+"app", "{")
	require.NoError(t, err)
	var de *etcdkit.DecodeError
	assert.ErrorAs(t, recv(t, rejected, "decode rejection"), &de, "rejection of an undecodable value")
	rev, err := writer.Put(ctx, "app", testConfig{Port: 8080})
	require.NoError(t, err)
	assert.Equal(t, [2]testConfig{{Port: 80}, {Port: 8080}}, recv(t, changed, "change"), "OnChange(old, new), want 80 -> 8080")
	assert.Equal(t, 8080, live.Load().Port, "Load()")
	assert.Equal(t, rev, live.Revision(), "Revision()")
	select {
	case c := <-changed:
		assert.Fail(t, "OnChange for a rejected value", "OnChange(%+v, %+v)", c[0], c[1])
	default:
	}
}

func TestFollowDefault(t *testing.T) {
	t.Parallel()
	kv := etcdkit.NewKV(newClient(t), testPrefix(t), etcdkit.String())
	ctx := testCtx(t)
	changed := make(chan string, 10)
	live, err := kv.Follow(ctx, "level", etcdkit.WithDefault("info"),
		etcdkit.OnChange(func(_, new string) { changed <- new }))
	require.NoError(t, err)
	defer live.Close()
	assert.Equal(t, "info", live.Load(), "Load() of a missing key, want the default")
	assert.Zero(t, live.Revision(), "Revision() of a missing key")
	kv.Put(ctx, "level", "debug")
	assert.Equal(t, "debug", recv(t, changed, "change"), "change after a put")
	assert.Equal(t, "debug", live.Load(), "Load() after a put")
	kv.Delete(ctx, "level")
	assert.Equal(t, "info", recv(t, changed, "change"), "change after a delete, want the default")
	assert.Equal(t, "info", live.Load(), "Load() after a delete, want the default")
}

func TestFollowFailures(t *testing.T) {
	t.Parallel()
	cli := newClient(t)
	kv := etcdkit.NewKV(cli, testPrefix(t), etcdkit.JSON[testConfig]())
	ctx := testCtx(t)
	_, err := kv.Follow(ctx, "missing")
	assert.ErrorIs(t, err, etcdkit.ErrNotFound, "Follow of a missing key without default")
	kv.Put(ctx, "bad", testConfig{Port: -1})
	_, err = kv.Follow(ctx, "bad", etcdkit.WithValidator(validPort))
	assert.Error(t, err, "Follow of an invalid value without default succeeded")
	live, err := kv.Follow(ctx, "bad", etcdkit.WithValidator(validPort), etcdkit.WithDefault(testConfig{Port: 1}))
	require.NoError(t, err)
	assert.Equal(t, 1, live.Load().Port, "Load(), want the default while the value is invalid")
	cli.Close()
	waitClosed(t, live.Done(), time.Second, "Done after Client.Close")
	assert.ErrorIs(t, live.Err(), etcdkit.ErrClosed, "Err() after Client.Close")
	assert.Equal(t, 1, live.Load().Port, "Load() after Close, want the last value")
}

// watchMetadata records the outgoing metadata of a client's watch streams.
type watchMetadata struct {
	mu  sync.Mutex
	mds []metadata.MD
}

func (w *watchMetadata) intercept(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string,
	streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	if strings.HasSuffix(method, "/Watch") {
		md, _ := metadata.FromOutgoingContext(ctx)
		w.mu.Lock()
		w.mds = append(w.mds, md)
		w.mu.Unlock()
	}
	return streamer(ctx, desc, cc, method, opts...)
}

func (w *watchMetadata) streams() []metadata.MD {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.mds)
}

// A member cut off from its cluster must cancel a watch rather than go
// silent: every watch stream carries clientv3's require-leader metadata,
// alongside the metadata of the caller's ctx when it has some.
func TestFollowWatchRequiresLeader(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		md    metadata.MD // of the caller's ctx
		start func(ctx context.Context, kv *etcdkit.KV[string]) (stop func(), err error)
	}{
		{"follow", nil, startFollow},
		{"follow with metadata", metadata.Pairs("x-caller", "a"), startFollow},
		{"watch", nil, startWatch},
		{"watch with metadata", metadata.Pairs("x-caller", "a"), startWatch},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rec := &watchMetadata{}
			cli := testServer.Client(t, etcdtest.WithClientConfig(func(c *etcdkit.Config) {
				c.StreamInterceptors = append(c.StreamInterceptors, rec.intercept)
			}))
			kv := etcdkit.NewKV(cli, testPrefix(t), etcdkit.String())
			ctx := testCtx(t)
			_, err := kv.Put(ctx, "k", "v")
			require.NoError(t, err)
			if tc.md != nil {
				ctx = metadata.NewOutgoingContext(ctx, tc.md)
			}
			stop, err := tc.start(ctx, kv)
			require.NoError(t, err)
			defer stop()
			streams := rec.streams()
			require.Len(t, streams, 1, "watch streams opened")
			assert.Equal(t, []string{"true"}, streams[0].Get("hasleader"), "require-leader metadata")
			if tc.md != nil {
				assert.Equal(t, []string{"a"}, streams[0].Get("x-caller"), "the caller's metadata")
			}
		})
	}
}

func startFollow(ctx context.Context, kv *etcdkit.KV[string]) (func(), error) {
	l, err := kv.Follow(ctx, "k")
	if err != nil {
		return nil, err
	}
	return l.Close, nil
}

func startWatch(ctx context.Context, kv *etcdkit.KV[string]) (func(), error) {
	w := kv.Watch(ctx, etcdkit.WatchKey("k"))
	if w.Err() != nil {
		return nil, w.Err()
	}
	return w.Close, nil
}
