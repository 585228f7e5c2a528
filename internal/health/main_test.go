package health

import (
	"net/netip"
	"testing"

	"go.uber.org/goleak"

	"github.com/xdplb/xdplb/internal/ident"
)

// Every test must leave no goroutine behind: Run stops its scheduler and
// workers, probes close their sockets, exec probes reap their commands.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// Service keys the tests check targets of.
var (
	webKey = ident.Service{VIP: netip.MustParseAddr("172.19.0.10"), Port: 80, Proto: ident.TCP}
	dnsKey = ident.Service{VIP: netip.MustParseAddr("172.19.0.10"), Port: 53, Proto: ident.UDP}
)

// svcKey is the key of the i-th of many services.
func svcKey(i int) ident.Service {
	return ident.Service{VIP: netip.MustParseAddr("172.19.0.10"), Port: uint16(i + 1), Proto: ident.TCP}
}
