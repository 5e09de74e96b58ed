// Command queue runs producers and competing workers on one etcd-backed
// queue, and checks that every job was done exactly once.
//
// It connects to $ETCD_ENDPOINTS (see etcdkit.ConfigFromEnv); when that is
// not set, it starts an embedded etcd of its own:
//
//	go run ./examples/queue
package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"sync"
	"time"

	"github.com/etcdkit/etcdkit"
	"github.com/etcdkit/etcdkit/etcdtest"
)

// Job is one unit of work.
type Job struct {
	Producer string `json:"producer"`
	N        int    `json:"n"`
}

const (
	producers   = 2
	jobsEach    = 10
	workerCount = 3
)

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	cli, stop, err := etcdtest.Connect(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer stop()

	// AtLeastOnce: a job a worker took but did not finish (Ack) goes back to
	// the queue if the worker dies.
	jobs, err := etcdkit.NewQueue(cli, "examples/queue/jobs/", etcdkit.JSON[Job](), etcdkit.AtLeastOnce(5*time.Second))
	if err != nil {
		log.Fatal(err)
	}

	var producing sync.WaitGroup
	for p := range producers {
		name := fmt.Sprintf("producer-%d", p+1)
		producing.Go(func() {
			for n := range jobsEach {
				if _, err := jobs.Enqueue(ctx, Job{Producer: name, N: n + 1}); err != nil {
					log.Fatal(err)
				}
			}
			fmt.Printf("%s enqueued %d jobs\n", name, jobsEach)
		})
	}

	done := make(map[Job]string) // job -> the worker that did it
	var mu sync.Mutex
	workCtx, stopWorkers := context.WithCancel(ctx)
	var working sync.WaitGroup
	for w := range workerCount {
		name := fmt.Sprintf("worker-%d", w+1)
		working.Go(func() {
			for {
				item, err := jobs.Dequeue(workCtx)
				if errors.Is(err, context.Canceled) {
					return
				}
				if err != nil {
					log.Fatal(err)
				}
				// ... do the work, then acknowledge it.
				if err := item.Ack(ctx); err != nil {
					log.Fatal(err)
				}
				mu.Lock()
				if prev, dup := done[item.Value]; dup {
					log.Fatalf("%+v done twice, by %s and %s", item.Value, prev, name)
				}
				done[item.Value] = name
				if len(done) == producers*jobsEach {
					stopWorkers()
				}
				mu.Unlock()
			}
		})
	}
	producing.Wait()
	working.Wait()
	stopWorkers()

	perWorker := map[string]int{}
	for _, w := range done {
		perWorker[w]++
	}
	fmt.Printf("%d jobs done, each exactly once\n", len(done))
	for w := range workerCount {
		name := fmt.Sprintf("worker-%d", w+1)
		fmt.Printf("  %s did %d\n", name, perWorker[name])
	}
	left, err := jobs.Len(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("jobs left in the queue: %d\n", left)
}
