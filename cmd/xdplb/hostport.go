package main

import (
	"net"
	"strconv"
)

// hostPort writes an address and port the way the daemon writes them and
// the commands read them back: 172.19.0.10:80, [2001:db8::10]:80.
func hostPort(addr string, port uint16) string {
	return net.JoinHostPort(addr, strconv.Itoa(int(port)))
}
