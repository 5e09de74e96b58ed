package discovery_test

import (
	"context"
	"fmt"
	"log"
	"sync"

	"github.com/etcdkit/etcdkit"
	"github.com/etcdkit/etcdkit/discovery"
)

var (
	exampleOnce sync.Once
	exampleCli  *etcdkit.Client
)

// exampleClient returns a client of the package's test server, shared by
// the examples and closed by TestMain.
func exampleClient() *etcdkit.Client {
	exampleOnce.Do(func() {
		cli, err := etcdkit.New(context.Background(), testServer.Config())
		if err != nil {
			log.Fatal(err)
		}
		exampleCli = cli
	})
	return exampleCli
}

func closeExampleClient() {
	if exampleCli != nil {
		_ = exampleCli.Close()
	}
}

func ExampleRegister() {
	ctx := context.Background()
	cli := exampleClient()

	reg, err := discovery.Register(ctx, cli, "example-greeter", discovery.Instance{
		ID:       "greeter-1",
		Addr:     "10.0.0.7:9000",
		Metadata: map[string]string{"zone": "eu-1"},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer reg.Close(ctx) // deregisters at once

	found, err := discovery.Lookup(ctx, cli, "example-greeter")
	if err != nil {
		log.Fatal(err)
	}
	for _, inst := range found {
		fmt.Println(inst.ID, inst.Addr, inst.Metadata["zone"])
	}
	// Output:
	// greeter-1 10.0.0.7:9000 eu-1
}

func ExampleNewSet() {
	ctx := context.Background()
	cli := exampleClient()

	removed := make(chan discovery.Instance, 1)
	set, err := discovery.NewSet(ctx, cli, "example-workers",
		discovery.OnAdd(func(i discovery.Instance) { fmt.Println("added", i.ID, i.Addr) }),
		discovery.OnRemove(func(i discovery.Instance) { removed <- i }))
	if err != nil {
		log.Fatal(err)
	}
	defer set.Close()

	reg, err := discovery.Register(ctx, cli, "example-workers", discovery.Instance{ID: "w1", Addr: "10.0.0.8:7000"})
	if err != nil {
		log.Fatal(err)
	}
	if err := reg.Close(ctx); err != nil {
		log.Fatal(err)
	}
	fmt.Println("removed", (<-removed).ID)
	fmt.Println("instances now:", len(set.Snapshot()))
	// Output:
	// added w1 10.0.0.8:7000
	// removed w1
	// instances now: 0
}

func ExampleRegisterOf() {
	ctx := context.Background()
	cli := exampleClient()

	type meta struct {
		Weight int      `json:"weight"`
		Tags   []string `json:"tags"`
	}
	reg, err := discovery.RegisterOf(ctx, cli, "example-typed", discovery.InstanceOf[meta]{
		ID:       "t1",
		Addr:     "10.0.0.9:8080",
		Metadata: meta{Weight: 5, Tags: []string{"gpu"}},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer reg.Close(ctx)

	found, err := discovery.LookupOf[meta](ctx, cli, "example-typed")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s weight=%d tags=%v\n", found[0].ID, found[0].Metadata.Weight, found[0].Metadata.Tags)
	// Output:
	// t1 weight=5 tags=[gpu]
}
