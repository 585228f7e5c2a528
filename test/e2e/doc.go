// Package e2e holds xdplb's end-to-end tests: the real `xdplb serve` binary
// balancing real traffic between network namespaces of the testbed's
// reference topology, in native and generic XDP mode. The package has no
// code of its own; everything is in its _test files.
//
// The tests need root (namespaces, veth, XDP). Without it they skip, except
// when CI=true, where a skip would hide a broken suite and fails instead.
package e2e
