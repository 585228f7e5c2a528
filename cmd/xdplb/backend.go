package main

import (
	"fmt"
	"net/netip"

	"github.com/spf13/cobra"

	"github.com/xdplb/xdplb/internal/api"
	"github.com/xdplb/xdplb/internal/ident"
)

const backendArgHelp = serviceArgHelp + "\nIP[:PORT] is the backend; without a port it is the service port."

func newBackendCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "backend",
		Short: "Add, change or remove the backends of a service (like ipvsadm -a/-e/-d)",
		Long: "Changes the backends (real servers) of a service of the running daemon. Every change " +
			"is validated, applied and saved to the configuration file.\n\n" + backendArgHelp,
	}
	cmd.AddCommand(newBackendAddCmd(), newBackendEditCmd(), newBackendRemoveCmd())
	return cmd
}

func newBackendAddCmd() *cobra.Command {
	var weight uint32
	cmd := &cobra.Command{
		Use:   "add SERVICE IP[:PORT] [--weight N]",
		Short: "Add a backend to a service (like ipvsadm -a)",
		Long: "Weight 0 adds the backend drained: it gets no new connections until its weight " +
			"is raised.\n\n" + backendArgHelp,
		Example: "  xdplb backend add 172.19.0.10:80 172.19.0.4\n  xdplb backend add web 172.19.0.5:8080 --weight 3",
		Args:    twoArgs(),
		RunE: func(cmd *cobra.Command, args []string) error {
			ap, err := backendArgs(args)
			if err != nil {
				return err
			}
			addr, port := ap.Addr(), ap.Port()
			spec := api.BackendSpec{Address: addr.String(), Port: port}
			if cmd.Flags().Changed("weight") {
				spec.Weight = &weight
			}
			v, err := client(cmd).AddBackend(cmd.Context(), args[0], spec)
			if err != nil {
				return err
			}
			b := findBackend(v, addr, port)
			fmt.Fprintf(cmd.OutOrStdout(), "added backend %s weight %d to service %s\n", hostPort(b.Address, b.Port), b.Weight, v.Name)
			return nil
		},
	}
	cmd.Flags().Uint32VarP(&weight, "weight", "w", 1, "weight (0-65535); 0: drained")
	return cmd
}

func newBackendEditCmd() *cobra.Command {
	var weight uint32
	cmd := &cobra.Command{
		Use:     "edit SERVICE IP[:PORT] --weight N",
		Short:   "Change the weight of a backend (like ipvsadm -e)",
		Long:    "Weight 0 drains the backend: its connections continue, new ones go elsewhere.\n\n" + backendArgHelp,
		Example: "  xdplb backend edit 172.19.0.10:80 172.19.0.4 --weight 0",
		Args:    twoArgs(),
		RunE: func(cmd *cobra.Command, args []string) error {
			ap, err := backendArgs(args)
			if err != nil {
				return err
			}
			addr, port := ap.Addr(), ap.Port()
			if !cmd.Flags().Changed("weight") {
				return fmt.Errorf("nothing to change: give --weight")
			}
			v, err := client(cmd).EditBackend(cmd.Context(), args[0], args[1], api.BackendEdit{Weight: &weight})
			if err != nil {
				return err
			}
			b := findBackend(v, addr, port)
			fmt.Fprintf(cmd.OutOrStdout(), "changed backend %s of service %s to weight %d\n", hostPort(b.Address, b.Port), v.Name, b.Weight)
			return nil
		},
	}
	cmd.Flags().Uint32VarP(&weight, "weight", "w", 0, "weight (0-65535); 0: drained")
	return cmd
}

func newBackendRemoveCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "remove SERVICE IP[:PORT]",
		Aliases: []string{"rm", "delete"},
		Short:   "Remove a backend from a service (like ipvsadm -d)",
		Long:    "Its connections are forgotten as they expire.\n\n" + backendArgHelp,
		Args:    twoArgs(),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := backendArgs(args); err != nil {
				return err
			}
			if err := client(cmd).RemoveBackend(cmd.Context(), args[0], args[1]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "removed backend %s from service %s\n", args[1], args[0])
			return nil
		},
	}
}

func twoArgs() cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) != 2 {
			return fmt.Errorf("want two arguments, SERVICE and IP[:PORT] (for example 172.19.0.10:80 172.19.0.4); got %d", len(args))
		}
		return nil
	}
}

// backendArgs checks SERVICE and reads IP[:PORT]; port 0 stands for the
// service port.
func backendArgs(args []string) (netip.AddrPort, error) {
	if err := checkService(args[0]); err != nil {
		return netip.AddrPort{}, err
	}
	return ident.ParseAddrPort("backend", args[1])
}

// findBackend is the backend addr:port (port 0: the service's) in v, for
// reporting what the daemon made of a change.
func findBackend(v api.ServiceView, addr netip.Addr, port uint16) api.BackendView {
	if port == 0 {
		port = v.Port
	}
	for _, b := range v.Backends {
		if b.Address == addr.String() && b.Port == port {
			return b
		}
	}
	return api.BackendView{Address: addr.String(), Port: port}
}
