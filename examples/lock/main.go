// Command lock shows a distributed lock: two workers (two clients, as if two
// processes) take turns holding the lock "examples/lock/report", each
// guarding its write with the lock, so that a holder that lost the lock
// could not write.
//
// It connects to $ETCD_ENDPOINTS (see etcdkit.ConfigFromEnv); when that is
// not set, it starts an embedded etcd of its own, so it runs anywhere:
//
//	go run ./examples/lock
package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/etcdkit/etcdkit"
	"github.com/etcdkit/etcdkit/etcdtest"
)

const lockName = "examples/lock/report"

func main() {
	if err := run(); err != nil {
		log.Print(err)
		os.Exit(1)
	}
}

func run() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	cfg, stopServer, err := etcdtest.ConfigFromEnvOrRun()
	if err != nil {
		return err
	}
	defer stopServer()
	alice, err := etcdkit.New(ctx, cfg)
	if err != nil {
		return err
	}
	defer alice.Close()
	bob, err := etcdkit.New(ctx, cfg)
	if err != nil {
		return err
	}
	defer bob.Close()

	// Alice takes the lock; Bob's TryLock fails at once.
	la, err := alice.Lock(ctx, lockName)
	if err != nil {
		return err
	}
	fmt.Printf("alice holds %s (fence %d)\n", lockName, la.Fence())
	if _, err := bob.TryLock(ctx, lockName); errors.Is(err, etcdkit.ErrLocked) {
		fmt.Println("bob's TryLock: locked by another holder")
	}

	// Bob waits for the lock in the background.
	bobDone := make(chan error, 1)
	go func() { bobDone <- bobWrites(ctx, bob) }()

	// Alice writes, guarded by her lock, then releases it.
	if err := guardedWrite(ctx, alice, la, "written by alice"); err != nil {
		return err
	}
	if err := la.Unlock(ctx); err != nil {
		return err
	}
	fmt.Println("alice unlocked")
	if err := <-bobDone; err != nil {
		return err
	}

	// WithLock runs a function with the lock held and releases it after;
	// the function's ctx ends if the lock is lost meanwhile.
	return alice.WithLock(ctx, lockName, func(ctx context.Context) error {
		fmt.Println("alice runs the nightly job under the lock")
		return nil
	})
}

// bobWrites waits for the lock, writes under it and releases it.
func bobWrites(ctx context.Context, bob *etcdkit.Client) error {
	l, err := bob.Lock(ctx, lockName)
	if err != nil {
		return err
	}
	defer l.Unlock(ctx)
	fmt.Printf("bob holds %s (fence %d)\n", lockName, l.Fence())
	return guardedWrite(ctx, bob, l, "written by bob")
}

// guardedWrite stores the report only if l is still held.
func guardedWrite(ctx context.Context, cli *etcdkit.Client, l *etcdkit.Lock, report string) error {
	reports := etcdkit.NewKV(cli, "examples/lock/data/", etcdkit.String())
	res, err := cli.Txn(ctx).If(l.Held()).Then(reports.PutOp("report", report)).Commit()
	if err != nil {
		return err
	}
	fmt.Printf("guarded write %q applied: %v\n", report, res.Succeeded)
	return nil
}
