package admin_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/etcdkit/etcdkit"
	"github.com/etcdkit/etcdkit/admin"
)

// exampleClient connects to the package's test cluster; close it when done.
func exampleClient() *etcdkit.Client {
	cli, err := etcdkit.New(context.Background(), testCluster.Config())
	if err != nil {
		panic(err)
	}
	return cli
}

// exampleCompaction runs a Compactor until its first compaction.
func exampleCompaction(keep admin.Retention, opts ...admin.CompactorOption) {
	cli := exampleClient()
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	opts = append(opts, admin.CompactEvery(50*time.Millisecond), admin.OnCompact(func(c admin.Compaction) {
		fmt.Println("compacted, round >= 1:", c.Round >= 1)
		cancel()
	}))
	cp, err := admin.NewCompactor(cli, keep, opts...)
	if err != nil {
		fmt.Println(err)
		return
	}
	cli.Raw().Put(ctx, "/example/compactor/k", "v") // something to compact
	err = cp.Run(ctx)
	fmt.Println("Run ended with ctx:", errors.Is(err, context.Canceled))
}

// NewCompactor checks its retention and options at once.
func ExampleNewCompactor() {
	cli := exampleClient()
	defer cli.Close()
	_, err := admin.NewCompactor(cli, admin.KeepRevisions(1000))
	fmt.Println(err)
	_, err = admin.NewCompactor(nil, admin.KeepRevisions(1000))
	fmt.Println(errors.Is(err, etcdkit.ErrInvalidArgument))
	// Output:
	// <nil>
	// true
}

// KeepRevisions keeps the last n revisions; n must be > 0.
func ExampleKeepRevisions() {
	exampleCompaction(admin.KeepRevisions(1), admin.CompactorKey("/example/compactor/revisions"))
	cli := exampleClient()
	defer cli.Close()
	_, err := admin.NewCompactor(cli, admin.KeepRevisions(0))
	fmt.Println(errors.Is(err, etcdkit.ErrInvalidArgument))
	// Output:
	// compacted, round >= 1: true
	// Run ended with ctx: true
	// true
}

// KeepFor keeps the history of the last d; d must be > 0.
func ExampleKeepFor() {
	cli := exampleClient()
	defer cli.Close()
	_, err := admin.NewCompactor(cli, admin.KeepFor(time.Hour))
	fmt.Println(err)
	_, err = admin.NewCompactor(cli, admin.KeepFor(0))
	fmt.Println(errors.Is(err, etcdkit.ErrInvalidArgument))
	// Output:
	// <nil>
	// true
}

// CompactEvery sets the interval of the rounds; it must be > 0.
func ExampleCompactEvery() {
	cli := exampleClient()
	defer cli.Close()
	_, err := admin.NewCompactor(cli, admin.KeepRevisions(10), admin.CompactEvery(0))
	fmt.Println(errors.Is(err, etcdkit.ErrInvalidArgument))
	// Output: true
}

// Compactors that take turns share a key.
func ExampleCompactorKey() {
	exampleCompaction(admin.KeepRevisions(1), admin.CompactorKey("/example/compactor/key"))
	// Output:
	// compacted, round >= 1: true
	// Run ended with ctx: true
}

// OnCompact is told of each compaction this Compactor made.
func ExampleOnCompact() {
	exampleCompaction(admin.KeepRevisions(1), admin.CompactorKey("/example/compactor/oncompact"))
	// Output:
	// compacted, round >= 1: true
	// Run ended with ctx: true
}

// Run compacts every interval until ctx ends.
func ExampleCompactor_Run() {
	exampleCompaction(admin.KeepRevisions(1), admin.CompactorKey("/example/compactor/run"))
	// Output:
	// compacted, round >= 1: true
	// Run ended with ctx: true
}

// Last reports the last compaction, and the last round's error.
func ExampleCompactor_Last() {
	cli := exampleClient()
	defer cli.Close()
	cp, err := admin.NewCompactor(cli, admin.KeepRevisions(1))
	if err != nil {
		fmt.Println(err)
		return
	}
	_, made, err := cp.Last()
	fmt.Println(made, err)
	// Output: false <nil>
}

// DryRun says which members Defragment would rewrite, changing nothing.
func ExampleDryRun() {
	cli := exampleClient()
	defer cli.Close()
	r, err := admin.Defragment(context.Background(), cli, admin.DryRun(), admin.DefragAlways())
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(r.DryRun, len(r.Members))
	// Output: true 3
}

// Defragment goes one member at a time, the leader last.
func ExampleDefragment() {
	cli := exampleClient()
	defer cli.Close()
	r, err := admin.Defragment(context.Background(), cli, admin.DefragAlways())
	if err != nil {
		fmt.Println(err)
		return
	}
	last := r.Members[len(r.Members)-1]
	fmt.Println(len(r.Members), last.Defragmented)
	// Output: 3 true
}

