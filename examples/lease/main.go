// Command lease registers a worker under a lease kept alive in the
// background: the key outlives the lease's TTL for as long as the process
// keeps the lease alive, and disappears as soon as the lease is revoked.
//
// It connects to $ETCD_ENDPOINTS (see etcdkit.ConfigFromEnv); when that is
// not set, it starts an embedded etcd of its own:
//
//	go run ./examples/lease
package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/etcdkit/etcdkit"
	"github.com/etcdkit/etcdkit/etcdtest"
)

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	cli, stop, err := etcdtest.Connect(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer stop()

	workers := etcdkit.NewKV(cli, "examples/lease/workers/", etcdkit.String())

	lease, err := cli.Grant(ctx, time.Second)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("lease %x granted with a TTL of %v\n", lease.ID(), lease.TTL())
	if err := lease.KeepAlive(); err != nil {
		log.Fatal(err)
	}
	if _, err := workers.Put(ctx, "worker-1", "10.0.0.7:9000", etcdkit.WithLease(lease)); err != nil {
		log.Fatal(err)
	}

	// Wait past the TTL: the keep-alive refreshes the lease meanwhile.
	select {
	case <-lease.Done():
		log.Fatalf("lease lost: %v", lease.Err())
	case <-time.After(lease.TTL() + time.Second):
	}
	e, err := workers.Get(ctx, "worker-1")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("after %v: %s is still registered at %s\n", lease.TTL()+time.Second, e.Key, e.Value)

	if err := lease.Revoke(ctx); err != nil {
		log.Fatal(err)
	}
	<-lease.Done()
	fmt.Println("lease ended:", lease.Err())
	if _, err := workers.Get(ctx, "worker-1"); errors.Is(err, etcdkit.ErrNotFound) {
		fmt.Println("worker-1 is gone with its lease")
	}
}
