package errs

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestMessage(t *testing.T) {
	sentinel := errors.New("etcdkit: closed")
	own := errors.New("etcdkit: admin: a member is down")
	tests := []struct {
		name         string
		pkg, op, key string
		err          error
		want         string
	}{
		{"root, with a key", "", "get", "users/alice", sentinel, `etcdkit: get "users/alice": closed`},
		{"root, no key", "", "connect", "", errors.New("refused"), "etcdkit: connect: refused"},
		{"a package, its own prefix said once", "admin", "defragment", "", own, "etcdkit: admin: defragment: a member is down"},
		{"a package, a root cause", "admin", "compact", "", sentinel, "etcdkit: admin: compact: closed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, Message(tt.pkg, tt.op, tt.key, tt.err))
		})
	}
}

func TestOpUnwraps(t *testing.T) {
	cause := errors.New("etcdkit: closed")
	err := error(&Op{Op: "drain", Key: "k", Err: cause})
	assert.ErrorIs(t, err, cause)
	assert.Equal(t, `etcdkit: drain "k": closed`, err.Error())
}
