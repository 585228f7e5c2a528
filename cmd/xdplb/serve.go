package main

import (
	"fmt"
	"log/slog"
	"os"

	"github.com/spf13/cobra"

	"github.com/xdplb/xdplb/internal/config"
	"github.com/xdplb/xdplb/internal/daemon"
)

func newServeCmd() *cobra.Command {
	var path string
	cmd := &cobra.Command{
		Use:   "serve --config FILE",
		Short: "Run the balancer daemon",
		Long: "Loads the XDP program, attaches it to the configured interfaces, programs the " +
			"services and serves the local API until SIGINT or SIGTERM; then detaches and " +
			"removes every address and setting it added.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(path)
			if err != nil {
				return err
			}
			log, err := newLogger(cfg.Log)
			if err != nil {
				return err
			}
			return daemon.Run(cmd.Context(), cfg, log)
		},
	}
	cmd.Flags().StringVarP(&path, "config", "c", "/etc/xdplb/xdplb.yaml", "configuration file")
	return cmd
}

func newLogger(c config.Log) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.Level)); err != nil {
		return nil, fmt.Errorf("log.level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
}
