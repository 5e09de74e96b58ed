package etcdkit_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/etcdkit/etcdkit"
	"github.com/etcdkit/etcdkit/etcdtest"
)

// A compare-and-swap that loses says what it found.
func ExampleConflictError() {
	ctx := context.Background()
	counters := etcdkit.NewKV(exampleClient(), "example/errors/conflict/", etcdkit.String())
	rev, _ := counters.Put(ctx, "n", "1")
	counters.Put(ctx, "n", "2") // another writer
	_, err := counters.CompareAndSwap(ctx, "n", "3", rev)
	var ce *etcdkit.ConflictError
	fmt.Println(errors.Is(err, etcdkit.ErrConflict), errors.As(err, &ce), ce.Key)
	// Output: true true n
}

// CurrentEntry reads, from a conflict, the entry that was found, without
// another round trip.
func ExampleCurrentEntry() {
	ctx := context.Background()
	counters := etcdkit.NewKV(exampleClient(), "example/errors/current/", etcdkit.String())
	rev, _ := counters.Put(ctx, "n", "1")
	counters.Put(ctx, "n", "2")
	_, err := counters.CompareAndSwap(ctx, "n", "3", rev)
	if cur, ok := etcdkit.CurrentEntry[string](err); ok {
		fmt.Println("found:", cur.Value)
	}
	// Output: found: 2
}

// A read of a compacted revision names the oldest one still there.
func ExampleCompactedError() {
	ctx := context.Background()
	srv, err := etcdtest.Run() // a server of its own: compaction affects every key
	if err != nil {
		fmt.Println(err)
		return
	}
	defer srv.Close()
	cli, err := etcdkit.New(ctx, srv.Config())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer cli.Close()
	kv := etcdkit.NewKV(cli, "example/errors/compacted/", etcdkit.String())
	old, _ := kv.Put(ctx, "k", "1")
	now, _ := kv.Put(ctx, "k", "2")
	if _, err := cli.Raw().Compact(ctx, now); err != nil {
		fmt.Println(err)
		return
	}
	for _, err := range kv.List(ctx, etcdkit.WithRevision(old)) {
		var ce *etcdkit.CompactedError
		fmt.Println(errors.Is(err, etcdkit.ErrCompacted), errors.As(err, &ce) && ce.Revision >= now)
		break
	}
	// Output: true true
}

// A value the codec cannot read is a *DecodeError with the key, and wraps
// the codec's error.
func ExampleDecodeError() {
	ctx := context.Background()
	etcdkit.NewKV(exampleClient(), "example/errors/decode/", etcdkit.Bytes()).Put(ctx, "k", []byte{0xff})
	_, err := etcdkit.NewKV(exampleClient(), "example/errors/decode/", etcdkit.String()).Get(ctx, "k")
	var de *etcdkit.DecodeError
	fmt.Println(errors.As(err, &de), de.Key, errors.Unwrap(de) != nil)
	// Output: true k true
}
