package etcdkit_test

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/etcdkit/etcdkit"
)

// String stores text; bytes that are not UTF-8 do not decode.
func ExampleString() {
	ctx := context.Background()
	names := etcdkit.NewKV(exampleClient(), "example/codec/string/", etcdkit.String())
	names.Put(ctx, "a", "Ada")
	e, err := names.Get(ctx, "a")
	fmt.Println(e.Value, err)
	// Output: Ada <nil>
}

// Bytes stores a []byte as it is; what a read returns is the caller's.
func ExampleBytes() {
	ctx := context.Background()
	blobs := etcdkit.NewKV(exampleClient(), "example/codec/bytes/", etcdkit.Bytes())
	blobs.Put(ctx, "b", []byte{0xff, 0x00, 0x01})
	e, err := blobs.Get(ctx, "b")
	fmt.Println(e.Value, err)
	// Output: [255 0 1] <nil>
}

// JSON stores a struct; a value that is not its JSON is a *DecodeError,
// never a zero value.
func ExampleJSON() {
	type user struct {
		Name string `json:"name"`
	}
	ctx := context.Background()
	users := etcdkit.NewKV(exampleClient(), "example/codec/json/", etcdkit.JSON[user]())
	users.Put(ctx, "1", user{Name: "Ada"})
	e, err := users.Get(ctx, "1")
	fmt.Println(e.Value.Name, err)

	etcdkit.NewKV(exampleClient(), "example/codec/json/", etcdkit.String()).Put(ctx, "2", "not json")
	_, err = users.Get(ctx, "2")
	var de *etcdkit.DecodeError
	fmt.Println(errors.As(err, &de), de.Key)
	// Output:
	// Ada <nil>
	// true 2
}

// Proto stores a protobuf message in its wire format.
func ExampleProto() {
	ctx := context.Background()
	msgs := etcdkit.NewKV(exampleClient(), "example/codec/proto/", etcdkit.Proto[*wrapperspb.StringValue]())
	msgs.Put(ctx, "greeting", wrapperspb.String("hello"))
	e, err := msgs.Get(ctx, "greeting")
	fmt.Println(e.Value.GetValue(), err)
	// Output: hello <nil>
}