// DefragAlways defragments every member, whatever its free space.
func ExampleDefragAlways() {
	cli := exampleClient()
	defer cli.Close()
	r, err := admin.Defragment(context.Background(), cli, admin.DefragAlways(), admin.DryRun())
	if err != nil {
		fmt.Println(err)
		return
	}
	n := 0
	for _, m := range r.Members {
		if m.Defragmented {
			n++
		}
	}
	fmt.Println(n)
	// Output: 3
}

// FreeOver sets the rule: a fresh cluster has little to give back.
func ExampleFreeOver() {
	cli := exampleClient()
	defer cli.Close()
	r, err := admin.Defragment(context.Background(), cli, admin.FreeOver(0.5, 1<<30), admin.DryRun())
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(r.Members[0].Defragmented, r.Members[0].Skipped != "")
	_, err = admin.Defragment(context.Background(), cli, admin.FreeOver(2, 0))
	fmt.Println(errors.Is(err, etcdkit.ErrInvalidArgument))
	// Output:
	// false true
	// true
}

// OnMember is told of each member as Defragment goes.
func ExampleOnMember() {
	cli := exampleClient()
	defer cli.Close()
	n := 0
	_, err := admin.Defragment(context.Background(), cli, admin.DryRun(), admin.OnMember(func(admin.Defragged) { n++ }))
	fmt.Println(n, err)
	// Output: 3 <nil>
}

// Disarm clears NOSPACE alarms; a healthy cluster has none.
func ExampleDisarm() {
	cli := exampleClient()
	defer cli.Close()
	cleared, err := admin.Disarm(context.Background(), cli)
	fmt.Println(len(cleared), err)
	// Output: 0 <nil>
}

// Import puts back what Export wrote.
func ExampleImport() {
	cli := exampleClient()
	defer cli.Close()
	in := `{"key":"/example/import/greeting","value":"aGVsbG8="}` + "\n"
	n, err := admin.Import(context.Background(), cli, strings.NewReader(in))
	fmt.Println(n, err)
	resp, _ := cli.Raw().Get(context.Background(), "/example/import/greeting")
	fmt.Println(string(resp.Kvs[0].Value))
	// Output:
	// 1 <nil>
	// hello
}

// IntoEmpty refuses to import over existing keys.
func ExampleIntoEmpty() {
	cli := exampleClient()
	defer cli.Close()
	ctx := context.Background()
	cli.Raw().Put(ctx, "/example/intoempty/a", "old")
	in := `{"key":"/example/intoempty/a","value":"bmV3"}` + "\n"
	_, err := admin.Import(ctx, cli, strings.NewReader(in), admin.IntoEmpty("/example/intoempty/"))
	fmt.Println(errors.Is(err, etcdkit.ErrExists))
	// Output: true
}

// KeepLeases gives each key with a lease_ttl a lease of that many seconds.
func ExampleKeepLeases() {
	cli := exampleClient()
	defer cli.Close()
	ctx := context.Background()
	in := `{"key":"/example/keepleases/s","value":"dg==","lease_ttl":60}` + "\n"
	_, err := admin.Import(ctx, cli, strings.NewReader(in), admin.KeepLeases())
	fmt.Println(err)
	resp, _ := cli.Raw().Get(ctx, "/example/keepleases/s")
	fmt.Println(resp.Kvs[0].Lease != 0)
	// Output:
	// <nil>
	// true
}

// The report prints as a table; each member says what is wrong with it.
func ExampleReport() {
	cli := exampleClient()
	defer cli.Close()
	r, err := admin.Health(context.Background(), cli)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(strings.Fields(r.String())[0])
	// Output: MEMBER
}

// Has asks a member about one problem; Problem prints as words.
func ExampleMember_Has() {
	cli := exampleClient()
	defer cli.Close()
	r, err := admin.Health(context.Background(), cli)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(r.Members[0].Has(admin.Unreachable), admin.Unreachable)
	// Output: false unreachable
}

// QuotaUsed is the share of the space quota the database takes.
func ExampleMember_QuotaUsed() {
	cli := exampleClient()
	defer cli.Close()
	r, err := admin.Health(context.Background(), cli)
	if err != nil {
		fmt.Println(err)
		return
	}
	q := r.Members[0].QuotaUsed()
	fmt.Println(q > 0 && q < 0.5)
	// Output: true
}

// Problem names what is wrong, as the report prints it.
func ExampleProblem() {
	fmt.Println(admin.Unreachable, admin.NoQuorum)
	// Output: unreachable no quorum
}
