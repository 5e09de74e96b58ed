package etcdkit_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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
		require.NoError(t, err)
		out, err := c.Decode(b)
		require.NoError(t, err)
		assert.Equal(t, in, out, "round trip")
	})
	t.Run("String", func(t *testing.T) {
		c := etcdkit.String()
		for _, s := range []string{"", "hello", "héllo wörld ✓"} {
			b, _ := c.Encode(s)
			got, err := c.Decode(b)
			assert.NoError(t, err, "round trip %q", s)
			assert.Equal(t, s, got, "round trip %q", s)
		}
	})
	t.Run("Bytes", func(t *testing.T) {
		c := etcdkit.Bytes()
		in := []byte{0, 1, 0xff, 'a'}
		b, _ := c.Encode(in)
		got, err := c.Decode(b)
		assert.NoError(t, err, "round trip")
		assert.Equal(t, in, got, "round trip")
	})
	t.Run("Proto", func(t *testing.T) {
		c := etcdkit.Proto[*structpb.Struct]()
		in, err := structpb.NewStruct(map[string]any{"name": "ada", "age": 36.0, "ok": true})
		require.NoError(t, err)
		b, err := c.Encode(in)
		require.NoError(t, err)
		out, err := c.Decode(b)
		require.NoError(t, err)
		assert.True(t, proto.Equal(in, out), "round trip: got %v, want %v", out, in)
		_, err = c.Encode(nil)
		assert.Error(t, err, "encoding a nil message did not fail")
	})
}

func TestCodecs_RejectGarbage(t *testing.T) {
	garbage := []byte{0xff, 0xfe, '{', 0x00}
	_, err := etcdkit.JSON[profile]().Decode(garbage)
	assert.Error(t, err, "JSON decoded garbage")
	_, err = etcdkit.JSON[profile]().Decode([]byte(`"a string, not an object"`))
	assert.Error(t, err, "JSON decoded a string into a struct")
	_, err = etcdkit.String().Decode(garbage)
	assert.Error(t, err, "String decoded invalid UTF-8")
	_, err = etcdkit.Proto[*wrapperspb.StringValue]().Decode([]byte{0x0a, 0x05, 'a'})
	assert.Error(t, err, "Proto decoded a truncated message")
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
			require.NoError(t, err, "re-encode %+v", v)
			_, err = etcdkit.JSON[profile]().Decode(again)
			require.NoError(t, err, "decode of re-encoded %q", again)
		}
		if s, err := etcdkit.String().Decode(b); err == nil {
			require.Equal(t, string(b), s, "String decoded %q", b)
		}
		if m, err := etcdkit.Proto[*wrapperspb.StringValue]().Decode(b); err == nil {
			_, err := etcdkit.Proto[*wrapperspb.StringValue]().Encode(m)
			require.NoError(t, err, "re-encode proto")
		}
		_, _ = etcdkit.JSON[map[string]any]().Decode(b)
		_, _ = etcdkit.Proto[*structpb.Struct]().Decode(b)
	})
}
