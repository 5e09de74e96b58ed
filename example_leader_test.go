package etcdkit_test

import (
	"context"
	"fmt"
	"time"

	"github.com/etcdkit/etcdkit"
)

// RunAsLeader runs a job on one replica at a time. The job's writes are
// guarded with the term, so that a replica that lost the leadership cannot
// write after the next one started; its ctx ends before anyone else can
// win, and the run resigns only after the job returned.
func ExampleClient_RunAsLeader() {
	cli := exampleClient()
	state := etcdkit.NewKV(cli, "example/leader/state/", etcdkit.String())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	onEvent := etcdkit.OnLeaderEvent(func(ev etcdkit.LeaderEvent) {
		if ev.Kind != etcdkit.LeaderObserved { // observed leaders arrive on their own schedule
			fmt.Printf("event: %s leading as %s\n", ev.Kind, ev.Leader.Value)
		}
	})
	err := cli.RunAsLeader(ctx, "example/leader/scheduler", "replica-1",
		func(ctx context.Context, term *etcdkit.Term) error {
			res, err := cli.Txn(ctx).If(term.Held()).
				Then(state.PutOp("last-run", term.Value())).Commit()
			if err != nil {
				return err
			}
			fmt.Println("job ran, write applied:", res.Succeeded)
			cancel() // a service would run until ctx ends: shutdown, or the leadership lost
			<-ctx.Done()
			return ctx.Err()
		}, etcdkit.LeaderTTL(2*time.Second), onEvent)
	fmt.Println("RunAsLeader returned:", err)
	// Output:
	// event: started leading as replica-1
	// job ran, write applied: true
	// event: stopped leading as replica-1
	// RunAsLeader returned: <nil>
}
