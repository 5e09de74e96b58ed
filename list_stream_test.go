package etcdkit_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/etcdkit/etcdkit"
	"github.com/etcdkit/etcdkit/etcdtest"
)

const rangeStreamMethod = "/etcdserverpb.KV/RangeStream"

// streamCalls counts a client's RangeStream calls and unary Range calls.
type streamCalls struct {
	streams, ranges atomic.Int64
}

// streamClient returns a client of srv, its config changed by tweaks, whose
// RangeStream calls go through wrap (nil: untouched), counted in the
// returned streamCalls with its Range calls.
func streamClient(t testing.TB, srv *etcdtest.Server, wrap func(n int64, s grpc.ClientStream) grpc.ClientStream, tweaks ...func(*etcdkit.Config)) (*etcdkit.Client, *streamCalls) {
	t.Helper()
	calls := new(streamCalls)
	stream := func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		if method != rangeStreamMethod {
			return streamer(ctx, desc, cc, method, opts...)
		}
		n := calls.streams.Add(1)
		s, err := streamer(ctx, desc, cc, method, opts...)
		if err != nil || wrap == nil {
			return s, err
		}
		return wrap(n, s), nil
	}
	unary := func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		if method == "/etcdserverpb.KV/Range" {
			calls.ranges.Add(1)
		}
		return invoker(ctx, method, req, reply, cc, opts...)
	}
	cli := srv.Client(t, etcdtest.WithClientConfig(func(cfg *etcdkit.Config) {
		cfg.StreamInterceptors = append(cfg.StreamInterceptors, stream)
		cfg.UnaryInterceptors = append(cfg.UnaryInterceptors, unary)
		for _, tweak := range tweaks {
			tweak(cfg)
		}
	}))
	return cli, calls
}

// failingStream is a RangeStream that fails with err after delivering
// after messages, as a stream cut by the network or a restart does; with
// no err, it falls silent instead until it is cancelled.
type failingStream struct {
	grpc.ClientStream
	after int
	err   error
}

func (s *failingStream) RecvMsg(m any) error {
	if s.after == 0 && s.err == nil {
		<-s.Context().Done() // silent, as behind a partition
		return s.Context().Err()
	}
	if s.after == 0 {
		return s.err
	}
	s.after--
	return s.ClientStream.RecvMsg(m)
}

// listEntries collects what kv.List yields, failing t on an error.
func listEntries(t testing.TB, kv *etcdkit.KV[string], opts ...etcdkit.ListOption) []etcdkit.Entry[string] {
	t.Helper()
	var got []etcdkit.Entry[string]
	for e, err := range kv.List(testCtx(t), opts...) {
		require.NoError(t, err, "List after %d entries", len(got))
		got = append(got, e)
	}
	return got
}

// requireSameEntries compares two listings entry by entry; not
// require.Equal, which would print thousands of entries.
func requireSameEntries(t testing.TB, want, got []etcdkit.Entry[string], what string) {
	t.Helper()
	require.Equal(t, len(want), len(got), "%s: entries", what)
	for i := range want {
		require.Equal(t, want[i], got[i], "%s: entry %d", what, i)
	}
}

// TestKVListStreamMatchesPages: a streamed List yields what a List in pages
// yields, for 0, 1 and thousands of keys, with every option that narrows it.
func TestKVListStreamMatchesPages(t *testing.T) {
	t.Parallel()
	srv := kvServer(t)
	raw := srv.RawClient(t)
	cli, calls := streamClient(t, srv, nil)
	ctx := t.Context()

	for _, n := range []int{0, 1, 3000} {
		t.Run(fmt.Sprintf("keys=%d", n), func(t *testing.T) {
			kv := etcdkit.NewKV(cli, testPrefix(t), etcdkit.String())
			if n > 0 {
				kvPutKeys(t, raw, kv.Prefix(), n)
			}
			// A change after the revision the listings at rev read.
			head, err := raw.Get(ctx, "any")
			require.NoError(t, err)
			rev := head.Header.Revision
			if n > 0 {
				kvMustPut(t, kv, "k00000", "changed")
				kvMustPut(t, kv, "z-after", "new")
			}
			tests := []struct {
				name string
				opts []etcdkit.ListOption
			}{
				{"all", nil},
				{"keys only", []etcdkit.ListOption{etcdkit.WithKeysOnly()}},
				{"range", []etcdkit.ListOption{etcdkit.WithRange("k00001", "k02500")}},
				{"from", []etcdkit.ListOption{etcdkit.WithRange("k00700", "")}},
				{"at revision", []etcdkit.ListOption{etcdkit.WithRevision(rev)}},
				{"keys only at revision in range", []etcdkit.ListOption{etcdkit.WithKeysOnly(),
					etcdkit.WithRevision(rev), etcdkit.WithRange("k00002", "k02999")}},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					streamsBefore := calls.streams.Load()
					paged := listEntries(t, kv, append(tt.opts, etcdkit.WithPageSize(97))...)
					require.Equal(t, streamsBefore, calls.streams.Load(), "RangeStream calls of a listing with WithPageSize")
					streamed := listEntries(t, kv, tt.opts...)
					requireSameEntries(t, paged, streamed, "streamed listing against pages of 97")
					// The first request reads DefaultPageSize entries; only
					// a longer listing needs the stream.
					wantStreams := int64(0)
					if len(paged) > etcdkit.DefaultPageSize {
						wantStreams = 1
					}
					assert.Equal(t, wantStreams, calls.streams.Load()-streamsBefore, "RangeStream calls for %d entries", len(paged))
				})
			}
		})
	}
}

