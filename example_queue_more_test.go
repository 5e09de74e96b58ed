package etcdkit_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/etcdkit/etcdkit"
)

// NewQueue checks its arguments when the queue is made, not on each call.
func ExampleNewQueue() {
	cli := exampleClient()
	_, err := etcdkit.NewQueue[string](cli, "example/newqueue/", nil)
	fmt.Println("nil codec:", errors.Is(err, etcdkit.ErrInvalidArgument))
	_, err = etcdkit.NewQueue(cli, "example/newqueue/", etcdkit.String(), etcdkit.AtLeastOnce(time.Millisecond))
	fmt.Println("claims of a millisecond:", errors.Is(err, etcdkit.ErrInvalidTTL))
	q, err := etcdkit.NewQueue(cli, "example/newqueue/", etcdkit.String())
	fmt.Println(q != nil, err)
	// Output:
	// nil codec: true
	// claims of a millisecond: true
	// true <nil>
}

// NewPriorityQueue checks its arguments as NewQueue does.
func ExampleNewPriorityQueue() {
	cli := exampleClient()
	_, err := etcdkit.NewPriorityQueue[string](cli, "example/newpq/", nil)
	fmt.Println("nil codec:", errors.Is(err, etcdkit.ErrInvalidArgument))
	pq, err := etcdkit.NewPriorityQueue(cli, "example/newpq/", etcdkit.String())
	fmt.Println(pq != nil, err)
	// Output:
	// nil codec: true
	// true <nil>
}

// exampleQueue returns the queue under prefix, its values strings.
func exampleQueue(prefix string, opts ...etcdkit.QueueOption) *etcdkit.Queue[string] {
	q, err := etcdkit.NewQueue(exampleClient(), prefix, etcdkit.String(), opts...)
	if err != nil {
		panic(err)
	}
	return q
}

// Enqueue adds a value at the end and returns its key within the prefix.
func ExampleQueue_Enqueue() {
	ctx := context.Background()
	q := exampleQueue("example/queue/enqueue/")
	key, err := q.Enqueue(ctx, "resize image 1")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(strings.HasPrefix(key, "items/"))
	// Output: true
}

// Dequeue waits for an item; each item goes to one consumer, first in
// first out.
func ExampleQueue_Dequeue() {
	ctx := context.Background()
	q := exampleQueue("example/queue/dequeue/")
	got := make(chan string)
	go func() {
		item, err := q.Dequeue(ctx)
		if err != nil {
			got <- err.Error()
			return
		}
		got <- item.Value
	}()
	if _, err := q.Enqueue(ctx, "send invoice"); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(<-got)
	// Output: send invoice
}

// TryDequeue does not wait: an empty queue is ErrNotFound.
func ExampleQueue_TryDequeue() {
	ctx := context.Background()
	q := exampleQueue("example/queue/trydequeue/")
	_, err := q.TryDequeue(ctx)
	fmt.Println("empty:", errors.Is(err, etcdkit.ErrNotFound))
	_, _ = q.Enqueue(ctx, "job")
	item, err := q.TryDequeue(ctx)
	fmt.Println(item.Value, err)
	// Output:
	// empty: true
	// job <nil>
}

