package etcdkit_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/etcdkit/etcdkit"
)

// Campaign returns once this client leads; Leader tells anyone who does.
func ExampleClient_Campaign() {
	ctx := context.Background()
	cli := exampleClient()

	_, err := cli.Leader(ctx, "example/election/cron")
	fmt.Println("no leader:", errors.Is(err, etcdkit.ErrNoLeader))

	lead, err := cli.Campaign(ctx, "example/election/cron", "replica-1")
	if err != nil {
		fmt.Println(err)
		return
	}
	v, _ := cli.Leader(ctx, "example/election/cron")
	fmt.Println("leader:", v)

	_ = lead.Proclaim(ctx, "replica-1 v2")
	v, _ = cli.Leader(ctx, "example/election/cron")
	fmt.Println("leader:", v)

	_ = lead.Resign(ctx)
	_, err = cli.Leader(ctx, "example/election/cron")
	fmt.Println("after resigning, no leader:", errors.Is(err, etcdkit.ErrNoLeader))
	// Output:
	// no leader: true
	// leader: replica-1
	// leader: replica-1 v2
	// after resigning, no leader: true
}

// ObserveLeader follows who leads, until its ctx ends.
func ExampleClient_ObserveLeader() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cli := exampleClient()

	lead, err := cli.Campaign(ctx, "example/election/observed", "replica-1")
	if err != nil {
		fmt.Println(err)
		return
	}
	leaders := cli.ObserveLeader(ctx, "example/election/observed")
	fmt.Println("leader:", <-leaders)
	_ = lead.Proclaim(ctx, "replica-1 v2")
	fmt.Println("leader:", <-leaders)
	_ = lead.Resign(ctx)
	// Output:
	// leader: replica-1
	// leader: replica-1 v2
}
