package admin_test

import (
	"context"
	"fmt"
	"strings"

	"github.com/etcdkit/etcdkit"
	"github.com/etcdkit/etcdkit/admin"
)

func ExampleHealth() {
	ctx := context.Background()
	cli, err := etcdkit.New(ctx, testCluster.Config())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer cli.Close()

	r, err := admin.Health(ctx, cli)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("healthy:", r.Healthy, "members:", len(r.Members), "quorum:", r.Quorum)
	fmt.Println(strings.Fields(r.String())[0:3]) // the table's header
	// Output:
	// healthy: true members: 3 quorum: true
	// [MEMBER ENDPOINT ROLE]
}

func ExampleExport() {
	ctx := context.Background()
	cli, err := etcdkit.New(ctx, testCluster.Config())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer cli.Close()

	if _, err := cli.Raw().Put(ctx, "/example/export/greeting", "hello"); err != nil {
		fmt.Println(err)
		return
	}
	var out strings.Builder
	n, err := admin.Export(ctx, cli, "/example/export/", &out)
	fmt.Print(n, " ", out.String(), err, "\n")
	// Output:
	// 1 {"key":"/example/export/greeting","value":"aGVsbG8="}
	// <nil>
}
