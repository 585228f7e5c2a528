package ha

import (
	"testing"

	"go.uber.org/goleak"
)

// Every test must leave no goroutine behind: an Announcer's goroutine ends
// with Stop, a new Start or its context.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
