// Package importer converts the configurations of the tools xdplb
// replaces into an xdplb configuration: keepalived.conf (its LVS part)
// and the rules `ipvsadm -Sn` prints.
//
// A keepalived file goes through three steps, each in its own file:
//
//   - token.go splits one file into words and braces, with line numbers
//     (comments, quoted strings and escapes as keepalived reads them);
//   - load.go reads a file and the files its include lines name (glob
//     patterns relative to the including file), with a bound on the
//     depth and a check for cycles, and parse.go builds the tree of
//     keywords and blocks;
//   - keepalived.go (the top level), virtualserver.go (virtual and real
//     servers) and checks.go (health checks) map that tree to config
//     types; values.go reads the values they share with ipvsadm.go.
//
// ipvsadm.go reads `ipvsadm -Sn` output into the same types.
//
// What cannot be carried over is never dropped silently: every keyword
// without an xdplb equivalent becomes a Finding (FILE:LINE: keyword: why)
// in Result.Unmapped, and behaviour that differs although the keyword
// was mapped becomes one in Result.Notes. The result is a config.Config
// whose interfaces (eth0) and local addresses (none) the operator must
// fill in; Result.YAML renders it with a header saying so.
package importer
