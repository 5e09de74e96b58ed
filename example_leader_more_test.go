package etcdkit_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/etcdkit/etcdkit"
)

// errTermDone ends the run of exampleTerm after one term.
var errTermDone = errors.New("done")

// exampleTerm runs fn as the leader of election name, once.
func exampleTerm(name string, fn func(term *etcdkit.Term), opts ...etcdkit.LeaderOption) error {
	err := exampleClient().RunAsLeader(context.Background(), name, "replica-1",
		func(ctx context.Context, term *etcdkit.Term) error {
			fn(term)
			return errTermDone // a service would run until ctx ends
		}, opts...)
	if errors.Is(err, errTermDone) {
		return nil
	}
	return err
}

// LeaderTTL sets the lease of the leadership: how long a leader that
// vanished keeps it. Under a second is refused.
func ExampleLeaderTTL() {
	err := exampleTerm("example/leaderttl", func(*etcdkit.Term) { fmt.Println("leading") }, etcdkit.LeaderTTL(2*time.Second))
	fmt.Println(err)
	err = exampleTerm("example/leaderttl", func(*etcdkit.Term) {}, etcdkit.LeaderTTL(time.Millisecond))
	fmt.Println(errors.Is(err, etcdkit.ErrInvalidTTL))
	// Output:
	// leading
	// <nil>
	// true
}

// LeaderBackoff bounds the pause between failed campaigns.
func ExampleLeaderBackoff() {
	err := exampleTerm("example/leaderbackoff", func(*etcdkit.Term) {}, etcdkit.LeaderBackoff(50*time.Millisecond, time.Second))
	fmt.Println(err)
	err = exampleTerm("example/leaderbackoff", func(*etcdkit.Term) {}, etcdkit.LeaderBackoff(time.Second, time.Millisecond))
	fmt.Println(errors.Is(err, etcdkit.ErrInvalidArgument))
	// Output:
	// <nil>
	// true
}

// LeaderStopGrace bounds how long a function that ignores its ctx keeps
// the leadership.
func ExampleLeaderStopGrace() {
	err := exampleTerm("example/leaderstopgrace", func(*etcdkit.Term) {}, etcdkit.LeaderStopGrace(time.Second))
	fmt.Println(err)
	err = exampleTerm("example/leaderstopgrace", func(*etcdkit.Term) {}, etcdkit.LeaderStopGrace(-time.Second))
	fmt.Println(errors.Is(err, etcdkit.ErrInvalidArgument))
	// Output:
	// <nil>
	// true
}

// OnLeaderEvent is told when this client starts and stops leading.
func ExampleOnLeaderEvent() {
	exampleTerm("example/onleaderevent", func(*etcdkit.Term) {}, etcdkit.OnLeaderEvent(func(ev etcdkit.LeaderEvent) {
		if ev.Kind != etcdkit.LeaderObserved {
			fmt.Println(ev.Kind, ev.Name)
		}
	}))
	// Output:
	// started example/onleaderevent
	// stopped example/onleaderevent
}

// LeaderEventKind prints as a word.
func ExampleLeaderEventKind() {
	fmt.Println(etcdkit.LeaderStarted, etcdkit.LeaderStopped, etcdkit.LeaderObserved)
	// Output: started stopped observed
}

// Fence grows with every term: a store that keeps the highest fence it saw
// refuses a write from an older leader.
func ExampleTerm_Fence() {
	var fences []int64
	for range 2 {
		exampleTerm("example/term/fence", func(t *etcdkit.Term) { fences = append(fences, t.Fence()) })
	}
	fmt.Println(fences[1] > fences[0])
	// Output: true
}

// Held guards a write with "still the leader".
func ExampleTerm_Held() {
	state := etcdkit.NewKV(exampleClient(), "example/term/held/", etcdkit.String())
	exampleTerm("example/term/held", func(t *etcdkit.Term) {
		res, err := exampleClient().Txn(context.Background()).If(t.Held()).Then(state.PutOp("owner", t.Value())).Commit()
		fmt.Println(res.Succeeded, err)
	})
	// Output: true <nil>
}

// Key is the term's key in etcd, under the election's name.
func ExampleTerm_Key() {
	exampleTerm("example/term/key", func(t *etcdkit.Term) {
		fmt.Println(strings.HasPrefix(t.Key(), "example/term/key/"))
	})
	// Output: true
}

// Started is when the term began.
func ExampleTerm_Started() {
	before := time.Now()
	exampleTerm("example/term/started", func(t *etcdkit.Term) {
		fmt.Println(!t.Started().Before(before))
	})
	// Output: true
}

// Value is what this client campaigned with.
func ExampleTerm_Value() {
	exampleTerm("example/term/value", func(t *etcdkit.Term) { fmt.Println(t.Value()) })
	// Output: replica-1
}

// NoticeKind names what an Observer is told of, as a metric label.
func ExampleNoticeKind() {
	fmt.Println(etcdkit.NoticeWatchResumed, etcdkit.NoticeLeaseLost)
	// Output: watch_resumed lease_lost
}
