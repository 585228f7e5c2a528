// Package ident holds the identities every layer of xdplb shares: a
// service's key (VIP, port, protocol), a backend's key, the protocol and
// the XDP attach mode, with the one parser for how people write them
// (VIP:PORT[/proto], IP[:PORT], service names). It imports nothing of
// xdplb, so config, the datapath, the daemon, the API and the CLI can all
// use the same types instead of joined strings.
package ident
