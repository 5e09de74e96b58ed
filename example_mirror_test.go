package etcdkit_test

import (
	"context"
	"fmt"

	"github.com/etcdkit/etcdkit"
)

// A mirror answers reads from memory; WaitForRevision makes it see a write
// the caller just made.
func ExampleKV_Mirror() {
	ctx := context.Background()
	flags := etcdkit.NewKV(exampleClient(), "example/mirror/flags/", etcdkit.JSON[bool]())

	m, err := flags.Mirror(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer m.Close()

	rev, err := flags.Put(ctx, "dark-mode", true)
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := m.WaitForRevision(ctx, rev); err != nil {
		fmt.Println(err)
		return
	}
	e, ok := m.Get("dark-mode")
	fmt.Println(e.Key, e.Value, ok)
	// Output:
	// dark-mode true true
}
