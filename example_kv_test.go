package etcdkit_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/etcdkit/etcdkit"
)

type exampleUser struct {
	Name  string `json:"name"`
	Email string `json:"email"`
}

// kvExamplePrefix returns a key prefix for one example, emptied so that the example
// can run again on the same server.
func kvExamplePrefix(prefix string) string {
	prefix = "examples/" + prefix
	if _, err := exampleClient().Raw().Delete(context.Background(), prefix, clientv3.WithPrefix()); err != nil {
		log.Fatal(err)
	}
	return prefix
}

func ExampleNewKV() {
	c := exampleClient()
	users := etcdkit.NewKV(c, kvExamplePrefix("newkv/users/"), etcdkit.JSON[exampleUser]())

	// "alice" is stored at "examples/newkv/users/alice", as JSON.
	if _, err := users.Put(context.Background(), "alice", exampleUser{Name: "Alice"}); err != nil {
		log.Fatal(err)
	}
	raw, err := c.Raw().Get(context.Background(), users.Prefix()+"alice")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s = %s\n", raw.Kvs[0].Key, raw.Kvs[0].Value)
	// Output: examples/newkv/users/alice = {"name":"Alice","email":""}
}

func ExampleKV_Prefix() {
	users := etcdkit.NewKV(exampleClient(), "users/", etcdkit.JSON[exampleUser]())
	fmt.Println(users.Prefix())
	// Output: users/
}

func ExampleKV_Client() {
	c := exampleClient()
	users := etcdkit.NewKV(c, "users/", etcdkit.JSON[exampleUser]())
	fmt.Println(users.Client() == c)
	// Output: true
}

func ExampleKV_Get() {
	ctx := context.Background()
	users := etcdkit.NewKV(exampleClient(), kvExamplePrefix("get/users/"), etcdkit.JSON[exampleUser]())
	if _, err := users.Put(ctx, "alice", exampleUser{Name: "Alice", Email: "alice@example.com"}); err != nil {
		log.Fatal(err)
	}

	alice, err := users.Get(ctx, "alice")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(alice.Key, alice.Value.Email, alice.Version)

	_, err = users.Get(ctx, "bob")
	fmt.Println(errors.Is(err, etcdkit.ErrNotFound))
	// Output:
	// alice alice@example.com 1
	// true
}

func ExampleKV_Put() {
	ctx := context.Background()
	config := etcdkit.NewKV(exampleClient(), kvExamplePrefix("put/config/"), etcdkit.String())

	rev, err := config.Put(ctx, "log-level", "debug")
	if err != nil {
		log.Fatal(err)
	}
	e, err := config.Get(ctx, "log-level")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(e.Value, e.ModRevision == rev)
	// Output: debug true
}

func ExampleKV_Create() {
	ctx := context.Background()
	names := etcdkit.NewKV(exampleClient(), kvExamplePrefix("create/names/"), etcdkit.String())

	if _, err := names.Create(ctx, "alice", "first owner"); err != nil {
		log.Fatal(err)
	}
	_, err := names.Create(ctx, "alice", "second owner")
	fmt.Println(errors.Is(err, etcdkit.ErrExists))
	// Output: true
}

func ExampleKV_CompareAndSwap() {
	ctx := context.Background()
	config := etcdkit.NewKV(exampleClient(), kvExamplePrefix("cas/config/"), etcdkit.String())
	rev, err := config.Put(ctx, "mode", "blue")
	if err != nil {
		log.Fatal(err)
	}
	// Someone else changes the key after we read it at rev.
	if _, err := config.Put(ctx, "mode", "green"); err != nil {
		log.Fatal(err)
	}

	_, err = config.CompareAndSwap(ctx, "mode", "red", rev)
	if cur, ok := etcdkit.CurrentEntry[string](err); ok {
		// The conflict carries what is there now: retry from it, no read needed.
		fmt.Println("conflict; current value:", cur.Value)
		_, err = config.CompareAndSwap(ctx, "mode", "red", cur.ModRevision)
	}
	if err != nil {
		log.Fatal(err)
	}
	e, _ := config.Get(ctx, "mode")
	fmt.Println(e.Value)
	// Output:
	// conflict; current value: green
	// red
}

