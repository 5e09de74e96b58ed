package discovery

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/etcdkit/etcdkit"
)

// FuzzCheckInstance: what Register accepts is a key etcd's resolver reads
// back as this very instance of this very service; what it refuses is
// refused with ErrInvalidArgument.
func FuzzCheckInstance(f *testing.F) {
	f.Add("greeter", "a1", "10.0.0.7:9000")
	f.Add("team/greeter", "a/1", "x")
	f.Add("/svc", "", "")
	f.Add("svc/", "id", "addr")
	f.Fuzz(func(t *testing.T, service, id, addr string) {
		err := checkInstance("register", service, Instance{ID: id, Addr: addr})
		if err != nil {
			require.ErrorIs(t, err, etcdkit.ErrInvalidArgument, "refused with the wrong error")
			return
		}
		key := service + "/" + id
		// The resolver lists the keys under service+"/" and takes what follows
		// as the instance; it must be exactly id, with no '/' in it.
		rest := strings.TrimPrefix(key, service+"/")
		require.Equal(t, id, rest, "accepted service %q, ID %q: key %q reads back as another instance", service, id, key)
		require.True(t, validID(rest), "accepted service %q, ID %q: key %q reads back as instance %q", service, id, key, rest)
		require.False(t, service == "" || addr == "" || strings.HasPrefix(service, "/") || strings.HasSuffix(service, "/"),
			"accepted service %q, ID %q, Addr %q", service, id, addr)
	})
}
