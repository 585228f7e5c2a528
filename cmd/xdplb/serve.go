package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/xdplb/xdplb/internal/config"
	"github.com/xdplb/xdplb/internal/daemon"
)

func newServeCmd() *cobra.Command {
	var (
		path       string
		resetState bool
	)
	cmd := &cobra.Command{
		Use:   "serve --config FILE",
		Short: "Run the balancer daemon",
		Long: "Loads the XDP program, attaches it to the configured interfaces, programs the " +
			"services and serves the local API.\n\n" +
			"SIGINT or SIGTERM: stop balancing; detach and remove every address, setting and " +
			"connection xdplb added.\n" +
			"SIGUSR2: exit for a restart or upgrade; the datapath keeps forwarding every " +
			"connection from its pinned state until the next `xdplb serve` takes it over.\n" +
			"SIGHUP: reload the configuration file and apply the difference (as `xdplb reload`).",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(path)
			if err != nil {
				return err
			}
			if cmd.Flags().Changed("socket") {
				// The command line wins over the file, as for every client
				// command.
				cfg.API.Socket, _ = cmd.Flags().GetString("socket")
			}
			level := new(slog.LevelVar)
			log, err := newLogger(cfg.Log, level)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithCancel(cmd.Context())
			defer cancel()
			keep := new(atomic.Bool)
			reload := make(chan struct{}, 1)
			signals := make(chan os.Signal, 1)
			signal.Notify(signals, syscall.SIGUSR2, syscall.SIGHUP)
			defer signal.Stop(signals)
			go func() {
				for {
					select {
					case sig := <-signals:
						if sig == syscall.SIGHUP {
							select {
							case reload <- struct{}{}:
							default: // one is pending already
							}
							continue
						}
						keep.Store(true)
						cancel()
					case <-ctx.Done():
						return
					}
				}
			}()
			return daemon.Run(ctx, cfg, daemon.Options{
				ResetState: resetState, KeepOnExit: keep, ConfigPath: path, LogLevel: level, Reload: reload,
			}, log)
		},
	}
	cmd.Flags().StringVarP(&path, "config", "c", defaultConfigPath, "configuration file")
	cmd.Flags().BoolVar(&resetState, "reset-state", false,
		"discard the pinned datapath state of an earlier run (and every connection in it) instead of adopting it")
	return cmd
}

func newLogger(c config.Log, level *slog.LevelVar) (*slog.Logger, error) {
	if err := level.UnmarshalText([]byte(c.Level)); err != nil {
		return nil, fmt.Errorf("log.level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
}
