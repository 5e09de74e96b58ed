package bench_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/stretchr/testify/require"

	"github.com/etcdkit/etcdkit"
	"github.com/etcdkit/etcdkit/etcdtest"
	"github.com/etcdkit/etcdkit/internal/testmain"
)

// The suite connects to $ETCD_ENDPOINTS when it is set, so that the server
// runs in another process (bench/cmd/etcd) and its allocations stay out of
// allocs/op; otherwise it starts an embedded etcd without the test kit's
// client proxy. Either way it is started on first use, so a plain go test
// run, which runs no benchmark, starts nothing.

var (
	setupOnce sync.Once
	setupErr  error
	server    *etcdtest.Server // nil with an external server
	kit       *etcdkit.Client  // the facade
	kitCfg    etcdkit.Config   // what kit was made with, for clients made otherwise
	raw       *clientv3.Client // a separate plain clientv3 connection to the same server
	kitConfig etcdkit.Config   // the facade's configuration, for benchmarks that need a client of their own
)

func TestMain(m *testing.M) {
	// Nothing to start: the server starts on first use, so only its
	// teardown is given, as what testmain closes after the run.
	testmain.Run(m, "bench server", func() (io.Closer, error) { return closeFunc(teardown), nil })
}

// closeFunc is an io.Closer that calls itself.
type closeFunc func() error

func (f closeFunc) Close() error { return f() }

// clients returns the two clients of the one server, starting it on first use.
func clients(b *testing.B) (*etcdkit.Client, *clientv3.Client) {
	b.Helper()
	setupOnce.Do(func() { setupErr = setup() })
	require.NoError(b, setupErr)
	return kit, raw
}

