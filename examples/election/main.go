// Command election shows leader election: two replicas of a service (two
// clients, as if two processes) campaign to lead "examples/election/cron";
// the first leads, proclaims a new value, and resigns, and the second takes
// over. An observer prints every leader it sees.
//
// It connects to $ETCD_ENDPOINTS (see etcdkit.ConfigFromEnv); when that is
// not set, it starts an embedded etcd of its own, so it runs anywhere:
//
//	go run ./examples/election
package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/etcdkit/etcdkit"
	"github.com/etcdkit/etcdkit/etcdtest"
)

const election = "examples/election/cron"

func main() {
	if err := run(); err != nil {
		log.Print(err)
		os.Exit(1)
	}
}

func run() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	cfg, stopServer, err := etcdtest.ConfigFromEnvOrRun()
	if err != nil {
		return err
	}
	defer stopServer()
	clients := make([]*etcdkit.Client, 3)
	for i := range clients {
		if clients[i], err = etcdkit.New(ctx, cfg); err != nil {
			return err
		}
		defer clients[i].Close()
	}
	replica1, replica2, observer := clients[0], clients[1], clients[2]

	if _, err := observer.Leader(ctx, election); errors.Is(err, etcdkit.ErrNoLeader) {
		fmt.Println("no leader yet")
	}
	observed := make(chan string)
	go func() {
		defer close(observed)
		for v := range observer.ObserveLeader(ctx, election) {
			observed <- v
			if v == "replica-2" {
				return
			}
		}
	}()

	lead1, err := replica1.Campaign(ctx, election, "replica-1")
	if err != nil {
		return err
	}
	fmt.Printf("observer sees leader %s\n", <-observed)

	// Replica 2 campaigns too, and waits: replica 1 leads.
	won := make(chan *etcdkit.Leadership, 1)
	go func() {
		lead2, err := replica2.Campaign(ctx, election, "replica-2")
		if err != nil {
			log.Print(err)
		}
		won <- lead2
	}()

	if err := lead1.Proclaim(ctx, "replica-1 (v2)"); err != nil {
		return err
	}
	fmt.Printf("observer sees leader %s\n", <-observed)
	if err := lead1.Resign(ctx); err != nil {
		return err
	}
	fmt.Println("replica-1 resigned")

	lead2 := <-won
	if lead2 == nil {
		return errors.New("replica-2 was not elected")
	}
	fmt.Printf("observer sees leader %s\n", <-observed)
	fmt.Printf("replica-2 leads with fence %d > %d\n", lead2.Fence(), lead1.Fence())
	return lead2.Resign(ctx)
}