// Len counts the items waiting, not those a consumer has claimed.
func ExampleQueue_Len() {
	ctx := context.Background()
	q := exampleQueue("example/queue/len/", etcdkit.AtLeastOnce(10*time.Second))
	_, _ = q.Enqueue(ctx, "a")
	_, _ = q.Enqueue(ctx, "b")
	n, _ := q.Len(ctx)
	fmt.Println("waiting:", n)
	item, err := q.Dequeue(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer item.Ack(ctx)
	n, _ = q.Len(ctx)
	fmt.Println("waiting while a is claimed:", n)
	// Output:
	// waiting: 2
	// waiting while a is claimed: 1
}

// Close gives this consumer's unacknowledged claims back to the queue at
// once, rather than when their lease expires.
func ExampleQueue_Close() {
	ctx := context.Background()
	q := exampleQueue("example/queue/close/", etcdkit.AtLeastOnce(30*time.Second))
	_, _ = q.Enqueue(ctx, "a")
	if _, err := q.Dequeue(ctx); err != nil {
		fmt.Println(err)
		return
	}
	n, _ := q.Len(ctx)
	fmt.Println("claimed, waiting:", n)
	if err := q.Close(ctx); err != nil {
		fmt.Println(err)
		return
	}
	item, err := q.TryDequeue(ctx)
	fmt.Println("back in the queue:", item.Value, err)
	_ = item.Ack(ctx)
	// Output:
	// claimed, waiting: 0
	// back in the queue: a <nil>
}

// Without AtLeastOnce the item left the queue when it was dequeued: Ack
// sends nothing and returns nil, so a consumer that acknowledges every
// item works in both modes.
func ExampleItem_Ack() {
	ctx := context.Background()
	q := exampleQueue("example/queue/ack/")
	_, _ = q.Enqueue(ctx, "a")
	item, err := q.Dequeue(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	n, _ := q.Len(ctx)
	fmt.Println("left before Ack:", n)
	fmt.Println("Ack:", item.Ack(ctx))
	// Output:
	// left before Ack: 0
	// Ack: <nil>
}

// A value that does not decode is moved to the dead letters, under the
// item's number, and Dequeue reports it as a *DecodeError.
func ExampleWithDeadLetter() {
	ctx := context.Background()
	words := exampleQueue("example/queue/deadletter/")
	_, _ = words.Enqueue(ctx, "not a number")

	numbers, err := etcdkit.NewQueue(exampleClient(), "example/queue/deadletter/", etcdkit.JSON[int](),
		etcdkit.WithDeadLetter("example/queue/deadletter-bad/"))
	if err != nil {
		fmt.Println(err)
		return
	}
	_, err = numbers.Dequeue(ctx)
	var derr *etcdkit.DecodeError
	fmt.Println("decode error:", errors.As(err, &derr))
	dead := etcdkit.NewKV(exampleClient(), "example/queue/deadletter-bad/", etcdkit.String())
	for e, err := range dead.List(ctx) {
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println("dead letter:", e.Value)
	}
	// Output:
	// decode error: true
	// dead letter: not a number
}

// examplePQ returns the priority queue under prefix.
func examplePQ(prefix string) *etcdkit.PriorityQueue[string] {
	pq, err := etcdkit.NewPriorityQueue(exampleClient(), prefix, etcdkit.String())
	if err != nil {
		panic(err)
	}
	return pq
}

// Enqueue gives each value a priority: 0 is dequeued first, and values
// of one priority in the order they came.
func ExamplePriorityQueue_Enqueue() {
	ctx := context.Background()
	pq := examplePQ("example/pq/enqueue/")
	_, _ = pq.Enqueue(ctx, "b", 1)
	_, _ = pq.Enqueue(ctx, "urgent", 0)
	_, _ = pq.Enqueue(ctx, "c", 1)
	for range 3 {
		item, _ := pq.TryDequeue(ctx)
		fmt.Println(item.Value)
	}
	// Output:
	// urgent
	// b
	// c
}

// Dequeue waits for an item of any priority.
func ExamplePriorityQueue_Dequeue() {
	ctx := context.Background()
	pq := examplePQ("example/pq/dequeue/")
	got := make(chan string)
	go func() {
		item, err := pq.Dequeue(ctx)
		if err != nil {
			got <- err.Error()
			return
		}
		got <- item.Value
	}()
	_, _ = pq.Enqueue(ctx, "page the on-call", 0)
	fmt.Println(<-got)
	// Output: page the on-call
}

// TryDequeue does not wait: an empty queue is ErrNotFound.
func ExamplePriorityQueue_TryDequeue() {
	ctx := context.Background()
	pq := examplePQ("example/pq/trydequeue/")
	_, err := pq.TryDequeue(ctx)
	fmt.Println("empty:", errors.Is(err, etcdkit.ErrNotFound))
	// Output: empty: true
}

// Len counts the items waiting, of every priority.
func ExamplePriorityQueue_Len() {
	ctx := context.Background()
	pq := examplePQ("example/pq/len/")
	_, _ = pq.Enqueue(ctx, "a", 0)
	_, _ = pq.Enqueue(ctx, "b", 7)
	n, err := pq.Len(ctx)
	fmt.Println(n, err)
	// Output: 2 <nil>
}
