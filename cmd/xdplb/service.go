package main

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/xdplb/xdplb/internal/api"
	"github.com/xdplb/xdplb/internal/config"
	"github.com/xdplb/xdplb/internal/ident"
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
	var protocol, scheduler, persistence, forwarding, clientAddress, name string
	var netmask uint8
	cmd := &cobra.Command{
		Use: "add VIP:PORT [--protocol tcp|udp] [--scheduler rr|wrr|maglev|sh|lc|wlc] [--persistence 300s [--persistence-netmask 24]] " +
			"[--forwarding fullnat|dsr-l2|dsr-ipip|dsr-gue] [--client-address none|toa] [--name NAME]",
		Short: "Add a virtual service (like ipvsadm -A)",
		Long: "Adds a service without backends; add them with `xdplb backend add`. " +
			"VIP:PORT may end in /tcp or /udp instead of giving --protocol.",
		Example: "  xdplb service add 172.19.0.10:80 --scheduler wrr --persistence 300\n" +
			"  xdplb service add 172.19.0.10:443 --client-address toa\n" +
			"  xdplb service add 172.19.0.10:8080 --forwarding dsr-l2\n" +
			"  xdplb service add 172.19.0.10:53/udp --name dns\n" +
			"  xdplb service add [2001:db8::10]:443",
		Args: oneArg("VIP:PORT", "172.19.0.10:80"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ref, err := vipPortArg(args[0])
			if err != nil {
				return err
			}
			var proto string
			if ref.Proto != 0 {
				proto = ref.Proto.String()
			}
			if cmd.Flags().Changed("protocol") {
				// A protocol that is none is the daemon's to refuse,
				// as it refuses it in a configuration file.
				if p, err := ident.ParseProtocol(protocol); err == nil && ref.Proto != 0 && p != ref.Proto {
					return fmt.Errorf("VIP:PORT %q says %s but --protocol says %s", args[0], ref.Proto, protocol)
				}
				proto = protocol
			}
			// The daemon judges the address as it judges a
			// configuration file's, and says the same about it.
			spec := api.ServiceSpec{
				Name: name, VIP: ref.Addr.Addr().String(), Port: ref.Addr.Port(), Protocol: proto, Scheduler: scheduler,
				PersistenceNetmask: netmask, Forwarding: forwarding, ClientAddress: clientAddress,
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
	cmd.Flags().StringVarP(&scheduler, "scheduler", "s", "", "rr, wrr, maglev, sh, lc or wlc (default rr)")
	cmd.Flags().StringVar(&persistence, "persistence", "", "keep a client on its backend this long (seconds, or a duration like 5m)")
	cmd.Flags().Uint8VarP(&netmask, "persistence-netmask", "M", 0, "with --persistence, keep a whole subnet of this prefix length (1-32, or 1-128 for an IPv6 VIP) on one backend (like ipvsadm -M)")
	cmd.Flags().StringVar(&forwarding, "forwarding", "", forwardingHelp+" (default fullnat)")
	cmd.RegisterFlagCompletionFunc("forwarding", completeForwarding)
	cmd.Flags().StringVar(&clientAddress, "client-address", "", clientAddressHelp+" (default none)")
	cmd.Flags().StringVar(&name, "name", "", "name of the service (default VIP:PORT/PROTO)")
	return cmd
}

func newServiceEditCmd() *cobra.Command {
	var scheduler, persistence, forwarding, clientAddress, name string
	var netmask uint8
	cmd := &cobra.Command{
		Use: "edit SERVICE [--scheduler rr|wrr|maglev|sh|lc|wlc] [--persistence 300s [--persistence-netmask 24]] " +
			"[--forwarding fullnat|dsr-l2|dsr-ipip|dsr-gue] [--client-address none|toa] [--name NAME]",
		Short: "Change a virtual service (like ipvsadm -E)",
		Long: "Changes what the flags give and leaves the rest. --persistence 0 turns persistence " +
			"off; --name \"\" gives the service its default name. A new --forwarding or " +
			"--client-address applies to connections opened after the change.\n\n" + serviceArgHelp,
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
			if cmd.Flags().Changed("persistence-netmask") {
				edit.PersistenceNetmask = &netmask
			}
			if cmd.Flags().Changed("forwarding") {
				edit.Forwarding = &forwarding
			}
			if cmd.Flags().Changed("client-address") {
				edit.ClientAddress = &clientAddress
			}
			if edit == (api.ServiceEdit{}) {
				return fmt.Errorf("nothing to change: give --scheduler, --persistence, --persistence-netmask, --forwarding, " +
					"--client-address or --name")
			}
			v, err := client(cmd).EditService(cmd.Context(), args[0], edit)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "changed service %s\n", describeService(v))
			return nil
		},
	}
	cmd.Flags().StringVarP(&scheduler, "scheduler", "s", "", "rr, wrr, maglev, sh, lc or wlc")
	cmd.Flags().StringVar(&persistence, "persistence", "", "keep a client on its backend this long (seconds, or a duration like 5m); 0: off")
	cmd.Flags().Uint8VarP(&netmask, "persistence-netmask", "M", 0, "keep a whole subnet of this prefix length on one backend; 0: each address alone")
	cmd.Flags().StringVar(&forwarding, "forwarding", "", forwardingHelp)
	cmd.RegisterFlagCompletionFunc("forwarding", completeForwarding)
	cmd.Flags().StringVar(&clientAddress, "client-address", "", clientAddressHelp)
	cmd.Flags().StringVar(&name, "name", "", "new name of the service")
	return cmd
}

