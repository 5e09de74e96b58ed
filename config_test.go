package etcdkit_test

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/etcdkit/etcdkit"
)

func TestConfigFromEnv(t *testing.T) {
	t.Setenv(etcdkit.EnvEndpoints, " http://a:2379, b:2379 ,")
	t.Setenv(etcdkit.EnvUsername, "svc")
	t.Setenv(etcdkit.EnvPassword, "s3cret")
	t.Setenv(etcdkit.EnvNamespace, "team/")
	t.Setenv(etcdkit.EnvCACert, "")
	t.Setenv(etcdkit.EnvCert, "")
	t.Setenv(etcdkit.EnvKey, "")
	cfg, err := etcdkit.ConfigFromEnv()
	require.NoError(t, err)
	assert.Equal(t, []string{"http://a:2379", "b:2379"}, cfg.Endpoints)
	assert.Equal(t, "svc", cfg.Username)
	assert.Equal(t, "s3cret", cfg.Password)
	assert.Equal(t, "team/", cfg.Namespace)
	assert.Nil(t, cfg.TLS)
}

func TestConfigFromEnv_BadTLSFiles(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "ca.pem")
	require.NoError(t, os.WriteFile(notPEM, []byte("not a certificate"), 0o600))
	tests := []struct {
		name, ca, cert, key, want string
	}{
		{"missing CA file", filepath.Join(dir, "nope.pem"), "", "", etcdkit.EnvCACert},
		{"CA without PEM", notPEM, "", "", "no PEM certificate"},
		{"cert without key", "", notPEM, "", "must be set together"},
		{"bad key pair", "", notPEM, notPEM, "load client certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(etcdkit.EnvCACert, tt.ca)
			t.Setenv(etcdkit.EnvCert, tt.cert)
			t.Setenv(etcdkit.EnvKey, tt.key)
			_, err := etcdkit.ConfigFromEnv()
			assert.ErrorContains(t, err, tt.want)
		})
	}
}

func TestConfig_NeverPrintsPassword(t *testing.T) {
	cfg := etcdkit.Config{Endpoints: []string{"e:2379"}, Username: "u", Password: "hunter2"}
	var logged bytes.Buffer
	slog.New(slog.NewTextHandler(&logged, nil)).Info("config", "cfg", cfg)
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("config", "cfg", cfg)
	outputs := map[string]string{
		"String": cfg.String(),
		"%v":     fmt.Sprintf("%v", cfg),
		"%+v":    fmt.Sprintf("%+v", cfg),
		"%#v":    fmt.Sprintf("%#v", cfg),
		"slog":   logged.String(),
	}
	for name, out := range outputs {
		assert.NotContains(t, out, "hunter2", "%s prints the password", name)
		assert.Contains(t, out, "REDACTED", "%s does not show that a password is set", name)
	}
}

func TestNew_InvalidConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  etcdkit.Config
		want string
	}{
		{"negative dial timeout", etcdkit.Config{Endpoints: []string{"x:1"}, DialTimeout: -1}, "DialTimeout"},
		{"negative request timeout", etcdkit.Config{Endpoints: []string{"x:1"}, RequestTimeout: -1}, "RequestTimeout"},
		{"user without password", etcdkit.Config{Endpoints: []string{"x:1"}, Username: "u"}, "Username and Password"},
		{"bad URL", etcdkit.Config{Endpoints: []string{"ftp://x:1"}}, `"ftp://x:1"`},
		{"empty endpoint", etcdkit.Config{Endpoints: []string{""}}, "empty endpoint"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cli, err := etcdkit.New(t.Context(), tt.cfg)
			if err == nil {
				cli.Close()
			}
			require.Error(t, err, "New accepted an invalid config")
			assert.ErrorContains(t, err, tt.want)
			assert.True(t, strings.HasPrefix(err.Error(), "etcdkit: "), "err = %q, want an etcdkit error", err)
			assert.NotErrorIs(t, err, etcdkit.ErrUnavailable, "a config error was reported as unavailability")
		})
	}
}
