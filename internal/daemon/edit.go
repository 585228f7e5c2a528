package daemon

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"reflect"

	"github.com/xdplb/xdplb/internal/api"
	"github.com/xdplb/xdplb/internal/config"
)

// errFileChanged refuses a runtime change that would overwrite an edit
// of the configuration file that was not reloaded yet.
var errFileChanged = api.Conflict(config.ErrFileChanged.Error())

// Change implements api.Editor. On the owner goroutine the edit is tried
// on a copy, validated, applied and saved to the configuration file, in
// that order; if any step fails, what runs and the file stay as they were.
func (d *Daemon) Change(edit func(*config.Config) error) error {
	return d.do(func() error { return d.change(edit) })
}

// Where changes to the running state come from, for the audit log.
const (
	sourceAPI    = "api"
	sourceReload = "reload"
	sourceSIGHUP = "sighup"
	sourceStart  = "start"
	sourceHealth = "health"
)

func (d *Daemon) change(edit func(*config.Config) error) error {
	if digest, err := d.configDigest(); err != nil {
		return err
	} else if digest != d.fileDigest {
		return errFileChanged
	}
	next := d.cfg.Clone()
	if err := edit(next); err != nil {
		return err
	}
	if err := next.Validate(); err != nil {
		return err
	}
	prev := d.cfg
	changes := config.DiffServices(prev.Services, next.Services)
	if err := d.applyServices(next); err != nil {
		return err
	}
	if err := d.save(next.Services); err != nil {
		// Not saved means not confirmed: put back what ran, so the file
		// and the datapath keep agreeing.
		if errors.Is(err, errFileChanged) {
			return errors.Join(err, d.applyServices(prev))
		}
		return errors.Join(fmt.Errorf("change not saved, so not applied: %w", err), d.applyServices(prev))
	}
	d.audit(sourceAPI, changes)
	return nil
}

// configDigest is the digest of the configuration file as it is now, or
// zero for a daemon run without one.
func (d *Daemon) configDigest() ([sha256.Size]byte, error) {
	if d.opts.ConfigPath == "" {
		return [sha256.Size]byte{}, nil
	}
	return config.Digest(d.opts.ConfigPath)
}

// save writes services back to the configuration file and remembers what
// the file now holds.
func (d *Daemon) save(services []config.Service) error {
	written, err := config.SaveServices(d.opts.ConfigPath, services, d.fileDigest)
	if errors.Is(err, config.ErrFileChanged) {
		return errFileChanged
	}
	if err != nil {
		return err
	}
	d.fileDigest = written
	return nil
}

// Reload implements api.Editor: the configuration file is read again and
// what changed is applied, on the owner goroutine, so a reload and an API
// change never interleave. Settings that only a start can apply are
// reported and left as they run.
func (d *Daemon) Reload(dryRun bool) (api.ReloadResult, error) {
	return d.reloadFrom(sourceReload, dryRun)
}

// reloadFrom reloads for source, or with dryRun says what a reload would
// change, applying nothing.
func (d *Daemon) reloadFrom(source string, dryRun bool) (api.ReloadResult, error) {
	var res api.ReloadResult
	err := d.do(func() (err error) {
		if dryRun {
			res, err = d.plan()
			return err
		}
		res, err = d.reload(source)
		return err
	})
	if dryRun {
		return res, err
	}
	if err != nil {
		d.reloads.failed.Add(1)
		d.log.Error("reload failed; the running configuration is unchanged", "source", source, "err", err)
		return api.ReloadResult{}, err
	}
	d.reloads.ok.Add(1)
	d.log.Info("configuration reloaded", "source", source, "applied", res.Applied, "need_restart", res.NeedRestart)
	return res, nil
}

// plan is what a reload would change: the file against what runs.
func (d *Daemon) plan() (api.ReloadResult, error) {
	next, err := config.Load(d.opts.ConfigPath)
	if err != nil {
		return api.ReloadResult{}, err
	}
	return api.ReloadResult{DryRun: true, Changes: wireChanges(config.Diff(d.cfg, next))}, nil
}

