package freeport

import (
	"net"
	"strconv"
	"testing"
)

func TestPickDistinctBindablePorts(t *testing.T) {
	ports, err := Pick(20)
	if err != nil {
		t.Fatal(err)
	}
	if len(ports) != 20 {
		t.Fatalf("Pick(20) returned %d ports", len(ports))
	}
	seen := make(map[int]bool)
	for _, port := range ports {
		if seen[port] {
			t.Errorf("port %d picked twice", port)
		}
		seen[port] = true

		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			t.Errorf("binding picked port %d: %v", port, err)
			continue
		}
		ln.Close()
	}
}

func TestPickBelowEphemeralRange(t *testing.T) {
	low, high := candidateRange()
	if high-low < minimumPorts {
		t.Skipf("ports %d to %d leave too few below the ephemeral range", low, high)
	}
	ports, err := Pick(50)
	if err != nil {
		t.Fatal(err)
	}
	for _, port := range ports {
		if port < low || port >= high {
			t.Errorf("port %d outside [%d, %d), where outgoing connections do not take it", port, low, high)
		}
	}
}
