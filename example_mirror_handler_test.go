package etcdkit_test

import (
	"context"
	"fmt"
	"maps"

	"github.com/etcdkit/etcdkit"
)

// A handler is first given what the mirror holds, as one initial batch,
// then every later change, in revision order.
func ExampleMirror_AddHandler() {
	ctx := context.Background()
	kv, m := exampleMirror("example/mirror/addhandler/", "a")
	defer m.Close()
	batches := make(chan etcdkit.MirrorBatch[string], 4)
	h := m.AddHandler(func(b etcdkit.MirrorBatch[string]) { batches <- b })
	defer h.Remove()

	kv.Put(ctx, "b", "b")
	for range 2 {
		b := <-batches
		for _, c := range b.Changes {
			fmt.Println(b.Kind, c.Key, c.Old == nil)
		}
	}
	// Output:
	// initial a true
	// changed b true
}

// HandlerQueue bounds the changes waiting for a slow handler; a batch is
// never split, so one larger than the queue is still delivered whole.
func ExampleHandlerQueue() {
	ctx := context.Background()
	kv, m := exampleMirror("example/mirror/handlerqueue/")
	defer m.Close()
	sizes := make(chan int, 4)
	h := m.AddHandler(func(b etcdkit.MirrorBatch[string]) { sizes <- len(b.Changes) }, etcdkit.HandlerQueue(1))
	defer h.Remove()
	fmt.Println("initial:", <-sizes)

	kv.PutMany(ctx, maps.All(map[string]string{"a": "1", "b": "2", "c": "3"}))
	fmt.Println("one revision:", <-sizes)
	// Output:
	// initial: 0
	// one revision: 3
}

// Synced closes once the handler returned from its initial batch: what
// it builds from the batches is then complete.
func ExampleMirrorHandler_Synced() {
	_, m := exampleMirror("example/mirror/handlersynced/", "a", "b")
	defer m.Close()
	seen := 0 // written by the handler, read after Synced
	h := m.AddHandler(func(b etcdkit.MirrorBatch[string]) { seen += len(b.Changes) })
	defer h.Remove()
	<-h.Synced()
	fmt.Println("keys seen:", seen)
	// Output: keys seen: 2
}

// Remove stops the deliveries; Done closes once the handler's last call
// returned, so what it wrote can be read safely.
func ExampleMirrorHandler_Remove() {
	ctx := context.Background()
	kv, m := exampleMirror("example/mirror/handlerremove/")
	defer m.Close()
	calls := 0
	h := m.AddHandler(func(etcdkit.MirrorBatch[string]) { calls++ })
	<-h.Synced()
	h.Remove()
	<-h.Done()

	rev, _ := kv.Put(ctx, "a", "1")
	m.WaitForRevision(ctx, rev)
	fmt.Println("calls:", calls)
	// Output: calls: 1
}

// Done closes when the handler will not be called again: after Remove,
// or when the mirror ends.
func ExampleMirrorHandler_Done() {
	_, m := exampleMirror("example/mirror/handlerdone/", "a")
	h := m.AddHandler(func(etcdkit.MirrorBatch[string]) {})
	<-h.Synced()
	m.Close()
	<-h.Done()
	fmt.Println("handler done with the mirror:", m.Err())
	// Output: handler done with the mirror: <nil>
}

// A batch's kind says whether it holds changes as they happened.
func ExampleBatchKind() {
	for _, k := range []etcdkit.BatchKind{etcdkit.BatchChanged, etcdkit.BatchInitial, etcdkit.BatchCompacted, etcdkit.BatchFellBehind} {
		fmt.Println(k)
	}
	// Output:
	// changed
	// initial
	// compacted
	// fell behind
}

// Resync batches are listings or differences: the changes between two
// versions are not in them, only the result.
func ExampleBatchKind_Resync() {
	for _, k := range []etcdkit.BatchKind{etcdkit.BatchChanged, etcdkit.BatchInitial, etcdkit.BatchCompacted, etcdkit.BatchFellBehind} {
		fmt.Println(k, k.Resync())
	}
	// Output:
	// changed false
	// initial true
	// compacted true
	// fell behind true
}

// AddIndex indexes a running mirror; every snapshot taken after it
// returns has the index.
func ExampleMirror_AddIndex() {
	_, m := exampleMirror("example/mirror/addindex/", "apple", "avocado", "banana")
	defer m.Close()
	before := m.Snapshot()
	err := m.AddIndex("initial", func(e etcdkit.Entry[string]) []string {
		return []string{e.Key[:1]}
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(keys(m.ByIndex("initial", "a")))
	fmt.Println(len(before.ByIndex("initial", "a")))
	// Output:
	// [apple avocado]
	// 0
}

// Synced is closed for every mirror KV.Mirror returned; code handed a
// mirror waits on it before its first read.
func ExampleMirror_Synced() {
	_, m := exampleMirror("example/mirror/synced/", "a")
	defer m.Close()
	<-m.Synced()
	fmt.Println("listed:", m.Len())
	// Output: listed: 1
}

// Lag counts the revisions the server reached that the mirror has not
// shown it applied; once it applied the caller's write, none.
func ExampleMirror_Lag() {
	ctx := context.Background()
	kv, m := exampleMirror("example/mirror/lag/")
	defer m.Close()
	rev, _ := kv.Put(ctx, "a", "1")
	if err := m.WaitForRevision(ctx, rev); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("lag:", m.Lag())
	// Output: lag: 0
}
