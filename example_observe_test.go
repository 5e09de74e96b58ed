package etcdkit_test

import (
	"context"
	"fmt"

	"github.com/etcdkit/etcdkit"
)

// A package built on etcdkit reports its own operations to the client's
// Observer with Observe: the Observer sees them as it sees the client's.
func ExampleClient_Observe() {
	ctx := context.Background()
	cfg := testServer.Config() // in a program: etcdkit.ConfigFromEnv()
	cfg.Observer = printer{}
	cli, err := etcdkit.New(ctx, cfg)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer cli.Close()

	// A registry's "register" operation, made of raw requests.
	octx, end := cli.Observe(ctx, "register", "example/observe/services/", "api-1")
	resp, err := cli.Raw().Put(octx, "example/observe/services/api-1", "10.0.0.1:80")
	var rev int64
	if err == nil {
		rev = resp.Header.Revision
	}
	end(rev, err)
	// Output:
	// register example/observe/services/: <nil>
}
