// Command xdplb-package builds the xdplb Debian package from a built xdplb
// binary with nfpm, a packager written in Go, so `make package` needs no
// Debian tooling: the binary, the systemd unit, the bash completion, the
// manual pages, the example configuration and the docs.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/xdplb/xdplb/internal/debpkg"
)

func main() {
	var o debpkg.Options
	flag.StringVar(&o.Binary, "binary", "xdplb", "the xdplb binary to package")
	flag.StringVar(&o.Version, "version", "0.0.0~dev", "the package version")
	flag.StringVar(&o.Arch, "arch", "amd64", "the Debian architecture of the binary")
	flag.StringVar(&o.Repo, "repo", ".", "the repository root (dist/ and docs/ are read from it)")
	out := flag.String("out", "", "the .deb to write (default xdplb_VERSION_ARCH.deb)")
	flag.Parse()
	if *out == "" {
		*out = fmt.Sprintf("xdplb_%s_%s.deb", o.Version, o.Arch)
	}
	if err := debpkg.Build(o, *out); err != nil {
		fmt.Fprintln(os.Stderr, "xdplb-package:", err)
		os.Exit(1)
	}
	fmt.Println(*out)
}
