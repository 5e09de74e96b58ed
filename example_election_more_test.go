package etcdkit_test

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/etcdkit/etcdkit"
)

// exampleLead campaigns for name with value, for the examples below.
func exampleLead(name, value string) *etcdkit.Leadership {
	ld, err := exampleClient().Campaign(context.Background(), name, value)
	if err != nil {
		panic(err)
	}
	return ld
}

// Leader reads who leads. Names do not nest: the leader of "a/b" does not
// lead "a".
func ExampleClient_Leader() {
	ctx := context.Background()
	cli := exampleClient()
	ld := exampleLead("example/leader/a/b", "replica-1")
	defer ld.Resign(ctx)
	v, err := cli.Leader(ctx, "example/leader/a/b")
	fmt.Println(v, err)
	_, err = cli.Leader(ctx, "example/leader/a")
	fmt.Println("a:", errors.Is(err, etcdkit.ErrNoLeader))
	// Output:
	// replica-1 <nil>
	// a: true
}

// ObserveLeaderInfo gives each leader's key and fence with its value.
func ExampleClient_ObserveLeaderInfo() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ld := exampleLead("example/leader/info", "replica-1")
	defer ld.Resign(ctx)
	info := <-exampleClient().ObserveLeaderInfo(ctx, "example/leader/info")
	fmt.Println(info.Value, info.Key == ld.Key(), info.Fence == ld.Fence())
	// Output: replica-1 true true
}

// Key is the leader's candidate key: the name, "/", and the lease ID in
// hex, as etcdctl elect makes it.
func ExampleLeadership_Key() {
	ctx := context.Background()
	ld := exampleLead("example/leader/key", "replica-1")
	defer ld.Resign(ctx)
	fmt.Println(strings.HasPrefix(ld.Key(), "example/leader/key/"))
	// Output: true
}

// Fence grows with every new leader.
func ExampleLeadership_Fence() {
	ctx := context.Background()
	first := exampleLead("example/leader/fence", "replica-1")
	_ = first.Resign(ctx)
	second := exampleLead("example/leader/fence", "replica-2")
	defer second.Resign(ctx)
	fmt.Println(second.Fence() > first.Fence())
	// Output: true
}

// Held guards a leader's write: a deposed leader's write is not applied.
func ExampleLeadership_Held() {
	ctx := context.Background()
	cli := exampleClient()
	config := etcdkit.NewKV(cli, "example/leader/held-data/", etcdkit.String())
	ld := exampleLead("example/leader/held", "replica-1")
	write := func() bool {
		res, err := cli.Txn(ctx).If(ld.Held()).Then(config.PutOp("mode", "active")).Commit()
		return err == nil && res.Succeeded
	}
	fmt.Println("while leading:", write())
	_ = ld.Resign(ctx)
	fmt.Println("after resigning:", write())
	// Output:
	// while leading: true
	// after resigning: false
}

// Proclaim changes the leader's value without a new election; after
// Resign it is refused.
func ExampleLeadership_Proclaim() {
	ctx := context.Background()
	ld := exampleLead("example/leader/proclaim", "replica-1 starting")
	fmt.Println(ld.Proclaim(ctx, "replica-1 ready"))
	v, _ := exampleClient().Leader(ctx, "example/leader/proclaim")
	fmt.Println(v)
	_ = ld.Resign(ctx)
	fmt.Println(errors.Is(ld.Proclaim(ctx, "replica-1 again"), etcdkit.ErrClosed))
	// Output:
	// <nil>
	// replica-1 ready
	// true
}

// Resign hands the leadership to the next candidate. After a loss it
// returns the loss: the leader's work was not protected to the end.
// Here someone deleted the leader's key.
func ExampleLeadership_Resign() {
	ctx := context.Background()
	ld := exampleLead("example/leader/resign", "replica-1")
	lost := ld.Lost()
	if _, err := exampleClient().Raw().Delete(ctx, ld.Key()); err != nil {
		fmt.Println(err)
		return
	}
	<-lost
	fmt.Println("Resign:", errors.Is(ld.Resign(ctx), etcdkit.ErrLeaseExpired))
	fmt.Println("again:", ld.Resign(ctx))
	// Output:
	// Resign: true
	// again: <nil>
}

// Lost closes when this client no longer leads; Err says why.
func ExampleLeadership_Lost() {
	ctx := context.Background()
	ld := exampleLead("example/leader/lost", "replica-1")
	select {
	case <-ld.Lost():
		fmt.Println("lost")
	default:
		fmt.Println("leading")
	}
	_ = ld.Resign(ctx)
	<-ld.Lost()
	fmt.Println("after Resign:", errors.Is(ld.Err(), etcdkit.ErrClosed))
	// Output:
	// leading
	// after Resign: true
}

// Err is nil while leading, then says why not.
func ExampleLeadership_Err() {
	ctx := context.Background()
	ld := exampleLead("example/leader/err", "replica-1")
	fmt.Println(ld.Err())
	lost := ld.Lost()
	_, _ = exampleClient().Raw().Delete(ctx, ld.Key())
	<-lost
	fmt.Println(errors.Is(ld.Err(), etcdkit.ErrLeaseExpired))
	_ = ld.Resign(ctx)
	// Output:
	// <nil>
	// true
}
