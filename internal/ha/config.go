package ha

import "time"

// Config is this node's part in the election. The daemon fills it from the
// validated configuration (ha.* in internal/config), which holds the bounds:
// priority 1..254, an advert interval of at least 100ms.
type Config struct {
	NodeID         uint8         // unique in the group; breaks priority ties between masters
	Priority       uint8         // higher wins
	AdvertInterval time.Duration // how often this node advertises
	Preempt        bool          // take over from a live master of lower priority
	PreemptDelay   time.Duration // wait this long (once ready) before preempting
}
