package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/xdplb/xdplb/internal/api"
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
			socket, _ := cmd.Flags().GetString("socket")
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
	list.Flags().StringVar(&service, "service", "", "only connections to this service (VIP:port or VIP:port/tcp|udp)")
	list.Flags().StringVar(&backend, "backend", "", "only connections to this backend (IP:port)")
	list.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	conn.AddCommand(list)
	return conn
}

func printConns(w io.Writer, conns []api.Connection) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PRO\tEXPIRE\tSTATE\tCLIENT\tVIRTUAL\tLOCAL\tBACKEND")
	for _, c := range conns {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", strings.ToUpper(c.Protocol.String()), formatExpire(c.ExpiresIn), c.State,
			c.Client, c.VIP, c.Local, c.Backend)
	}
	tw.Flush()
}

// formatExpire prints mm:ss as ipvsadm does.
func formatExpire(d time.Duration) string {
	s := int(d.Round(time.Second) / time.Second)
	return fmt.Sprintf("%02d:%02d", s/60, s%60)
}
