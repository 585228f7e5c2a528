// Package config defines the xdplb configuration file: its YAML schema,
// the defaults for everything optional, and the validation rules.
//
// Loading happens in three steps, each in its own file:
//
//   - decode.go walks the YAML node tree by hand instead of using
//     yaml.Unmarshal on the exported types, so that every problem (an
//     unknown field, a port of 70000, a list where a string belongs) is
//     reported with the YAML path of the offending value rather than as a
//     generic type error about a Go struct the user has never seen;
//   - defaults.go provides the values that absent fields take;
//   - validate.go checks the semantic rules (address families, ranges,
//     uniqueness, datapath map limits).
//
// Every stage collects all of its problems before giving up, so a user
// fixing a config file sees the whole list at once. Errors are *Error,
// which callers and tests can inspect problem by problem.
package config
