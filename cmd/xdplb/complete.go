package main

import (
	"context"
	"time"

	"github.com/spf13/cobra"
)

// completeService completes a SERVICE first argument with the names and
// addresses of the running daemon's services. A daemon that does not
// answer within a second completes nothing.
func completeService(cmd *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), time.Second)
	defer cancel()
	views, err := client(cmd).Services(ctx)
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var out []string
	for _, v := range views {
		key := hostPort(v.VIP, v.Port) + "/" + v.Protocol
		out = append(out, key)
		if v.Name != key {
			out = append(out, v.Name)
		}
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}

// withServiceCompletion has cmd complete its SERVICE argument and its
// --service flag, if it has one, from the running daemon.
func withServiceCompletion(cmd *cobra.Command) *cobra.Command {
	cmd.ValidArgsFunction = completeService
	if cmd.Flags().Lookup("service") != nil {
		cmd.RegisterFlagCompletionFunc("service", func(c *cobra.Command, _ []string, s string) ([]string, cobra.ShellCompDirective) {
			return completeService(c, nil, s)
		})
	}
	return cmd
}
