package etcdkit

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"
)

// Codec turns values of T into the bytes stored in etcd and back.
// Decode must return an error, never a zero value, for bytes it cannot read:
// etcdkit reports them as a [*DecodeError].
type Codec[T any] interface {
	Encode(T) ([]byte, error)
	Decode([]byte) (T, error)
}

// JSON returns a codec that stores T as JSON (encoding/json).
// Decoding bytes that are not a JSON encoding of T fails.
func JSON[T any]() Codec[T] { return jsonCodec[T]{} }

type jsonCodec[T any] struct{}

func (jsonCodec[T]) Encode(v T) ([]byte, error) { return json.Marshal(v) }

func (jsonCodec[T]) Decode(b []byte) (T, error) {
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		var zero T
		return zero, err
	}
	return v, nil
}

// String returns a codec that stores a string as its bytes. Decoding bytes
// that are not valid UTF-8 fails, so binary data is never silently mangled;
// use [Bytes] for binary values.
func String() Codec[string] { return stringCodec{} }

type stringCodec struct{}

func (stringCodec) Encode(s string) ([]byte, error) { return []byte(s), nil }

func (stringCodec) Decode(b []byte) (string, error) {
	if !utf8.Valid(b) {
		return "", errors.New("value is not valid UTF-8")
	}
	return string(b), nil
}

// Bytes returns a codec that stores a []byte as it is. It never fails, and
// its Encode and Decode do not copy. Every []byte etcdkit hands out for it
// belongs to the caller, who may change it without changing what any other
// read sees or what a transaction writes: reads served from memory
// ([Mirror.Get], [Mirror.List], [Live.Load], [TxKV.Get] and the values given
// to callbacks) copy the value, one allocation each, where the other codecs'
// reads do not copy; reads that go to etcd return a slice of their own
// response.
func Bytes() Codec[[]byte] { return bytesCodec{} }

type bytesCodec struct{}

func (bytesCodec) Encode(b []byte) ([]byte, error) { return b, nil }
func (bytesCodec) Decode(b []byte) ([]byte, error) { return b, nil }
func (bytesCodec) clone(b []byte) []byte           { return bytes.Clone(b) }

// cloner is implemented by a codec whose values are slices that a reader
// could write through: a value kept in memory (by a Mirror, a Live, a
// transaction) is cloned before it is handed out, so that the caller's
// changes stay the caller's. Only [Bytes] has one: a string cannot be
// changed, and a deep copy of a JSON or Proto value would cost more than the
// read it follows, so [Mirror] and [Live] document theirs as shared.
type cloner[T any] interface {
	clone(T) T
}

// clonerOf returns codec's clone function, or nil when its values need no
// copy, so that the codecs that need none pay only a nil check.
func clonerOf[T any](codec Codec[T]) func(T) T {
	if c, ok := codec.(cloner[T]); ok {
		return c.clone
	}
	return nil
}

// own returns v for a caller to keep: a clone when clone is not nil.
func own[T any](clone func(T) T, v T) T {
	if clone != nil {
		return clone(v)
	}
	return v
}

// Proto returns a codec that stores a protobuf message in its binary wire
// format. T is a pointer to a generated message type, e.g. Proto[*pb.User]().
// Decoding bytes that are not a valid encoding fails.
func Proto[T proto.Message]() Codec[T] { return protoCodec[T]{} }

type protoCodec[T proto.Message] struct{}

func (protoCodec[T]) Encode(m T) ([]byte, error) {
	// A typed nil pointer is not == nil inside an interface; ask protobuf.
	if any(m) == nil || !m.ProtoReflect().IsValid() {
		return nil, errors.New("nil protobuf message")
	}
	return proto.Marshal(m)
}

func (protoCodec[T]) Decode(b []byte) (T, error) {
	var zero T
	m, ok := zero.ProtoReflect().Type().New().Interface().(T)
	if !ok {
		return zero, fmt.Errorf("cannot make a %T", zero)
	}
	if err := proto.Unmarshal(b, m); err != nil {
		return zero, err
	}
	return m, nil
}
