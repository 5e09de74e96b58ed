package reliability_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"log/slog"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/etcd/server/v3/embed"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/etcdkit/etcdkit"
	"github.com/etcdkit/etcdkit/etcdtest"
)

// foreignClientCert makes a CA nobody trusts and a client certificate
// signed by it.
func foreignClientCert(t *testing.T) tls.Certificate {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "stranger CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	require.NoError(t, err)
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "stranger"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, KeyUsage: x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	require.NoError(t, err)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// TestTLS_ClientCertificates: a cluster that demands client certificates
// lets in a client with one from its CA, and refuses, with a clear error,
// one without a certificate and one with a certificate from another CA.
func TestTLS_ClientCertificates(t *testing.T) {
	cl := etcdtest.StartCluster(t, 3, etcdtest.WithClientCertAuth())
	good := cl.Config()
	good.DialTimeout = 2 * time.Second

	cli, err := etcdkit.New(t.Context(), good)
	require.NoError(t, err, "client with a certificate of the cluster's CA")
	defer cli.Close()
	_, err = etcdkit.NewKV(cli, "tls/", etcdkit.String()).Put(t.Context(), "k", "v")
	require.NoError(t, err, "put over mutual TLS")

	noCert := good
	noCert.TLS = good.TLS.Clone()
	noCert.TLS.Certificates = nil
	stranger := good
	stranger.TLS = good.TLS.Clone()
	stranger.TLS.Certificates = []tls.Certificate{foreignClientCert(t)}
	for name, cfg := range map[string]etcdkit.Config{"no client certificate": noCert, "certificate of another CA": stranger} {
		t.Run(name, func(t *testing.T) {
			c, err := etcdkit.New(t.Context(), cfg)
			if err == nil {
				c.Close()
			}
			require.Error(t, err, "the cluster let the client in")
			assert.ErrorIs(t, err, etcdkit.ErrUnavailable)
			assert.ErrorContains(t, err, "certificate", "the error should name the certificate problem")
		})
	}
}

// authServer starts a server with auth on, a user "app" that may read and
// write only under "app/", and a short token TTL.
func authServer(t *testing.T) (*etcdtest.Server, etcdkit.Config) {
	t.Helper()
	srv := etcdtest.Start(t, etcdtest.WithEmbedConfig(func(c *embed.Config) { c.AuthTokenTTL = 1 }))
	srv.EnableAuth(t, rootPassword)
	root := srv.Config()
	root.Username, root.Password = "root", rootPassword
	admin, err := etcdkit.New(t.Context(), root)
	require.NoError(t, err)
	defer admin.Close()
	raw := admin.Raw()
	ctx := t.Context()
	steps := []func() error{
		func() error { _, err := raw.RoleAdd(ctx, "app-rw"); return err },
		func() error {
			_, err := raw.RoleGrantPermission(ctx, "app-rw", "app/", "app0", 2) // READWRITE on the prefix
			return err
		},
		func() error { _, err := raw.UserAdd(ctx, "app", appPassword); return err },
		func() error { _, err := raw.UserGrantRole(ctx, "app", "app-rw"); return err },
	}
	for _, step := range steps {
		require.NoError(t, step())
	}
	cfg := srv.Config()
	cfg.Username, cfg.Password = "app", appPassword
	return srv, cfg
}

const (
	rootPassword = "root-Secret-4417"
	appPassword  = "app-Secret-9932"
)

// syncBuffer is a log sink shared by the clients' loggers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestRBAC_PrefixUser: a user limited to a prefix gets ErrPermissionDenied
// outside it through every API, works inside it, survives many expiries of
// its auth token with long-lived watches, leases and locks; a wrong password
// is ErrAuthFailed; and no password appears in any error or log line.
func TestRBAC_PrefixUser(t *testing.T) {
	_, cfg := authServer(t)
	var logs syncBuffer
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	var errs []error
	record := func(err error) error { errs = append(errs, err); return err }

	bad := cfg
	bad.Password = "Wrong-Password-5150"
	_, err := etcdkit.New(t.Context(), bad)
	require.ErrorIs(t, record(err), etcdkit.ErrAuthFailed, "wrong password")

	cli, err := etcdkit.New(t.Context(), cfg)
	require.NoError(t, err)
	defer cli.Close()
	ctx := t.Context()
	inside := etcdkit.NewKV(cli, "app/data/", etcdkit.String())
	outside := etcdkit.NewKV(cli, "other/", etcdkit.String())
	_, err = inside.Put(ctx, "k", "v")
	require.NoError(t, err, "put inside the prefix")

	denied := map[string]func() error{
		"get": func() error { _, err := outside.Get(ctx, "k"); return err },
		"put": func() error { _, err := outside.Put(ctx, "k", "v"); return err },
		"txn": func() error {
			_, err := cli.Txn(ctx).If(outside.Missing("k")).Then(outside.PutOp("k", "v")).Commit()
			return err
		},
		"watch": func() error {
			wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			w := outside.Watch(wctx)
			for range w.Events() {
			}
			return w.Err()
		},
		"lock": func() error {
			lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			l, err := cli.Lock(lctx, "other/lock")
			if err == nil {
				_ = l.Unlock(lctx)
			}
			return err
		},
	}
	for name, call := range denied {
		t.Run("denied "+name, func(t *testing.T) {
			assert.ErrorIs(t, record(call()), etcdkit.ErrPermissionDenied, "%s outside the prefix", name)
		})
	}

	t.Run("long-lived handles outlive the token", func(t *testing.T) {
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		w := inside.Watch(wctx)
		lease, err := cli.Grant(wctx, 2*time.Second)
		require.NoError(t, err)
		require.NoError(t, lease.KeepAlive())
		lock, err := cli.Lock(wctx, "app/lock", etcdkit.LockTTL(2*time.Second))
		require.NoError(t, err)
		time.Sleep(4 * time.Second) // the 1s token expires several times
		_, err = inside.Put(wctx, "later", "x", etcdkit.WithLease(lease))
		require.NoError(t, record(err), "put after the token expired")
		select {
		case ev := <-w.Events():
			assert.Equal(t, "later", ev.Entry.Key, "watch delivered %+v", ev)
		case <-wctx.Done():
			require.FailNow(t, "the watch delivered nothing after the token expired", "watch Err() = %v", w.Err())
		}
		select {
		case <-lease.Done():
			assert.Fail(t, "the lease ended", "Err() = %v", lease.Err())
		case <-lock.Lost():
			assert.Fail(t, "the lock was lost", "Err() = %v", lock.Err())
		default:
		}
		assert.NoError(t, record(lock.Unlock(wctx)), "unlock after the token expired")
		assert.NoError(t, record(lease.Revoke(wctx)), "revoke after the token expired")
	})

	for _, err := range errs {
		if err == nil {
			continue
		}
		for _, secret := range []string{appPassword, rootPassword, bad.Password} {
			assert.False(t, strings.Contains(err.Error(), secret), "an error prints a password: %v", err)
		}
	}
	out := logs.String()
	for _, secret := range []string{appPassword, rootPassword, bad.Password} {
		// Not assert.NotContains: its failure message would print the logs, secret and all.
		assert.False(t, strings.Contains(out, secret), "the logs print a password")
	}
	assert.False(t, strings.Contains(cfg.String(), appPassword), "Config.String prints the password")
}
