package health

import (
	"testing"

	"go.uber.org/goleak"
)

// Every test must leave no goroutine behind: Run stops its scheduler and
// workers, probes close their sockets, exec probes reap their commands.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
