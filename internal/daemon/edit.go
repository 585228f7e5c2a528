package daemon

import (
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"slices"

	"github.com/xdplb/xdplb/internal/api"
	"github.com/xdplb/xdplb/internal/config"
	"github.com/xdplb/xdplb/internal/health"
)

// Services implements api.Editor.
func (d *Daemon) Services() []api.ServiceView {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]api.ServiceView, 0, len(d.cfg.Services))
	checked := d.checkedStates()
	for _, s := range d.cfg.Services {
		v := api.ServiceView{
			Name: s.Name, VIP: s.VIP.String(), Port: s.Port, Protocol: string(s.Protocol),
			Scheduler: s.Scheduler, Persistence: s.Persistence,
		}
		for _, b := range s.Backends {
			bv := api.BackendView{Address: b.Address.String(), Port: b.Port, Weight: b.Weight, Up: true}
			if h, ok := checked[s.Key()+" "+netip.AddrPortFrom(b.Address, b.Port).String()]; ok {
				bv.Up, bv.Since = h.Up, h.Since
				if !h.Up {
					bv.Reason = h.LastError
				}
			}
			v.Backends = append(v.Backends, bv)
		}
		if f := s.Fallback; f != nil {
			v.Fallback = &api.BackendView{Address: f.Address.String(), Port: f.Port, Weight: f.Weight, Up: true}
		}
		out = append(out, v)
	}
	return out
}

// Change implements api.Editor: the edit is tried on a copy, validated,
// applied and saved to the configuration file, in that order; if any step
// fails, what runs stays as it was.
func (d *Daemon) Change(edit func(*config.Config) error) error {
	targets, err := d.change(edit)
	if targets != nil {
		d.setHealthTargets(targets)
	}
	return err
}

func (d *Daemon) change(edit func(*config.Config) error) ([]health.Target, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	next := d.cfg.Clone()
	if err := edit(next); err != nil {
		return nil, err
	}
	if err := next.Validate(); err != nil {
		return nil, err
	}
	targets, err := d.applyServices(next)
	if err != nil {
		return nil, err
	}
	if err := config.SaveServices(d.opts.ConfigPath, next.Services); err != nil {
		return targets, fmt.Errorf("applied, but not saved (a restart would undo it): %w", err)
	}
	d.log.Info("configuration changed through the API", "services", len(next.Services))
	return targets, nil
}

// Reload implements api.Editor: the configuration file is read again and
// what changed is applied. Settings that only a start can apply are
// reported and left as they run.
func (d *Daemon) Reload() (api.ReloadResult, error) {
	res, targets, err := d.reload()
	if targets != nil {
		d.setHealthTargets(targets)
	}
	if err != nil {
		d.reloads.failed.Add(1)
		d.log.Error("reload failed; the running configuration is unchanged", "err", err)
		return res, err
	}
	d.reloads.ok.Add(1)
	d.log.Info("configuration reloaded", "applied", res.Applied, "need_restart", res.NeedRestart)
	return res, nil
}

func (d *Daemon) reload() (api.ReloadResult, []health.Target, error) {
	var res api.ReloadResult
	next, err := config.Load(d.opts.ConfigPath)
	if err != nil {
		return res, nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
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
	} {
		if f.changed {
			res.NeedRestart = append(res.NeedRestart, f.name)
		}
	}
	// Keep what only a restart applies as it runs, so the copy below
	// describes the running daemon.
	next.Interfaces, next.XDPMode, next.State, next.API = cur.Interfaces, cur.XDPMode, cur.State, cur.API
	next.Conntrack.Capacity, next.Conntrack.GCInterval, next.Metrics = cur.Conntrack.Capacity, cur.Conntrack.GCInterval, cur.Metrics

	// What can be refused is tried first, undone if a later step fails;
	// the rest (timeouts, log level: validated with the file) cannot fail,
	// so a refused reload leaves the running configuration as it was.
	localChanged := !reflect.DeepEqual(cur.Local, next.Local)
	if localChanged {
		if err := checkPorts(next.Local, d.owned.hasAddress); err != nil {
			return res, nil, err
		}
		if err := d.dp.SetLocal(next.Local.Addresses, next.Local.Ports.Min, next.Local.Ports.Max); err != nil {
			return res, nil, errors.Join(err, d.dp.SetLocal(cur.Local.Addresses, cur.Local.Ports.Min, cur.Local.Ports.Max))
		}
		res.Applied = append(res.Applied, "local")
	}
	if !reflect.DeepEqual(cur.Services, next.Services) {
		res.Applied = append(res.Applied, "services")
	}
	targets, err := d.applyServices(next)
	if err != nil {
		if localChanged {
			err = errors.Join(err, d.dp.SetLocal(cur.Local.Addresses, cur.Local.Ports.Min, cur.Local.Ports.Max))
		}
		return api.ReloadResult{}, nil, err
	}
	if cur.Conntrack.Timeouts != next.Conntrack.Timeouts {
		d.collector.SetTimeouts(timeouts(next.Conntrack.Timeouts))
		res.Applied = append(res.Applied, "conntrack.timeouts")
	}
	if cur.Log.Level != next.Log.Level {
		d.setLogLevel(next.Log.Level)
		res.Applied = append(res.Applied, "log.level")
	}
	if cur.Log.Format != next.Log.Format {
		res.NeedRestart = append(res.NeedRestart, "log.format")
		d.cfg.Log.Format = cur.Log.Format
	}
	return res, targets, nil
}

// applyServices makes next the running configuration: services into the
// datapath, then the addresses and neighbours that follow from them. It
// returns the health check targets for the caller to set once it has
// released d.mu, which it is called with.
func (d *Daemon) applyServices(next *config.Config) ([]health.Target, error) {
	if err := d.bal.Apply(next.Services); err != nil {
		// Put back what ran; Apply keeps a failed service's old state,
		// so this only undoes the services that did change.
		return nil, errors.Join(err, d.bal.Apply(d.cfg.Services))
	}
	d.cfg = next
	d.neigh.SetTargets(backendAddrs(next.Services))
	return d.healthTargetsChanged(), d.addAddresses()
}
