// Command quickstart connects to etcd, stores a typed value, reads it back
// and prints it.
//
// It connects to $ETCD_ENDPOINTS (see etcdkit.ConfigFromEnv); when that is
// not set, it starts an embedded etcd of its own, so it runs anywhere:
//
//	go run ./examples/quickstart
package main

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/etcdkit/etcdkit"
	"github.com/etcdkit/etcdkit/etcdtest"
)

// Service is the value we store: any type the JSON codec can encode.
type Service struct {
	Addr    string `json:"addr"`
	Version string `json:"version"`
}

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	cli, stop, err := etcdtest.Connect(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer stop()

	services := etcdkit.NewKV(cli, "quickstart/services/", etcdkit.JSON[Service]())

	rev, err := services.Put(ctx, "billing", Service{Addr: "10.0.0.7:8080", Version: "1.4.2"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("put billing at revision %d\n", rev)

	e, err := services.Get(ctx, "billing")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("got %s = %+v (version %d)\n", e.Key, e.Value, e.Version)
}
