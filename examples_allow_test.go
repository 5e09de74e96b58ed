package etcdkit_test

// The reasons an exported function or method has no runnable example yet.
const (
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
	"etcdtest.Cluster.AddLearner": reasonTB,
	"etcdtest.Cluster.Client":     reasonTB,
	"etcdtest.Cluster.Isolate":    reasonTB,
	"etcdtest.Cluster.Proxy":      reasonTB,
	"etcdtest.Cluster.RawClient":  reasonTB,
	"etcdtest.Cluster.WaitLeader": reasonTB,
	"etcdtest.Proxy.Client":       reasonTB,
	"etcdtest.Server.Client":      reasonTB,
	"etcdtest.Server.Compact":     reasonTB,
	"etcdtest.Server.EnableAuth":  reasonTB,
	"etcdtest.Server.Proxy":       reasonTB,
	"etcdtest.Server.RawClient":   reasonTB,
	"etcdtest.Server.Restart":     reasonTB,
	"etcdtest.Start":              reasonTB,
	"etcdtest.StartCluster":       reasonTB,
	"etcdtest.WithClientConfig":   reasonTB,
	"etcdtest.WithFaults":         reasonTB,
}
