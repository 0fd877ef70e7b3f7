package procstat

import (
	"os"
	"strings"
	"testing"
	"time"
)

func TestParseCPUTicks(t *testing.T) {
	tests := []struct {
		name    string
		stat    string
		want    int64
		wantErr bool
	}{
		{
			name: "plain name",
			stat: "4242 (caddy) S 1 4242 4242 0 -1 4194560 1234 0 0 0 150 25 0 0 20 0 12 0 100 1000000 2000 18446744073709551615",
			want: 175,
		},
		{
			name: "name with spaces and parentheses",
			stat: "7 (a) b (c) R 1 7 7 0 -1 0 0 0 0 0 3 4 0 0 20 0 1 0 100 0 0 0",
			want: 7,
		},
		{name: "no parentheses", stat: "7 caddy R 1", wantErr: true},
		{name: "too few fields", stat: "7 (caddy) R 1 2 3", wantErr: true},
		{name: "utime not a number", stat: "7 (caddy) R 1 7 7 0 -1 0 0 0 0 0 x 4 0", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseCPUTicks([]byte(tt.stat))
			if tt.wantErr {
				if err == nil {
					t.Errorf("parseCPUTicks = %d, want an error", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseCPUTicks: %v", err)
			}
			if got != tt.want {
				t.Errorf("parseCPUTicks = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestParseMemory(t *testing.T) {
	status := "Name:\tcaddy\nVmPeak:\t 900000 kB\nVmHWM:\t   51200 kB\nVmRSS:\t   40960 kB\n" +
		"RssAnon:\t   10240 kB\nRssFile:\t   30720 kB\nRssShmem:\t       0 kB\nThreads:\t12\n"
	got, err := parseMemory([]byte(status))
	if err != nil {
		t.Fatalf("parseMemory: %v", err)
	}
	if got.RSS != 40960<<10 {
		t.Errorf("RSS = %d, want %d", got.RSS, 40960<<10)
	}
	if got.Peak != 51200<<10 {
		t.Errorf("Peak = %d, want %d", got.Peak, 51200<<10)
	}
	if got.Anon != 10240<<10 {
		t.Errorf("Anon = %d, want %d", got.Anon, 10240<<10)
	}
	if got.File != 30720<<10 {
		t.Errorf("File = %d, want %d", got.File, 30720<<10)
	}

	if _, err := parseMemory([]byte("Name:\tkthreadd\nThreads:\t1\n")); err == nil {
		t.Error("parseMemory without VmRSS returned no error")
	}
	if _, err := parseMemory([]byte("VmHWM:\t51200 kB\nVmRSS:\t40960 kB\n")); err == nil {
		t.Error("parseMemory without RssAnon and RssFile returned no error")
	}
	if _, err := parseMemory([]byte("VmHWM:\t51200 kB\nVmRSS:\t40960 kB\nRssAnon:\t10 MB\nRssFile:\t1 kB\n")); err == nil {
		t.Error("parseMemory with RssAnon in MB returned no error")
	}
}

// spinSink keeps the compiler from removing the busy loop of
// TestOwnProcess.
var spinSink int

func TestOwnProcess(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc file system")
	}
	pid := os.Getpid()

	before, err := CPUTime(pid)
	if err != nil {
		t.Fatalf("CPUTime: %v", err)
	}
	// Spin until the CPU time moves by at least one tick, bounded by a
	// deadline so that a broken reader fails instead of hanging.
	deadline := time.Now().Add(5 * time.Second)
	after := before
	for after == before && time.Now().Before(deadline) {
		for i := range 1_000_000 {
			spinSink += i * i
		}
		after, err = CPUTime(pid)
		if err != nil {
			t.Fatalf("CPUTime: %v", err)
		}
	}
	if after <= before {
		t.Errorf("CPU time went from %s to %s after 5s of spinning, want it to grow", before, after)
	}

	mem, err := ReadMemory(pid)
	if err != nil {
		t.Fatalf("ReadMemory: %v", err)
	}
	if mem.RSS <= 0 || mem.Peak < mem.RSS {
		t.Errorf("memory = %+v, want 0 < RSS <= Peak", mem)
	}

	if ticks := ClockTicks(); ticks <= 0 {
		t.Errorf("ClockTicks() = %d, want a positive number", ticks)
	}

	load, err := LoadAverage()
	if err != nil {
		t.Fatalf("LoadAverage: %v", err)
	}
	if len(strings.Fields(load)) < 3 {
		t.Errorf("LoadAverage() = %q, want at least three fields", load)
	}
}
