// Command admin prints the health of a 3-member etcd cluster running in
// this process, stops a member and prints how the report explains it, then
// compacts and defragments the cluster and says what happened.
package main

import (
	"context"
	"fmt"
	"log"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/etcdkit/etcdkit"
	"github.com/etcdkit/etcdkit/admin"
	"github.com/etcdkit/etcdkit/etcdtest"
)

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := run(ctx); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context) error {
	cluster, err := etcdtest.RunCluster(3)
	if err != nil {
		return err
	}
	defer cluster.Close()
	cli, err := etcdkit.New(ctx, cluster.Config())
	if err != nil {
		return err
	}
	defer cli.Close()

	if err := churn(ctx, cli); err != nil {
		return err
	}
	if err := printHealth(ctx, cli, "A healthy cluster"); err != nil {
		return err
	}

	cluster.Member(2).Stop()
	if err := printHealth(ctx, cli, "Member m2 stopped"); err != nil {
		return err
	}
	_, err = admin.Defragment(ctx, cli)
	fmt.Printf("Defragment with m2 down: %v\n\n", err)
	cluster.RestartMember(2)

	if err := compactOnce(ctx, cli); err != nil {
		return err
	}
	// Followers compact their own copy a moment after the member that
	// answered the compaction: by the default rule (over half free) they
	// might not qualify yet, so defragment every member.
	rep, err := admin.Defragment(ctx, cli, admin.DefragAlways())
	if err != nil {
		return err
	}
	fmt.Println("Defragmented, one member at a time, leader last:")
	for _, d := range rep.Members {
		fmt.Printf("  %s (leader %v): %d KiB -> %d KiB in %v\n", d.Name, d.Leader, d.Before>>10, d.After>>10, d.Took.Round(time.Millisecond))
	}
	return printHealth(ctx, cli, "After compaction and defragmentation")
}

// churn writes and overwrites keys, so there is history to compact and
// space to free.
func churn(ctx context.Context, cli *etcdkit.Client) error {
	val := strings.Repeat("x", 4<<10)
	for round := range 10 {
		ops := make([]clientv3.Op, 100)
		for i := range ops {
			ops[i] = clientv3.OpPut(fmt.Sprintf("/demo/k%d", i), fmt.Sprint(round, val))
		}
		if _, err := cli.Raw().Txn(ctx).Then(ops...).Commit(); err != nil {
			return err
		}
	}
	return nil
}

func printHealth(ctx context.Context, cli *etcdkit.Client, title string) error {
	r, err := admin.Health(ctx, cli)
	if err != nil {
		return err
	}
	fmt.Printf("%s:\n%s\n", title, r)
	return nil
}

// compactOnce runs a compactor for one round: it keeps only the
// last revision.
func compactOnce(ctx context.Context, cli *etcdkit.Client) error {
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	cp, err := admin.NewCompactor(cli, admin.KeepRevisions(1), admin.OnCompact(func(c admin.Compaction) {
		fmt.Printf("Compacted history before revision %d (round %d)\n", c.Revision, c.Round)
		stop()
	}))
	if err != nil {
		return err
	}
	if err := cp.Run(ctx); err != context.Canceled {
		return err
	}
	return nil
}
