package etcdkit_test

import (
	"bytes"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/etcdkit/etcdkit"
)

type profile struct {
	Name  string            `json:"name"`
	Age   int               `json:"age"`
	Tags  []string          `json:"tags,omitempty"`
	Attrs map[string]string `json:"attrs,omitempty"`
}

func TestCodecs_RoundTrip(t *testing.T) {
	t.Run("JSON", func(t *testing.T) {
		c := etcdkit.JSON[profile]()
		in := profile{Name: "ada", Age: 36, Tags: []string{"x"}, Attrs: map[string]string{"k": "v"}}
		b, err := c.Encode(in)
		if err != nil {
			t.Fatal(err)
		}
		out, err := c.Decode(b)
		if err != nil {
			t.Fatal(err)
		}
		if out.Name != in.Name || out.Age != in.Age || out.Tags[0] != "x" || out.Attrs["k"] != "v" {
			t.Errorf("round trip: got %+v, want %+v", out, in)
		}
	})
	t.Run("String", func(t *testing.T) {
		c := etcdkit.String()
		for _, s := range []string{"", "hello", "héllo wörld ✓"} {
			b, _ := c.Encode(s)
			if got, err := c.Decode(b); err != nil || got != s {
				t.Errorf("round trip %q: got %q, %v", s, got, err)
			}
		}
	})
	t.Run("Bytes", func(t *testing.T) {
		c := etcdkit.Bytes()
		in := []byte{0, 1, 0xff, 'a'}
		b, _ := c.Encode(in)
		if got, err := c.Decode(b); err != nil || !bytes.Equal(got, in) {
			t.Errorf("round trip: got %v, %v", got, err)
		}
	})
	t.Run("Proto", func(t *testing.T) {
		c := etcdkit.Proto[*structpb.Struct]()
		in, err := structpb.NewStruct(map[string]any{"name": "ada", "age": 36.0, "ok": true})
		if err != nil {
			t.Fatal(err)
		}
		b, err := c.Encode(in)
		if err != nil {
			t.Fatal(err)
		}
		out, err := c.Decode(b)
		if err != nil {
			t.Fatal(err)
		}
		if !proto.Equal(in, out) {
			t.Errorf("round trip: got %v, want %v", out, in)
		}
		if _, err := c.Encode(nil); err == nil {
			t.Error("encoding a nil message did not fail")
		}
	})
}

func TestCodecs_RejectGarbage(t *testing.T) {
	garbage := []byte{0xff, 0xfe, '{', 0x00}
	if _, err := etcdkit.JSON[profile]().Decode(garbage); err == nil {
		t.Error("JSON decoded garbage")
	}
	if _, err := etcdkit.JSON[profile]().Decode([]byte(`"a string, not an object"`)); err == nil {
		t.Error("JSON decoded a string into a struct")
	}
	if _, err := etcdkit.String().Decode(garbage); err == nil {
		t.Error("String decoded invalid UTF-8")
	}
	if _, err := etcdkit.Proto[*wrapperspb.StringValue]().Decode([]byte{0x0a, 0x05, 'a'}); err == nil {
		t.Error("Proto decoded a truncated message")
	}
}

// FuzzCodecs checks that no codec panics on bytes a stranger wrote, and that
// whatever decodes re-encodes to something that decodes to the same value.
func FuzzCodecs(f *testing.F) {
	for _, seed := range [][]byte{nil, {}, []byte(`{"name":"a","age":1}`), []byte("plain"), {0xff}, {0x0a, 0x03, 'a', 'b', 'c'}} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if v, err := etcdkit.JSON[profile]().Decode(b); err == nil {
			again, err := etcdkit.JSON[profile]().Encode(v)
			if err != nil {
				t.Fatalf("re-encode %+v: %v", v, err)
			}
			if _, err := etcdkit.JSON[profile]().Decode(again); err != nil {
				t.Fatalf("decode of re-encoded %q: %v", again, err)
			}
		}
		if s, err := etcdkit.String().Decode(b); err == nil && s != string(b) {
			t.Fatalf("String decoded %q as %q", b, s)
		}
		if m, err := etcdkit.Proto[*wrapperspb.StringValue]().Decode(b); err == nil {
			if _, err := etcdkit.Proto[*wrapperspb.StringValue]().Encode(m); err != nil {
				t.Fatalf("re-encode proto: %v", err)
			}
		}
		_, _ = etcdkit.JSON[map[string]any]().Decode(b)
		_, _ = etcdkit.Proto[*structpb.Struct]().Decode(b)
	})
}
