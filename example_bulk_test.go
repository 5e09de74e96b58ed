package etcdkit_test

import (
	"context"
	"fmt"
	"log"
	"maps"
	"slices"

	"github.com/etcdkit/etcdkit"
)

func ExampleKV_PutMany() {
	ctx := context.Background()
	prices := etcdkit.NewKV(exampleClient(), kvExamplePrefix("putmany/prices/"), etcdkit.JSON[int]())

	// Any iter.Seq2 will do: a map, a file being read, a database cursor.
	// Here "apple" comes twice; the last value wins.
	entries := func(yield func(string, int) bool) {
		for k, v := range maps.All(map[string]int{"apple": 3, "pear": 4, "plum": 2}) {
			if !yield(k, v) {
				return
			}
		}
		yield("apple", 5)
	}
	n, err := prices.PutMany(ctx, entries)
	if err != nil {
		// n entries are known to be written; some others may be too.
		log.Fatalf("after %d entries: %v", n, err)
	}
	fmt.Println("written:", n)

	got := map[string]int{}
	for e, err := range prices.List(ctx) {
		if err != nil {
			log.Fatal(err)
		}
		got[e.Key] = e.Value
	}
	for _, k := range slices.Sorted(maps.Keys(got)) {
		fmt.Println(k, got[k])
	}
	// Output:
	// written: 4
	// apple 5
	// pear 4
	// plum 2
}
