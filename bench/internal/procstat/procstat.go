// Package procstat reads the CPU time and memory of a process from Linux's
// /proc file system. See proc_pid_stat(5) and proc_pid_status(5).
package procstat

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// defaultClockTicks is the USER_HZ that Linux uses on every common
// architecture, for when the auxiliary vector cannot be read.
const defaultClockTicks = 100

// atClockTick is the auxiliary vector entry AT_CLKTCK, which holds USER_HZ,
// the unit of the CPU times in /proc/<pid>/stat.
const atClockTick = 17

// ClockTicks returns the clock ticks per second that the CPU times in
// /proc/<pid>/stat count, read from this process's auxiliary vector as
// sysconf(_SC_CLK_TCK) does. It assumes a 64-bit little-endian vector and
// returns 100 when the entry cannot be read.
func ClockTicks() int64 {
	auxv, err := os.ReadFile("/proc/self/auxv")
	if err != nil {
		return defaultClockTicks
	}
	for i := 0; i+16 <= len(auxv); i += 16 {
		key := binary.LittleEndian.Uint64(auxv[i:])
		value := binary.LittleEndian.Uint64(auxv[i+8:])
		if key == atClockTick && value > 0 {
			return int64(value)
		}
	}
	return defaultClockTicks
}

// CPUTime returns the user plus system CPU time that process pid has used
// across all its threads. The resolution is one clock tick (10ms with
// USER_HZ 100).
func CPUTime(pid int) (time.Duration, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("reading CPU time of process %d: %w", pid, err)
	}
	ticks, err := parseCPUTicks(data)
	if err != nil {
		return 0, fmt.Errorf("reading CPU time of process %d: %w", pid, err)
	}
	return time.Duration(ticks) * time.Second / time.Duration(ClockTicks()), nil
}

// parseCPUTicks returns utime plus stime, fields 14 and 15 of
// /proc/<pid>/stat. The command name in field 2 is in parentheses and may
// contain spaces and parentheses itself, so the fields are counted from the
// last closing parenthesis.
func parseCPUTicks(stat []byte) (int64, error) {
	end := bytes.LastIndexByte(stat, ')')
	if end < 0 {
		return 0, fmt.Errorf("invalid stat line %q: no command name in parentheses", stat)
	}
	// After the command name come the fields from 3 (state) on, so utime
	// (field 14) is the 12th of them.
	fields := strings.Fields(string(stat[end+1:]))
	if len(fields) < 13 {
		return 0, fmt.Errorf("invalid stat line %q: %d fields after the command name, want at least 13", stat, len(fields))
	}
	utime, err := strconv.ParseInt(fields[11], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("invalid utime %q: %w", fields[11], err)
	}
	stime, err := strconv.ParseInt(fields[12], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("invalid stime %q: %w", fields[12], err)
	}
	return utime + stime, nil
}

// Memory is the resident memory of a process.
type Memory struct {
	// RSS is the resident set size now (VmRSS).
	RSS int64

	// Peak is the largest resident set size so far (VmHWM).
	Peak int64

	// Anon is the resident anonymous memory (RssAnon): the heap, stacks
	// and other memory the process allocated.
	Anon int64

	// File is the resident file-backed memory (RssFile), mostly the pages
	// of the executable that the process has touched. The kernel can drop
	// them under memory pressure and read them again from the file.
	File int64
}

// ReadMemory returns the resident memory of process pid.
func ReadMemory(pid int) (Memory, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return Memory{}, fmt.Errorf("reading memory of process %d: %w", pid, err)
	}
	mem, err := parseMemory(data)
	if err != nil {
		return Memory{}, fmt.Errorf("reading memory of process %d: %w", pid, err)
	}
	return mem, nil
}

// parseMemory reads the VmRSS, VmHWM, RssAnon and RssFile lines of
// /proc/<pid>/status, whose values are in kB (KiB). RssAnon and RssFile
// exist since Linux 4.5.
func parseMemory(status []byte) (Memory, error) {
	var mem Memory
	fields := map[string]*int64{"VmRSS": &mem.RSS, "VmHWM": &mem.Peak, "RssAnon": &mem.Anon, "RssFile": &mem.File}
	found := make(map[string]bool, len(fields))
	for line := range strings.SplitSeq(string(status), "\n") {
		name, value, ok := strings.Cut(line, ":")
		target := fields[name]
		if !ok || target == nil {
			continue
		}
		parts := strings.Fields(value)
		if len(parts) != 2 || parts[1] != "kB" {
			return Memory{}, fmt.Errorf("invalid %s line %q: want a number of kB", name, line)
		}
		kib, err := strconv.ParseInt(parts[0], 10, 64)
		if err != nil {
			return Memory{}, fmt.Errorf("invalid %s line %q: %w", name, line, err)
		}
		*target = kib << 10
		found[name] = true
	}
	for name := range fields {
		if !found[name] {
			return Memory{}, fmt.Errorf("status has no %s line; is this a kernel thread, or Linux older than 4.5?", name)
		}
	}
	return mem, nil
}

// LoadAverage returns the first line of /proc/loadavg: the load averages
// over 1, 5 and 15 minutes, the running and total threads, and the last
// process id, as uptime(1) shows the first three.
func LoadAverage() (string, error) {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "", fmt.Errorf("reading load average: %w", err)
	}
	return strings.TrimSpace(string(data)), nil
}
