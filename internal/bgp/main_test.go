package bgp

import (
	"os"
	"testing"

	"go.uber.org/goleak"
)

// TestMain runs the tests, or a speaker process when started as one
// (see speakerEnv).
//
// Every test must leave no goroutine behind: a stopped Speaker (and a
// stopped test router) ends all of GoBGP's. Except one: GoBGP closes a
// peer's unbounded update queue and drains it without waiting
// (pkg/server cleanInfiniteChannel), so the queue's goroutine stays
// blocked when an item was still in flight. That is GoBGP's, one per
// closed session at most; a leaked server or session would still show
// here through its other goroutines.
func TestMain(m *testing.M) {
	if spec := os.Getenv(speakerEnv); spec != "" {
		os.Exit(speakerProcess(spec))
	}
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/eapache/channels.(*InfiniteChannel).infiniteBuffer"))
}
