package etcdkit_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/etcdkit/etcdkit"
)

func ExampleClient_Txn() {
	ctx := context.Background()
	c := exampleClient()
	users := etcdkit.NewKV(c, kvExamplePrefix("txn/users/"), etcdkit.JSON[exampleUser]())
	emails := etcdkit.NewKV(c, kvExamplePrefix("txn/emails/"), etcdkit.String())

	// Register alice only if both her name and her email address are free.
	register := func(name, email string) (bool, error) {
		res, err := c.Txn(ctx).
			If(users.Missing(name), emails.Missing(email)).
			Then(users.PutOp(name, exampleUser{Name: name, Email: email}), emails.PutOp(email, name)).
			Commit()
		return res.Succeeded, err
	}
	fmt.Println(register("alice", "alice@example.com"))
	fmt.Println(register("alicia", "alice@example.com"))
	// Output:
	// true <nil>
	// false <nil>
}

func ExampleTxn_If() {
	ctx := context.Background()
	c := exampleClient()
	flags := etcdkit.NewKV(c, kvExamplePrefix("txnif/flags/"), etcdkit.String())
	if _, err := flags.Put(ctx, "maintenance", "off"); err != nil {
		log.Fatal(err)
	}

	// Every condition must hold for Then to run.
	res, err := c.Txn(ctx).
		If(flags.Exists("maintenance"), flags.ValueIs("maintenance", "off")).
		Then(flags.PutOp("deploy", "v2")).
		Commit()
	fmt.Println(res.Succeeded, err)
	// Output: true <nil>
}

func ExampleTxn_Then() {
	ctx := context.Background()
	c := exampleClient()
	queue := etcdkit.NewKV(c, kvExamplePrefix("txnthen/queue/"), etcdkit.String())
	done := etcdkit.NewKV(c, kvExamplePrefix("txnthen/done/"), etcdkit.String())
	if _, err := queue.Put(ctx, "job1", "resize image"); err != nil {
		log.Fatal(err)
	}

	// Move job1 from the queue to done, both or neither.
	res, err := c.Txn(ctx).
		If(queue.Exists("job1")).
		Then(queue.DeleteOp("job1"), done.PutOp("job1", "ok")).
		Commit()
	if err != nil {
		log.Fatal(err)
	}
	n, _ := queue.Count(ctx)
	fmt.Println(res.Succeeded, n)
	// Output: true 0
}

func ExampleTxn_Else() {
	ctx := context.Background()
	c := exampleClient()
	config := etcdkit.NewKV(c, kvExamplePrefix("txnelse/config/"), etcdkit.String())
	if _, err := config.Put(ctx, "mode", "green"); err != nil {
		log.Fatal(err)
	}

	// Set a default, or read what is there: one round trip either way.
	res, err := c.Txn(ctx).
		If(config.Missing("mode")).
		Then(config.PutOp("mode", "blue")).
		Else(config.GetOp("mode")).
		Commit()
	if err != nil {
		log.Fatal(err)
	}
	if !res.Succeeded {
		e, err := config.FromResult(res, "mode")
		fmt.Println("already set:", e.Value, err)
	}
	// Output: already set: green <nil>
}

func ExampleTxn_Commit() {
	ctx := context.Background()
	c := exampleClient()
	kv := etcdkit.NewKV(c, kvExamplePrefix("txncommit/"), etcdkit.String())

	// Mistakes are caught before anything is sent.
	_, err := c.Txn(ctx).Then(kv.PutOp("k", "1"), kv.PutOp("k", "2")).Commit()
	fmt.Println(errors.Is(err, etcdkit.ErrDuplicateKey))

	ops := make([]etcdkit.Op, 129)
	for i := range ops {
		ops[i] = kv.PutOp(fmt.Sprint(i), "v")
	}
	_, err = c.Txn(ctx).Then(ops...).Commit()
	fmt.Println(err)
	// Output:
	// true
	// etcdkit: txn: too many operations in transaction: txn has 129 ops in Then, the limit is 128
}

func ExampleKV_Missing() {
	ctx := context.Background()
	c := exampleClient()
	locks := etcdkit.NewKV(c, kvExamplePrefix("missing/locks/"), etcdkit.String())

	claim := func(owner string) bool {
		res, err := c.Txn(ctx).If(locks.Missing("report")).Then(locks.PutOp("report", owner)).Commit()
		if err != nil {
			log.Fatal(err)
		}
		return res.Succeeded
	}
	fmt.Println(claim("worker-1"), claim("worker-2"))
	// Output: true false
}

