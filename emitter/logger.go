package emitter

import (
	"fmt"
	"strings"
	"sync"

	"github.com/nats-io/nats-server/v2/server"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// serverLogger writes the embedded NATS server's log lines to zap. Notices
// become Info, warnings Warn, errors and fatal errors Error, debug and
// trace lines Debug. The multi-line JetStream banner goes to Debug.
//
// Fatalf never exits: nats-server reports failures such as "Can't start
// JetStream" through Fatalf and then returns from Start, so the first fatal
// message is kept for the caller that starts the server.
type serverLogger struct {
	logger *zap.Logger

	mu       sync.Mutex
	inBanner bool
	fatal    string
}

func newServerLogger(logger *zap.Logger) *serverLogger {
	return &serverLogger{logger: logger}
}

// Lines that open and close the JetStream banner (server/jetstream.go in
// nats-server v2.15.3): an ASCII-art logo, a link, then a block of
// settings between two dashed lines.
const (
	bannerLogoStart   = "    _ ___ _____ ___ _____ ___ ___"
	bannerHeaderStart = "---------------- JETSTREAM ----------------"
	bannerEnd         = "-------------------------------------------"
)

func (l *serverLogger) Noticef(format string, v ...any) {
	level := zapcore.InfoLevel
	if l.isBannerLine(format) {
		level = zapcore.DebugLevel
	}
	l.write(level, format, v)
}

func (l *serverLogger) Warnf(format string, v ...any) {
	l.write(zapcore.WarnLevel, format, v)
}

func (l *serverLogger) Errorf(format string, v ...any) {
	l.write(zapcore.ErrorLevel, format, v)
}

func (l *serverLogger) Fatalf(format string, v ...any) {
	message := fmt.Sprintf(format, v...)
	l.mu.Lock()
	if l.fatal == "" {
		l.fatal = message
	}
	l.mu.Unlock()
	l.logger.Error(message, zap.Bool("fatal", true))
}

func (l *serverLogger) Debugf(format string, v ...any) {
	l.write(zapcore.DebugLevel, format, v)
}

func (l *serverLogger) Tracef(format string, v ...any) {
	l.write(zapcore.DebugLevel, format, v)
}

// fatalMessage returns the first message logged with Fatalf, or "".
func (l *serverLogger) fatalMessage() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.fatal
}

// write formats the line only when zap will record it, because the server
// calls Debugf and Tracef on busy paths.
func (l *serverLogger) write(level zapcore.Level, format string, v []any) {
	entry := l.logger.Check(level, "")
	if entry == nil {
		return
	}
	entry.Message = fmt.Sprintf(format, v...)
	entry.Write()
}

// isBannerLine tracks whether a notice belongs to the JetStream banner,
// which the server logs one line at a time.
func (l *serverLogger) isBannerLine(format string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()

	switch {
	case strings.HasPrefix(format, bannerLogoStart), format == bannerHeaderStart:
		l.inBanner = true
		return true
	case l.inBanner && format == bannerEnd:
		l.inBanner = false
		return true
	default:
		return l.inBanner
	}
}

// Interface guard
var _ server.Logger = (*serverLogger)(nil)
