package etcdkit_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/etcdkit/etcdkit"
)

// WatchKey watches one key of the KV instead of its whole prefix.
func ExampleWatchKey() {
	ctx := context.Background()
	kv := etcdkit.NewKV(exampleClient(), "example/watchkey/", etcdkit.String())
	w := kv.Watch(ctx, etcdkit.WatchKey("b"))
	defer w.Close()
	kv.Put(ctx, "a", "ignored")
	kv.Put(ctx, "b", "seen")
	e := <-w.Events()
	fmt.Println(e.Entry.Key, e.Entry.Value)
	// Output: b seen
}

// FromRevision replays the changes since a revision, such as the one a
// listing was read at.
func ExampleFromRevision() {
	ctx := context.Background()
	kv := etcdkit.NewKV(exampleClient(), "example/fromrevision/", etcdkit.String())
	first, _ := kv.Put(ctx, "k", "1")
	kv.Put(ctx, "k", "2")
	w := kv.Watch(ctx, etcdkit.FromRevision(first))
	defer w.Close()
	for range 2 {
		fmt.Println((<-w.Events()).Entry.Value)
	}
	// Output:
	// 1
	// 2
}

// WithPrevValue gives each event the value before the change.
func ExampleWithPrevValue() {
	ctx := context.Background()
	kv := etcdkit.NewKV(exampleClient(), "example/prevvalue/", etcdkit.String())
	kv.Put(ctx, "k", "old")
	w := kv.Watch(ctx, etcdkit.WithPrevValue())
	defer w.Close()
	kv.Put(ctx, "k", "new")
	e := <-w.Events()
	fmt.Println(e.Prev.Value, "->", e.Entry.Value)
	// Output: old -> new
}

// EventType prints as etcdctl does.
func ExampleEventType() {
	fmt.Println(etcdkit.EventPut, etcdkit.EventDelete)
	// Output: PUT DELETE
}

// Events is closed when the watch ends; read it with range.
func ExampleWatcher_Events() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	kv := etcdkit.NewKV(exampleClient(), "example/watcher/events/", etcdkit.String())
	w := kv.Watch(ctx)
	kv.Put(ctx, "k", "v")
	n := 0
	for e := range w.Events() {
		fmt.Println(e.Type, e.Entry.Key)
		if n++; n == 1 {
			cancel()
		}
	}
	fmt.Println("closed")
	// Output:
	// PUT k
	// closed
}

// Err says why the watch ended: nil when its ctx ended or it was closed.
func ExampleWatcher_Err() {
	ctx := context.Background()
	kv := etcdkit.NewKV(exampleClient(), "example/watcher/err/", etcdkit.String())
	w := kv.Watch(ctx, etcdkit.FromRevision(-1))
	for range w.Events() {
	}
	fmt.Println(errors.Is(w.Err(), etcdkit.ErrInvalidArgument))
	// Output: true
}

// Close ends the watch and waits for it: Events is closed when it returns.
func ExampleWatcher_Close() {
	kv := etcdkit.NewKV(exampleClient(), "example/watcher/close/", etcdkit.String())
	w := kv.Watch(context.Background())
	w.Close()
	_, open := <-w.Events()
	fmt.Println(open, w.Err())
	// Output: false <nil>
}

// Revision is where the watch stands: resume from Revision()+1 to miss
// nothing.
func ExampleWatcher_Revision() {
	ctx := context.Background()
	kv := etcdkit.NewKV(exampleClient(), "example/watcher/revision/", etcdkit.String())
	w := kv.Watch(ctx)
	defer w.Close()
	rev, _ := kv.Put(ctx, "k", "v")
	<-w.Events()
	fmt.Println(w.Revision() == rev)
	// Output: true
}
