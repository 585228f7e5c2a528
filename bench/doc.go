// Package bench is xdplb's benchmark harness: the datapath's cost per
// packet against a minimal XDP program, its packet rate on one core, its
// behaviour with a full conntrack table, and end-to-end request rates,
// latencies and throughput on the reference topology against no balancer,
// HAProxy and nftables. See README.md; bench/cmd/xdplb-bench runs it.
package bench
