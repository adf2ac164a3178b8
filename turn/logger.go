package turn

import (
	"fmt"

	"github.com/pion/logging"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// pionLogger routes pion's own log lines into our zap logger.
//
// Levels are shifted down on purpose: pion logs at Debug and Info on the
// packet path ("Received %d bytes", "No Permission or Channel exists") and
// for every refused request, which a hostile client controls. Those become
// zap Debug; our own code logs the events worth an Info line (allocations,
// refused peers, quota) with structured fields. pion's Trace is dropped.
type pionLogger struct {
	log *zap.Logger
}

type pionLoggerFactory struct {
	log *zap.Logger
}

var (
	_ logging.LoggerFactory = pionLoggerFactory{}
	_ logging.LeveledLogger = pionLogger{}
)

func (f pionLoggerFactory) NewLogger(scope string) logging.LeveledLogger {
	// pion adds its own caller frames; ours would point at this file.
	return pionLogger{log: f.log.Named("pion").With(zap.String("scope", scope)).WithOptions(zap.WithCaller(false))}
}

func (l pionLogger) logf(level zapcore.Level, format string, args ...any) {
	// Format only when the level is enabled: most of pion's Debugf calls
	// are on the packet path.
	if l.log.Core().Enabled(level) {
		l.log.Log(level, fmt.Sprintf(format, args...))
	}
}

func (l pionLogger) Trace(string)          {}
func (l pionLogger) Tracef(string, ...any) {}
func (l pionLogger) Debug(msg string)      { l.log.Debug(msg) }
func (l pionLogger) Debugf(f string, a ...any) {
	l.logf(zapcore.DebugLevel, f, a...)
}
func (l pionLogger) Info(msg string) { l.log.Debug(msg) }
func (l pionLogger) Infof(f string, a ...any) {
	l.logf(zapcore.DebugLevel, f, a...)
}
func (l pionLogger) Warn(msg string) { l.log.Warn(msg) }
func (l pionLogger) Warnf(f string, a ...any) {
	l.logf(zapcore.WarnLevel, f, a...)
}
func (l pionLogger) Error(msg string) { l.log.Error(msg) }
func (l pionLogger) Errorf(f string, a ...any) {
	l.logf(zapcore.ErrorLevel, f, a...)
}
