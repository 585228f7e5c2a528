package main

import (
	"os"

	"github.com/spf13/cobra"

	"github.com/xdplb/xdplb/internal/config"
)

// defaultConfigPath is where serve and check read the configuration.
const defaultConfigPath = "/etc/xdplb/xdplb.yaml"

// socketEnv names the environment variable that sets the API socket of
// the client commands, as --socket does.
const socketEnv = "XDPLB_SOCKET"

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "xdplb",
		Short:         "Layer-4 load balancer with an XDP datapath (Full-NAT)",
		Version:       versionLine(),
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetVersionTemplate("{{.Version}}\n")
	socket := config.DefaultAPISocket
	if env := os.Getenv(socketEnv); env != "" {
		socket = env
	}
	root.PersistentFlags().String("socket", socket, "the daemon's API socket (default from $"+socketEnv+" if set)")
	// ipvsadm users type -n out of habit; xdplb never resolves names.
	root.PersistentFlags().BoolP("numeric", "n", false, "accepted for ipvsadm habits; addresses are always numeric")
	root.PersistentFlags().MarkHidden("numeric")
	root.AddCommand(newServeCmd(), newDemoCmd(), newStatsCmd(), newConnCmd(),
		newListCmd(), newServiceCmd(), newBackendCmd(), newReloadCmd(), newCheckCmd(), newVersionCmd(), newZeroCmd(), newImportCmd(), newManCmd(), newHACmd(), newSyncCmd(), newTOACmd(), newDecapCmd(), newBackendPrepCmd(), newBGPCmd())
	completeServices(root)
	return root
}

// completeServices has every command that takes a SERVICE complete it
// from the running daemon (`xdplb completion bash|zsh|fish` prints the
// shell's completion script).
func completeServices(root *cobra.Command) {
	for _, path := range [][]string{{"list"}, {"zero"}, {"service", "edit"}, {"service", "remove"},
		{"backend", "add"}, {"backend", "edit"}, {"backend", "remove"}, {"conn", "list"}} {
		if cmd, _, err := root.Find(path); err == nil {
			withServiceCompletion(cmd)
		}
	}
}