func wireChanges(cs []config.Change) []api.Change {
	out := make([]api.Change, len(cs))
	for i, c := range cs {
		out[i] = api.Change(c)
	}
	return out
}
func (d *Daemon) reload(source string) (api.ReloadResult, error) {
	var res api.ReloadResult
	next, digest, err := config.LoadDigest(d.opts.ConfigPath)
	if err != nil {
		return res, err
	}
	cur := d.cfg
	changes := config.Diff(cur, next)
	res.Changes = wireChanges(changes)
	for _, c := range changes {
		if c.Restart {
			res.NeedRestart = append(res.NeedRestart, c.What)
		}
	}
	// Keep what only a restart applies as it runs, so the copy below
	// describes the running daemon.
	next.Interfaces, next.XDPMode, next.State, next.API = cur.Interfaces, cur.XDPMode, cur.State, cur.API
	next.Conntrack.Capacity, next.Conntrack.GCInterval, next.Metrics = cur.Conntrack.Capacity, cur.Conntrack.GCInterval, cur.Metrics
	next.Log.Format = cur.Log.Format
	next.HA, next.Sync, next.BGP = cur.HA, cur.Sync, cur.BGP

	// What can be refused is tried first, undone if a later step fails;
	// the rest (timeouts, log level: validated with the file) cannot fail,
	// so a refused reload leaves the running configuration as it was.
	localChanged := !reflect.DeepEqual(cur.Local, next.Local)
	if localChanged {
		if err := checkPorts(next.Local, d.owned.snapshot().hasAddress); err != nil {
			return res, err
		}
	}
	synChanged := cur.SYNProtection != next.SYNProtection
	if synChanged {
		if err := setSYNProtection(d.dp, next.SYNProtection); err != nil {
			return res, err
		}
	}
	// The host's addresses are read again with every reload, changed
	// settings or not: a co-located node's own backend may have come.
	if err := setDSR(d.dp, next.DSR, d.log); err != nil {
		return res, errors.Join(err, setDSR(d.dp, cur.DSR, d.log), d.undoSYN(synChanged, cur))
	}
	dsrChanged := !reflect.DeepEqual(cur.DSR, next.DSR)
	if localChanged {
		if err := d.setLocal(next.Local); err != nil {
			return res, errors.Join(err, d.setLocal(cur.Local), d.undoSYN(synChanged, cur), setDSR(d.dp, cur.DSR, d.log))
		}
		res.Applied = append(res.Applied, "local")
	}
	servicesChanged := !reflect.DeepEqual(cur.Services, next.Services)
	if err := d.applyServices(next); err != nil {
		if localChanged {
			err = errors.Join(err, d.setLocal(cur.Local))
		}
		return api.ReloadResult{}, errors.Join(err, d.undoSYN(synChanged, cur), setDSR(d.dp, cur.DSR, d.log))
	}
	d.fileDigest = digest
	d.audit(source, config.Diff(cur, d.cfg))
	if servicesChanged {
		res.Applied = append(res.Applied, "services")
	}
	if synChanged {
		res.Applied = append(res.Applied, "syn_protection")
	}
	if dsrChanged {
		res.Applied = append(res.Applied, "dsr")
	}
	if cur.Conntrack.Timeouts != next.Conntrack.Timeouts {
		d.collector.SetTimeouts(timeouts(next.Conntrack.Timeouts))
		res.Applied = append(res.Applied, "conntrack.timeouts")
	}
	if cur.Log.Level != next.Log.Level {
		d.setLogLevel(next.Log.Level)
		res.Applied = append(res.Applied, "log.level")
	}
	return res, nil
}

// undoSYN puts back the running SYN protection after a refused reload, if
// the reload had changed it.
func (d *Daemon) undoSYN(changed bool, cur *config.Config) error {
	if !changed {
		return nil
	}
	return setSYNProtection(d.dp, cur.SYNProtection)
}

// audit logs every change to the running state with where it came from,
// one line per change, so the log answers "who changed what".
func (d *Daemon) audit(source string, changes []config.Change) {
	for _, c := range changes {
		d.log.Info("changed", "source", source, "what", c.What, "field", c.Field, "old", c.Old, "new", c.New)
	}
}

// applyServices makes next the running configuration: services into the
// datapath, then the health checks, addresses and neighbours that follow
// from them. If the services cannot all be applied, the running ones are
// put back and next is not taken.
func (d *Daemon) applyServices(next *config.Config) error {
	if err := d.bal.Apply(next.Services); err != nil {
		// Apply keeps a failed service's old state, so this only undoes
		// the services that did change.
		return errors.Join(err, d.bal.Apply(d.cfg.Services))
	}
	d.cfg = next
	d.neigh.SetTargets(backendAddrs(next.Services))
	d.setHealthTargets()
	// Forwarding before the addresses: the first IPv6 VIP's packets
	// need it for their FIB lookups.
	err := errors.Join(d.prepareIPv6(), d.addAddresses())
	d.publish()
	return err
}
