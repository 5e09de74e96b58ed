package etcdkit_test

import (
	"context"
	"fmt"

	"github.com/etcdkit/etcdkit"
)

// A snapshot is the mirror at one revision: reads of it agree with each
// other while the mirror moves on.
func ExampleMirror_Snapshot() {
	ctx := context.Background()
	stock := etcdkit.NewKV(exampleClient(), "example/snapshot/stock/", etcdkit.JSON[int]())
	if _, err := stock.Put(ctx, "apples", 3); err != nil {
		fmt.Println(err)
		return
	}
	m, err := stock.Mirror(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer m.Close()

	before := m.Snapshot()
	rev, err := stock.Put(ctx, "apples", 5)
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := m.WaitForRevision(ctx, rev); err != nil {
		fmt.Println(err)
		return
	}
	old, _ := before.Get("apples")
	now, _ := m.Snapshot().Get("apples")
	fmt.Println("before:", old.Value, "now:", now.Value)
	// Output:
	// before: 3 now: 5
}

// An index answers "which entries have this value" without a scan, always
// in step with the entries.
func ExampleWithIndex() {
	ctx := context.Background()
	type user struct{ Team string }
	users := etcdkit.NewKV(exampleClient(), "example/index/users/", etcdkit.JSON[user]())
	for name, team := range map[string]string{"ann": "red", "bob": "blue", "cid": "red"} {
		if _, err := users.Put(ctx, name, user{Team: team}); err != nil {
			fmt.Println(err)
			return
		}
	}
	byTeam := func(e etcdkit.Entry[user]) []string { return []string{e.Value.Team} }
	m, err := users.Mirror(ctx, etcdkit.WithIndex("team", byTeam))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer m.Close()

	for _, e := range m.ByIndex("team", "red") {
		fmt.Println(e.Key)
	}
	// Output:
	// ann
	// cid
}
