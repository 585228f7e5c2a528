package main

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/xdplb/xdplb/internal/api"
)

const serviceArgHelp = "SERVICE is VIP:PORT, VIP:PORT/tcp|udp (tcp if not given) or the service's name."

func newServiceCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "service",
		Short: "Add, change or remove virtual services (like ipvsadm -A/-E/-D)",
		Long: "Changes the services of the running daemon. Every change is validated, applied " +
			"and saved to the configuration file, so it outlives a restart.\n\n" + serviceArgHelp,
	}
	cmd.AddCommand(newServiceAddCmd(), newServiceEditCmd(), newServiceRemoveCmd())
	return cmd
}

func newServiceAddCmd() *cobra.Command {
	var protocol, scheduler, persistence, name string
	cmd := &cobra.Command{
		Use:   "add VIP:PORT [--protocol tcp|udp] [--scheduler rr|wrr|maglev|sh] [--persistence 300s] [--name NAME]",
		Short: "Add a virtual service (like ipvsadm -A)",
		Long: "Adds a service without backends; add them with `xdplb backend add`. " +
			"VIP:PORT may end in /tcp or /udp instead of giving --protocol.",
		Example: "  xdplb service add 172.19.0.10:80 --scheduler wrr --persistence 300\n" +
			"  xdplb service add 172.19.0.10:53/udp --name dns",
		Args: oneArg("VIP:PORT", "172.19.0.10:80"),
		RunE: func(cmd *cobra.Command, args []string) error {
			addr, proto, err := parseVIPPort(args[0])
			if err != nil {
				return err
			}
			if cmd.Flags().Changed("protocol") {
				p := strings.ToLower(protocol)
				if proto != "" && p != proto {
					return fmt.Errorf("VIP:PORT %q says %s but --protocol says %s", args[0], proto, protocol)
				}
				proto = p
			}
			spec := api.ServiceSpec{
				Name: name, VIP: addr.Addr().String(), Port: addr.Port(), Protocol: proto, Scheduler: scheduler,
			}
			if persistence != "" {
				d, err := parsePersistence(persistence)
				if err != nil {
					return err
				}
				spec.Persistence = api.Duration(d)
			}
			v, err := client(cmd).AddService(cmd.Context(), spec)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "added service %s\n", describeService(v))
			return nil
		},
	}
	cmd.Flags().StringVarP(&protocol, "protocol", "p", "", "tcp or udp (default tcp)")
	cmd.Flags().StringVarP(&scheduler, "scheduler", "s", "", "rr, wrr, maglev or sh (default rr)")
	cmd.Flags().StringVar(&persistence, "persistence", "", "keep a client on its backend this long (seconds, or a duration like 5m)")
	cmd.Flags().StringVar(&name, "name", "", "name of the service (default VIP:PORT/PROTO)")
	return cmd
}

func newServiceEditCmd() *cobra.Command {
	var scheduler, persistence, name string
	cmd := &cobra.Command{
		Use:   "edit SERVICE [--scheduler rr|wrr|maglev|sh] [--persistence 300s] [--name NAME]",
		Short: "Change a virtual service (like ipvsadm -E)",
		Long: "Changes what the flags give and leaves the rest. --persistence 0 turns persistence " +
			"off; --name \"\" gives the service its default name.\n\n" + serviceArgHelp,
		Example: "  xdplb service edit 172.19.0.10:80 --scheduler maglev\n  xdplb service edit web --persistence 0",
		Args:    oneArg("SERVICE", "172.19.0.10:80 or web"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkService(args[0]); err != nil {
				return err
			}
			var edit api.ServiceEdit
			if cmd.Flags().Changed("scheduler") {
				edit.Scheduler = &scheduler
			}
			if cmd.Flags().Changed("name") {
				edit.Name = &name
			}
			if cmd.Flags().Changed("persistence") {
				d, err := parsePersistence(persistence)
				if err != nil {
					return err
				}
				p := api.Duration(d)
				edit.Persistence = &p
			}
			if edit == (api.ServiceEdit{}) {
				return fmt.Errorf("nothing to change: give --scheduler, --persistence or --name")
			}
			v, err := client(cmd).EditService(cmd.Context(), args[0], edit)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "changed service %s\n", describeService(v))
			return nil
		},
	}
	cmd.Flags().StringVarP(&scheduler, "scheduler", "s", "", "rr, wrr, maglev or sh")
	cmd.Flags().StringVar(&persistence, "persistence", "", "keep a client on its backend this long (seconds, or a duration like 5m); 0: off")
	cmd.Flags().StringVar(&name, "name", "", "new name of the service")
	return cmd
}

func newServiceRemoveCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "remove SERVICE",
		Aliases: []string{"rm", "delete"},
		Short:   "Remove a virtual service and its backends (like ipvsadm -D)",
		Long:    serviceArgHelp,
		Args:    oneArg("SERVICE", "172.19.0.10:80 or web"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkService(args[0]); err != nil {
				return err
			}
			if err := client(cmd).RemoveService(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "removed service %s\n", args[0])
			return nil
		},
	}
}