func setup() error {
	cfg, err := etcdkit.ConfigFromEnv()
	if err != nil {
		return err
	}
	if os.Getenv(etcdkit.EnvEndpoints) == "" {
		if server, err = etcdtest.Run(etcdtest.WithoutClientProxy()); err != nil {
			return err
		}
		cfg = server.Config()
	}
	kitConfig = cfg
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	kitCfg = cfg
	if kit, err = etcdkit.New(ctx, cfg); err != nil {
		return err
	}
	raw, err = clientv3.New(clientv3.Config{Endpoints: cfg.Endpoints, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	return err
}

func teardown() error {
	var errs []error
	if kit != nil {
		errs = append(errs, kit.Close())
	}
	if raw != nil {
		errs = append(errs, raw.Close())
	}
	if server != nil {
		errs = append(errs, server.Close())
	}
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// prefixes numbers the prefixes, so that every benchmark run has its own keys.
var prefixes atomic.Int64

func newPrefix(name string) string {
	return fmt.Sprintf("bench/%d-%d/%s/", time.Now().UnixNano(), prefixes.Add(1), name)
}

// callerCounts are the numbers of concurrent callers each operation runs with.
var callerCounts = []int{1, 32}

// worker makes one caller's operation; setup done in it is not timed.
type worker func(w int) (op func() error, err error)

// compare runs rawW and kitW with 1 and 32 callers, as
// callers=N/impl=raw and callers=N/impl=etcdkit, then each extra worker as
// callers=N/impl=<its name>.
func compare(b *testing.B, rawW, kitW worker, extra ...namedWorker) {
	for _, n := range callerCounts {
		b.Run("callers="+strconv.Itoa(n), func(b *testing.B) {
			pair := []namedWorker{{"raw", rawW}, {"etcdkit", kitW}}
			if rawSecond(b.Name()) {
				// The server's store grows with every write, so whichever
				// runs second would meet a bigger one each time.
				pair[0], pair[1] = pair[1], pair[0]
			}
			for _, x := range pair {
				b.Run("impl="+x.name, func(b *testing.B) { runCallers(b, n, x.w) })
			}
			for _, x := range extra {
				b.Run("impl="+x.name, func(b *testing.B) { runCallers(b, n, x.w) })
			}
		})
	}
}

// runs counts how often each comparison has run, so that raw and etcdkit
// take turns at running first across -count repetitions.
var runs = struct {
	sync.Mutex
	n map[string]int
}{n: map[string]int{}}

// rawSecond says whether the comparison called name runs etcdkit first this
// time: every other time.
func rawSecond(name string) bool {
	runs.Lock()
	defer runs.Unlock()
	runs.n[name]++
	return runs.n[name]%2 == 0
}

type namedWorker struct {
	name string
	w    worker
}

// runCallers runs b.N operations in all, spread over n goroutines. With
// n > 1 it uses b.RunParallel, whose goroutines take work in batches, so
// that a shared counter does not dominate the cost of a read from memory;
// it starts ceil(n/GOMAXPROCS)*GOMAXPROCS goroutines, exactly n when
// GOMAXPROCS divides n (as with 1, 2, 4, 8, 16 or 32 CPUs).
func runCallers(b *testing.B, n int, mk worker) {
	b.Helper()
	workers := n
	if n > 1 {
		procs := runtime.GOMAXPROCS(0)
		b.SetParallelism((n + procs - 1) / procs)
		workers = (n + procs - 1) / procs * procs
	}
	ops := make([]func() error, workers)
	for w := range workers {
		op, err := mk(w)
		require.NoError(b, err)
		ops[w] = op
	}
	b.ReportAllocs()
	b.ResetTimer()
	if n == 1 {
		for range b.N {
			if err := ops[0](); err != nil {
				b.Fatal(err)
			}
		}
		return
	}
	var next atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		op := ops[next.Add(1)-1]
		for pb.Next() {
			if err := op(); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// user is the value of the JSON cases: a small record, as a service stores.
type user struct {
	Name  string   `json:"name"`
	Email string   `json:"email"`
	Age   int      `json:"age"`
	Roles []string `json:"roles"`
}

var (
	sampleUser  = user{Name: "alice", Email: "alice@example.com", Age: 42, Roles: []string{"admin", "dev"}}
	sampleBytes = mustJSON(sampleUser)
)

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// codecCase is one value type: etcdkit's codec for it, and the encoding the
// raw side does by hand.
type codecCase[T any] struct {
	codec  etcdkit.Codec[T]
	val    T
	encode func(T) ([]byte, error)
	decode func([]byte) (T, error)
	ok     func(T) bool // whether a decoded value looks right
}

var bytesCase = codecCase[[]byte]{
	codec:  etcdkit.Bytes(),
	val:    sampleBytes,
	encode: func(b []byte) ([]byte, error) { return b, nil },
	decode: func(b []byte) ([]byte, error) { return b, nil },
	ok:     func(b []byte) bool { return len(b) > 0 },
}

var jsonCase = codecCase[user]{
	codec:  etcdkit.JSON[user](),
	val:    sampleUser,
	encode: func(u user) ([]byte, error) { return json.Marshal(u) },
	decode: func(b []byte) (user, error) {
		var u user
		err := json.Unmarshal(b, &u)
		return u, err
	},
	ok: func(u user) bool { return u.Name != "" },
}

// byCodec runs fn as codec=bytes and codec=json.
func byCodec(b *testing.B, bytesFn func(*testing.B, codecCase[[]byte]), jsonFn func(*testing.B, codecCase[user])) {
	b.Run("codec=bytes", func(b *testing.B) { bytesFn(b, bytesCase) })
	b.Run("codec=json", func(b *testing.B) { jsonFn(b, jsonCase) })
}

// putRaw writes n keys prefix+keyName(i) with value val, 100 to a transaction.
func putRaw(ctx context.Context, rc *clientv3.Client, prefix string, n int, val []byte) error {
	const perTxn = 100
	for i := 0; i < n; i += perTxn {
		ops := make([]clientv3.Op, 0, perTxn)
		for j := i; j < min(i+perTxn, n); j++ {
			ops = append(ops, clientv3.OpPut(prefix+keyName(j), string(val)))
		}
		if _, err := rc.Txn(ctx).Then(ops...).Commit(); err != nil {
			return err
		}
	}
	return nil
}

func keyName(i int) string { return fmt.Sprintf("k%06d", i) }
