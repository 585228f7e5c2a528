// Package daemon is `xdplb serve`: it validates the configuration against
// the host, loads and attaches the datapath, programs the services,
// prepares the host's network stack, serves the local API, and on shutdown
// undoes everything it changed.
package daemon