func ExampleKV_Update() {
	ctx := context.Background()
	counters := etcdkit.NewKV(exampleClient(), kvExamplePrefix("update/counters/"), etcdkit.JSON[int]())
	if _, err := counters.Put(ctx, "visits", 41); err != nil {
		log.Fatal(err)
	}

	// Safe against concurrent updates: fn runs again if the key changed.
	e, err := counters.Update(ctx, "visits", func(n int) (int, error) { return n + 1, nil })
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(e.Value, e.Version)
	// Output: 42 2
}

func ExampleKV_Delete() {
	ctx := context.Background()
	sessions := etcdkit.NewKV(exampleClient(), kvExamplePrefix("delete/sessions/"), etcdkit.String())
	if _, err := sessions.Put(ctx, "s1", "alice"); err != nil {
		log.Fatal(err)
	}

	existed, err := sessions.Delete(ctx, "s1")
	fmt.Println(existed, err)
	existed, err = sessions.Delete(ctx, "s1")
	fmt.Println(existed, err)
	// Output:
	// true <nil>
	// false <nil>
}

func ExampleKV_CompareAndDelete() {
	ctx := context.Background()
	jobs := etcdkit.NewKV(exampleClient(), kvExamplePrefix("cad/jobs/"), etcdkit.String())
	rev, err := jobs.Put(ctx, "j1", "done")
	if err != nil {
		log.Fatal(err)
	}
	if _, err := jobs.Put(ctx, "j1", "restarted"); err != nil {
		log.Fatal(err)
	}

	// Delete the job only if it is still the one we saw finish.
	_, err = jobs.CompareAndDelete(ctx, "j1", rev)
	fmt.Println(errors.Is(err, etcdkit.ErrConflict))
	// Output: true
}

func ExampleKV_List() {
	ctx := context.Background()
	users := etcdkit.NewKV(exampleClient(), kvExamplePrefix("list/users/"), etcdkit.JSON[exampleUser]())
	for _, name := range []string{"carol", "alice", "bob"} {
		if _, err := users.Put(ctx, name, exampleUser{Name: name}); err != nil {
			log.Fatal(err)
		}
	}

	// In key order, one consistent snapshot, read two at a time.
	for e, err := range users.List(ctx, etcdkit.WithPageSize(2)) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(e.Key, e.Value.Name)
	}
	// Output:
	// alice alice
	// bob bob
	// carol carol
}

func ExampleKV_List_range() {
	ctx := context.Background()
	logs := etcdkit.NewKV(exampleClient(), kvExamplePrefix("listrange/logs/"), etcdkit.String())
	for _, day := range []string{"2026-01-01", "2026-01-02", "2026-02-01", "2026-03-01"} {
		if _, err := logs.Put(ctx, day, "..."); err != nil {
			log.Fatal(err)
		}
	}

	// January only, keys without values.
	for e, err := range logs.List(ctx, etcdkit.WithRange("2026-01", "2026-02"), etcdkit.WithKeysOnly()) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%s %q\n", e.Key, e.Value)
	}
	// Output:
	// 2026-01-01 ""
	// 2026-01-02 ""
}

func ExampleKV_List_revision() {
	ctx := context.Background()
	config := etcdkit.NewKV(exampleClient(), kvExamplePrefix("listrev/config/"), etcdkit.String())
	rev, err := config.Put(ctx, "mode", "blue")
	if err != nil {
		log.Fatal(err)
	}
	if _, err := config.Put(ctx, "mode", "green"); err != nil {
		log.Fatal(err)
	}

	// The prefix as it was at rev.
	for e, err := range config.List(ctx, etcdkit.WithRevision(rev)) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(e.Key, e.Value)
	}
	// Output: mode blue
}

func ExampleKV_Count() {
	ctx := context.Background()
	users := etcdkit.NewKV(exampleClient(), kvExamplePrefix("count/users/"), etcdkit.JSON[exampleUser]())
	for _, name := range []string{"alice", "bob"} {
		if _, err := users.Put(ctx, name, exampleUser{Name: name}); err != nil {
			log.Fatal(err)
		}
	}

	n, err := users.Count(ctx)
	fmt.Println(n, err)
	// Output: 2 <nil>
}
