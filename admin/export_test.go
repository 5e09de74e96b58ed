package admin_test

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/etcdkit/etcdkit"
	"github.com/etcdkit/etcdkit/admin"
	"github.com/etcdkit/etcdkit/etcdtest"
)

// dump returns every key under pfx with its value and whether it has a
// lease.
func dump(t *testing.T, cli *clientv3.Client, pfx string) map[string]string {
	t.Helper()
	resp, err := cli.Get(testCtx(t), pfx, clientv3.WithPrefix())
	require.NoError(t, err)
	out := map[string]string{}
	for _, kv := range resp.Kvs {
		out[string(kv.Key)] = fmt.Sprintf("%q lease=%v", kv.Value, kv.Lease != 0)
	}
	return out
}

// Keys exported from one cluster and imported into another have the same
// values, binary keys and values included, across several pages and
// transactions; leases are dropped unless KeepLeases.
func TestExportImport_RoundTrip(t *testing.T) {
	src := testCluster.Client(t)
	ctx := testCtx(t)
	pfx := prefix(t)
	raw := src.Raw()
	for i := range 300 { // over two transactions and a page
		_, err := raw.Put(ctx, fmt.Sprintf("%sk%03d", pfx, i), strings.Repeat("v", i))
		require.NoError(t, err)
	}
	_, err := raw.Put(ctx, pfx+"bin\xff\x00", "\x00\xff\n{\"")
	require.NoError(t, err)
	_, err = raw.Put(ctx, pfx+"empty", "")
	require.NoError(t, err)
	lease, err := raw.Grant(ctx, 600)
	require.NoError(t, err)
	_, err = raw.Put(ctx, pfx+"leased", "x", clientv3.WithLease(lease.ID))
	require.NoError(t, err)
	_, err = raw.Put(ctx, pfx[:len(pfx)-1]+"X/outside", "no")
	require.NoError(t, err)

	var buf bytes.Buffer
	n, err := admin.Export(ctx, src, pfx, &buf)
	require.NoError(t, err)
	assert.Equal(t, 303, n)
	assert.Contains(t, buf.String(), `"lease_ttl":`)
	assert.Equal(t, 303, strings.Count(buf.String(), "\n"))

	dst := etcdtest.Start(t)
	dcli := dst.Client(t)
	got, err := admin.Import(ctx, dcli, bytes.NewReader(buf.Bytes()), admin.IntoEmpty(pfx))
	require.NoError(t, err)
	assert.Equal(t, 303, got)
	want := dump(t, raw, pfx)
	want[pfx+"leased"] = `"x" lease=false`
	assert.Equal(t, want, dump(t, dcli.Raw(), pfx), "leases dropped by default")

	// Into a non-empty prefix: refused, nothing written.
	before := dump(t, dcli.Raw(), "")
	_, err = admin.Import(ctx, dcli, bytes.NewReader(buf.Bytes()), admin.IntoEmpty(pfx))
	require.ErrorIs(t, err, etcdkit.ErrExists)
	assert.Equal(t, before, dump(t, dcli.Raw(), ""))

	// KeepLeases: overwriting is allowed without IntoEmpty.
	_, err = admin.Import(ctx, dcli, bytes.NewReader(buf.Bytes()), admin.KeepLeases())
	require.NoError(t, err)
	resp, err := dcli.Raw().Get(ctx, pfx+"leased")
	require.NoError(t, err)
	require.Len(t, resp.Kvs, 1)
	ttl, err := dcli.Raw().TimeToLive(ctx, clientv3.LeaseID(resp.Kvs[0].Lease))
	require.NoError(t, err)
	assert.InDelta(t, 600, ttl.TTL, 30)
	assert.Equal(t, dump(t, raw, pfx), dump(t, dcli.Raw(), pfx))
}

