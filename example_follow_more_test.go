package etcdkit_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/etcdkit/etcdkit"
)

// exampleLive follows key under prefix with a default of "none".
func exampleLive(prefix, key string, opts ...etcdkit.FollowOption[string]) (*etcdkit.KV[string], *etcdkit.Live[string]) {
	kv := etcdkit.NewKV(exampleClient(), prefix, etcdkit.String())
	kv.Delete(context.Background(), key)
	l, err := kv.Follow(context.Background(), key, append(opts, etcdkit.WithDefault("none"))...)
	if err != nil {
		panic(err)
	}
	return kv, l
}

// WithDefault applies while the key is missing; without it, Follow of a
// missing key fails with ErrNotFound.
func ExampleWithDefault() {
	ctx := context.Background()
	kv := etcdkit.NewKV(exampleClient(), "example/withdefault/", etcdkit.String())
	_, err := kv.Follow(ctx, "missing")
	fmt.Println(errors.Is(err, etcdkit.ErrNotFound))
	l, err := kv.Follow(ctx, "missing", etcdkit.WithDefault("fallback"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer l.Close()
	fmt.Println(l.Load())
	// Output:
	// true
	// fallback
}

// OnChange is told of every value applied after the first.
func ExampleOnChange() {
	changes := make(chan string)
	kv, l := exampleLive("example/onchange/", "mode", etcdkit.OnChange(func(old, new string) {
		changes <- old + " -> " + new
	}))
	defer l.Close()
	kv.Put(context.Background(), "mode", "fast")
	fmt.Println(<-changes)
	// Output: none -> fast
}

// WithValidator keeps a bad value out; WithOnReject is told why.
func ExampleWithValidator() {
	rejected := make(chan error)
	kv, l := exampleLive("example/withvalidator/", "mode",
		etcdkit.WithValidator(func(v string) error {
			if v != "fast" && v != "safe" {
				return fmt.Errorf("unknown mode %q", v)
			}
			return nil
		}),
		etcdkit.WithOnReject[string](func(key string, err error) { rejected <- err }))
	defer l.Close()
	kv.Put(context.Background(), "mode", "turbo")
	fmt.Println(<-rejected != nil, l.Load())
	// Output: true none
}

// WithOnReject also hears of values that do not decode.
func ExampleWithOnReject() {
	rejected := make(chan string)
	_, l := exampleLive("example/withonreject/", "mode",
		etcdkit.WithOnReject[string](func(key string, err error) {
			var de *etcdkit.DecodeError
			rejected <- fmt.Sprint(key, " decodes: ", !errors.As(err, &de))
		}))
	defer l.Close()
	raw := etcdkit.NewKV(exampleClient(), "example/withonreject/", etcdkit.Bytes())
	raw.Put(context.Background(), "mode", []byte{0xff})
	fmt.Println(<-rejected)
	// Output: mode decodes: false
}

// waitLive waits (up to ten seconds) until l has applied revision rev.
func waitLive(l *etcdkit.Live[string], rev int64) {
	for i := 0; i < 1000 && l.Revision() < rev; i++ {
		time.Sleep(10 * time.Millisecond)
	}
}

// Load is lock-free: call it on every request.
func ExampleLive_Load() {
	kv, l := exampleLive("example/live/load/", "greeting")
	defer l.Close()
	fmt.Println(l.Load())
	rev, _ := kv.Put(context.Background(), "greeting", "hello")
	waitLive(l, rev)
	fmt.Println(l.Load())
	// Output:
	// none
	// hello
}

// Revision is the ModRevision of the value Load returns; 0 for the default.
func ExampleLive_Revision() {
	kv, l := exampleLive("example/live/revision/", "greeting")
	defer l.Close()
	fmt.Println(l.Revision())
	rev, _ := kv.Put(context.Background(), "greeting", "hello")
	waitLive(l, rev)
	fmt.Println(l.Revision() == rev)
	// Output:
	// 0
	// true
}

// LoadWithRevision reads a value and its revision together.
func ExampleLive_LoadWithRevision() {
	kv, l := exampleLive("example/live/loadwithrevision/", "greeting")
	defer l.Close()
	rev, _ := kv.Put(context.Background(), "greeting", "hello")
	waitLive(l, rev)
	v, r := l.LoadWithRevision()
	fmt.Println(v, r == rev)
	// Output: hello true
}

// Close stops following; Load keeps the last value.
func ExampleLive_Close() {
	kv, l := exampleLive("example/live/close/", "greeting")
	l.Close()
	kv.Put(context.Background(), "greeting", "hello")
	<-l.Done()
	fmt.Println(l.Load(), l.Err())
	// Output: none <nil>
}

// Done closes when the key is no longer followed; Err says why.
func ExampleLive_Done() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	kv := etcdkit.NewKV(exampleClient(), "example/live/done/", etcdkit.String())
	l, err := kv.Follow(ctx, "greeting", etcdkit.WithDefault("none"))
	if err != nil {
		fmt.Println(err)
		return
	}
	cancel()
	<-l.Done()
	fmt.Println("stopped:", l.Err())
	// Output: stopped: <nil>
}

// Err is nil while the key is followed.
func ExampleLive_Err() {
	_, l := exampleLive("example/live/err/", "greeting")
	defer l.Close()
	fmt.Println(l.Err())
	// Output: <nil>
}
