package retry

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const ms = time.Millisecond

func pauses(b *Backoff, n int) []time.Duration {
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = b.Next()
	}
	return out
}

func TestBackoff(t *testing.T) {
	tests := []struct {
		name string
		b    Backoff
		want []time.Duration
	}{
		{"doubles from Start up to Max", Backoff{Start: 50 * ms, Max: time.Second},
			[]time.Duration{50 * ms, 100 * ms, 200 * ms, 400 * ms, 800 * ms, time.Second, time.Second}},
		{"a Max that is no power of two of Start", Backoff{Start: 25 * ms, Max: 60 * ms},
			[]time.Duration{25 * ms, 50 * ms, 60 * ms, 60 * ms}},
		{"Immediate: no pause first, then Start", Backoff{Start: 25 * ms, Max: 2 * time.Second, Immediate: true},
			[]time.Duration{0, 25 * ms, 50 * ms, 100 * ms}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := tt.b
			assert.Equal(t, tt.want, pauses(&b, len(tt.want)))
			b.Reset()
			assert.Equal(t, tt.want[:2], pauses(&b, 2), "after Reset, the pauses start over")
		})
	}
}

// TestBackoffMaxChanged: a Max lowered between pauses caps the pause after
// the next one, as the lease keeper's interval does.
func TestBackoffMaxChanged(t *testing.T) {
	b := Backoff{Start: 50 * ms, Max: time.Second}
	require.Equal(t, []time.Duration{50 * ms, 100 * ms, 200 * ms}, pauses(&b, 3))
	b.Max = 300 * ms
	assert.Equal(t, []time.Duration{400 * ms, 300 * ms, 300 * ms}, pauses(&b, 3))
}

func TestSleep(t *testing.T) {
	assert.True(t, Sleep(t.Context(), time.Millisecond), "a short sleep is not cut")
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	assert.False(t, Sleep(ctx, time.Hour), "an ended ctx ends the sleep")
	b := Backoff{Start: time.Hour, Max: time.Hour}
	assert.False(t, b.Sleep(ctx))
}
