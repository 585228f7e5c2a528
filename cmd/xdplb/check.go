package main

import (
	"fmt"

	"github.com/spf13/cobra"
	"github.com/vishvananda/netlink"

	"github.com/xdplb/xdplb/internal/config"
)

func newCheckCmd() *cobra.Command {
	var path string
	cmd := &cobra.Command{
		Use:   "check [--config FILE]",
		Short: "Validate a configuration file without applying it (like keepalived -t, nginx -t)",
		Long: "Reads and validates the file as `xdplb serve` would and prints every problem, " +
			"each naming its field, and that its interfaces exist. It changes nothing: no program is loaded or attached, no " +
			"address added, nothing pinned, no socket opened. Exit status 0: valid; 1: not.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(path)
			if err != nil {
				return err
			}
			// As serve would refuse them; a lookup changes nothing.
			for i, name := range cfg.Interfaces {
				if _, err := netlink.LinkByName(name); err != nil {
					return fmt.Errorf("interfaces[%d]: %s: %w", i, name, err)
				}
			}
			backends := 0
			for _, s := range cfg.Services {
				backends += len(s.Backends)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s is valid: %d services, %d backends\n", path, len(cfg.Services), backends)
			return nil
		},
	}
	cmd.Flags().StringVarP(&path, "config", "c", defaultConfigPath, "configuration file")
	return cmd
}
