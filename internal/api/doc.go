// Package api is the daemon's local control interface: HTTP with JSON
// bodies over a unix socket, and the client the CLI uses to talk to it.
package api