func client(cmd *cobra.Command) *api.Client {
	socket, _ := cmd.Flags().GetString("socket")
	return api.NewClient(socket)
}

// oneArg accepts exactly one argument, and says which one is wanted.
func oneArg(what, example string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) != 1 {
			return fmt.Errorf("want one argument, %s (for example %s); got %d", what, example, len(args))
		}
		return nil
	}
}

// parseVIPPort reads VIP:PORT with an optional /tcp or /udp; proto is ""
// when not given.
func parseVIPPort(arg string) (netip.AddrPort, string, error) {
	s, proto, hasProto := strings.Cut(arg, "/")
	if hasProto {
		proto = strings.ToLower(proto)
		if proto != "tcp" && proto != "udp" {
			return netip.AddrPort{}, "", fmt.Errorf("VIP:PORT %q: protocol %q is neither tcp nor udp", arg, proto)
		}
	}
	addr, port, err := splitAddrPort("VIP:PORT", arg, s)
	if err != nil {
		return netip.AddrPort{}, "", err
	}
	if port == 0 {
		return netip.AddrPort{}, "", fmt.Errorf("VIP:PORT %q is missing the port", arg)
	}
	return netip.AddrPortFrom(addr, port), proto, nil
}

// parseBackend reads IP or IP:PORT; port 0 stands for the service port.
func parseBackend(arg string) (netip.Addr, uint16, error) {
	return splitAddrPort("IP[:PORT]", arg, arg)
}

// splitAddrPort reads IP or IP:PORT out of s, part of arg; errors name the
// argument as what.
func splitAddrPort(what, arg, s string) (netip.Addr, uint16, error) {
	host, port, hasPort := s, "", false
	if i := strings.LastIndexByte(s, ':'); i >= 0 {
		host, port, hasPort = s[:i], s[i+1:], true
	}
	addr, err := netip.ParseAddr(host)
	if err != nil || addr.Zone() != "" {
		if host == "" {
			return addr, 0, fmt.Errorf("%s %q is missing the address", what, arg)
		}
		return addr, 0, fmt.Errorf("%s %q: %q is not an IP address", what, arg, host)
	}
	if !hasPort {
		return addr, 0, nil
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil || n == 0 {
		return addr, 0, fmt.Errorf("%s %q: %q is not a port (1-65535)", what, arg, port)
	}
	return addr, uint16(n), nil
}

// checkService catches a SERVICE argument that is a mistyped address
// before asking the daemon: "172.19.0.10" lacks the port, "172.19.0.10:x"
// has a bad one. Anything that is no address is taken as a name.
func checkService(arg string) error {
	if arg == "" {
		return fmt.Errorf("SERVICE is empty: want VIP:PORT, VIP:PORT/tcp|udp or a service name")
	}
	s, _, _ := strings.Cut(arg, "/")
	host := s
	if i := strings.LastIndexByte(s, ':'); i >= 0 {
		host = s[:i]
	}
	if _, err := netip.ParseAddr(host); err != nil {
		return nil // a name
	}
	_, _, err := parseVIPPort(arg)
	if err != nil {
		return fmt.Errorf("SERVICE%s", strings.TrimPrefix(err.Error(), "VIP:PORT"))
	}
	return nil
}

// parsePersistence reads seconds ("300", as ipvsadm -p takes them) or a
// duration ("5m").
func parsePersistence(s string) (time.Duration, error) {
	if n, err := strconv.ParseUint(s, 10, 32); err == nil {
		return time.Duration(n) * time.Second, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("--persistence %q: want seconds (300) or a duration (5m, 1h30m)", s)
	}
	return d, nil
}

// describeService is one line about a service: what ipvsadm -Ln shows,
// and the name if it has one of its own.
func describeService(v api.ServiceView) string {
	s := strings.ToUpper(v.Protocol) + " " + serviceLine(v)
	if n := len(v.Backends); n == 1 {
		s += ", 1 backend"
	} else {
		s += fmt.Sprintf(", %d backends", n)
	}
	return s
}

// serviceLine is VIP:PORT, scheduler, flags and the name unless it is
// the default.
func serviceLine(v api.ServiceView) string {
	s := fmt.Sprintf("%s:%d %s", v.VIP, v.Port, v.Scheduler)
	if v.Persistence > 0 {
		s += " persistent " + formatPersistence(v.Persistence)
	}
	if v.Name != "" && v.Name != serviceKey(v) {
		s += " (" + v.Name + ")"
	}
	return s
}

func serviceKey(v api.ServiceView) string {
	return fmt.Sprintf("%s:%d/%s", v.VIP, v.Port, v.Protocol)
}

// formatPersistence prints seconds, as ipvsadm does, unless the duration
// is not a whole number of them.
func formatPersistence(d time.Duration) string {
	if d%time.Second == 0 {
		return strconv.FormatInt(int64(d/time.Second), 10)
	}
	return d.String()
}
