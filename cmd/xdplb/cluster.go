package main

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/xdplb/xdplb/internal/api"
)

func newHACmd() *cobra.Command {
	ha := &cobra.Command{
		Use:   "ha",
		Short: "High availability: this node's role and its peers",
	}
	var asJSON bool
	status := &cobra.Command{
		Use:   "status",
		Short: "Show the role, why it is what it is, and the peers as the election last heard them",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := client(cmd).Cluster(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), st)
			}
			printHA(cmd.OutOrStdout(), st, time.Now())
			return nil
		},
	}
	status.Flags().BoolVar(&asJSON, "json", false, "print the status as JSON")
	role := &cobra.Command{
		Use:   "role master|backup",
		Short: "Set the role in external mode (from keepalived's notify scripts)",
		Long: "With ha.mode external, keepalived owns the VIPs and decides which node is master; " +
			"its notify_master and notify_backup scripts tell xdplb with this command. The master " +
			"refreshes its connections to the peers; a backup only adopts theirs. Other modes refuse it.",
		Args:      cobra.ExactArgs(1),
		ValidArgs: []string{"master", "backup"},
		RunE: func(cmd *cobra.Command, args []string) error {
			if args[0] != "master" && args[0] != "backup" {
				return fmt.Errorf("role %q: want master or backup", args[0])
			}
			st, err := client(cmd).SetRole(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "role: %s\n", st.Role)
			return nil
		},
	}
	ha.AddCommand(status, role)
	return ha
}

func newSyncCmd() *cobra.Command {
	sync := &cobra.Command{
		Use:   "sync",
		Short: "Connection sync between balancers",
	}
	var asJSON bool
	status := &cobra.Command{
		Use:   "status",
		Short: "Show what was sent to and adopted from the peers, their bulk sync and any loss",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := client(cmd).Cluster(cmd.Context())
			if err != nil {
				return err
			}
			if st.Sync == nil {
				return fmt.Errorf("connection sync is off: the configuration has no sync.peers")
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), st.Sync)
			}
			printSync(cmd.OutOrStdout(), st, time.Now())
			return nil
		},
	}
	status.Flags().BoolVar(&asJSON, "json", false, "print the status as JSON")
	sync.AddCommand(status)
	return sync
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func printHA(w io.Writer, st api.ClusterStatus, now time.Time) {
	fmt.Fprintf(w, "mode: %s\n", st.Mode)
	if st.NodeID != 0 {
		fmt.Fprintf(w, "node: %d", st.NodeID)
		if st.Priority != 0 {
			fmt.Fprintf(w, " (priority %d)", st.Priority)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "role: %s", st.Role)
	if !st.Since.IsZero() {
		fmt.Fprintf(w, " for %s", ago(now, st.Since))
	}
	fmt.Fprintln(w)
	if st.Reason != "" {
		fmt.Fprintf(w, "why: %s\n", st.Reason)
	}
	switch {
	case st.Ready:
		fmt.Fprintln(w, "ready: yes")
	case st.Role == "fault":
		fmt.Fprintln(w, "ready: no: the interface is down; the peers' connections are pulled again when it is back")
	default:
		fmt.Fprintln(w, "ready: no: the bulk sync from the peers is not done")
	}
	if st.Waiting != "" {
		fmt.Fprintf(w, "waiting: %s\n", st.Waiting)
	}
	if len(st.Peers) == 0 {
		if st.Mode == "vrrp" {
			fmt.Fprintln(w, "peers: none heard")
		}
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PEER\tPRIORITY\tROLE\tREADY\tLAST HEARD")
	for _, p := range st.Peers {
		fmt.Fprintf(tw, "%d\t%d\t%s\t%s\t%s ago\n", p.NodeID, p.Priority, p.Role, yesNo(p.Ready, "yes", "no"), ago(now, p.LastHeard))
	}
	tw.Flush()
}

func printSync(w io.Writer, st api.ClusterStatus, now time.Time) {
	s := st.Sync
	fmt.Fprintf(w, "listen: %s  role: %s  ready: %s\n", s.Listen, st.Role, yesNo(st.Ready, "yes", "no"))
	fmt.Fprintf(w, "sent: %d records in %d datagrams (%d from the datapath, %d by refresh, %d expiries); lost: %d to a full ring, %d to a full queue, %d send errors\n",
		s.RecordsSent, s.DatagramsSent, s.Emitted, s.Refreshed, s.Expired, s.RingFull, s.QueueDrops, s.SendErrors)
	fmt.Fprintf(w, "received: %d records in %d datagrams; gaps %d (late %d, repaired by %d bulk pulls); refused: %d bad mac, %d replays, %d not from a peer, %d malformed, %d with this node's id, %d of another cluster\n",
		s.RecordsReceived, s.DatagramsReceived, s.Gaps, s.Late, s.Repairs, s.AuthFailures, s.Replays, s.NotPeer, s.Malformed, s.SameNodeID, s.WrongCluster)
	fmt.Fprintf(w, "adopted: %d new, %d refreshed, %d replaced; not taken: %d older than ours, %d conflicts, %d for unknown services, %d refused by the table; %d forgotten\n",
		s.Created, s.Updated, s.Replaced, s.Stale, s.Conflicts, s.UnknownService, s.Failed, s.Forgotten)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PEER\tNODE\tLAST HEARD\tRECORDS\tGAPS\tBULK")
	for _, p := range s.Peers {
		heard, node := "never", "-"
		if !p.LastHeard.IsZero() {
			heard = ago(now, p.LastHeard) + " ago"
		}
		if p.NodeID != 0 {
			node = fmt.Sprint(p.NodeID)
		}
		bulk := p.Bulk
		if p.BulkRecords > 0 || p.Bulk == "done" {
			bulk += fmt.Sprintf(" (%d records in %s)", p.BulkRecords, p.BulkDuration.Round(time.Millisecond))
		}
		if p.BulkError != "" {
			bulk += ": " + p.BulkError
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\n", p.Address, node, heard, p.Records, p.Gaps, bulk)
	}
	tw.Flush()
}

// ago says how long ago t was: to the millisecond under a second (an
// advert interval), to the second above.
func ago(now, t time.Time) string {
	d := now.Sub(t)
	if d < time.Second {
		return d.Round(time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

func yesNo(b bool, yes, no string) string {
	if b {
		return yes
	}
	return no
}
