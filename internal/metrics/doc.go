// Package metrics exposes the balancer's counters to Prometheus.
//
// A Collector reads a Source when it is scraped and turns what it gets
// into constant metrics: nothing is counted per packet and nothing polls in
// the background, so the cost of metrics is one read of the datapath's
// counters per scrape. A Server serves the Collector, together with the Go
// runtime and process collectors, on /metrics.
//
// The metric names, their labels and example queries are documented in
// docs/metrics.md; docs/grafana-dashboard.json is a dashboard built on them.
package metrics
