package discovery_test

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/naming/endpoints"

	"github.com/etcdkit/etcdkit"
	"github.com/etcdkit/etcdkit/discovery"
)

func TestHealthBadInput(t *testing.T) {
	t.Parallel()
	cli := testServer.Client(t)
	raw := testServer.RawClient(t)
	ctx := testCtx(t)
	ok := discovery.Instance{ID: "i", Addr: "127.0.0.1:1"}
	pass := func(context.Context) error { return nil }
	tests := []struct {
		name    string
		inst    discovery.Instance
		opts    []discovery.RegisterOption
		mention string
	}{
		{"zero interval", ok, []discovery.RegisterOption{discovery.WithCheck(0, pass)}, "interval 0s"},
		{"negative interval", ok, []discovery.RegisterOption{discovery.WithCheck(-time.Second, pass)}, "interval -1s"},
		{"nil check", ok, []discovery.RegisterOption{discovery.WithCheck(time.Second, nil)}, "nil check"},
		{"zero timeout", ok, []discovery.RegisterOption{discovery.WithCheck(time.Second, pass, discovery.CheckTimeout(0))}, "timeout 0s"},
		{"no failure before critical", ok, []discovery.RegisterOption{discovery.WithCheck(time.Second, pass, discovery.FailuresBeforeCritical(0))}, "FailuresBeforeCritical(0)"},
		{"no success before passing", ok, []discovery.RegisterOption{discovery.WithCheck(time.Second, pass, discovery.SuccessesBeforePassing(0))}, "SuccessesBeforePassing(0)"},
		{"warning not before critical", ok, []discovery.RegisterOption{discovery.WithCheck(time.Second, pass, discovery.FailuresBeforeWarning(2), discovery.FailuresBeforeCritical(2))}, "FailuresBeforeWarning(2)"},
		{"negative warning", ok, []discovery.RegisterOption{discovery.WithCheck(time.Second, pass, discovery.FailuresBeforeWarning(-1))}, "FailuresBeforeWarning(-1)"},
		{"zero critical deadline", ok, []discovery.RegisterOption{discovery.DeregisterCriticalAfter(0)}, "DeregisterCriticalAfter(0s)"},
		{"unknown status", discovery.Instance{ID: "i", Addr: "127.0.0.1:1", Health: discovery.Health{Status: 7}}, nil, "status 7"},
		{"address with a space", discovery.Instance{ID: "i", Addr: "127.0.0.1 :1"}, nil, `"127.0.0.1 :1"`},
		{"address with a newline", discovery.Instance{ID: "i", Addr: "127.0.0.1:1\n"}, nil, "control character"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svc := serviceName(t)
			reg, err := discovery.Register(ctx, cli, svc, tt.inst, tt.opts...)
			require.ErrorIs(t, err, etcdkit.ErrInvalidArgument)
			assert.Nil(t, reg)
			assert.Contains(t, err.Error(), tt.mention)
			assert.Contains(t, err.Error(), svc+"/i")
			resp, err := raw.Get(ctx, svc+"/", clientv3.WithPrefix())
			require.NoError(t, err)
			assert.Zero(t, resp.Count, "keys written")
		})
	}
	t.Run("filters", func(t *testing.T) {
		for _, f := range []discovery.StatusFilter{discovery.WithStatus(), discovery.WithStatus(discovery.Passing, 9)} {
			_, err := discovery.Lookup(ctx, cli, "svc", f)
			assert.ErrorIs(t, err, etcdkit.ErrInvalidArgument, "Lookup")
			_, err = discovery.NewSet(ctx, cli, "svc", f)
			assert.ErrorIs(t, err, etcdkit.ErrInvalidArgument, "NewSet")
			_, err = discovery.NewResolver(cli, f)
			assert.ErrorIs(t, err, etcdkit.ErrInvalidArgument, "NewResolver")
		}
		_, err := discovery.NewResolver(nil)
		assert.ErrorIs(t, err, etcdkit.ErrInvalidArgument, "NewResolver(nil)")
	})
	t.Run("SetStatus", func(t *testing.T) {
		svc := serviceName(t)
		reg, err := discovery.Register(ctx, cli, svc, ok)
		require.NoError(t, err)
		defer reg.Close(ctx)
		before := storedAt(t, raw, reg.Key())
		require.ErrorIs(t, reg.SetStatus(ctx, 3, "x"), etcdkit.ErrInvalidArgument)
		assert.Equal(t, before, storedAt(t, raw, reg.Key()), "the stored instance after a refused SetStatus")
	})
}

