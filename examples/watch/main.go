// Command watch follows the changes to a prefix with a resumable watch: a
// producer queues, starts and finishes jobs, and the watcher prints each
// change once, in order, with the value it replaced.
//
// It connects to $ETCD_ENDPOINTS (see etcdkit.ConfigFromEnv); when that is
// not set, it starts an embedded etcd of its own:
//
//	go run ./examples/watch
package main

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/etcdkit/etcdkit"
	"github.com/etcdkit/etcdkit/etcdtest"
)

// Job is the value stored for each job.
type Job struct {
	State string `json:"state"`
}

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	cli, stop, err := etcdtest.Connect(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer stop()

	jobs := etcdkit.NewKV(cli, "examples/watch/jobs/", etcdkit.JSON[Job]())

	// The watch is established when Watch returns: nothing after is missed.
	w := jobs.Watch(ctx, etcdkit.WithPrevValue())
	defer w.Close()

	go produce(ctx, jobs)

	for e := range w.Events() {
		switch e.Type {
		case etcdkit.EventPut:
			if e.Prev == nil {
				fmt.Printf("rev %d: %s created: %s\n", e.Entry.ModRevision, e.Entry.Key, e.Entry.Value.State)
			} else {
				fmt.Printf("rev %d: %s %s -> %s\n", e.Entry.ModRevision, e.Entry.Key, e.Prev.Value.State, e.Entry.Value.State)
			}
		case etcdkit.EventDelete:
			fmt.Printf("rev %d: %s removed\n", e.Entry.ModRevision, e.Entry.Key)
			if e.Entry.Key == "job-3" {
				w.Close() // the last change: stop watching
			}
		}
	}
	if err := w.Err(); err != nil {
		log.Fatal(err)
	}
	fmt.Println("watch closed; last revision seen:", w.Revision())
}

// produce runs three jobs through their states.
func produce(ctx context.Context, jobs *etcdkit.KV[Job]) {
	for i := 1; i <= 3; i++ {
		key := fmt.Sprintf("job-%d", i)
		for _, state := range []string{"queued", "running", "done"} {
			if _, err := jobs.Put(ctx, key, Job{State: state}); err != nil {
				log.Print(err)
				return
			}
		}
		if _, err := jobs.Delete(ctx, key); err != nil {
			log.Print(err)
			return
		}
	}
}
