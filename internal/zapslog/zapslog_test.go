package zapslog

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"go.uber.org/zap"
)

func TestZapToSlog(t *testing.T) {
	var buf bytes.Buffer
	l := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	z := New(l).Named("etcd-client").With(zap.String("endpoint", "e1"))
	z.Debug("hidden", zap.Int("n", 1))
	z.Warn("retrying", zap.Error(errors.New("boom")), zap.Int("attempt", 3))
	out := buf.String()
	for _, want := range []string{"level=WARN", "msg=retrying", "endpoint=e1", "attempt=3", "error=boom", "logger=etcd-client"} {
		if !strings.Contains(out, want) {
			t.Errorf("log %q lacks %q", out, want)
		}
	}
	if strings.Contains(out, "hidden") {
		t.Errorf("debug line passed an info-level handler: %q", out)
	}
}

func TestZapToSlog_DiscardByDefault(t *testing.T) {
	// The logger a Config without one gets.
	z := New(slog.New(slog.DiscardHandler))
	if z.Core().Enabled(zap.ErrorLevel) {
		t.Error("the default logger is not silent")
	}
}