// TestKVListStreamSnapshot: a streamed List is one snapshot while the
// prefix changes all over, and reads the rest of it in one stream.
func TestKVListStreamSnapshot(t *testing.T) {
	t.Parallel()
	srv := kvServer(t)
	cli, calls := streamClient(t, srv, nil)
	kv := etcdkit.NewKV(cli, testPrefix(t), etcdkit.String())
	// As TestKVListSnapshot, with the default reading: the writer has
	// written 200 times by the time the stream after the first page
	// starts, and goes on while it is read.
	requireSnapshotUnderWrites(t, srv.RawClient(t), kv)
	require.Equal(t, int64(1), calls.streams.Load(), "RangeStream calls")
}

// TestKVListStreamResumes: a stream cut mid-way is followed by a page and
// a new stream at the same revision: no entry twice, none left out, no
// change made during the listing.
func TestKVListStreamResumes(t *testing.T) {
	t.Parallel()
	srv := kvServer(t)
	raw := srv.RawClient(t)
	// The first stream breaks after three chunks (of 10, 20 and 40
	// entries); a page of 10,000 entries follows, then a second stream
	// reads the rest, after the changes made during the listing.
	cut := status.Error(codes.Unavailable, "stream cut")
	cli, calls := streamClient(t, srv, func(n int64, s grpc.ClientStream) grpc.ClientStream {
		if n > 1 {
			return s
		}
		return &failingStream{ClientStream: s, after: 3, err: cut}
	})
	kv := etcdkit.NewKV(cli, testPrefix(t), etcdkit.String())
	ctx := t.Context()
	const n = 12000
	kvPutKeys(t, raw, kv.Prefix(), n)
	head := kvMustPut(t, kv, "k00000", "changed")
	// Changes after the listing's revision, which it must not show.
	wrote := false
	var got []etcdkit.Entry[string]
	for e, err := range kv.List(ctx) {
		require.NoError(t, err, "List after %d entries", len(got))
		if !wrote && len(got) == etcdkit.DefaultPageSize+1 {
			kvMustPut(t, kv, "k11999", "after")
			kvMustPut(t, kv, "k11999+", "after")
			wrote = true
		}
		got = append(got, e)
	}
	assert.Equal(t, int64(2), calls.streams.Load(), "RangeStream calls: the first, and one after the page that followed its break")
	requireListedAt(t, raw, kv.Prefix(), head, got)
}

// TestKVListStreamSilent: a stream that stops sending is given up after
// the request timeout, and the listing reads on from its last entry.
func TestKVListStreamSilent(t *testing.T) {
	t.Parallel()
	srv := kvServer(t)
	raw := srv.RawClient(t)
	// The first stream falls silent after two chunks; a page follows it
	// once the request timeout has passed, then a second stream.
	cli, calls := streamClient(t, srv, func(n int64, s grpc.ClientStream) grpc.ClientStream {
		if n > 1 {
			return s
		}
		return &failingStream{ClientStream: s, after: 2}
	}, func(cfg *etcdkit.Config) { cfg.RequestTimeout = 300 * time.Millisecond })
	kv := etcdkit.NewKV(cli, testPrefix(t), etcdkit.String())
	kvPutKeys(t, raw, kv.Prefix(), 11000)
	want := listEntries(t, kv, etcdkit.WithPageSize(1000))
	got := listEntries(t, kv)
	requireSameEntries(t, want, got, "listing with a silent stream, against pages of 1000")
	assert.Equal(t, int64(2), calls.streams.Load(), "RangeStream calls: the silent one, and one after the page that followed it")
}

