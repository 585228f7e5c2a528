package daemon

import (
	"context"
	"fmt"
	"slices"

	"github.com/xdplb/xdplb/internal/api"
	"github.com/xdplb/xdplb/internal/config"
	"github.com/xdplb/xdplb/internal/ha"
	"github.com/xdplb/xdplb/internal/hostnet"
)

// setRole is the owner's side of a role change. In vrrp mode a master owns
// the VIPs and local addresses and announces them with gratuitous ARPs (a
// burst now, another after ha.garp.delay); a backup removes them first
// thing, so a returning master finds them free. Called from the election
// (or the API in external mode), never on the owner goroutine itself.
func (d *Daemon) setRole(ctx context.Context, to ha.Role) error {
	return d.do(func() error {
		if prev := d.cluster.Role(); prev != to && d.cfg.HA.Mode == config.HAModeExternal {
			d.log.Info("HA role changed", "from", prev, "to", to, "reason", "set through the API (external mode)")
		}
		// Both copies change on the owner: the cluster's (which decides
		// who refreshes and tells the peers about expiries, and which the
		// API reports) once the addresses are in place, so a node reported
		// master has them.
		d.role = to
		err := d.addAddresses()
		d.cluster.role.Store(uint32(to))
		if d.cfg.HA.Mode == config.HAModeVRRP {
			if to == ha.RoleMaster {
				g := d.cfg.HA.GARP
				d.announcer.Start(ctx, d.addrInterface(), d.wantAddresses(), g.Repeat, g.Delay)
			} else {
				d.announcer.Stop()
			}
		}
		d.publish()
		return err
	})
}

// startRole sets the role this node starts in: without an election it
// carries its traffic (master); in vrrp mode it waits for the election,
// unless the daemon before it handed over as master; in external mode it
// is master if keepalived already put a VIP on the host.
func (d *Daemon) startRole() error {
	switch d.cfg.HA.Mode {
	case config.HAModeNone:
		d.role = ha.RoleMaster
	case config.HAModeVRRP:
		resume, err := d.resumesMaster()
		if err != nil {
			return err
		}
		d.cluster.election = d.cluster.newElection(resume)
		d.role = d.cluster.election.Role()
	case config.HAModeExternal:
		d.role = ha.RoleBackup
		for _, v := range vips(d.cfg.Services) {
			if has, err := hostnet.HostHas(v); err == nil && has {
				d.role = ha.RoleMaster
				break
			}
		}
	}
	d.cluster.role.Store(uint32(d.role))
	d.log.Info("HA role at start", "mode", d.cfg.HA.Mode, "role", d.role)
	return nil
}

// resumesMaster reports whether the daemon before this one handed over
// (SIGUSR2) as the vrrp master, leaving this node's VIPs or local addresses
// on the HA interface. The new daemon then starts as master, so an upgrade
// does not take the addresses away from a working pair. The record is
// cleared, so that a crash of this daemon does not pass for a hand-over.
func (d *Daemon) resumesMaster() (bool, error) {
	prev := d.owned.snapshot()
	if !prev.HandedOverMaster {
		return false, nil
	}
	if err := d.owned.update(func(o *owned) { o.HandedOverMaster = false }); err != nil {
		return false, err
	}
	ours := append(vips(d.cfg.Services), d.cfg.Local.Addresses...)
	for _, a := range prev.Addresses {
		if a.Interface == d.cfg.HA.Interface && slices.Contains(ours, a.Address) {
			return d.cfg.HA.Mode == config.HAModeVRRP, nil
		}
	}
	return false, nil
}

// recordHandOver notes, before a SIGUSR2 exit, whether this daemon hands
// over as the vrrp master (see resumesMaster).
func (d *Daemon) recordHandOver() error {
	master := d.cluster != nil && d.cluster.cfg.Mode == config.HAModeVRRP && d.cluster.Role() == ha.RoleMaster
	return d.owned.update(func(o *owned) { o.HandedOverMaster = master })
}

// SetRole implements api.Cluster: in external mode keepalived's notify
// scripts say which node is master.
func (d *Daemon) SetRole(role string) error {
	if d.cluster == nil || d.cluster.cfg.Mode != config.HAModeExternal {
		mode := config.HAModeNone
		if d.cluster != nil {
			mode = d.cluster.cfg.Mode
		}
		return api.Conflict(fmt.Sprintf("ha.mode is %s: only in external mode is the role set from outside", mode))
	}
	var to ha.Role
	switch role {
	case "master":
		to = ha.RoleMaster
	case "backup":
		to = ha.RoleBackup
	default:
		return fmt.Errorf("role %q: want master or backup", role)
	}
	return d.setRole(context.Background(), to)
}