func ExampleKV_Exists() {
	ctx := context.Background()
	c := exampleClient()
	users := etcdkit.NewKV(c, kvExamplePrefix("exists/users/"), etcdkit.JSON[exampleUser]())
	orders := etcdkit.NewKV(c, kvExamplePrefix("exists/orders/"), etcdkit.String())

	// Accept an order only for a known user.
	res, err := c.Txn(ctx).If(users.Exists("bob")).Then(orders.PutOp("o1", "bob")).Commit()
	fmt.Println(res.Succeeded, err)
	// Output: false <nil>
}

func ExampleKV_ModRevisionIs() {
	ctx := context.Background()
	c := exampleClient()
	config := etcdkit.NewKV(c, kvExamplePrefix("modrev/config/"), etcdkit.String())
	history := etcdkit.NewKV(c, kvExamplePrefix("modrev/history/"), etcdkit.String())
	rev, err := config.Put(ctx, "mode", "blue")
	if err != nil {
		log.Fatal(err)
	}

	// Change mode and record the change, only if nobody changed mode since.
	res, err := c.Txn(ctx).
		If(config.ModRevisionIs("mode", rev)).
		Then(config.PutOp("mode", "green"), history.PutOp("mode", "blue -> green")).
		Commit()
	fmt.Println(res.Succeeded, err)
	// Output: true <nil>
}

func ExampleKV_VersionIs() {
	ctx := context.Background()
	c := exampleClient()
	drafts := etcdkit.NewKV(c, kvExamplePrefix("versionis/drafts/"), etcdkit.String())
	published := etcdkit.NewKV(c, kvExamplePrefix("versionis/published/"), etcdkit.String())
	for _, text := range []string{"first draft", "second draft"} {
		if _, err := drafts.Put(ctx, "post", text); err != nil {
			log.Fatal(err)
		}
	}

	// Publish only a post that was revised exactly once.
	res, err := c.Txn(ctx).If(drafts.VersionIs("post", 2)).Then(published.PutOp("post", "second draft")).Commit()
	fmt.Println(res.Succeeded, err)
	// Output: true <nil>
}

func ExampleKV_ValueIs() {
	ctx := context.Background()
	c := exampleClient()
	states := etcdkit.NewKV(c, kvExamplePrefix("valueis/states/"), etcdkit.String())
	if _, err := states.Put(ctx, "door", "closed"); err != nil {
		log.Fatal(err)
	}

	res, err := c.Txn(ctx).If(states.ValueIs("door", "closed")).Then(states.PutOp("door", "open")).Commit()
	fmt.Println(res.Succeeded, err)
	// Output: true <nil>
}

func ExampleKV_PutOp() {
	ctx := context.Background()
	c := exampleClient()
	users := etcdkit.NewKV(c, kvExamplePrefix("putop/users/"), etcdkit.JSON[exampleUser]())

	if _, err := c.Txn(ctx).Then(users.PutOp("alice", exampleUser{Name: "Alice"}), users.PutOp("bob", exampleUser{Name: "Bob"})).Commit(); err != nil {
		log.Fatal(err)
	}
	n, _ := users.Count(ctx)
	fmt.Println(n)
	// Output: 2
}

func ExampleKV_DeleteOp() {
	ctx := context.Background()
	c := exampleClient()
	sessions := etcdkit.NewKV(c, kvExamplePrefix("deleteop/sessions/"), etcdkit.String())
	for _, s := range []string{"s1", "s2", "s3"} {
		if _, err := sessions.Put(ctx, s, "alice"); err != nil {
			log.Fatal(err)
		}
	}

	if _, err := c.Txn(ctx).Then(sessions.DeleteOp("s1"), sessions.DeleteOp("s2")).Commit(); err != nil {
		log.Fatal(err)
	}
	n, _ := sessions.Count(ctx)
	fmt.Println(n)
	// Output: 1
}

func ExampleKV_GetOp() {
	ctx := context.Background()
	c := exampleClient()
	accounts := etcdkit.NewKV(c, kvExamplePrefix("getop/accounts/"), etcdkit.JSON[int]())
	if _, err := accounts.Put(ctx, "a", 10); err != nil {
		log.Fatal(err)
	}
	if _, err := accounts.Put(ctx, "b", 20); err != nil {
		log.Fatal(err)
	}

	// Read two keys at one revision.
	res, err := c.Txn(ctx).Then(accounts.GetOp("a"), accounts.GetOp("b")).Commit()
	if err != nil {
		log.Fatal(err)
	}
	a, _ := accounts.FromResult(res, "a")
	b, _ := accounts.FromResult(res, "b")
	fmt.Println(a.Value + b.Value)
	// Output: 30
}

