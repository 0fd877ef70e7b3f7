package delivery

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"syscall"
	"time"
)

// Seams for tests, which set them once in TestMain. In production
// resolveHost is the system resolver and afterGuard is nil.
var (
	// resolveHost returns the addresses of a host name. network is "ip",
	// "ip4" or "ip6".
	resolveHost = net.DefaultResolver.LookupNetIP

	// afterGuard, when set, runs on every connection after the guard has
	// passed it, just before connect(2), with the address "ip:port".
	afterGuard func(network, address string) error
)

// minDialTimeout is the least time given to each address of a host when
// the attempt's deadline is split among them.
const minDialTimeout = 2 * time.Second

// dialer opens the connections of one endpoint's deliveries. It resolves the
// host itself and refuses the host when any of its addresses is blocked, so
// a DNS answer that mixes public and internal addresses cannot pick the
// internal one by failing the public one. Every connect(2) is checked once
// more in net.Dialer.Control, on the address actually dialed, so no
// connection reaches a blocked address even if the resolution step is
// wrong.
type dialer struct {
	guard *guard
	base  net.Dialer
}

// DialContext connects to address ("host:port"), trying each address of
// the host in the resolver's order.
func (d *dialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	host, portText, err := net.SplitHostPort(address)
	if err != nil {
		return nil, fmt.Errorf("splitting dial address %q: %w", address, err)
	}
	port, err := strconv.ParseUint(portText, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("invalid port %q in dial address %q", portText, address)
	}

	addrs, err := d.resolve(ctx, network, host)
	if err != nil {
		return nil, err
	}
	for _, addr := range addrs {
		if err := d.guard.check(host, addr); err != nil {
			return nil, err
		}
	}

	var firstErr error
	for i, addr := range addrs {
		target := netip.AddrPortFrom(addr, uint16(port))
		conn, err := d.dialOne(ctx, network, host, target, len(addrs)-i)
		if err == nil {
			return conn, nil
		}
		if firstErr == nil {
			firstErr = err
		}
		if ctx.Err() != nil {
			break
		}
	}
	return nil, firstErr
}

// resolve returns the addresses of host that fit network, IPv4-mapped
// addresses as IPv4. An IP address resolves to itself.
func (d *dialer) resolve(ctx context.Context, network, host string) ([]netip.Addr, error) {
	if addr, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{addr.Unmap()}, nil
	}

	lookupNetwork := "ip"
	switch network {
	case "tcp4":
		lookupNetwork = "ip4"
	case "tcp6":
		lookupNetwork = "ip6"
	}
	answer, err := resolveHost(ctx, lookupNetwork, host)
	if err != nil {
		return nil, err
	}
	addrs := make([]netip.Addr, 0, len(answer))
	for _, addr := range answer {
		addr = addr.Unmap()
		if network == "tcp4" && !addr.Is4() || network == "tcp6" && !addr.Is6() {
			continue
		}
		addrs = append(addrs, addr)
	}
	if len(addrs) == 0 {
		return nil, &net.DNSError{Err: "no " + lookupNetwork + " address found", Name: host, IsNotFound: true}
	}
	return addrs, nil
}

// dialOne connects to target with a share of the time left, so one address
// that drops packets does not use up the whole attempt. remaining counts
// target and the addresses after it.
func (d *dialer) dialOne(ctx context.Context, network, host string, target netip.AddrPort, remaining int) (net.Conn, error) {
	if deadline, ok := ctx.Deadline(); ok && remaining > 1 {
		share := time.Until(deadline) / time.Duration(remaining)
		share = max(share, minDialTimeout)
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, share)
		defer cancel()
	}

	nd := d.base
	nd.Control = func(network, address string, _ syscall.RawConn) error {
		return d.control(host, network, address)
	}
	return nd.DialContext(ctx, network, target.String())
}

// control checks the address of a socket about to connect.
func (d *dialer) control(host, network, address string) error {
	target, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("parsing the address %q to connect to: %w", address, err)
	}
	if err := d.guard.check(host, target.Addr()); err != nil {
		return err
	}
	if afterGuard != nil {
		return afterGuard(network, address)
	}
	return nil
}
