package etcdkit_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/etcdkit/etcdkit"
)

// Grant makes a lease; a key written with it goes when it ends.
func ExampleClient_Grant() {
	ctx := context.Background()
	l, err := exampleClient().Grant(ctx, 5*time.Second)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer l.Revoke(ctx)
	fmt.Println(l.TTL() >= 5*time.Second)
	_, err = exampleClient().Grant(ctx, 0)
	fmt.Println(errors.Is(err, etcdkit.ErrInvalidTTL))
	// Output:
	// true
	// true
}

// WithLease ties a key to a lease: revoking it deletes the key.
func ExampleWithLease() {
	ctx := context.Background()
	sessions := etcdkit.NewKV(exampleClient(), "example/withlease/", etcdkit.String())
	l, err := exampleClient().Grant(ctx, 5*time.Second)
	if err != nil {
		fmt.Println(err)
		return
	}
	sessions.Put(ctx, "alice", "online", etcdkit.WithLease(l))
	l.Revoke(ctx)
	_, err = sessions.Get(ctx, "alice")
	fmt.Println(errors.Is(err, etcdkit.ErrNotFound))
	// Output: true
}

// Revoke ends the lease now; a second Revoke is harmless.
func ExampleLease_Revoke() {
	ctx := context.Background()
	l, err := exampleClient().Grant(ctx, 5*time.Second)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(l.Revoke(ctx), l.Revoke(ctx))
	// Output: <nil> <nil>
}

// Done closes when the lease ends; Err then says how.
func ExampleLease_Done() {
	ctx := context.Background()
	l, err := exampleClient().Grant(ctx, 5*time.Second)
	if err != nil {
		fmt.Println(err)
		return
	}
	l.Revoke(ctx)
	<-l.Done()
	fmt.Println(errors.Is(l.Err(), etcdkit.ErrLeaseRevoked))
	// Output: true
}

// Err is nil while the lease lives.
func ExampleLease_Err() {
	ctx := context.Background()
	l, err := exampleClient().Grant(ctx, 5*time.Second)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer l.Revoke(ctx)
	fmt.Println(l.Err())
	// Output: <nil>
}

// ID is etcd's lease ID, as etcdctl shows it.
func ExampleLease_ID() {
	ctx := context.Background()
	l, err := exampleClient().Grant(ctx, 5*time.Second)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer l.Revoke(ctx)
	fmt.Println(l.ID() != 0)
	// Output: true
}

// TTL is what the server granted, which may be more than asked.
func ExampleLease_TTL() {
	ctx := context.Background()
	l, err := exampleClient().Grant(ctx, 3*time.Second)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer l.Revoke(ctx)
	fmt.Println(l.TTL() >= 3*time.Second)
	// Output: true
}
