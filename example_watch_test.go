package etcdkit_test

import (
	"context"
	"fmt"

	"github.com/etcdkit/etcdkit"
)

// A watcher delivers every change once, in order, resuming by itself after
// a reconnect.
func ExampleKV_Watch() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	jobs := etcdkit.NewKV(exampleClient(), "example/watch/jobs/", etcdkit.String())

	w := jobs.Watch(ctx, etcdkit.WithPrevValue())
	defer w.Close()

	jobs.Put(ctx, "j1", "queued")
	jobs.Put(ctx, "j1", "running")
	jobs.Delete(ctx, "j1")

	for range 3 {
		e := <-w.Events()
		switch e.Type {
		case etcdkit.EventPut:
			fmt.Printf("put %s = %s\n", e.Entry.Key, e.Entry.Value)
		case etcdkit.EventDelete:
			fmt.Printf("delete %s (was %s)\n", e.Entry.Key, e.Prev.Value)
		}
	}
	// Output:
	// put j1 = queued
	// put j1 = running
	// delete j1 (was running)
}
