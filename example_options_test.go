package etcdkit_test

import (
	"context"
	"fmt"
	"slices"

	"github.com/etcdkit/etcdkit"
)

// exampleLetters stores a, b, c and d (value = key) under prefix.
func exampleLetters(prefix string) *etcdkit.KV[string] {
	kv := etcdkit.NewKV(exampleClient(), kvExamplePrefix(prefix), etcdkit.String())
	for _, k := range []string{"a", "b", "c", "d"} {
		if _, err := kv.Put(context.Background(), k, k); err != nil {
			panic(err)
		}
	}
	return kv
}

// WithRange lists the keys from "b" up to, not including, "d".
func ExampleWithRange() {
	kv := exampleLetters("withrange/")
	for e, err := range kv.List(context.Background(), etcdkit.WithRange("b", "d")) {
		fmt.Println(e.Key, err)
	}
	// Output:
	// b <nil>
	// c <nil>
}

// WithKeysOnly lists keys without their values.
func ExampleWithKeysOnly() {
	kv := exampleLetters("withkeysonly/")
	for e, err := range kv.List(context.Background(), etcdkit.WithKeysOnly(), etcdkit.WithRange("", "c")) {
		fmt.Printf("%s %q %v\n", e.Key, e.Value, err)
	}
	// Output:
	// a "" <nil>
	// b "" <nil>
}

// WithPageSize reads two entries per request; the listing is the same.
func ExampleWithPageSize() {
	kv := exampleLetters("withpagesize/")
	var got []string
	for e, err := range kv.List(context.Background(), etcdkit.WithPageSize(2)) {
		if err != nil {
			fmt.Println(err)
			return
		}
		got = append(got, e.Key)
	}
	fmt.Println(got)
	// Output: [a b c d]
}

// WithRevision lists the keys as they were before a change.
func ExampleWithRevision() {
	ctx := context.Background()
	kv := etcdkit.NewKV(exampleClient(), kvExamplePrefix("withrevision/"), etcdkit.String())
	rev, _ := kv.Put(ctx, "mode", "blue")
	kv.Put(ctx, "mode", "green")
	for e, err := range kv.List(ctx, etcdkit.WithRevision(rev)) {
		fmt.Println(e.Value, err)
	}
	// Output: blue <nil>
}

// SequenceKey is where Append keeps its counter, outside the prefix: a
// user with RBAC needs write access to it too.
func ExampleSequenceKey() {
	ctx := context.Background()
	log := etcdkit.NewKV(exampleClient(), kvExamplePrefix("sequencekey/log/"), etcdkit.String())
	root := etcdkit.NewKV(exampleClient(), "", etcdkit.String())
	root.Delete(ctx, etcdkit.SequenceKey(log.Prefix())) // so that the example can run again
	key, _, err := log.Append(ctx, "first")
	if err != nil {
		fmt.Println(err)
		return
	}
	e, err := root.Get(ctx, etcdkit.SequenceKey(log.Prefix()))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(len(key), e.Value)
	// Output: 20 00000000000000000001
}

// DeleteMany deletes keys in as few transactions as the server allows.
func ExampleKV_DeleteMany() {
	kv := exampleLetters("deletemany/")
	n, err := kv.DeleteMany(context.Background(), slices.Values([]string{"a", "c", "missing"}))
	fmt.Println(n, err)
	left, _ := kv.Count(context.Background())
	fmt.Println("left:", left)
	// Output:
	// 2 <nil>
	// left: 2
}
