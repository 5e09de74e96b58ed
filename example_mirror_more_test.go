package etcdkit_test

import (
	"context"
	"fmt"

	"github.com/etcdkit/etcdkit"
)

// exampleMirror fills prefix with the given keys (value = key) and mirrors it.
func exampleMirror(prefix string, keys ...string) (*etcdkit.KV[string], *etcdkit.Mirror[string]) {
	ctx := context.Background()
	kv := etcdkit.NewKV(exampleClient(), prefix, etcdkit.String())
	for _, k := range keys {
		if _, err := kv.Put(ctx, k, k); err != nil {
			panic(err)
		}
	}
	m, err := kv.Mirror(ctx)
	if err != nil {
		panic(err)
	}
	return kv, m
}

// Get reads from memory, without a round trip.
func ExampleMirror_Get() {
	_, m := exampleMirror("example/mirror/get/", "a")
	defer m.Close()
	e, ok := m.Get("a")
	fmt.Println(e.Value, ok)
	_, ok = m.Get("b")
	fmt.Println(ok)
	// Output:
	// a true
	// false
}

// List returns the entries sorted by key.
func ExampleMirror_List() {
	_, m := exampleMirror("example/mirror/list/", "b", "a")
	defer m.Close()
	for _, e := range m.List() {
		fmt.Println(e.Key)
	}
	// Output:
	// a
	// b
}

// Len counts the entries.
func ExampleMirror_Len() {
	_, m := exampleMirror("example/mirror/len/", "a", "b", "c")
	defer m.Close()
	fmt.Println(m.Len())
	// Output: 3
}

// WaitForRevision makes a read see the caller's own write.
func ExampleMirror_WaitForRevision() {
	ctx := context.Background()
	kv, m := exampleMirror("example/mirror/wait/")
	defer m.Close()
	rev, _ := kv.Put(ctx, "k", "v")
	if err := m.WaitForRevision(ctx, rev); err != nil {
		fmt.Println(err)
		return
	}
	e, ok := m.Get("k")
	fmt.Println(e.Value, ok)
	// Output: v true
}

// Revision is the revision the mirror is current with.
func ExampleMirror_Revision() {
	ctx := context.Background()
	kv, m := exampleMirror("example/mirror/revision/")
	defer m.Close()
	rev, _ := kv.Put(ctx, "k", "v")
	m.WaitForRevision(ctx, rev)
	fmt.Println(m.Revision() >= rev)
	// Output: true
}

// Close stops following changes; the mirror keeps what it had.
func ExampleMirror_Close() {
	_, m := exampleMirror("example/mirror/close/", "a")
	m.Close()
	<-m.Done()
	fmt.Println(m.Len(), m.Err())
	// Output: 1 <nil>
}

// Done closes when the mirror stops following changes; Err says why.
func ExampleMirror_Done() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	kv := etcdkit.NewKV(exampleClient(), "example/mirror/done/", etcdkit.String())
	m, err := kv.Mirror(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	cancel()
	<-m.Done()
	fmt.Println("stopped:", m.Err())
	// Output: stopped: <nil>
}

// Err is nil while the mirror is current.
func ExampleMirror_Err() {
	_, m := exampleMirror("example/mirror/err/")
	defer m.Close()
	fmt.Println(m.Err())
	// Output: <nil>
}

// OnEntryChange is told of each change after the first listing.
func ExampleOnEntryChange() {
	ctx := context.Background()
	kv := etcdkit.NewKV(exampleClient(), "example/mirror/onentrychange/", etcdkit.String())
	kv.Delete(ctx, "k")
	changes := make(chan string, 2)
	m, err := kv.Mirror(ctx, etcdkit.OnEntryChange(func(key string, old, new *etcdkit.Entry[string]) {
		switch {
		case old == nil:
			changes <- "added " + key + " = " + new.Value
		case new == nil:
			changes <- "deleted " + key
		}
	}))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer m.Close()
	kv.Put(ctx, "k", "v")
	kv.Delete(ctx, "k")
	fmt.Println(<-changes)
	fmt.Println(<-changes)
	// Output:
	// added k = v
	// deleted k
}

// exampleIndexed mirrors users indexed by team.
func exampleIndexed(prefix string) *etcdkit.Mirror[string] {
	ctx := context.Background()
	kv := etcdkit.NewKV(exampleClient(), prefix, etcdkit.String())
	kv.Put(ctx, "ada", "core")
	kv.Put(ctx, "bob", "web")
	kv.Put(ctx, "cy", "core")
	m, err := kv.Mirror(ctx, etcdkit.WithIndex("team", func(e etcdkit.Entry[string]) []string {
		return []string{e.Value}
	}))
	if err != nil {
		panic(err)
	}
	return m
}

// ByIndex looks entries up by an indexed value.
func ExampleMirror_ByIndex() {
	m := exampleIndexed("example/mirror/byindex/")
	defer m.Close()
	for _, e := range m.ByIndex("team", "core") {
		fmt.Println(e.Key)
	}
	// Output:
	// ada
	// cy
}

// A snapshot's ByIndex agrees with its other reads.
func ExampleSnapshot_ByIndex() {
	m := exampleIndexed("example/snapshot/byindex/")
	defer m.Close()
	s := m.Snapshot()
	fmt.Println(len(s.ByIndex("team", "web")), s.Len())
	// Output: 1 3
}

// All yields the entries in key order without a slice.
func ExampleSnapshot_All() {
	_, m := exampleMirror("example/snapshot/all/", "b", "a")
	defer m.Close()
	for e := range m.Snapshot().All() {
		fmt.Println(e.Key)
	}
	// Output:
	// a
	// b
}

// Get reads one entry of the snapshot.
func ExampleSnapshot_Get() {
	_, m := exampleMirror("example/snapshot/get/", "a")
	defer m.Close()
	e, ok := m.Snapshot().Get("a")
	fmt.Println(e.Value, ok)
	// Output: a true
}

// Len counts the snapshot's entries.
func ExampleSnapshot_Len() {
	_, m := exampleMirror("example/snapshot/len/", "a", "b")
	defer m.Close()
	fmt.Println(m.Snapshot().Len())
	// Output: 2
}

// List returns the snapshot's entries sorted by key.
func ExampleSnapshot_List() {
	_, m := exampleMirror("example/snapshot/list/", "b", "a")
	defer m.Close()
	fmt.Println(keys(m.Snapshot().List()))
	// Output: [a b]
}

// Revision is the revision the snapshot shows the keys at: a later write
// does not change it.
func ExampleSnapshot_Revision() {
	ctx := context.Background()
	kv, m := exampleMirror("example/snapshot/revision/", "a")
	defer m.Close()
	s := m.Snapshot()
	rev, _ := kv.Put(ctx, "b", "b")
	m.WaitForRevision(ctx, rev)
	fmt.Println(s.Revision() < rev, s.Len(), m.Snapshot().Len())
	// Output: true 1 2
}
