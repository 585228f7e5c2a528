package main

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/xdplb/xdplb/internal/api"
	"github.com/xdplb/xdplb/internal/ident"
)

func newConnCmd() *cobra.Command {
	conn := &cobra.Command{Use: "conn", Short: "Inspect tracked connections"}
	var (
		service, backend string
		asJSON           bool
	)
	list := &cobra.Command{
		Use:   "list",
		Short: "List tracked connections (like ipvsadm -Lnc)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkConnFilter(service, backend); err != nil {
				return err
			}
			socket, _ := cmd.Flags().GetString("socket")
			// A service that does not exist is an error (404), not an
			// empty listing.
			conns, err := api.NewClient(socket).Connections(cmd.Context(), service, backend)
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(conns)
			}
			printConns(cmd.OutOrStdout(), conns)
			return nil
		},
	}
	list.Flags().StringVar(&service, "service", "", "only connections to this service (VIP:PORT, VIP:PORT/tcp|udp or its name)")
	list.Flags().StringVar(&backend, "backend", "", "only connections to this backend (IP:PORT, or IP for any port)")
	list.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	conn.AddCommand(list)
	return conn
}

// checkConnFilter catches a mistyped --service or --backend before
// asking the daemon, which parses them the same way.
func checkConnFilter(service, backend string) error {
	if service != "" {
		if err := checkService(service); err != nil {
			return fmt.Errorf("--service: %w", err)
		}
	}
	if backend != "" {
		if _, err := ident.ParseAddrPort("backend", backend); err != nil {
			return fmt.Errorf("--backend: %w", err)
		}
	}
	return nil
}

// printConns prints connections as ipvsadm -Lc does, with the local
// address Full-NAT adds ("-" for DSR) and, in an HA cluster, the node that
// opened each.
func printConns(w io.Writer, conns []api.Connection) {
	origin := slices.ContainsFunc(conns, func(c api.Connection) bool { return c.Origin != 0 })
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	header := "PRO\tEXPIRE\tSTATE\tCLIENT\tVIRTUAL\tLOCAL\tBACKEND"
	if origin {
		header += "\tORIGIN"
	}
	fmt.Fprintln(tw, header)
	for _, c := range conns {
		local := "-" // direct server return: the backend sees the client
		if c.Local.IsValid() {
			local = c.Local.String()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s", strings.ToUpper(c.Protocol.String()), formatExpire(c.ExpiresIn), c.State,
			c.Client, c.VIP, local, c.Backend)
		if origin {
			fmt.Fprintf(tw, "\tnode %d", c.Origin)
		}
		fmt.Fprintln(tw)
	}
	tw.Flush()
}

// formatExpire prints mm:ss as ipvsadm does.
func formatExpire(d time.Duration) string {
	s := int(d.Round(time.Second) / time.Second)
	return fmt.Sprintf("%02d:%02d", s/60, s%60)
}