// clientAddressHelp says what --client-address does, for add and edit.
const clientAddressHelp = "none, or toa: backends get the client's address in a TCP option " +
	"(read by 'xdplb toa install' or toa.ko on the backend; TCP only)"

// completeForwarding completes --forwarding.
var completeForwarding = cobra.FixedCompletions([]string{config.ForwardingFullNAT, config.ForwardingDSRL2,
	config.ForwardingDSRIPIP, config.ForwardingDSRGUE}, cobra.ShellCompDirectiveNoFileComp)

// forwardingHelp says what --forwarding does, for add and edit.
const forwardingHelp = "fullnat, or direct server return: dsr-l2 (to the backend's MAC), dsr-ipip or dsr-gue " +
	"(in a tunnel from dsr.encap_source); with DSR backends hold the VIP, answer clients directly " +
	"and take the service's port"

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

// vipPortArg reads the VIP:PORT[/tcp|udp] of a new service: an address,
// since a name only names a service that exists.
func vipPortArg(arg string) (ident.Ref, error) {
	ref, err := ident.ParseRef(arg)
	if err != nil {
		return ref, err
	}
	if ref.Name != "" {
		return ref, fmt.Errorf("VIP:PORT %q is not an address: a new service is given as VIP:PORT or VIP:PORT/tcp|udp (and --name NAME)", arg)
	}
	return ref, nil
}

// checkService catches a SERVICE argument that is a mistyped address
// before asking the daemon: "172.19.0.10" lacks the port, "172.19.0.10:x"
// has a bad one. The daemon parses it again, the same way.
func checkService(arg string) error {
	_, err := ident.ParseRef(arg)
	return err
}

// parsePersistence reads seconds ("300", as ipvsadm -p takes them) or a
// duration ("5m").
func parsePersistence(s string) (time.Duration, error) {
	n, err := strconv.ParseUint(s, 10, 32)
	switch {
	case err == nil:
		return time.Duration(n) * time.Second, nil
	case errors.Is(err, strconv.ErrRange) || config.DurationTooLong(s):
		return 0, fmt.Errorf("--persistence %s is out of range %s", s, config.PersistenceBounds)
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
	s := hostPort(v.VIP, v.Port) + " " + v.Scheduler
	if v.Persistence > 0 {
		s += " persistent " + formatPersistence(v.Persistence)
		if v.PersistenceNetmask != 0 {
			s += fmt.Sprintf(" mask /%d", v.PersistenceNetmask)
		}
	}
	if v.Forwarding != "" && v.Forwarding != config.ForwardingFullNAT {
		s += " " + v.Forwarding
	}
	if v.ClientAddress == config.ClientAddressTOA {
		s += " toa"
	}
	if v.Name != "" && v.Name != serviceKey(v) {
		s += " (" + v.Name + ")"
	}
	return s
}

func serviceKey(v api.ServiceView) string {
	return hostPort(v.VIP, v.Port) + "/" + v.Protocol
}

// formatPersistence prints seconds, as ipvsadm does, unless the duration
// is not a whole number of them.
func formatPersistence(d time.Duration) string {
	if d%time.Second == 0 {
		return strconv.FormatInt(int64(d/time.Second), 10)
	}
	return d.String()
}
