package daemon

// The election side of a cluster (ha.mode: vrrp): adverts in and out, the
// role applied on the owner, the HA interface watched for faults.

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/xdplb/xdplb/internal/connsync"
	"github.com/xdplb/xdplb/internal/ha"
)

// onHeartbeat passes a peer's advert to the election.
func (c *cluster) onHeartbeat(from uint8, hb connsync.Heartbeat) {
	a := ha.Advert{NodeID: from, Priority: hb.Priority, Role: hb.Role, Ready: hb.Ready, AdvertInterval: hb.AdvertInterval}
	select {
	case c.heard <- a:
	default:
		// The election is behind by a whole queue of adverts; the next
		// ones carry the same news.
	}
}

// elect drives the election: adverts out every interval and at once after
// a change, peers' adverts in, readiness when the bulk pull is done, and
// each role change applied on the owner before it is advertised.
//
// The HA interface going down is a fault, as in keepalived: the node gives
// up its addresses and stops advertising. When it comes back the node
// starts over: a backup that pulls its peers' connections again before it
// may take over, since it missed everything that happened meanwhile.
func (c *cluster) elect(ctx context.Context) {
	e := c.election
	advert := time.NewTicker(c.cfg.AdvertInterval)
	defer advert.Stop()
	fault := false
	for {
		// In fault the election stands still (its clock too): only the
		// advert ticker, which watches the link, runs.
		var timer *time.Timer
		var due <-chan time.Time
		if !fault {
			c.apply(ctx, e)
			timer = time.NewTimer(time.Until(e.Next()))
			due = timer.C
		}
		select {
		case <-ctx.Done():
			return
		case a := <-c.heard:
			if !fault {
				e.Heard(time.Now(), a)
			}
		case <-c.pulled:
			if !fault {
				e.SetReady(time.Now(), true)
			}
		case <-advert.C:
			up, err := linkUp(c.cfg.Interface)
			switch {
			case err != nil:
				c.log.Warn("HA: interface state unknown", "interface", c.cfg.Interface, "err", err)
			case !up && !fault:
				fault = true
				c.enterFault(ctx)
			case up && fault:
				fault = false
				c.log.Info("HA: interface up again; starting over as backup", "interface", c.cfg.Interface)
				e = c.newElection(false)
				c.startPull(ctx)
			}
			if !fault {
				c.advertise(e)
			}
		case <-due:
			e.Tick(time.Now())
		}
		if timer != nil {
			timer.Stop()
		}
	}
}

// newElection starts an election (see ha.Election), as master at once if
// resume says the daemon before this one was master, and publishes its
// first status.
func (c *cluster) newElection(resume bool) *ha.Election {
	now := time.Now()
	e := ha.NewElection(ha.Config{NodeID: c.cfg.NodeID, Priority: c.cfg.Priority,
		AdvertInterval: c.cfg.AdvertInterval, Preempt: c.cfg.Preempt, PreemptDelay: c.cfg.PreemptDelay}, now)
	if resume {
		e.Resume(now)
	}
	st := e.Status()
	c.status.Store(&st)
	return e
}

// enterFault gives up the addresses while the HA interface is down.
func (c *cluster) enterFault(ctx context.Context) {
	c.log.Warn("HA role changed", "from", c.Role(), "to", ha.RoleFault,
		"reason", fmt.Sprintf("interface %s is down", c.cfg.Interface))
	if err := c.setRole(ha.RoleFault, "interface down"); err != nil && ctx.Err() == nil {
		c.log.Error("HA role not fully applied", "role", ha.RoleFault, "err", err)
	}
	c.readyNow.Store(false)
	st := ha.Status{NodeID: c.cfg.NodeID, Role: ha.RoleFault, Reason: "interface " + c.cfg.Interface + " is down",
		Since: time.Now(), Priority: c.cfg.Priority}
	c.status.Store(&st)
}

// linkUp reports whether the interface is up with a carrier.
func linkUp(name string) (bool, error) {
	l, err := netlink.LinkByName(name)
	if err != nil {
		return false, err
	}
	a := l.Attrs()
	return a.Flags&net.FlagUp != 0 && a.OperState != netlink.OperDown && a.OperState != netlink.OperLowerLayerDown, nil
}

// apply carries out the election's role changes, then advertises at once
// if there were any, so the peers learn the new role without waiting an
// interval. Changes that came together are logged one by one but applied
// as their outcome: a node that starts and resumes as master must not
// drop its addresses on the way.
func (c *cluster) apply(ctx context.Context, e *ha.Election) {
	changes := e.Changes()
	for _, ch := range changes {
		c.log.Info("HA role changed", "from", ch.From, "to", ch.To, "reason", ch.Reason)
	}
	if len(changes) > 0 {
		to := changes[len(changes)-1].To
		if err := c.setRole(to, changes[len(changes)-1].Reason); err != nil && ctx.Err() == nil {
			c.log.Error("HA role not fully applied", "role", to, "err", err)
		}
	}
	if e.Reannounce() {
		c.log.Info("HA: another node may have claimed the addresses; announcing them again")
		if err := c.setRole(ha.RoleMaster, "reannounce"); err != nil && ctx.Err() == nil {
			c.log.Error("HA: addresses not announced", "err", err)
		}
	}
	st := e.Status()
	c.status.Store(&st)
	if len(changes) > 0 {
		c.advertise(e)
	}
}

func (c *cluster) advertise(e *ha.Election) {
	if c.node == nil {
		return
	}
	a := e.Advert()
	c.node.SendHeartbeat(connsync.Heartbeat{Priority: a.Priority, Role: a.Role, Ready: a.Ready,
		AdvertInterval: a.AdvertInterval})
}