// recordAt decodes the endpoint record stored at key.
func recordAt(t testing.TB, raw *clientv3.Client, key string) map[string]any {
	t.Helper()
	v := storedAt(t, raw, key).Value
	require.NotEmpty(t, v, "nothing at %s", key)
	var rec map[string]any
	require.NoError(t, json.Unmarshal([]byte(v), &rec))
	return rec
}

// statusAt returns the status stored at key: "" for a record without one.
func statusAt(t testing.TB, raw *clientv3.Client, key string) string {
	t.Helper()
	h, _ := recordAt(t, raw, key)["Health"].(map[string]any)
	s, _ := h["Status"].(string)
	return s
}

func TestStatusInRecord(t *testing.T) {
	t.Parallel()
	cli := testServer.Client(t)
	raw := testServer.RawClient(t)
	ctx := testCtx(t)
	svc := serviceName(t)
	reg, err := discovery.Register(ctx, cli, svc, discovery.Instance{ID: "i", Addr: "10.0.0.1:80", Metadata: map[string]string{"zone": "z1"}})
	require.NoError(t, err)
	defer reg.Close(ctx)
	// A passing instance is stored exactly as etcd's endpoints.Manager
	// would store it.
	assert.JSONEq(t, `{"Op":0,"Addr":"10.0.0.1:80","Metadata":{"zone":"z1"}}`, storedAt(t, raw, reg.Key()).Value)

	require.NoError(t, reg.SetStatus(ctx, discovery.Warning, "queue 80% full"))
	rec := recordAt(t, raw, reg.Key())
	assert.Equal(t, "10.0.0.1:80", rec["Addr"])
	assert.Equal(t, map[string]any{"zone": "z1"}, rec["Metadata"])
	h := rec["Health"].(map[string]any)
	assert.Equal(t, "warning", h["Status"])
	assert.Equal(t, "queue 80% full", h["Output"])
	assert.NotEmpty(t, h["Since"])

	// etcd's own naming package still reads the endpoint, address and
	// metadata unchanged.
	em, err := endpoints.NewManager(cli.Raw(), svc)
	require.NoError(t, err)
	eps, err := em.List(ctx)
	require.NoError(t, err)
	require.Contains(t, eps, reg.Key())
	assert.Equal(t, "10.0.0.1:80", eps[reg.Key()].Addr)
	assert.Equal(t, map[string]any{"zone": "z1"}, eps[reg.Key()].Metadata)

	got, err := discovery.Lookup(ctx, cli, svc)
	require.NoError(t, err)
	require.Len(t, got, 1)
	assert.Equal(t, discovery.Warning, got[0].Health.Status)
	assert.Equal(t, "queue 80% full", got[0].Health.Output)
	assert.Equal(t, reg.Health().Since.UTC(), got[0].Health.Since.UTC())
}

func TestLookupAndSetFilterStatus(t *testing.T) {
	t.Parallel()
	cli := testServer.Client(t)
	ctx := testCtx(t)
	svc := serviceName(t)
	regs := map[discovery.Status]*discovery.Registration{}
	for _, s := range []discovery.Status{discovery.Passing, discovery.Warning, discovery.Critical} {
		reg, err := discovery.Register(ctx, cli, svc, discovery.Instance{ID: s.String(), Addr: "10.0.0.1:80", Health: discovery.Health{Status: s}})
		require.NoError(t, err)
		defer reg.Close(ctx)
		regs[s] = reg
	}
	ids := func(insts []discovery.Instance) []string {
		var out []string
		for _, i := range insts {
			out = append(out, i.ID)
		}
		return out
	}
	for _, tt := range []struct {
		name string
		opts []discovery.LookupOption
		want []string
	}{
		{"default: all", nil, []string{"critical", "passing", "warning"}},
		{"passing", []discovery.LookupOption{discovery.WithStatus(discovery.Passing)}, []string{"passing"}},
		{"serving", []discovery.LookupOption{discovery.WithStatus(discovery.Passing, discovery.Warning)}, []string{"passing", "warning"}},
		{"all", []discovery.LookupOption{discovery.WithStatus(discovery.Passing, discovery.Warning, discovery.Critical)}, []string{"critical", "passing", "warning"}},
	} {
		got, err := discovery.Lookup(ctx, cli, svc, tt.opts...)
		require.NoError(t, err, tt.name)
		assert.Equal(t, tt.want, ids(got), tt.name)
	}

	var mu sync.Mutex
	var events []string
	record := func(what string) func(discovery.Instance) {
		return func(i discovery.Instance) {
			mu.Lock()
			defer mu.Unlock()
			events = append(events, what+" "+i.ID+" "+i.Health.Status.String())
		}
	}
	eventsNow := func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), events...)
	}
	set, err := discovery.NewSet(ctx, cli, svc, discovery.WithStatus(discovery.Passing),
		discovery.OnAdd(record("add")), discovery.OnRemove(record("remove")))
	require.NoError(t, err)
	defer set.Close()
	assert.Equal(t, []string{"passing"}, ids(set.Snapshot()))
	all, err := discovery.NewSet(ctx, cli, svc)
	require.NoError(t, err)
	defer all.Close()
	assert.Equal(t, []string{"critical", "passing", "warning"}, ids(all.Snapshot()), "a set without a filter")

	require.NoError(t, regs[discovery.Critical].SetStatus(ctx, discovery.Passing, ""))
	require.NoError(t, regs[discovery.Passing].SetStatus(ctx, discovery.Critical, "down"))
	want := []string{"add passing passing", "add critical passing", "remove passing passing"}
	waitFor(t, 5*time.Second, "the filtered set follows status changes", func() bool {
		return assert.ObjectsAreEqual(want, eventsNow())
	})
	assert.Equal(t, []string{"critical"}, ids(set.Snapshot()))
}

