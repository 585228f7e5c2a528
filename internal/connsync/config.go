package connsync

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"time"
)

// Defaults for the zero values of Config.
const (
	DefaultBatchInterval = 10 * time.Millisecond
	DefaultBulkTimeout   = 30 * time.Second
)

// MinKeyLen is the shortest HMAC key New accepts.
const MinKeyLen = 16

// Config is one node's view of the sync channel.
type Config struct {
	// NodeID is this node, 1..255, unique in the cluster.
	NodeID uint8
	// ClusterID tells clusters apart that share a link; datagrams with
	// another cluster id are dropped and counted.
	ClusterID uint16
	// Key is the HMAC key every node of the cluster shares, at least
	// MinKeyLen bytes.
	Key []byte
	// Listen is this node's address: UDP (deltas, heartbeats) and TCP
	// (bulk) on the same address and port. It must be a specific
	// address, the one in the peers' Peers, because datagrams are
	// accepted only from a peer's Listen address. Port 0 picks a free
	// port (see Node.Addr).
	Listen netip.AddrPort
	// Peers are the other nodes' Listen addresses.
	Peers []netip.AddrPort
	// BatchInterval is the longest a record waits for others to share
	// its datagram. Default DefaultBatchInterval.
	BatchInterval time.Duration
	// BulkTimeout bounds PullAll's work with each peer, connecting
	// included. Default DefaultBulkTimeout.
	BulkTimeout time.Duration
	// Log receives warnings; nil discards them.
	Log *slog.Logger
}

// validate returns every problem with c at once, one per line, each
// naming the field to change.
func (c *Config) validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.NodeID == 0 {
		bad("NodeID: 0 is not a node id (1-255)")
	}
	if len(c.Key) < MinKeyLen {
		bad("Key: %d bytes, need at least %d", len(c.Key), MinKeyLen)
	}
	listen := c.Listen.Addr().Unmap()
	self := netip.AddrPortFrom(listen, c.Listen.Port())
	switch {
	case !listen.IsValid():
		bad("Listen: not set")
	case listen.IsUnspecified():
		bad("Listen: %s is unspecified; give the address the peers know this node by", self)
	}
	seen := map[netip.AddrPort]bool{}
	for i, p := range c.Peers {
		p = netip.AddrPortFrom(p.Addr().Unmap(), p.Port())
		switch {
		case !p.Addr().IsValid() || p.Addr().IsUnspecified() || p.Port() == 0:
			bad("Peers[%d]: %s is not a peer address (IP and port)", i, p)
		case listen.IsValid() && p.Addr().Is4() != listen.Is4():
			bad("Peers[%d]: %s is not of the family of Listen %s", i, p, self)
		case p == self:
			bad("Peers[%d]: %s is this node's own Listen address", i, p)
		case seen[p]:
			bad("Peers[%d]: %s is listed twice", i, p)
		}
		seen[p] = true
	}
	if c.BatchInterval < 0 {
		bad("BatchInterval: %s is negative", c.BatchInterval)
	}
	if c.BulkTimeout < 0 {
		bad("BulkTimeout: %s is negative", c.BulkTimeout)
	}
	return errors.Join(errs...)
}

// withDefaults returns c with its zero values filled in.
func (c Config) withDefaults() Config {
	if c.BatchInterval == 0 {
		c.BatchInterval = DefaultBatchInterval
	}
	if c.BulkTimeout == 0 {
		c.BulkTimeout = DefaultBulkTimeout
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	c.Listen = netip.AddrPortFrom(c.Listen.Addr().Unmap(), c.Listen.Port())
	return c
}
