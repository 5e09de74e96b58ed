// Package retry paces loops that try again until they succeed or their
// context ends.
package retry

import (
	"context"
	"time"
)

// Backoff is the pause between two attempts: Start after the first failure,
// doubled after each further one, up to Max. Reset starts over after a
// success. It has no jitter: its loops retry one client's own work, not a
// request many clients make at the same moment.
//
// A Backoff is not safe for concurrent use; each loop keeps its own.
type Backoff struct {
	Start time.Duration // the first pause, and the shortest after it
	Max   time.Duration // the longest pause; it may be changed between pauses
	// Immediate makes the first pause after a Reset (or the first of all)
	// zero: for a loop whose first failure is most likely a passing one,
	// such as a watch that broke after it had worked.
	Immediate bool

	next    time.Duration
	started bool
}

// Next returns the pause to make now, and makes the next one longer.
func (b *Backoff) Next() time.Duration {
	if !b.started {
		b.started = true
		b.next = b.Start
		if b.Immediate {
			b.next = 0
		}
	}
	d := b.next
	b.next = min(max(2*d, b.Start), b.Max)
	return d
}

// Reset makes the next pause the first one again.
func (b *Backoff) Reset() { b.started = false }

// Sleep waits for the next pause, and reports false if ctx ended first.
func (b *Backoff) Sleep(ctx context.Context) bool { return Sleep(ctx, b.Next()) }

// Sleep waits for d, and reports false if ctx ended first.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
