package etcdkit

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"go.etcd.io/etcd/api/v3/mvccpb"
)

func TestNextPageSize(t *testing.T) {
	page := func(valueBytes int) []*mvccpb.KeyValue {
		kvs := make([]*mvccpb.KeyValue, 10)
		for i := range kvs {
			kvs[i] = &mvccpb.KeyValue{Key: []byte("prefix/key-0001"), Value: []byte(strings.Repeat("v", valueBytes))}
		}
		return kvs
	}
	tests := []struct {
		name       string
		valueBytes int
		want       func(int64) bool
	}{
		{"small entries: the largest page", 10, func(n int64) bool { return n == maxListPageSize }},
		{"1 KiB values: about 4 MiB a page", 1024, func(n int64) bool {
			return n*int64(1024+15+entryOverhead) <= listPageBytes && n > listPageBytes/2048
		}},
		{"1 MiB values: never under the default", 1 << 20, func(n int64) bool { return n == DefaultPageSize }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := nextPageSize(page(tt.valueBytes))
			assert.True(t, tt.want(n), "nextPageSize with %d-byte values = %d", tt.valueBytes, n)
		})
	}
}
