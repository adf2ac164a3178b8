// Package testlog gives tests a zap logger that writes to t.Log while the
// test runs and drops lines after it ends. pion runs some callbacks on
// goroutines of its own that may log once a test is over, where zaptest's
// logger would panic.
package testlog

import (
	"strings"
	"sync"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

type writer struct {
	mu   sync.Mutex
	t    testing.TB
	done bool
}

func (w *writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

func (w *writer) Sync() error { return nil }

// New returns a debug-level logger bound to t.
func New(t testing.TB) *zap.Logger {
	w := &writer{t: t}
	t.Cleanup(func() {
		w.mu.Lock()
		w.done = true
		w.mu.Unlock()
	})
	enc := zapcore.NewConsoleEncoder(zap.NewDevelopmentEncoderConfig())
	return zap.New(zapcore.NewCore(enc, w, zapcore.DebugLevel))
}
