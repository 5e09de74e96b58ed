package etcdkit_test

import (
	"context"
	"fmt"
	"time"

	"github.com/etcdkit/etcdkit"
)

func ExampleKV_Append() {
	ctx := context.Background()
	events := etcdkit.NewKV(exampleClient(), "example/append/", etcdkit.String())
	for _, e := range []string{"created", "paid", "shipped"} {
		if _, _, err := events.Append(ctx, e); err != nil {
			fmt.Println(err)
			return
		}
	}
	for e, err := range events.List(ctx) {
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(e.Key, e.Value)
	}
	// Output:
	// 00000000000000000001 created
	// 00000000000000000002 paid
	// 00000000000000000003 shipped
}

func ExampleQueue() {
	ctx := context.Background()
	q, err := etcdkit.NewQueue(exampleClient(), "example/queue/", etcdkit.String())
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, job := range []string{"resize image 1", "resize image 2"} {
		if _, err := q.Enqueue(ctx, job); err != nil {
			fmt.Println(err)
			return
		}
	}
	for range 2 {
		item, err := q.Dequeue(ctx) // waits for an item; each goes to one consumer
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println("working on", item.Value)
	}
	// Output:
	// working on resize image 1
	// working on resize image 2
}

func ExampleAtLeastOnce() {
	ctx := context.Background()
	q, err := etcdkit.NewQueue(exampleClient(), "example/alo/", etcdkit.String(), etcdkit.AtLeastOnce(10*time.Second))
	if err != nil {
		fmt.Println(err)
		return
	}
	if _, err := q.Enqueue(ctx, "send invoice"); err != nil {
		fmt.Println(err)
		return
	}
	item, err := q.Dequeue(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("working on", item.Value)
	// Until Ack, the item is only claimed: if this process died here, it
	// would go back to the queue when the claim's lease expires.
	if err := item.Ack(ctx); err != nil {
		fmt.Println(err)
		return
	}
	n, _ := q.Len(ctx)
	fmt.Println("left:", n)
	// Output:
	// working on send invoice
	// left: 0
}

func ExamplePriorityQueue() {
	ctx := context.Background()
	pq, err := etcdkit.NewPriorityQueue(exampleClient(), "example/pq/", etcdkit.String())
	if err != nil {
		fmt.Println(err)
		return
	}
	_, _ = pq.Enqueue(ctx, "nightly report", 9)
	_, _ = pq.Enqueue(ctx, "page the on-call", 0)
	_, _ = pq.Enqueue(ctx, "reindex", 5)
	for range 3 {
		item, err := pq.Dequeue(ctx)
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(item.Value)
	}
	// Output:
	// page the on-call
	// reindex
	// nightly report
}

func ExampleDoubleBarrier() {
	ctx := context.Background()
	done := make(chan string, 2)
	for range 2 {
		b, err := etcdkit.NewDoubleBarrier(exampleClient(), "example/step", 2)
		if err != nil {
			fmt.Println(err)
			return
		}
		go func() {
			if err := b.Enter(ctx); err != nil { // waits for both
				done <- err.Error()
				return
			}
			// ... both participants work on the step here ...
			if err := b.Leave(ctx); err != nil { // waits for both to finish
				done <- err.Error()
				return
			}
			done <- "ok"
		}()
	}
	fmt.Println(<-done, <-done)
	// Output: ok ok
}

func ExampleBarrier() {
	ctx := context.Background()
	gate := etcdkit.NewBarrier(exampleClient(), "example/gate")
	if err := gate.Hold(ctx); err != nil {
		fmt.Println(err)
		return
	}
	go func() {
		time.Sleep(50 * time.Millisecond) // e.g. a migration finishing
		_ = gate.Release(ctx)
	}()
	if err := gate.Wait(ctx); err != nil { // blocks until released
		fmt.Println(err)
		return
	}
	fmt.Println("released")
	// Output: released
}
