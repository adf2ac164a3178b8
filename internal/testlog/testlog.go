// Package testlog gives tests a zap logger that writes to t.Log while the
// test runs and drops lines after it ends. pion runs some callbacks on
// goroutines of its own that may log once a test is over, where zaptest's
// logger would panic or race with the test's end: testing forbids t.Log
// after a test completes, and a check-then-log done without a lock can be
// overtaken by the test finishing in between (seen in turn's tests on a
// busy machine). Here the check and the t.Log happen under one mutex that
// the test's cleanup also takes, so a line is either logged while the test
// runs or dropped.
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

// Core returns a zap core that writes entries at level and above to t.Log
// until t's cleanup, for tests that tee it with cores of their own.
func Core(t testing.TB, level zapcore.Level) zapcore.Core {
	w := &writer{t: t}
	t.Cleanup(func() {
		w.mu.Lock()
		w.done = true
		w.mu.Unlock()
	})
	enc := zapcore.NewConsoleEncoder(zap.NewDevelopmentEncoderConfig())
	return zapcore.NewCore(enc, w, level)
}

// New returns a debug-level logger bound to t.
func New(t testing.TB) *zap.Logger {
	return zap.New(Core(t, zapcore.DebugLevel))
}
