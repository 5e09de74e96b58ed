// Command txn shows etcdkit's two kinds of transactions:
//
//   - A, a conditional transaction (Client.Txn): "if key k's version is 2,
//     put k1 and k2, else put k3 and k4", run once for each branch.
//   - B, a serializable transaction (Client.Atomically): concurrent bank
//     transfers between accounts, which never create or lose money.
//
// It connects to $ETCD_ENDPOINTS (see etcdkit.ConfigFromEnv); when that is
// not set, it starts an embedded etcd of its own, so it runs anywhere:
//
//	go run ./examples/txn
package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/etcdkit/etcdkit"
	"github.com/etcdkit/etcdkit/etcdtest"
)

func main() {
	if err := run(); err != nil {
		log.Fatal(err)
	}
}

func run() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	cli, stop, err := etcdtest.Connect(ctx)
	if err != nil {
		return err
	}
	defer stop()

	if err := conditional(ctx, cli); err != nil {
		return err
	}
	return transfers(ctx, cli)
}

// conditional is scenario A.
func conditional(ctx context.Context, cli *etcdkit.Client) error {
	kv := etcdkit.NewKV(cli, "examples/txn/a/", etcdkit.String())
	if err := clearPrefix(ctx, kv); err != nil {
		return err
	}
	fmt.Println("A: if k's version is 2 then put k1, k2 else put k3, k4")

	for version := 1; version <= 2; version++ {
		// Each put of k raises its version by one.
		if _, err := kv.Put(ctx, "k", fmt.Sprintf("write %d", version)); err != nil {
			return err
		}
		res, err := cli.Txn(ctx).
			If(kv.VersionIs("k", 2)).
			Then(kv.PutOp("k1", "then"), kv.PutOp("k2", "then")).
			Else(kv.PutOp("k3", "else"), kv.PutOp("k4", "else")).
			Commit()
		if err != nil {
			return err
		}
		branch := "Else"
		if res.Succeeded {
			branch = "Then"
		}
		fmt.Printf("   k at version %d: %s ran, at revision %d\n", version, branch, res.Revision)
	}
	fmt.Print("   keys now:")
	for e, err := range kv.List(ctx) {
		if err != nil {
			return err
		}
		fmt.Printf(" %s=%s", e.Key, e.Value)
	}
	fmt.Println()
	return nil
}

// transfers is scenario B.
func transfers(ctx context.Context, cli *etcdkit.Client) error {
	accounts := etcdkit.NewKV(cli, "examples/txn/accounts/", etcdkit.JSON[int]())
	if err := clearPrefix(ctx, accounts); err != nil {
		return err
	}
	names := []string{"alice", "bob", "carol", "dave"}
	for _, n := range names {
		if _, err := accounts.Put(ctx, n, 100); err != nil {
			return err
		}
	}
	fmt.Println("B: 4 accounts of 100; 4 workers make 25 random transfers each, concurrently")
	if err := printTotal(ctx, accounts, "before"); err != nil {
		return err
	}

	var wg sync.WaitGroup
	errs := make([]error, 4)
	for w := range errs {
		wg.Go(func() {
			for range 25 {
				from, to := names[rand.IntN(4)], names[rand.IntN(4)]
				if from == to {
					continue
				}
				if errs[w] = transfer(ctx, cli, accounts, from, to, 1+rand.IntN(40)); errs[w] != nil {
					return
				}
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return printTotal(ctx, accounts, "after")
}

// transfer moves amount from one account to another, if there is enough.
// Atomically runs the function again when another transfer changed either
// account meanwhile, so no update is lost.
func transfer(ctx context.Context, cli *etcdkit.Client, accounts *etcdkit.KV[int], from, to string, amount int) error {
	return cli.Atomically(ctx, func(tx *etcdkit.Tx) error {
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
			return nil // not enough money: nothing moves
		}
		acc.Put(from, a-amount)
		acc.Put(to, b+amount)
		return nil
	})
}

func printTotal(ctx context.Context, accounts *etcdkit.KV[int], when string) error {
	total := 0
	fmt.Printf("   %s:", when)
	for e, err := range accounts.List(ctx) {
		if err != nil {
			return err
		}
		fmt.Printf(" %s=%d", e.Key, e.Value)
		total += e.Value
	}
	fmt.Printf("  total=%d\n", total)
	return nil
}

// clearPrefix deletes every key of kv, so that the program can run again.
func clearPrefix[T any](ctx context.Context, kv *etcdkit.KV[T]) error {
	for e, err := range kv.List(ctx, etcdkit.WithKeysOnly()) {
		if err != nil {
			return err
		}
		if _, err := kv.Delete(ctx, e.Key); err != nil {
			return err
		}
	}
	return nil
}
