package etcdkit_test

import (
	"context"
	"sync"

	"github.com/etcdkit/etcdkit"
)

var (
	exampleOnce sync.Once
	exampleCli  *etcdkit.Client
)

// exampleClient returns a client of the shared embedded server for the
// runnable examples. In a program, use etcdkit.New with your own Config.
func exampleClient() *etcdkit.Client {
	exampleOnce.Do(func() {
		cli, err := etcdkit.New(context.Background(), testServer.Config())
		if err != nil {
			panic(err)
		}
		exampleCli = cli
	})
	return exampleCli
}

func closeExampleClient() {
	if exampleCli != nil {
		exampleCli.Close()
	}
}
