package etcdkit_test

import (
	"context"
	"fmt"

	"github.com/etcdkit/etcdkit"
)

// printer is an Observer that prints what each operation did. A real one
// records spans and metrics (package etcdotel does, with OpenTelemetry).
type printer struct{}

func (printer) OperationStart(ctx context.Context, _ etcdkit.Operation) context.Context { return ctx }

func (printer) OperationEnd(_ context.Context, op etcdkit.Operation) {
	fmt.Printf("%s %s: %v\n", op.Name, op.Prefix, op.Err)
}

func (printer) Notice(_ context.Context, n etcdkit.Notice) {
	fmt.Printf("notice %v %s\n", n.Kind, n.Prefix)
}

// An Observer set in the Config is told of every operation the client
// runs, with the KV's prefix and the error, and of the events between
// them.
func ExampleConfig_observer() {
	ctx := context.Background()
	cfg := testServer.Config() // in a program: etcdkit.ConfigFromEnv()
	cfg.Observer = printer{}
	cli, err := etcdkit.New(ctx, cfg)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer cli.Close()

	users := etcdkit.NewKV(cli, "example/observer/users/", etcdkit.String())
	if _, err := users.Put(ctx, "alice", "admin"); err != nil {
		fmt.Println(err)
		return
	}
	_, _ = users.Get(ctx, "bob")
	l, err := cli.Lock(ctx, "example/observer/lock")
	if err != nil {
		fmt.Println(err)
		return
	}
	_ = l.Unlock(ctx)
	// Output:
	// put example/observer/users/: <nil>
	// get example/observer/users/: etcdkit: get "example/observer/users/bob": not found
	// notice lock_acquired example/observer/lock
	// lock example/observer/lock: <nil>
	// unlock example/observer/lock: <nil>
}
