package etcdtest

import (
	"fmt"
	"testing"
)

// RunCluster is [StartCluster] for programs that have no testing.TB, such
// as examples: it starts a cluster of n members and returns once every
// member serves clients. The caller must call [Cluster.Close] to stop the
// members and remove their data. It fails for n under one, and as [Run]
// does when a member cannot start or does not serve clients within 20
// seconds, leaving nothing behind.
//
// The methods of Cluster that report failures through a testing.TB
// ([Cluster.Member] with an index out of range, [Cluster.RestartMember]
// when the member cannot start, [Cluster.WaitLeader] without a leader)
// panic instead on a cluster made by RunCluster, with the reason; methods
// that take a testing.TB argument use that one.
func RunCluster(n int, opts ...Option) (*Cluster, error) {
	if n < 1 {
		return nil, fmt.Errorf("etcdtest: RunCluster: a cluster needs at least one member, got %d", n)
	}
	ms, err := startMembers(n, buildOptions(opts), clusterTiming)
	if err != nil {
		return nil, err
	}
	return &Cluster{tb: programTB{}, members: ms}, nil
}

// programTB stands in for a testing.TB in a program: failing panics.
// Embedding the interface satisfies its unexported method; calling a
// method not overridden here would panic on the nil interface, and the
// Cluster methods use only these.
type programTB struct{ testing.TB }

func (programTB) Helper()                           {}
func (programTB) Fatal(args ...any)                 { panic(fmt.Sprint(args...)) }
func (programTB) Fatalf(format string, args ...any) { panic(fmt.Sprintf(format, args...)) }
func (programTB) Error(args ...any)                 { panic(fmt.Sprint(args...)) }
func (programTB) Errorf(format string, args ...any) { panic(fmt.Sprintf(format, args...)) }
