package etcdkit_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/etcdkit/etcdkit"
)

// New connects, checking that an endpoint answers before it returns.
func ExampleNew() {
	ctx := context.Background()
	cli, err := etcdkit.New(ctx, testServer.Config())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer cli.Close()
	greetings := etcdkit.NewKV(cli, "example/new/", etcdkit.String())
	if _, err := greetings.Put(ctx, "en", "hello"); err != nil {
		fmt.Println(err)
		return
	}
	e, err := greetings.Get(ctx, "en")
	fmt.Println(e.Value, err)
	// Output: hello <nil>
}

// A client that cannot reach any endpoint is an error matching
// ErrUnavailable, within the DialTimeout.
func ExampleNew_unreachable() {
	cfg := etcdkit.Config{Endpoints: []string{"127.0.0.1:1"}, DialTimeout: 200 * time.Millisecond}
	_, err := etcdkit.New(context.Background(), cfg)
	fmt.Println(errors.Is(err, etcdkit.ErrUnavailable))
	// Output: true
}

// Wrap adopts a clientv3 client the program already has; closing the
// etcdkit client leaves it open.
func ExampleWrap() {
	raw, err := clientv3.New(clientv3.Config{Endpoints: testServer.Endpoints()})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer raw.Close()
	cli := etcdkit.Wrap(raw)
	names := etcdkit.NewKV(cli, "example/wrap/", etcdkit.String())
	_, err = names.Put(context.Background(), "a", "1")
	fmt.Println("put:", err)
	cli.Close()
	_, err = raw.Get(context.Background(), "example/wrap/a")
	fmt.Println("raw still works:", err == nil)
	// Output:
	// put: <nil>
	// raw still works: true
}

// Close ends what the client started; later calls fail with ErrClosed.
func ExampleClient_Close() {
	ctx := context.Background()
	cli, err := etcdkit.New(ctx, testServer.Config())
	if err != nil {
		fmt.Println(err)
		return
	}
	kv := etcdkit.NewKV(cli, "example/close/", etcdkit.String())
	w := kv.Watch(ctx)
	fmt.Println("close:", cli.Close())
	for range w.Events() {
	}
	fmt.Println("watch ended with ErrClosed:", errors.Is(w.Err(), etcdkit.ErrClosed))
	_, err = kv.Put(ctx, "k", "v")
	fmt.Println("put after close:", errors.Is(err, etcdkit.ErrClosed))
	// Output:
	// close: <nil>
	// watch ended with ErrClosed: true
	// put after close: true
}

// Done ends work of the program's own together with the client.
func ExampleClient_Done() {
	cli, err := etcdkit.New(context.Background(), testServer.Config())
	if err != nil {
		fmt.Println(err)
		return
	}
	stopped := make(chan struct{})
	go func() {
		<-cli.Done()
		close(stopped)
	}()
	cli.Close()
	<-stopped
	fmt.Println("background work stopped")
	// Output: background work stopped
}

// Raw reaches what etcdkit does not cover, such as the cluster's status.
func ExampleClient_Raw() {
	cli := exampleClient()
	resp, err := cli.Raw().MemberList(context.Background())
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("members:", len(resp.Members))
	// Output: members: 1
}

// ConfigFromEnv reads the endpoints and credentials from the environment,
// as the examples/ programs do.
func ExampleConfigFromEnv() {
	os.Setenv(etcdkit.EnvEndpoints, "10.0.0.1:2379,10.0.0.2:2379")
	defer os.Unsetenv(etcdkit.EnvEndpoints)
	cfg, err := etcdkit.ConfigFromEnv()
	fmt.Println(cfg.Endpoints, err)
	// Output: [10.0.0.1:2379 10.0.0.2:2379] <nil>
}

// A Config prints and logs without its password.
func ExampleConfig() {
	cfg := etcdkit.Config{Endpoints: []string{"10.0.0.1:2379"}, Username: "app", Password: "s3cret"}
	fmt.Print(strings.Contains(cfg.String(), "s3cret"), " ", strings.Contains(fmt.Sprintf("%#v", cfg), "s3cret"), " ")
	var b strings.Builder
	slog.New(slog.NewTextHandler(&b, nil)).Info("connecting", "config", cfg)
	fmt.Println(strings.Contains(b.String(), "s3cret"))
	// Output: false false false
}
