package etcdotel

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"go.opentelemetry.io/otel/attribute"
)

// TestServerAttrs splits Operation.Server into server.address and
// server.port; a unix socket has an address only.
func TestServerAttrs(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		server, address string
		port            int64 // 0: none
	}{
		{"127.0.0.1:2379", "127.0.0.1", 2379},
		{"[::1]:2379", "::1", 2379},
		{"etcd-0.etcd:2379", "etcd-0.etcd", 2379},
		{"https://etcd.example.com:443", "etcd.example.com", 443},
		{"unix:///run/etcd.sock", "/run/etcd.sock", 0},
		{"unix:etcd.sock", "etcd.sock", 0},
		{"/run/etcd.sock", "/run/etcd.sock", 0},
		{"localhost", "localhost", 0},
	} {
		t.Run(tc.server, func(t *testing.T) {
			m := map[attribute.Key]attribute.Value{}
			for _, kv := range serverAttrs(tc.server) {
				m[kv.Key] = kv.Value
			}
			assert.Equal(t, tc.address, m["server.address"].AsString(), "server.address")
			if tc.port == 0 {
				assert.NotContains(t, m, attribute.Key("server.port"))
			} else {
				assert.Equal(t, tc.port, m["server.port"].AsInt64(), "server.port")
			}
		})
	}
	assert.Empty(t, serverAttrs(""), "no server, no attributes")
}
