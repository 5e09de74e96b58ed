package etcdkit_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/etcdkit/etcdkit"
)

type testConfig struct {
	Port int `json:"port"`
}

func validPort(c testConfig) error {
	if c.Port <= 0 || c.Port > 65535 {
		return fmt.Errorf("port %d out of range", c.Port)
	}
	return nil
}

// recv waits for one value from ch.
func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("no %s within 10s", what)
		panic("unreachable")
	}
}

func TestFollowValidator(t *testing.T) {
	t.Parallel()
	cli := newClient(t)
	prefix := testPrefix(t)
	kv := etcdkit.NewKV(cli, prefix, etcdkit.JSON[testConfig]())
	ctx := testCtx(t)
	if _, err := kv.Put(ctx, "app", testConfig{Port: 80}); err != nil {
		t.Fatal(err)
	}
	rejected := make(chan error, 10)
	changed := make(chan [2]testConfig, 10)
	live, err := kv.Follow(ctx, "app",
		etcdkit.WithValidator(validPort),
		etcdkit.WithOnReject[testConfig](func(key string, err error) { rejected <- err }),
		etcdkit.OnChange(func(old, new testConfig) { changed <- [2]testConfig{old, new} }),
	)
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	if live.Load().Port != 80 {
		t.Fatalf("Load() = %+v, want port 80", live.Load())
	}

	// Another client writes a value that fails validation.
	writer := etcdkit.NewKV(newClient(t), prefix, etcdkit.JSON[testConfig]())
	if _, err := writer.Put(ctx, "app", testConfig{Port: 70000}); err != nil {
		t.Fatal(err)
	}
	if err := recv(t, rejected, "rejection"); err == nil {
		t.Error("rejection reported with a nil error")
	}
	if live.Load().Port != 80 {
		t.Errorf("Load() after a rejected value = %+v, want the last good port 80", live.Load())
	}
	// A value that does not decode is rejected too.
	if _, err := cli.Raw().Put(ctx, prefix+"app", "{"); err != nil {
		t.Fatal(err)
	}
	var de *etcdkit.DecodeError
	if err := recv(t, rejected, "decode rejection"); !errors.As(err, &de) {
		t.Errorf("rejection of an undecodable value = %v, want a DecodeError", err)
	}
	rev, err := writer.Put(ctx, "app", testConfig{Port: 8080})
	if err != nil {
		t.Fatal(err)
	}
	if c := recv(t, changed, "change"); c[0].Port != 80 || c[1].Port != 8080 {
		t.Errorf("OnChange(%+v, %+v), want 80 -> 8080", c[0], c[1])
	}
	if live.Load().Port != 8080 || live.Revision() != rev {
		t.Errorf("Load() = %+v at %d, want port 8080 at %d", live.Load(), live.Revision(), rev)
	}
	select {
	case c := <-changed:
		t.Errorf("OnChange(%+v, %+v) for a rejected value", c[0], c[1])
	default:
	}
}

func TestFollowDefault(t *testing.T) {
	t.Parallel()
	kv := etcdkit.NewKV(newClient(t), testPrefix(t), etcdkit.String())
	ctx := testCtx(t)
	changed := make(chan string, 10)
	live, err := kv.Follow(ctx, "level", etcdkit.WithDefault("info"),
		etcdkit.OnChange(func(_, new string) { changed <- new }))
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	if live.Load() != "info" || live.Revision() != 0 {
		t.Errorf("Load() of a missing key = %q at %d, want the default", live.Load(), live.Revision())
	}
	kv.Put(ctx, "level", "debug")
	if v := recv(t, changed, "change"); v != "debug" || live.Load() != "debug" {
		t.Errorf("after a put: change %q, Load() %q, want debug", v, live.Load())
	}
	kv.Delete(ctx, "level")
	if v := recv(t, changed, "change"); v != "info" || live.Load() != "info" {
		t.Errorf("after a delete: change %q, Load() %q, want the default", v, live.Load())
	}
}

func TestFollowFailures(t *testing.T) {
	t.Parallel()
	cli := newClient(t)
	kv := etcdkit.NewKV(cli, testPrefix(t), etcdkit.JSON[testConfig]())
	ctx := testCtx(t)
	if _, err := kv.Follow(ctx, "missing"); !errors.Is(err, etcdkit.ErrNotFound) {
		t.Errorf("Follow of a missing key without default = %v, want ErrNotFound", err)
	}
	kv.Put(ctx, "bad", testConfig{Port: -1})
	if _, err := kv.Follow(ctx, "bad", etcdkit.WithValidator(validPort)); err == nil {
		t.Error("Follow of an invalid value without default succeeded")
	}
	live, err := kv.Follow(ctx, "bad", etcdkit.WithValidator(validPort), etcdkit.WithDefault(testConfig{Port: 1}))
	if err != nil {
		t.Fatal(err)
	}
	if live.Load().Port != 1 {
		t.Errorf("Load() = %+v, want the default while the value is invalid", live.Load())
	}
	cli.Close()
	waitClosed(t, live.Done(), time.Second, "Done after Client.Close")
	if !errors.Is(live.Err(), etcdkit.ErrClosed) {
		t.Errorf("Err() after Client.Close = %v, want ErrClosed", live.Err())
	}
	if live.Load().Port != 1 {
		t.Errorf("Load() after Close = %+v, want the last value", live.Load())
	}
}
