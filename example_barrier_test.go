package etcdkit_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/etcdkit/etcdkit"
)

// NewBarrier sends nothing: a barrier nobody holds lets every waiter
// through.
func ExampleNewBarrier() {
	ctx := context.Background()
	gate := etcdkit.NewBarrier(exampleClient(), "example/barrier/new")
	fmt.Println("Wait:", gate.Wait(ctx))
	// Output: Wait: <nil>
}

// Hold raises the barrier once; a second Hold finds it held.
func ExampleBarrier_Hold() {
	ctx := context.Background()
	gate := etcdkit.NewBarrier(exampleClient(), "example/barrier/hold")
	fmt.Println("Hold:", gate.Hold(ctx))
	fmt.Println("again:", errors.Is(gate.Hold(ctx), etcdkit.ErrExists))
	_ = gate.Release(ctx)
	// Output:
	// Hold: <nil>
	// again: true
}

// Release lets the waiters through; releasing a barrier nobody holds does
// nothing.
func ExampleBarrier_Release() {
	ctx := context.Background()
	gate := etcdkit.NewBarrier(exampleClient(), "example/barrier/release")
	fmt.Println(gate.Release(ctx))
	// Output: <nil>
}

// Wait blocks while the barrier is held, or until its ctx ends.
func ExampleBarrier_Wait() {
	ctx := context.Background()
	gate := etcdkit.NewBarrier(exampleClient(), "example/barrier/wait")
	if err := gate.Hold(ctx); err != nil {
		fmt.Println(err)
		return
	}
	wctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	fmt.Println("held:", errors.Is(gate.Wait(wctx), context.DeadlineExceeded))
	_ = gate.Release(ctx)
	fmt.Println("released:", gate.Wait(ctx))
	// Output:
	// held: true
	// released: <nil>
}

// NewDoubleBarrier checks its arguments when the participant is made.
func ExampleNewDoubleBarrier() {
	cli := exampleClient()
	_, err := etcdkit.NewDoubleBarrier(cli, "example/doublebarrier/new", 0)
	fmt.Println("no participants:", errors.Is(err, etcdkit.ErrInvalidArgument))
	b, err := etcdkit.NewDoubleBarrier(cli, "example/doublebarrier/new", 3)
	fmt.Println(b != nil, err)
	// Output:
	// no participants: true
	// true <nil>
}

// BarrierTTL bounds how long a participant that died holds the others
// back; etcd counts whole seconds, so less than one is refused.
func ExampleBarrierTTL() {
	cli := exampleClient()
	_, err := etcdkit.NewDoubleBarrier(cli, "example/doublebarrier/ttl", 2, etcdkit.BarrierTTL(5*time.Second))
	fmt.Println(err)
	_, err = etcdkit.NewDoubleBarrier(cli, "example/doublebarrier/ttl", 2, etcdkit.BarrierTTL(time.Millisecond))
	fmt.Println(errors.Is(err, etcdkit.ErrInvalidTTL))
	// Output:
	// <nil>
	// true
}

// Enter waits for n participants; a participant enters once per round.
func ExampleDoubleBarrier_Enter() {
	ctx := context.Background()
	b, err := etcdkit.NewDoubleBarrier(exampleClient(), "example/doublebarrier/enter", 1)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("Enter:", b.Enter(ctx))
	fmt.Println("again:", errors.Is(b.Enter(ctx), etcdkit.ErrExists))
	fmt.Println("Leave:", b.Leave(ctx))
	// Output:
	// Enter: <nil>
	// again: true
	// Leave: <nil>
}

// Leave waits for every participant of the round to leave; leaving
// without having entered does nothing.
func ExampleDoubleBarrier_Leave() {
	ctx := context.Background()
	b, err := etcdkit.NewDoubleBarrier(exampleClient(), "example/doublebarrier/leave", 2)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(b.Leave(ctx))
	// Output: <nil>
}
