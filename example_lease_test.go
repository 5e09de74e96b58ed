package etcdkit_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/etcdkit/etcdkit"
)

// A key written with a lease lives as long as the lease: kept alive in the
// background, it survives; revoked (or lost), it is deleted.
func ExampleLease_KeepAlive() {
	ctx := context.Background()
	cli := exampleClient()
	workers := etcdkit.NewKV(cli, "example/lease/workers/", etcdkit.String())

	lease, err := cli.Grant(ctx, 5*time.Second)
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := lease.KeepAlive(); err != nil {
		fmt.Println(err)
		return
	}
	if _, err := workers.Put(ctx, "w1", "busy", etcdkit.WithLease(lease)); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("granted TTL:", lease.TTL())

	if err := lease.Revoke(ctx); err != nil {
		fmt.Println(err)
		return
	}
	<-lease.Done()
	fmt.Println("lease revoked:", errors.Is(lease.Err(), etcdkit.ErrLeaseRevoked))
	_, err = workers.Get(ctx, "w1")
	fmt.Println("key gone:", errors.Is(err, etcdkit.ErrNotFound))
	// Output:
	// granted TTL: 5s
	// lease revoked: true
	// key gone: true
}
