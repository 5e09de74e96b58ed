package etcdtest_test

import (
	"context"
	"fmt"
	"log"

	"github.com/etcdkit/etcdkit"
	"github.com/etcdkit/etcdkit/etcdtest"
)

// Run starts a server for a program that has no testing.TB; tests use
// Start instead, which also stops the server when the test ends.
func ExampleRun() {
	srv, err := etcdtest.Run()
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()

	ctx := context.Background()
	cli, err := etcdkit.New(ctx, srv.Config())
	if err != nil {
		log.Fatal(err)
	}
	defer cli.Close()

	greetings := etcdkit.NewKV(cli, "greetings/", etcdkit.String())
	if _, err := greetings.Put(ctx, "en", "hello"); err != nil {
		log.Fatal(err)
	}
	e, err := greetings.Get(ctx, "en")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(e.Key, "=", e.Value)
	// Output: en = hello
}
