package etcdkit_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/etcdkit/etcdkit"
)

type exampleConfig struct {
	Workers int `json:"workers"`
}

// A service follows its configuration: Load is cheap enough to call on
// every request, bad values are rejected, and changes are announced.
func ExampleKV_Follow() {
	ctx := context.Background()
	configs := etcdkit.NewKV(exampleClient(), "example/follow/", etcdkit.JSON[exampleConfig]())
	configs.Delete(ctx, "app")

	changed := make(chan exampleConfig)
	rejected := make(chan error)
	live, err := configs.Follow(ctx, "app",
		etcdkit.WithDefault(exampleConfig{Workers: 1}),
		etcdkit.WithValidator(func(c exampleConfig) error {
			if c.Workers < 1 {
				return errors.New("workers must be at least 1")
			}
			return nil
		}),
		etcdkit.WithOnReject[exampleConfig](func(key string, err error) { rejected <- err }),
		etcdkit.OnChange(func(old, new exampleConfig) { changed <- new }),
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer live.Close()
	fmt.Println("default:", live.Load().Workers)

	configs.Put(ctx, "app", exampleConfig{Workers: 8})
	fmt.Println("changed to:", (<-changed).Workers)

	configs.Put(ctx, "app", exampleConfig{Workers: 0})
	fmt.Println("rejected:", <-rejected != nil, "still:", live.Load().Workers)
	// Output:
	// default: 1
	// changed to: 8
	// rejected: true still: 8
}
