// Command config-reload follows a configuration key: the service reads
// the current value with Load on every use, is told of each change, and
// keeps its last good configuration when someone writes an invalid one.
//
// It connects to $ETCD_ENDPOINTS (see etcdkit.ConfigFromEnv); when that is
// not set, it starts an embedded etcd of its own:
//
//	go run ./examples/config-reload
package main

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/etcdkit/etcdkit"
	"github.com/etcdkit/etcdkit/etcdtest"
)

// Config is the service's configuration.
type Config struct {
	Workers  int    `json:"workers"`
	LogLevel string `json:"log_level"`
}

func (c Config) validate() error {
	if c.Workers < 1 || c.Workers > 64 {
		return fmt.Errorf("workers = %d, want 1 to 64", c.Workers)
	}
	return nil
}

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	cli, stop, err := etcdtest.Connect(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer stop()

	configs := etcdkit.NewKV(cli, "examples/config-reload/", etcdkit.JSON[Config]())
	if _, err := configs.Delete(ctx, "billing"); err != nil { // start from nothing
		log.Fatal(err)
	}

	events := make(chan string, 10)
	live, err := configs.Follow(ctx, "billing",
		etcdkit.WithDefault(Config{Workers: 1, LogLevel: "info"}),
		etcdkit.WithValidator(Config.validate),
		etcdkit.WithOnReject[Config](func(key string, err error) {
			events <- fmt.Sprintf("rejected a new value of %s: %v", key, err)
		}),
		etcdkit.OnChange(func(old, new Config) {
			events <- fmt.Sprintf("reloaded: %+v -> %+v", old, new)
		}),
	)
	if err != nil {
		log.Fatal(err)
	}
	defer live.Close()
	fmt.Printf("starting with the default: %+v\n", live.Load())

	// An operator (here, the same program) edits the configuration.
	for _, c := range []Config{
		{Workers: 8, LogLevel: "info"},
		{Workers: 0, LogLevel: "debug"}, // invalid: rejected
		{Workers: 16, LogLevel: "debug"},
	} {
		if _, err := configs.Put(ctx, "billing", c); err != nil {
			log.Fatal(err)
		}
		fmt.Println(<-events)
		fmt.Printf("  the service now runs with %+v\n", live.Load())
	}
}
