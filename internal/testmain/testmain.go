// Package testmain is the TestMain of the packages whose tests share one
// embedded etcd: start it, run the tests, stop it, and check that nothing
// the tests started is still running.
package testmain

import (
	"fmt"
	"io"
	"os"
	"testing"

	"go.uber.org/goleak"
)

// Run starts what the tests share with start (what names it in messages),
// runs m's tests, calls each of after, closes what start returned and, when
// everything passed, fails if a goroutine is left behind. It exits the
// process with the result, as a TestMain must.
func Run(m *testing.M, what string, start func() (io.Closer, error), after ...func()) {
	srv, err := start()
	if err != nil {
		fmt.Fprintf(os.Stderr, "start %s: %v\n", what, err)
		os.Exit(1)
	}
	code := m.Run()
	for _, fn := range after {
		fn()
	}
	if err := srv.Close(); err != nil {
		fmt.Fprintf(os.Stderr, "stop %s: %v\n", what, err)
		code = 1
	}
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "leaked goroutines:", err)
			code = 1
		}
	}
	os.Exit(code)
}
