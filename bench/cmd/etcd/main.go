// Command etcd runs the embedded etcd of package etcdtest in its own process
// for the benchmark suite, so that the server's allocations stay out of the
// suite's allocs/op. It prints the client endpoint on one line of stdout and
// serves until it gets SIGINT or SIGTERM, then removes its data:
//
//	go run ./bench/cmd/etcd > /tmp/endpoint &
//	ETCD_ENDPOINTS=$(cat /tmp/endpoint) go test -run '^$' -bench . ./bench
package main

import (
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/etcdkit/etcdkit/etcdtest"
)

func main() {
	srv, err := etcdtest.Run(etcdtest.WithoutClientProxy())
	if err != nil {
		fmt.Fprintln(os.Stderr, "start etcd:", err)
		os.Exit(1)
	}
	fmt.Println(strings.Join(srv.Endpoints(), ","))
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
	if err := srv.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "stop etcd:", err)
		os.Exit(1)
	}
}