// TestKVListStreamYieldsAsItComes: List yields a stream's chunks as they
// arrive rather than gathering the stream first: the entries of its first
// two chunks are yielded while the stream, silent after them, is still
// open (a gathering List would yield them only once the stream ended).
func TestKVListStreamYieldsAsItComes(t *testing.T) {
	t.Parallel()
	srv := kvServer(t)
	var stream atomic.Pointer[failingStream]
	cli, _ := streamClient(t, srv, func(_ int64, s grpc.ClientStream) grpc.ClientStream {
		fs := &failingStream{ClientStream: s, after: 2}
		stream.Store(fs)
		return fs
	}, func(cfg *etcdkit.Config) { cfg.RequestTimeout = time.Minute })
	kv := etcdkit.NewKV(cli, testPrefix(t), etcdkit.String())
	kvPutKeys(t, srv.RawClient(t), kv.Prefix(), 3000)
	n := 0
	for _, err := range kv.List(testCtx(t)) {
		require.NoError(t, err, "List after %d entries", n)
		n++
		if n == etcdkit.DefaultPageSize+1 {
			require.NotNil(t, stream.Load(), "entry %d comes from a stream", n)
		}
		if n > etcdkit.DefaultPageSize {
			require.NoError(t, stream.Load().Context().Err(), "the stream when its entry %d was yielded", n)
		}
		if n == etcdkit.DefaultPageSize+30 { // the first two chunks: 10 and 20 entries
			break
		}
	}
	require.Equal(t, etcdkit.DefaultPageSize+30, n, "entries yielded")
}

// TestKVListStreamUnimplemented: against a server without RangeStream,
// List and Mirror read pages, and the Client asks for a stream only once.
func TestKVListStreamUnimplemented(t *testing.T) {
	t.Parallel()
	srv := kvServer(t)
	raw := srv.RawClient(t)
	// As a server without RangeStream answers: Unimplemented on the first
	// receive.
	cli, calls := streamClient(t, srv, func(_ int64, s grpc.ClientStream) grpc.ClientStream {
		return &failingStream{ClientStream: s, err: status.Error(codes.Unimplemented, "unknown method RangeStream")}
	})
	kv := etcdkit.NewKV(cli, testPrefix(t), etcdkit.String())
	kvPutKeys(t, raw, kv.Prefix(), 3000)
	want := listEntries(t, kv, etcdkit.WithPageSize(100))
	require.Len(t, want, 3000, "entries in pages of 100")

	for i := range 3 {
		rangesBefore := calls.ranges.Load()
		got := listEntries(t, kv)
		requireSameEntries(t, want, got, fmt.Sprintf("listing %d, against pages of 100", i+1))
		assert.Equal(t, int64(1), calls.streams.Load(), "RangeStream calls after listing %d: only the first tries", i+1)
		// 500 first, then a page of the 2,500 left.
		assert.Equal(t, int64(2), calls.ranges.Load()-rangesBefore, "Range calls of listing %d", i+1)
	}

	// The Mirror's listing reads pages too, without trying again.
	m, err := kv.Mirror(t.Context())
	require.NoError(t, err, "Mirror")
	defer m.Close()
	assert.Equal(t, 3000, m.Len(), "mirrored keys")
	assert.Equal(t, int64(1), calls.streams.Load(), "RangeStream calls after the Mirror")
}

// TestKVListStreamBreakLeavesNothing: leaving a streamed List early leaves
// no goroutine behind, clientv3's stream reader included.
func TestKVListStreamBreakLeavesNothing(t *testing.T) {
	// Not parallel: goleak must see only this test's goroutines.
	srv := kvServer(t)
	raw := srv.RawClient(t)
	cli, calls := streamClient(t, srv, nil)
	kv := etcdkit.NewKV(cli, testPrefix(t), etcdkit.String())
	kvPutKeys(t, raw, kv.Prefix(), 5000)
	// The client's connection is up before the goroutines are taken.
	_, err := kv.Count(t.Context())
	require.NoError(t, err)
	running := goleak.IgnoreCurrent()

	n := 0
	for _, err := range kv.List(t.Context()) {
		require.NoError(t, err)
		n++
		if n == etcdkit.DefaultPageSize+15 { // in the stream's second chunk
			break
		}
	}
	require.Equal(t, int64(1), calls.streams.Load(), "RangeStream calls")
	goleak.VerifyNone(t, running)
}

// TestMirrorStartStreams: a Mirror's start-up reads its listing with one
// stream after the first page.
func TestMirrorStartStreams(t *testing.T) {
	t.Parallel()
	srv := kvServer(t)
	raw := srv.RawClient(t)
	cli, calls := streamClient(t, srv, nil)
	kv := etcdkit.NewKV(cli, testPrefix(t), etcdkit.String())
	kvPutKeys(t, raw, kv.Prefix(), 3000)
	m, err := kv.Mirror(t.Context())
	require.NoError(t, err, "Mirror")
	defer m.Close()
	assert.Equal(t, int64(1), calls.streams.Load(), "RangeStream calls of the Mirror's start-up")
	got := m.List()
	require.Len(t, got, 3000, "mirrored entries")
	for i, e := range got {
		require.Equal(t, fmt.Sprintf("k%05d", i), e.Key, "entry %d", i)
		require.True(t, strings.HasPrefix(e.Value, "v"), "entry %d's value %q", i, e.Value)
	}
}
