// Package demo runs the project's reference scenario: a client, a balancer
// and two real servers in network namespaces on one bridge, real HTTP
// requests through the VIP, and the datapath counters afterwards. Its
// balancer runner is shared with the end-to-end tests.
package demo
