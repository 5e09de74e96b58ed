package deadline

import (
	"context"
	"errors"
	"testing"
	"time"
)

type ctxKey struct{}

func TestBound(t *testing.T) {
	const timeout = 2 * time.Second
	life, end := context.WithCancel(context.Background())
	defer end()
	d := New(life, timeout)

	t.Run("no deadline: ends within a bucket of the timeout, without reporting a deadline", func(t *testing.T) {
		life, end := context.WithCancel(context.Background())
		defer end()
		const short = 100 * time.Millisecond
		d := New(life, short)
		for name, parent := range map[string]context.Context{
			"background":  context.Background(),
			"with values": context.WithValue(context.Background(), ctxKey{}, "v"),
		} {
			start := time.Now()
			ctx, cancel := d.Bound(parent)
			if _, ok := ctx.Deadline(); ok {
				t.Errorf("%s: the bounded ctx reports a deadline, which gRPC would send to the server", name)
			}
			<-ctx.Done()
			took := time.Since(start)
			cancel()
			if took < short {
				t.Errorf("%s: ended after %v, before the timeout %v", name, took, short)
			}
			if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
				t.Errorf("%s: Err = %v, want DeadlineExceeded", name, ctx.Err())
			}
		}
	})
	t.Run("an existing deadline is kept", func(t *testing.T) {
		parent, c := context.WithTimeout(context.Background(), time.Hour)
		defer c()
		ctx, cancel := d.Bound(parent)
		defer cancel()
		if ctx != parent {
			t.Error("a ctx with a deadline was replaced")
		}
	})
	t.Run("a cancellable ctx stays cancellable", func(t *testing.T) {
		parent, c := context.WithCancel(context.Background())
		ctx, cancel := d.Bound(parent)
		defer cancel()
		if _, ok := ctx.Deadline(); !ok {
			t.Error("no deadline")
		}
		c()
		<-ctx.Done()
		if !errors.Is(ctx.Err(), context.Canceled) {
			t.Errorf("Err = %v, want Canceled", ctx.Err())
		}
	})
	t.Run("values survive", func(t *testing.T) {
		parent := context.WithValue(context.Background(), ctxKey{}, "v")
		ctx, cancel := d.Bound(parent)
		defer cancel()
		if ctx.Value(ctxKey{}) != "v" {
			t.Error("value lost")
		}
		// A child of the bounded ctx must be cancelled with it, as gRPC's are.
		child, cc := context.WithCancel(ctx)
		defer cc()
		if child.Err() != nil {
			t.Fatal("child ended early")
		}
	})
	t.Run("calls in one bucket share a context", func(t *testing.T) {
		a, _ := d.Bound(context.Background())
		b, _ := d.Bound(context.Background())
		if a != b && a.Done() == b.Done() {
			t.Error("one bucket but two contexts: a call without values allocated")
		}
	})
	t.Run("closing the client ends every bucket", func(t *testing.T) {
		life, end := context.WithCancel(context.Background())
		d := New(life, time.Hour)
		ctx, _ := d.Bound(context.WithValue(context.Background(), ctxKey{}, 1))
		end()
		select {
		case <-ctx.Done():
		case <-time.After(5 * time.Second):
			t.Fatal("bounded ctx not ended by the client's end")
		}
	})
}

// BenchmarkBound compares the shared-deadline bound with a timer per call.
func BenchmarkBound(b *testing.B) {
	d := New(context.Background(), 5*time.Second)
	b.Run("shared", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			ctx, cancel := d.Bound(context.Background())
			_ = ctx
			cancel()
		}
	})
	b.Run("withtimeout", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_ = ctx
			cancel()
		}
	})
}
