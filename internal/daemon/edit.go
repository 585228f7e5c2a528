package daemon

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"reflect"
	"slices"

	"github.com/xdplb/xdplb/internal/api"
	"github.com/xdplb/xdplb/internal/config"
)

// errFileChanged refuses a runtime change that would overwrite an edit
// of the configuration file that was not reloaded yet.
var errFileChanged = api.Conflict("the configuration file was edited since it was last loaded, " +
	"and saving this change would overwrite that edit; run `xdplb reload` first, then repeat the change")

// Change implements api.Editor. On the owner goroutine the edit is tried
// on a copy, validated, applied and saved to the configuration file, in
// that order; if any step fails, what runs and the file stay as they were.
func (d *Daemon) Change(edit func(*config.Config) error) error {
	return d.do(func() error { return d.change(edit) })
}

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
	if err := d.applyServices(next); err != nil {
		return err
	}
	if err := d.save(next.Services); err != nil {
		// Not saved means not confirmed: put back what ran, so the file
		// and the datapath keep agreeing.
		return errors.Join(fmt.Errorf("change not saved, so not applied: %w", err), d.applyServices(prev))
	}
	d.log.Info("configuration changed through the API", "services", len(next.Services))
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
	written, err := config.SaveServices(d.opts.ConfigPath, services)
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
func (d *Daemon) Reload() (api.ReloadResult, error) {
	var res api.ReloadResult
	err := d.do(func() (err error) {
		res, err = d.reload()
		return err
	})
	if err != nil {
		d.reloads.failed.Add(1)
		d.log.Error("reload failed; the running configuration is unchanged", "err", err)
		return api.ReloadResult{}, err
	}
	d.reloads.ok.Add(1)
	d.log.Info("configuration reloaded", "applied", res.Applied, "need_restart", res.NeedRestart)
	return res, nil
}

func (d *Daemon) reload() (api.ReloadResult, error) {
	var res api.ReloadResult
	next, digest, err := config.LoadDigest(d.opts.ConfigPath)
	if err != nil {
		return res, err
	}
	cur := d.cfg
	for _, f := range []struct {
		name    string
		changed bool
	}{
		{"interfaces", !slices.Equal(cur.Interfaces, next.Interfaces)},
		{"xdp_mode", cur.XDPMode != next.XDPMode},
		{"conntrack.capacity", cur.Conntrack.Capacity != next.Conntrack.Capacity},
		{"state", cur.State != next.State},
		{"api", cur.API != next.API},
		{"metrics", cur.Metrics != next.Metrics},
		{"conntrack.gc_interval", cur.Conntrack.GCInterval != next.Conntrack.GCInterval},
		{"log.format", cur.Log.Format != next.Log.Format},
	} {
		if f.changed {
			res.NeedRestart = append(res.NeedRestart, f.name)
		}
	}
	// Keep what only a restart applies as it runs, so the copy below
	// describes the running daemon.
	next.Interfaces, next.XDPMode, next.State, next.API = cur.Interfaces, cur.XDPMode, cur.State, cur.API
	next.Conntrack.Capacity, next.Conntrack.GCInterval, next.Metrics = cur.Conntrack.Capacity, cur.Conntrack.GCInterval, cur.Metrics
	next.Log.Format = cur.Log.Format

	// What can be refused is tried first, undone if a later step fails;
	// the rest (timeouts, log level: validated with the file) cannot fail,
	// so a refused reload leaves the running configuration as it was.
	localChanged := !reflect.DeepEqual(cur.Local, next.Local)
	if localChanged {
		if err := checkPorts(next.Local, d.owned.snapshot().hasAddress); err != nil {
			return res, err
		}
		if err := d.dp.SetLocal(next.Local.Addresses, next.Local.Ports.Min, next.Local.Ports.Max); err != nil {
			return res, errors.Join(err, d.dp.SetLocal(cur.Local.Addresses, cur.Local.Ports.Min, cur.Local.Ports.Max))
		}
		res.Applied = append(res.Applied, "local")
	}
	servicesChanged := !reflect.DeepEqual(cur.Services, next.Services)
	if err := d.applyServices(next); err != nil {
		if localChanged {
			err = errors.Join(err, d.dp.SetLocal(cur.Local.Addresses, cur.Local.Ports.Min, cur.Local.Ports.Max))
		}
		return api.ReloadResult{}, err
	}
	d.fileDigest = digest
	if servicesChanged {
		res.Applied = append(res.Applied, "services")
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
	err := d.addAddresses()
	d.publish()
	return err
}