func ExampleKV_FromResult() {
	ctx := context.Background()
	c := exampleClient()
	users := etcdkit.NewKV(c, kvExamplePrefix("fromresult/users/"), etcdkit.JSON[exampleUser]())

	res, err := c.Txn(ctx).Then(users.GetOp("nobody")).Commit()
	if err != nil {
		log.Fatal(err)
	}
	_, err = users.FromResult(res, "nobody")
	fmt.Println(errors.Is(err, etcdkit.ErrNotFound))
	// Output: true
}

func ExampleClient_Atomically() {
	ctx := context.Background()
	c := exampleClient()
	accounts := etcdkit.NewKV(c, kvExamplePrefix("atomically/accounts/"), etcdkit.JSON[int]())
	if _, err := accounts.Put(ctx, "alice", 100); err != nil {
		log.Fatal(err)
	}
	if _, err := accounts.Put(ctx, "bob", 50); err != nil {
		log.Fatal(err)
	}

	transfer := func(from, to string, amount int) error {
		return c.Atomically(ctx, func(tx *etcdkit.Tx) error {
			acc := accounts.In(tx)
			a, err := acc.Get(from)
			if err != nil {
				return err
			}
			b, err := acc.Get(to)
			if err != nil {
				return err
			}
			if a < amount {
				return fmt.Errorf("%s has %d, cannot send %d", from, a, amount)
			}
			acc.Put(from, a-amount)
			acc.Put(to, b+amount)
			return nil
		})
	}
	fmt.Println(transfer("alice", "bob", 30))
	fmt.Println(transfer("alice", "bob", 100))
	for e, err := range accounts.List(ctx) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(e.Key, e.Value)
	}
	// Output:
	// <nil>
	// etcdkit: atomically: alice has 70, cannot send 100
	// alice 70
	// bob 80
}

func ExampleKV_In() {
	ctx := context.Background()
	c := exampleClient()
	inventory := etcdkit.NewKV(c, kvExamplePrefix("in/inventory/"), etcdkit.JSON[int]())
	orders := etcdkit.NewKV(c, kvExamplePrefix("in/orders/"), etcdkit.String())
	if _, err := inventory.Put(ctx, "widget", 3); err != nil {
		log.Fatal(err)
	}

	// Two KVs, one transaction.
	err := c.Atomically(ctx, func(tx *etcdkit.Tx) error {
		n, err := inventory.In(tx).Get("widget")
		if err != nil {
			return err
		}
		inventory.In(tx).Put("widget", n-1)
		orders.In(tx).Put("o1", "widget")
		return nil
	})
	n, _ := inventory.Get(ctx, "widget")
	fmt.Println(n.Value, err)
	// Output: 2 <nil>
}

func ExampleTxKV_Get() {
	ctx := context.Background()
	c := exampleClient()
	config := etcdkit.NewKV(c, kvExamplePrefix("txget/config/"), etcdkit.String())

	// fn may run more than once: it only reads and writes through tx, and
	// what it finds is printed after the transaction.
	var before error
	var after string
	err := c.Atomically(ctx, func(tx *etcdkit.Tx) error {
		_, before = config.In(tx).Get("mode")
		config.In(tx).Put("mode", "blue")
		var err error
		after, err = config.In(tx).Get("mode") // reads its own write
		return err
	})
	fmt.Println(errors.Is(before, etcdkit.ErrNotFound), after, err)
	// Output: true blue <nil>
}

func ExampleTxKV_Put() {
	ctx := context.Background()
	c := exampleClient()
	counters := etcdkit.NewKV(c, kvExamplePrefix("txput/counters/"), etcdkit.JSON[int]())

	err := c.Atomically(ctx, func(tx *etcdkit.Tx) error {
		counters.In(tx).Put("a", 1)
		counters.In(tx).Put("b", 2)
		return nil
	})
	n, _ := counters.Count(ctx)
	fmt.Println(n, err)
	// Output: 2 <nil>
}

func ExampleTxKV_Delete() {
	ctx := context.Background()
	c := exampleClient()
	tokens := etcdkit.NewKV(c, kvExamplePrefix("txdelete/tokens/"), etcdkit.String())
	if _, err := tokens.Put(ctx, "t1", "alice"); err != nil {
		log.Fatal(err)
	}

	// Consume a token: read it and delete it, once.
	var owner string
	err := c.Atomically(ctx, func(tx *etcdkit.Tx) error {
		var err error
		if owner, err = tokens.In(tx).Get("t1"); err != nil {
			return err
		}
		tokens.In(tx).Delete("t1")
		return nil
	})
	fmt.Println("consumed by", owner, err)
	_, err = tokens.Get(ctx, "t1")
	fmt.Println(errors.Is(err, etcdkit.ErrNotFound))
	// Output:
	// consumed by alice <nil>
	// true
}
