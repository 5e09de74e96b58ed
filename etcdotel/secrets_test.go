package etcdotel_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"

	"github.com/etcdkit/etcdkit"
	"github.com/etcdkit/etcdkit/etcdotel"
	"github.com/etcdkit/etcdkit/etcdtest"
)

// The strings the secrets tests write; none may appear in what is recorded.
const (
	secretKey      = "key-of-alice-7f3a"
	secretMissing  = "missing-key-of-bob-91c2"
	secretValue    = "value-ssn-123-45-6789"
	secretPassword = "pw-hunter2-e5d1"
)

// TestNothingSecretRecorded runs successful and failed operations with
// telling keys and values on a server with auth on, then scans every span
// name, attribute, event and status, and every metric point's attributes:
// by default no key, value or password is in any.
func TestNothingSecretRecorded(t *testing.T) {
	t.Parallel()
	tel := newTelemetry(t)
	srv := authServer(t)
	runSecretOps(t, authClient(t, srv, tel.observer()))

	for _, s := range recorded(t, tel) {
		for _, secret := range []string{secretKey, secretMissing, secretValue, secretPassword} {
			assert.NotContains(t, s, secret)
		}
	}
}

// TestWithKeys records keys on spans and events, never in metrics, and
// never a value or the password.
func TestWithKeys(t *testing.T) {
	t.Parallel()
	tel := newTelemetry(t)
	srv := authServer(t)
	runSecretOps(t, authClient(t, srv, tel.observer(etcdotel.WithKeys())))

	all := strings.Join(recorded(t, tel), "\n")
	assert.Contains(t, all, "etcdkit.key="+secretKey)
	assert.Contains(t, all, "etcdkit.key="+secretMissing)
	assert.NotContains(t, all, secretValue)
	assert.NotContains(t, all, secretPassword)
	for _, s := range metricStrings(t, tel) {
		assert.NotContains(t, s, secretKey)
		assert.NotContains(t, s, secretMissing)
	}
	var missing int
	for _, s := range tel.ended("get " + testPrefix(t)) {
		if attrs(s)["etcdkit.key"].AsString() == secretMissing {
			missing++
			assert.Equal(t, "not_found", attrs(s)["etcdkit.outcome"].AsString(),
				"the outcome names the answer's kind even when keys are recorded")
			assert.Empty(t, s.Status().Description, "an outcome sets no status")
		}
	}
	assert.Equal(t, 1, missing, "get spans of the missing key")
}

// authServer starts a server with auth on, root's password secretPassword.
func authServer(t *testing.T) *etcdtest.Server {
	srv := etcdtest.Start(t)
	srv.EnableAuth(t, secretPassword)
	return srv
}

// authClient returns a client of srv that logs in as root, observed by obs.
func authClient(t *testing.T, srv *etcdtest.Server, obs etcdkit.Observer) *etcdkit.Client {
	return srv.Client(t, etcdtest.WithClientConfig(func(c *etcdkit.Config) {
		c.Username, c.Password, c.Observer = "root", secretPassword, obs
	}))
}

// runSecretOps writes secretValue at secretKey, reads it, fails to read
// secretMissing, races an Update, and stores a value that does not decode.
func runSecretOps(t *testing.T, cli *etcdkit.Client) {
	t.Helper()
	pfx := testPrefix(t)
	kv := etcdkit.NewKV(cli, pfx, etcdkit.String())
	ctx := testCtx(t)
	_, err := kv.Put(ctx, secretKey, secretValue)
	require.NoError(t, err)
	_, err = kv.Get(ctx, secretKey)
	require.NoError(t, err)
	_, err = kv.Create(ctx, secretKey, secretValue)
	require.ErrorIs(t, err, etcdkit.ErrExists)
	calls := 0
	_, err = kv.Update(ctx, secretKey, func(cur string) (string, error) {
		if calls++; calls == 1 {
			_, err := kv.Put(ctx, secretKey, secretValue+"-raced")
			require.NoError(t, err)
		}
		return secretValue + "-updated", nil
	})
	require.NoError(t, err)
	_, err = kv.Get(ctx, secretMissing)
	require.ErrorIs(t, err, etcdkit.ErrNotFound)
	type rec struct{ N int }
	_, err = etcdkit.NewKV(cli, pfx, etcdkit.JSON[rec]()).Get(ctx, secretKey)
	var de *etcdkit.DecodeError
	require.ErrorAs(t, err, &de)
	require.Contains(t, err.Error(), secretKey, "the error names the key")
}

// recorded returns every string the telemetry holds, one per span (its
// name, attributes, events and status) and one per metric point, as
// "key=value" pairs.
func recorded(t *testing.T, tel *telemetry) []string {
	t.Helper()
	var out []string
	for _, s := range tel.spans.Ended() {
		var b strings.Builder
		b.WriteString(s.Name() + " " + s.Status().Description + " ")
		writeAttrs(&b, s.Attributes())
		for _, e := range s.Events() {
			b.WriteString(" " + e.Name + " ")
			writeAttrs(&b, e.Attributes)
		}
		out = append(out, b.String())
	}
	return append(out, metricStrings(t, tel)...)
}

func writeAttrs(b *strings.Builder, kvs []attribute.KeyValue) {
	for _, kv := range kvs {
		b.WriteString(string(kv.Key) + "=" + kv.Value.String() + " ")
	}
}

// metricStrings returns, for each metric, its name and every point's
// attributes.
func metricStrings(t *testing.T, tel *telemetry) []string {
	t.Helper()
	var out []string
	for _, sm := range tel.metrics(t).ScopeMetrics {
		for _, m := range sm.Metrics {
			var b strings.Builder
			b.WriteString(m.Name + " ")
			for _, set := range pointSets(m.Data) {
				writeAttrs(&b, set.ToSlice())
			}
			out = append(out, b.String())
		}
	}
	return out
}
