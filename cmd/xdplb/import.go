package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/spf13/cobra"

	"github.com/xdplb/xdplb/internal/atomicfile"
	"github.com/xdplb/xdplb/internal/importer"
)

func newImportCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "import",
		Short: "Convert a keepalived or ipvsadm configuration to an xdplb configuration file",
		Long: "Reads the configuration of the tool xdplb replaces and writes the equivalent xdplb YAML " +
			"(to stdout, or to -o FILE). Every keyword that could not be carried over is reported on stderr as " +
			"FILE:LINE: keyword: why, and listed in the YAML's header; the YAML is written either way. " +
			"The interfaces (eth0) and local.addresses are left for you to fill in. " +
			"Exit status 0: everything was imported; 1: something was reported, or the input could not be read.",
	}
	cmd.AddCommand(newImportKeepalivedCmd(), newImportIpvsadmCmd())
	return cmd
}

func newImportKeepalivedCmd() *cobra.Command {
	var out importOutput
	cmd := &cobra.Command{
		Use:   "keepalived FILE [-o OUT]",
		Short: "Convert a keepalived.conf (its virtual servers) to xdplb YAML",
		Long: "Reads FILE and the files its include lines name, and converts its virtual_server blocks " +
			"(real servers, schedulers, persistence, sorry servers, health checks) and lvs_timeouts. " +
			"VRRP and global settings are reported, not converted. " +
			"docs/operations.md#migrating-from-keepalived-and-ipvsadm has the mapping.",
		Example: "  xdplb import keepalived /etc/keepalived/keepalived.conf -o /etc/xdplb/xdplb.yaml",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			res, err := importer.Keepalived(args[0])
			if err != nil {
				return err
			}
			return out.write(cmd, res)
		},
	}
	out.flags(cmd)
	return cmd
}

func newImportIpvsadmCmd() *cobra.Command {
	var out importOutput
	cmd := &cobra.Command{
		Use:   "ipvsadm [FILE|-] [-o OUT]",
		Short: "Convert IPVS rules (ipvsadm -Sn output) to xdplb YAML",
		Long: "Reads the rules ipvsadm -Sn prints (-A and -a lines) from FILE, or from stdin if FILE is - or absent. " +
			"IPVS rules have no health checks: add them to the result.",
		Example: "  ipvsadm -Sn | xdplb import ipvsadm -o /etc/xdplb/xdplb.yaml",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var res *importer.Result
			var err error
			if len(args) == 0 || args[0] == "-" {
				res, err = importer.Ipvsadm("stdin", cmd.InOrStdin())
			} else {
				f, ferr := os.Open(args[0])
				if ferr != nil {
					return ferr
				}
				defer f.Close()
				res, err = importer.Ipvsadm(args[0], f)
			}
			if err != nil {
				return err
			}
			return out.write(cmd, res)
		},
	}
	out.flags(cmd)
	return cmd
}

// importOutput is where an import writes its YAML.
type importOutput struct {
	path  string
	force bool
}

func (o *importOutput) flags(cmd *cobra.Command) {
	cmd.Flags().StringVarP(&o.path, "output", "o", "", "write the YAML to this file (atomically) instead of stdout")
	cmd.Flags().BoolVar(&o.force, "force", false, "with -o, replace the file if it exists")
}

// write writes the YAML, then reports on stderr what was not imported;
// that makes the command fail (exit status 1) once the YAML is out.
func (o *importOutput) write(cmd *cobra.Command, res *importer.Result) error {
	data, err := res.YAML()
	if err != nil {
		return err
	}
	where := "stdout"
	if o.path == "" {
		if _, err := cmd.OutOrStdout().Write(data); err != nil {
			return err
		}
	} else {
		if err := o.writeFile(data); err != nil {
			return err
		}
		where = o.path
	}
	for _, f := range res.Unmapped {
		fmt.Fprintln(cmd.ErrOrStderr(), f)
	}
	if n := len(res.Unmapped); n > 0 {
		what := "keywords were"
		if n == 1 {
			what = "keyword was"
		}
		return fmt.Errorf("%d %s not imported (listed above); the rest was written to %s", n, what, where)
	}
	return nil
}

// writeFile writes data to o.path, refusing to replace a file there
// unless --force; it checks again right before the rename.
func (o *importOutput) writeFile(data []byte) error {
	absent := func() error {
		if o.force {
			return nil
		}
		if _, err := os.Lstat(o.path); err == nil {
			return fmt.Errorf("%s exists; give --force to replace it", o.path)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return nil
	}
	if err := absent(); err != nil {
		return err
	}
	return atomicfile.WriteIf(o.path, data, 0o600, absent)
}
