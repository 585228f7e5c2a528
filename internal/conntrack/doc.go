// Package conntrack manages the lifecycle of the datapath's connection
// table: it expires connections by state and age (both halves together),
// removes halves whose partner is gone, and lists connections for people.
// The datapath only creates entries and stamps them; deciding when they
// end is done here, where timeouts are configurable.
package conntrack
