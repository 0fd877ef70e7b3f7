// Package freeport picks TCP ports on 127.0.0.1 for servers that tests and
// benchmarks start in other processes, which bind the port themselves.
//
// A port that the kernel hands out for 127.0.0.1:0 comes from the ephemeral
// range, the same range it draws the local ports of outgoing connections
// from. Between the moment such a port is released and the moment the other
// process binds it, any connection may take it, and on a busy machine one
// sometimes does. So these ports come from below the ephemeral range, which
// outgoing connections never use.
//
// Test processes of this module run at the same time, and Caddy binds its
// listeners with SO_REUSEPORT, so two Caddy processes given the same port
// would share it without an error, each receiving some of the other's
// connections. Each port picked is therefore also claimed with a lock file
// that the picking process holds until it exits, and Pick skips ports that
// this or another process has claimed.
package freeport

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
)

// Bounds of the ports picked, unless the ephemeral range leaves too few
// ports below it. The machines this project runs on report an ephemeral
// range of 32768 to 60999.
const (
	lowestPort   = 20000
	minimumPorts = 1000
)

// attempts bounds the random tries before Pick falls back to a port of the
// ephemeral range.
const attempts = 200

// Pick returns n distinct TCP ports of 127.0.0.1 that were free a moment
// ago.
func Pick(n int) ([]int, error) {
	low, high := candidateRange()
	ports := make([]int, 0, n)
	skipped := 0
	var listeners []net.Listener
	defer func() {
		for _, ln := range listeners {
			ln.Close()
		}
	}()

	for len(ports) < n {
		ln, err := listen(low, high)
		if err != nil {
			return nil, err
		}
		listeners = append(listeners, ln)
		port := ln.Addr().(*net.TCPAddr).Port
		if !claim(port) {
			skipped++
			if skipped > attempts {
				return nil, fmt.Errorf("finding a free port on 127.0.0.1 failed: %d ports in a row were claimed by other processes; run fewer test processes at once", skipped)
			}
			continue
		}
		ports = append(ports, port)
	}
	return ports, nil
}

// listen binds a random free port in [low, high), or a port of the
// ephemeral range when the range is empty or every try fails.
func listen(low, high int) (net.Listener, error) {
	if high-low >= minimumPorts {
		for range attempts {
			port := low + rand.IntN(high-low)
			if ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port))); err == nil {
				return ln, nil
			}
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("finding a free port on 127.0.0.1 failed: %w", err)
	}
	return ln, nil
}

// candidateRange returns the ports from lowestPort up to the start of the
// ephemeral range, read from /proc/sys/net/ipv4/ip_local_port_range. Where
// that file is missing, as outside Linux, the range is empty.
func candidateRange() (low, high int) {
	data, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0, 0
	}
	fields := strings.Fields(string(data))
	if len(fields) != 2 {
		return 0, 0
	}
	ephemeralLow, err := strconv.Atoi(fields[0])
	if err != nil {
		return 0, 0
	}
	return lowestPort, ephemeralLow
}
