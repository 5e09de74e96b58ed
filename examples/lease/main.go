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

	cli, stop, err := connect(ctx)
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

// connect uses $ETCD_ENDPOINTS when set, else an embedded etcd that stop ends.
func connect(ctx context.Context) (*etcdkit.Client, func(), error) {
	cfg, err := etcdkit.ConfigFromEnv()
	if err != nil {
		return nil, nil, err
	}
	stopServer := func() {}
	if len(cfg.Endpoints) == 0 {
		srv, err := etcdtest.Run()
		if err != nil {
			return nil, nil, err
		}
		fmt.Println("ETCD_ENDPOINTS is not set: started an embedded etcd")
		cfg.Endpoints, cfg.TLS = srv.Endpoints(), srv.ClientTLS()
		stopServer = func() { srv.Close() }
	}
	cli, err := etcdkit.New(ctx, cfg)
	if err != nil {
		stopServer()
		return nil, nil, err
	}
	return cli, func() { cli.Close(); stopServer() }, nil
}