// TestStatusKeptOnPutBack checks that what a registration puts back, after
// its key was deleted or its lease lost, is its current status, not the
// instance as first registered.
func TestStatusKeptOnPutBack(t *testing.T) {
	t.Parallel()
	cli := testServer.Client(t)
	raw := testServer.RawClient(t)
	ctx := testCtx(t)
	reg, err := discovery.Register(ctx, cli, serviceName(t), discovery.Instance{ID: "i", Addr: "10.0.0.1:80"}, discovery.WithTTL(keepTTL))
	require.NoError(t, err)
	defer reg.Close(ctx)
	require.NoError(t, reg.SetStatus(ctx, discovery.Critical, "disk full"))
	ours := storedAt(t, raw, reg.Key())
	require.Equal(t, "critical", statusAt(t, raw, reg.Key()))

	_, err = raw.Delete(ctx, reg.Key())
	require.NoError(t, err)
	waitStored(t, raw, reg.Key(), ours, "the critical instance put back after a delete")

	_, err = raw.Revoke(ctx, clientv3.LeaseID(ours.Lease))
	require.NoError(t, err)
	waitFor(t, 2*keepTTL, "registered again under a new lease", func() bool {
		s := storedAt(t, raw, reg.Key())
		return s.Lease != 0 && s.Lease != ours.Lease
	})
	assert.Equal(t, ours.Value, storedAt(t, raw, reg.Key()).Value, "the value registered again")

	// A status set while the key is gone is what comes back.
	_, err = raw.Delete(ctx, reg.Key())
	require.NoError(t, err)
	require.NoError(t, reg.SetStatus(ctx, discovery.Passing, ""))
	waitFor(t, 2*keepTTL, "the passing instance back", func() bool {
		v := storedAt(t, raw, reg.Key()).Value
		return v != "" && statusAt(t, raw, reg.Key()) == ""
	})
}

// scripted is a check whose results the test gives one by one.
type scripted struct {
	calls   chan struct{} // a run started
	results chan error
}

func newScripted() *scripted {
	return &scripted{calls: make(chan struct{}, 1), results: make(chan error)}
}

