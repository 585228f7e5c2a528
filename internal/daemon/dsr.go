package daemon

import (
	"fmt"

	"github.com/xdplb/xdplb/internal/config"
	"github.com/xdplb/xdplb/internal/datapath"
	"github.com/xdplb/xdplb/internal/hostnet"
)

// setDSR writes the node's direct server return settings to the datapath,
// and this host's addresses, which tell the backends a DSR service passes
// to the host's own stack (co-located mode) from the ones it sends on.
func setDSR(dp *datapath.Datapath, c config.DSR) error {
	addrs, err := hostnet.HostAddrs()
	if err != nil {
		return fmt.Errorf("find this host's addresses for DSR: %w", err)
	}
	if err := dp.SetHostAddrs(addrs); err != nil {
		return err
	}
	return dp.SetDSR(datapath.DSRSettings{EncapSource: c.EncapSource, GUEPort: c.GUEPort, DecapSources: c.DecapSources})
}
