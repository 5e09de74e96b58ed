package etcdkit_test

// The reasons an exported function or method has no runnable example yet.
const (
	// reasonSettling: its API (constructor validation, the semaphore's
	// stored limit, the at-most-once queue's Ack, names that overlap, a read
	// hold's fence) is being settled; its example comes with the settled API.
	reasonSettling = "API being settled"
	// reasonTB: it takes a testing.TB, or is an option only such a call
	// takes, and a runnable example has none; the package's own tests show
	// it in use, and Run, RunCluster and RunProxy are its example-friendly
	// counterparts.
	reasonTB = "takes a testing.TB"
)

// exampleAllowList are the exported functions and methods without a
// runnable example, each with why. TestExampleCoverage fails on a name
// missing here, and on a name listed here that has an example: the list
// only shrinks.
var exampleAllowList = map[string]string{
	"etcdkit.Barrier.Hold":             reasonSettling,
	"etcdkit.Barrier.Release":          reasonSettling,
	"etcdkit.Barrier.Wait":             reasonSettling,
	"etcdkit.BarrierTTL":               reasonSettling,
	"etcdkit.Client.Leader":            reasonSettling,
	"etcdkit.Client.ObserveLeaderInfo": reasonSettling,
	"etcdkit.DoubleBarrier.Enter":      reasonSettling,
	"etcdkit.DoubleBarrier.Leave":      reasonSettling,
	"etcdkit.Leadership.Err":           reasonSettling,
	"etcdkit.Leadership.Fence":         reasonSettling,
	"etcdkit.Leadership.Held":          reasonSettling,
	"etcdkit.Leadership.Key":           reasonSettling,
	"etcdkit.Leadership.Lost":          reasonSettling,
	"etcdkit.Leadership.Proclaim":      reasonSettling,
	"etcdkit.Leadership.Resign":        reasonSettling,
	"etcdkit.NewBarrier":               reasonSettling,
	"etcdkit.NewDoubleBarrier":         reasonSettling,
	"etcdtest.Cluster.AddLearner":      reasonTB,
	"etcdtest.Cluster.Client":          reasonTB,
	"etcdtest.Cluster.Proxy":           reasonTB,
	"etcdtest.Cluster.RawClient":       reasonTB,
	"etcdtest.Cluster.WaitLeader":      reasonTB,
	"etcdtest.Proxy.Client":            reasonTB,
	"etcdtest.Server.Client":           reasonTB,
	"etcdtest.Server.Compact":          reasonTB,
	"etcdtest.Server.EnableAuth":       reasonTB,
	"etcdtest.Server.Proxy":            reasonTB,
	"etcdtest.Server.RawClient":        reasonTB,
	"etcdtest.Server.Restart":          reasonTB,
	"etcdtest.Start":                   reasonTB,
	"etcdtest.StartCluster":            reasonTB,
	"etcdtest.WithClientConfig":        reasonTB,
	"etcdtest.WithFaults":              reasonTB,
}