func (s *scripted) check(ctx context.Context) error {
	select {
	case s.calls <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-s.results:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// give makes the current run return err, and waits until the next run
// starts: by then the result is recorded.
func (s *scripted) give(t testing.TB, err error) {
	t.Helper()
	select {
	case s.results <- err:
	case <-time.After(10 * time.Second):
		require.FailNow(t, "the check did not run")
	}
	select {
	case <-s.calls:
	case <-time.After(10 * time.Second):
		require.FailNow(t, "the check did not run again")
	}
}

func TestCheckThresholds(t *testing.T) {
	t.Parallel()
	cli := testServer.Client(t)
	raw := testServer.RawClient(t)
	ctx := testCtx(t)
	chk := newScripted()
	reg, err := discovery.Register(ctx, cli, serviceName(t), discovery.Instance{ID: "i", Addr: "10.0.0.1:80"},
		discovery.WithCheck(10*time.Millisecond, chk.check, discovery.CheckTimeout(time.Minute),
			discovery.FailuresBeforeWarning(1), discovery.FailuresBeforeCritical(3), discovery.SuccessesBeforePassing(2)))
	require.NoError(t, err)
	defer reg.Close(ctx)
	<-chk.calls

	fail := errors.New("no answer")
	steps := []struct {
		result error
		want   discovery.Status
	}{
		{fail, discovery.Warning}, {fail, discovery.Warning}, {fail, discovery.Critical},
		{nil, discovery.Critical}, {fail, discovery.Critical}, {nil, discovery.Critical}, {nil, discovery.Passing},
	}
	for i, st := range steps {
		chk.give(t, st.result)
		assert.Equal(t, st.want, reg.Health().Status, "after step %d", i)
	}
	waitFor(t, 5*time.Second, "etcd holds passing", func() bool { return statusAt(t, raw, reg.Key()) == "" })

	chk.give(t, fail)
	h := reg.Health()
	assert.Equal(t, discovery.Warning, h.Status)
	assert.Equal(t, "no answer", h.Output)
	waitFor(t, 5*time.Second, "etcd holds warning", func() bool { return statusAt(t, raw, reg.Key()) == "warning" })
}

func TestDeregisterCriticalAfter(t *testing.T) {
	t.Parallel()
	cli := testServer.Client(t)
	raw := testServer.RawClient(t)
	ctx := testCtx(t)
	chk := newScripted()
	reg, err := discovery.Register(ctx, cli, serviceName(t), discovery.Instance{ID: "i", Addr: "10.0.0.1:80"},
		discovery.WithTTL(keepTTL), discovery.WithCheck(10*time.Millisecond, chk.check, discovery.CheckTimeout(time.Minute)),
		discovery.DeregisterCriticalAfter(300*time.Millisecond))
	require.NoError(t, err)
	defer reg.Close(ctx)
	<-chk.calls
	// Critical, back to passing before the deadline: still registered.
	chk.give(t, errors.New("blip"))
	require.Equal(t, discovery.Critical, reg.Health().Status)
	chk.give(t, nil)
	time.Sleep(500 * time.Millisecond)
	require.Nil(t, reg.Err())
	require.NotEqual(t, stored{}, storedAt(t, raw, reg.Key()))

	go func() {
		for {
			select {
			case chk.results <- errors.New("disk gone"):
			case <-reg.Done():
				return
			}
		}
	}()
	select {
	case <-reg.Done():
	case <-time.After(10 * time.Second):
		require.FailNow(t, "not deregistered after being critical for 300ms")
	}
	err = reg.Err()
	require.ErrorIs(t, err, etcdkit.ErrClosed)
	assert.Contains(t, err.Error(), "critical for 300ms")
	assert.Contains(t, err.Error(), "disk gone")
	assert.Equal(t, stored{}, storedAt(t, raw, reg.Key()), "the key, at once")
	staysGone(t, raw, reg.Key())
	assert.NoError(t, reg.Close(ctx))
	assert.ErrorIs(t, reg.SetStatus(ctx, discovery.Passing, ""), etcdkit.ErrClosed)
}

func TestDrain(t *testing.T) {
	t.Parallel()
	cli := testServer.Client(t)
	raw := testServer.RawClient(t)
	ctx := testCtx(t)
	svc := serviceName(t)
	var mu sync.Mutex
	var events []string
	record := func(what string) func(discovery.Instance) {
		return func(i discovery.Instance) {
			mu.Lock()
			defer mu.Unlock()
			events = append(events, what+" "+i.Health.Status.String()+" "+i.Health.Output)
		}
	}
	set, err := discovery.NewSet(ctx, cli, svc, discovery.OnAdd(record("add")), discovery.OnRemove(record("remove")))
	require.NoError(t, err)
	defer set.Close()
	reg, err := discovery.Register(ctx, cli, svc, discovery.Instance{ID: "i", Addr: "10.0.0.1:80"},
		discovery.WithCheck(10*time.Millisecond, func(context.Context) error { return nil }))
	require.NoError(t, err)

	const d = 300 * time.Millisecond
	start := time.Now()
	require.NoError(t, reg.Drain(ctx, d))
	assert.GreaterOrEqual(t, time.Since(start), d, "Drain returned before its time")
	assert.Equal(t, stored{}, storedAt(t, raw, reg.Key()), "the key after Drain")
	// The instance was critical, its check passing all along, before it
	// left.
	want := []string{"add passing ", "add critical draining", "remove critical draining"}
	waitFor(t, 5*time.Second, "the set saw the drain", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return assert.ObjectsAreEqual(want, events)
	})
	<-reg.Done()
	assert.Nil(t, reg.Err(), "Err after a drain, which closes")

	t.Run("ctx ends first", func(t *testing.T) {
		reg, err := discovery.Register(ctx, cli, svc, discovery.Instance{ID: "j", Addr: "10.0.0.1:80"})
		require.NoError(t, err)
		dctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		defer cancel()
		err = reg.Drain(dctx, time.Hour)
		require.ErrorIs(t, err, context.DeadlineExceeded)
		assert.Equal(t, stored{}, storedAt(t, raw, reg.Key()), "the key, deregistered at once")
	})
}
