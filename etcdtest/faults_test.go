package etcdtest_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/etcdkit/etcdkit"
	"github.com/etcdkit/etcdkit/etcdtest"
)

func TestFaultsOutcomes(t *testing.T) {
	srv := etcdtest.Start(t)
	tests := []struct {
		outcome   etcdtest.Outcome
		wantErr   error
		committed bool // right after the call returned
		later     bool // after Faults.Wait
	}{
		{etcdtest.CommitThenFail, etcdkit.ErrUnavailable, true, true},
		{etcdtest.CommitThenTimeout, context.DeadlineExceeded, true, true},
		{etcdtest.FailThenCommit, etcdkit.ErrUnavailable, false, true},
		{etcdtest.FailBeforeSend, etcdkit.ErrUnavailable, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.outcome.String(), func(t *testing.T) {
			f := etcdtest.NewFaults()
			cli := srv.Client(t, etcdtest.WithFaults(f))
			kv := etcdkit.NewKV(cli, "faults/"+tt.outcome.String()+"/", etcdkit.String())
			f.Inject(etcdtest.RPCPut, tt.outcome, 1, 200*time.Millisecond)

			ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
			defer cancel()
			_, err := kv.Put(ctx, "k", "v")
			require.ErrorIs(t, err, tt.wantErr)
			assert.Equal(t, int64(1), f.Injected())

			_, err = kv.Get(t.Context(), "k")
			assert.Equal(t, tt.committed, err == nil, "committed when the call returned: Get error %v", err)
			f.Wait()
			_, err = kv.Get(t.Context(), "k")
			assert.Equal(t, tt.later, err == nil, "committed after Wait: Get error %v", err)
			if err != nil {
				assert.ErrorIs(t, err, etcdkit.ErrNotFound)
			}

			// The plan is used up: the next call goes through.
			_, err = kv.Put(t.Context(), "k2", "v")
			require.NoError(t, err)
			assert.Equal(t, int64(1), f.Injected())
		})
	}
}

func TestFaultsRateAndClear(t *testing.T) {
	srv := etcdtest.Start(t)
	f := etcdtest.NewFaults()
	cli := srv.Client(t, etcdtest.WithFaults(f))
	kv := etcdkit.NewKV(cli, "faults-rate/", etcdkit.String())
	f.SetRate(0.5, 1, etcdtest.RPCPut)
	failed := 0
	for i := range 40 {
		key := string(rune('a' + i%26))
		if _, err := kv.Put(t.Context(), key, "v"); err != nil {
			require.ErrorIs(t, err, etcdkit.ErrUnavailable)
			failed++
		}
		_, err := kv.Get(t.Context(), key) // reads are not picked, and each put landed
		require.NoError(t, err)
	}
	assert.Equal(t, int64(failed), f.Injected())
	assert.Greater(t, failed, 5)
	assert.Less(t, failed, 35)

	f.Clear()
	for range 10 {
		_, err := kv.Put(t.Context(), "after", "v")
		require.NoError(t, err)
	}
	assert.Equal(t, int64(failed), f.Injected())
}

// TestFaultsLateSendLeavesCallerAlone: the late send of a FailThenCommit
// call writes nothing into the caller's memory. The caller was told the
// call failed and reads or reuses what its call options point at (as
// clientv3's retries read the peer of each attempt), so a late answer
// written there would race with it.
func TestFaultsLateSendLeavesCallerAlone(t *testing.T) {
	srv := etcdtest.Start(t)
	raw := srv.RawClient(t)
	f := etcdtest.NewFaults()
	f.Inject(etcdtest.RPCPut, etcdtest.FailThenCommit, 1, 50*time.Millisecond)
	invoke := func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, opts ...grpc.CallOption) error {
		return cc.Invoke(ctx, method, req, reply, opts...)
	}
	var (
		p               peer.Peer
		header, trailer metadata.MD
		finished        atomic.Int64
	)
	err := f.UnaryInterceptor()(t.Context(), "/etcdserverpb.KV/Put",
		&etcdserverpb.PutRequest{Key: []byte("late"), Value: []byte("v")}, &etcdserverpb.PutResponse{},
		raw.ActiveConnection(), invoke,
		grpc.Peer(&p), grpc.Header(&header), grpc.Trailer(&trailer), grpc.OnFinish(func(error) { finished.Add(1) }))
	require.Equal(t, codes.Unavailable, status.Code(err), "the caller is told the call failed: %v", err)
	f.Wait()

	resp, err := raw.Get(t.Context(), "late")
	require.NoError(t, err)
	require.Len(t, resp.Kvs, 1, "the late send committed")
	assert.Nil(t, p.Addr, "the caller's peer, after the late send")
	assert.Nil(t, header, "the caller's header, after the late send")
	assert.Nil(t, trailer, "the caller's trailer, after the late send")
	assert.Zero(t, finished.Load(), "the caller's OnFinish calls")
}
