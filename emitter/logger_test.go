package emitter

import (
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

func TestServerLoggerLevels(t *testing.T) {
	tests := []struct {
		name  string
		log   func(l *serverLogger)
		level zapcore.Level
		msg   string
	}{
		{name: "notice", log: func(l *serverLogger) { l.Noticef("Server is %s", "ready") }, level: zapcore.InfoLevel, msg: "Server is ready"},
		{name: "warning", log: func(l *serverLogger) { l.Warnf("slow %d", 3) }, level: zapcore.WarnLevel, msg: "slow 3"},
		{name: "error", log: func(l *serverLogger) { l.Errorf("failed: %v", "disk") }, level: zapcore.ErrorLevel, msg: "failed: disk"},
		{name: "fatal", log: func(l *serverLogger) { l.Fatalf("Can't start JetStream: %s", "full") }, level: zapcore.ErrorLevel, msg: "Can't start JetStream: full"},
		{name: "debug", log: func(l *serverLogger) { l.Debugf("client %d", 7) }, level: zapcore.DebugLevel, msg: "client 7"},
		{name: "trace", log: func(l *serverLogger) { l.Tracef("<<- %s", "PING") }, level: zapcore.DebugLevel, msg: "<<- PING"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logger, logs := observedLogger()
			tt.log(newServerLogger(logger))
			entries := logs.All()
			if len(entries) != 1 {
				t.Fatalf("logged %d entries, want 1", len(entries))
			}
			if entries[0].Level != tt.level {
				t.Errorf("level = %s, want %s", entries[0].Level, tt.level)
			}
			if entries[0].Message != tt.msg {
				t.Errorf("message = %q, want %q", entries[0].Message, tt.msg)
			}
		})
	}
}

func TestServerLoggerBannerAtDebug(t *testing.T) {
	logger, logs := observedLogger()
	l := newServerLogger(logger)

	l.Noticef("Starting JetStream")
	l.Noticef(bannerLogoStart + "   _   __  __")
	l.Noticef("")
	l.Noticef("         https://docs.nats.io/jetstream")
	l.Noticef(bannerHeaderStart)
	l.Noticef("  Max Memory:      %s", "1 GB")
	l.Noticef(bannerEnd)
	l.Noticef("Server is ready")

	want := []zapcore.Level{
		zapcore.InfoLevel,
		zapcore.DebugLevel, zapcore.DebugLevel, zapcore.DebugLevel, zapcore.DebugLevel, zapcore.DebugLevel, zapcore.DebugLevel,
		zapcore.InfoLevel,
	}
	entries := logs.All()
	if len(entries) != len(want) {
		t.Fatalf("logged %d entries, want %d", len(entries), len(want))
	}
	for i, entry := range entries {
		if entry.Level != want[i] {
			t.Errorf("line %d %q at %s, want %s", i, entry.Message, entry.Level, want[i])
		}
	}
}

func TestServerLoggerKeepsFirstFatal(t *testing.T) {
	l := newServerLogger(zap.NewNop())
	if got := l.fatalMessage(); got != "" {
		t.Fatalf("fatalMessage() = %q before any fatal line, want empty", got)
	}
	l.Fatalf("first %d", 1)
	l.Fatalf("second %d", 2)
	if got := l.fatalMessage(); got != "first 1" {
		t.Errorf("fatalMessage() = %q, want %q", got, "first 1")
	}
}

// formatCounter counts how often it is formatted.
type formatCounter struct{ calls int }

func (c *formatCounter) String() string {
	c.calls++
	return "value"
}

func TestServerLoggerSkipsDisabledLevels(t *testing.T) {
	core, logs := observer.New(zapcore.InfoLevel)
	l := newServerLogger(zap.New(core))

	counter := &formatCounter{}
	l.Debugf("debug %s", counter)
	l.Tracef("trace %s", counter)
	if counter.calls != 0 {
		t.Errorf("disabled debug lines were formatted %d times, want 0", counter.calls)
	}
	if logs.Len() != 0 {
		t.Errorf("logged %d entries below the enabled level, want 0", logs.Len())
	}
}
