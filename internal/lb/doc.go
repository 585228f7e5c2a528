// Package lb holds the desired state of the balancer (services, their
// backends and schedulers) and turns changes to it into datapath writes:
// only what differs is written, and the order of writes keeps every packet
// seeing a complete, consistent service.
package lb
