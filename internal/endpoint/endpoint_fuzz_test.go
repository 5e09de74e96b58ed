package endpoint

import (
	"strings"
	"testing"
)

// FuzzParseEndpoint: endpoints come from configuration and the environment;
// parsing never panics, and what it accepts has an address and a network
// clientv3 can dial.
func FuzzParseEndpoint(f *testing.F) {
	for _, s := range []string{"127.0.0.1:2379", "http://a:1", "https://[::1]:2379", "unix:///run/etcd.sock", "unixs://x", "unix:rel", "ftp://x", "://", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		e, err := Parse(s)
		if err != nil {
			if !strings.Contains(err.Error(), "endpoint") {
				t.Fatalf("error %q does not say it is about an endpoint", err)
			}
			return
		}
		if e.addr == "" || (e.network != "tcp" && e.network != "unix") {
			t.Fatalf("accepted %q as %+v", s, e)
		}
		if e.network == "unix" && !strings.HasPrefix(s, "unix") {
			t.Fatalf("%q parsed as a unix socket", s)
		}
	})
}
