package etcdtest_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

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
