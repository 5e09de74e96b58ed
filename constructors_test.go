package etcdkit_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/etcdkit/etcdkit"
)

// TestConstructors_RefuseInvalidInput checks the rule every constructor
// that takes options follows: invalid input is an error at construction,
// matching ErrInvalidArgument, or ErrInvalidTTL / ErrEmptyKey where those
// say more, and no value is returned.
func TestConstructors_RefuseInvalidInput(t *testing.T) {
	t.Parallel()
	cli := newClient(t)
	name := lockName(t)
	kv := etcdkit.NewKV(cli, testPrefix(t), etcdkit.String())
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	tests := []struct {
		name string
		make func() (any, error)
		want error
	}{
		{"NewQueue nil client", func() (any, error) { return etcdkit.NewQueue(nil, "q/", etcdkit.String()) }, etcdkit.ErrInvalidArgument},
		{"NewQueue nil codec", func() (any, error) { return etcdkit.NewQueue[string](cli, "q/", nil) }, etcdkit.ErrInvalidArgument},
		{"NewQueue AtLeastOnce(0)", func() (any, error) {
			return etcdkit.NewQueue(cli, "q/", etcdkit.String(), etcdkit.AtLeastOnce(0))
		}, etcdkit.ErrInvalidTTL},
		{"NewQueue AtLeastOnce(1ms)", func() (any, error) {
			return etcdkit.NewQueue(cli, "q/", etcdkit.String(), etcdkit.AtLeastOnce(time.Millisecond))
		}, etcdkit.ErrInvalidTTL},
		{"NewQueue AtLeastOnce(-1s)", func() (any, error) {
			return etcdkit.NewQueue(cli, "q/", etcdkit.String(), etcdkit.AtLeastOnce(-time.Second))
		}, etcdkit.ErrInvalidTTL},
		{"NewQueue empty dead letters", func() (any, error) {
			return etcdkit.NewQueue(cli, "q/", etcdkit.String(), etcdkit.WithDeadLetter(""))
		}, etcdkit.ErrEmptyKey},
		{"NewPriorityQueue nil codec", func() (any, error) { return etcdkit.NewPriorityQueue[string](cli, "q/", nil) }, etcdkit.ErrInvalidArgument},
		{"NewPriorityQueue AtLeastOnce(1ms)", func() (any, error) {
			return etcdkit.NewPriorityQueue(cli, "q/", etcdkit.String(), etcdkit.AtLeastOnce(time.Millisecond))
		}, etcdkit.ErrInvalidTTL},
		{"Semaphore empty name", func() (any, error) { return cli.Semaphore("", 1) }, etcdkit.ErrEmptyKey},
		{"Semaphore limit 0", func() (any, error) { return cli.Semaphore(name, 0) }, etcdkit.ErrInvalidArgument},
		{"Semaphore limit -1", func() (any, error) { return cli.Semaphore(name, -1) }, etcdkit.ErrInvalidArgument},
		{"Semaphore LockTTL(1ms)", func() (any, error) {
			return cli.Semaphore(name, 1, etcdkit.LockTTL(time.Millisecond))
		}, etcdkit.ErrInvalidTTL},
		{"Semaphore NUL in name", func() (any, error) { return cli.Semaphore(name+"\x00", 1) }, etcdkit.ErrInvalidArgument},
		{"RWMutex empty name", func() (any, error) { return cli.RWMutex("") }, etcdkit.ErrEmptyKey},
		{"RWMutex LockTTL(0)", func() (any, error) { return cli.RWMutex(name, etcdkit.LockTTL(0)) }, etcdkit.ErrInvalidTTL},
		{"RWMutex NUL in name", func() (any, error) { return cli.RWMutex(name + "\x00") }, etcdkit.ErrInvalidArgument},
		{"NewDoubleBarrier n 0", func() (any, error) { return etcdkit.NewDoubleBarrier(cli, name, 0) }, etcdkit.ErrInvalidArgument},
		{"NewDoubleBarrier empty key", func() (any, error) { return etcdkit.NewDoubleBarrier(cli, "", 2) }, etcdkit.ErrEmptyKey},
		{"NewDoubleBarrier BarrierTTL(1ms)", func() (any, error) {
			return etcdkit.NewDoubleBarrier(cli, name, 2, etcdkit.BarrierTTL(time.Millisecond))
		}, etcdkit.ErrInvalidTTL},
		{"Mirror WithIndex nil fn", func() (any, error) {
			return kv.Mirror(ctx, etcdkit.WithIndex[string]("by-x", nil))
		}, etcdkit.ErrInvalidArgument},
		{"Mirror WithIndex empty name", func() (any, error) {
			return kv.Mirror(ctx, etcdkit.WithIndex("", func(etcdkit.Entry[string]) []string { return nil }))
		}, etcdkit.ErrInvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := tt.make()
			assert.ErrorIs(t, err, tt.want)
			assert.Nil(t, v, "value returned with the error")
		})
	}
}