// The export is one snapshot: keys written while it pages are not in it.
func TestExport_OneRevision(t *testing.T) {
	cli := testCluster.Client(t)
	ctx := testCtx(t)
	pfx := prefix(t)
	for i := range 1200 {
		_, err := cli.Raw().Put(ctx, fmt.Sprintf("%sk%04d", pfx, i), "v")
		require.NoError(t, err)
	}
	w := &slowWriter{t: t, cli: cli, key: pfx + "k9999"}
	n, err := admin.Export(ctx, cli, pfx, w)
	require.NoError(t, err)
	assert.Equal(t, 1200, n)
	assert.True(t, w.wrote, "the writer wrote while exporting")
	assert.NotContains(t, w.buf.String(), "k9999")
}

// slowWriter puts a key under the exported prefix on its first Write,
// when the export has read its first page and not the last.
type slowWriter struct {
	t     *testing.T
	cli   *etcdkit.Client
	key   string
	wrote bool
	buf   bytes.Buffer
}

func (w *slowWriter) Write(p []byte) (int, error) {
	if !w.wrote {
		w.wrote = true
		_, err := w.cli.Raw().Put(testCtx(w.t), w.key, "late")
		require.NoError(w.t, err)
	}
	return w.buf.Write(p)
}

func TestBadInputs(t *testing.T) {
	cli := testCluster.Client(t)
	ctx := testCtx(t)
	pfx := prefix(t)
	_, err := admin.Health(ctx, nil)
	assert.ErrorIs(t, err, etcdkit.ErrInvalidArgument)
	_, err = admin.Defragment(ctx, nil)
	assert.ErrorIs(t, err, etcdkit.ErrInvalidArgument)
	_, err = admin.Defragment(ctx, cli, admin.FreeOver(1.5, 0))
	assert.ErrorIs(t, err, etcdkit.ErrInvalidArgument)
	_, err = admin.Disarm(ctx, nil)
	assert.ErrorIs(t, err, etcdkit.ErrInvalidArgument)
	_, err = admin.Export(ctx, cli, pfx, nil)
	assert.ErrorIs(t, err, etcdkit.ErrInvalidArgument)
	_, err = admin.Import(ctx, cli, nil)
	assert.ErrorIs(t, err, etcdkit.ErrInvalidArgument)
	for name, keep := range map[string]admin.Retention{
		"nil": nil, "zero time": admin.KeepFor(0), "negative revisions": admin.KeepRevisions(-1),
	} {
		_, err = admin.NewCompactor(cli, keep)
		assert.ErrorIs(t, err, etcdkit.ErrInvalidArgument, name)
	}
	_, err = admin.NewCompactor(cli, admin.KeepRevisions(1), admin.CompactEvery(0))
	assert.ErrorIs(t, err, etcdkit.ErrInvalidArgument)
	_, err = admin.NewCompactor(nil, admin.KeepRevisions(1))
	assert.ErrorIs(t, err, etcdkit.ErrInvalidArgument)

	good := fmt.Sprintf(`{"key":%q,"value":"dg=="}`, pfx+"a")
	for name, input := range map[string]string{
		"not json":      good + "\n{",
		"unknown field": `{"key":"` + pfx + `b","value":"dg==","ttl":3}`,
		"no key":        good + "\n" + `{"value":"dg=="}`,
		"empty key":     good + "\n" + `{"key":"","value":"dg=="}`,
		"two keys":      good + "\n" + `{"key":"x","key_base64":"eA==","value":"dg=="}`,
		"twice":         good + "\n" + good,
		"bad base64":    good + "\n" + `{"key":"` + pfx + `c","value":"%%%"}`,
		"negative ttl":  good + "\n" + `{"key":"` + pfx + `c","value":"dg==","lease_ttl":-1}`,
		"outside":       good + "\n" + `{"key":"/elsewhere","value":"dg=="}`,
	} {
		n, err := admin.Import(ctx, cli, strings.NewReader(input), admin.IntoEmpty(pfx))
		assert.ErrorIs(t, err, etcdkit.ErrInvalidArgument, name)
		assert.Zero(t, n, name)
	}
	assert.Empty(t, dump(t, cli.Raw(), pfx), "nothing was written")
	assert.Empty(t, dump(t, cli.Raw(), "/elsewhere"), "nothing was written")
}
