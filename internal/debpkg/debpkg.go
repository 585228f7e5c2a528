// Package debpkg builds xdplb's Debian package with nfpm.
package debpkg

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/goreleaser/nfpm/v2"
	_ "github.com/goreleaser/nfpm/v2/deb" // registers the deb packager
	"github.com/goreleaser/nfpm/v2/files"

	"github.com/xdplb/xdplb/internal/atomicfile"
)

// Options say what to package.
type Options struct {
	Binary  string // the built xdplb
	Version string
	Arch    string // Debian architecture: amd64, arm64
	Repo    string // the repository root: dist/ and docs/ are read from it
}

// InstalledBinary is where the package puts xdplb; the unit runs it there.
const InstalledBinary = "/usr/sbin/xdplb"

// Build writes the package to out.
func Build(o Options, out string) error {
	staged, err := os.MkdirTemp("", "xdplb-package-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(staged)
	contents, err := stage(o, staged)
	if err != nil {
		return err
	}
	info := nfpm.WithDefaults(&nfpm.Info{
		Name:        "xdplb",
		Arch:        o.Arch,
		Platform:    "linux",
		Version:     o.Version,
		Section:     "net",
		Priority:    "optional",
		Maintainer:  "xdplb developers <xdplb@localhost>",
		Description: "Layer-4 load balancer with an XDP datapath (Full-NAT)\n xdplb replaces LVS/IPVS in Full-NAT mode with an XDP program and one Go daemon.",
		Homepage:    "https://localhost/xdplb",
		License:     "MIT and GPL-2.0-only OR BSD-2-Clause (the BPF program)",
		Overridables: nfpm.Overridables{
			Contents: contents,
		},
	})
	if err := info.Validate(); err != nil {
		return fmt.Errorf("package description: %w", err)
	}
	deb, err := nfpm.Get("deb")
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(out), ".xdplb-deb-")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if err := deb.Package(info, f); err != nil {
		f.Close()
		return fmt.Errorf("build the package: %w", err)
	}
	if err := f.Close(); err != nil {
		return err
	}
	data, err := os.ReadFile(f.Name())
	if err != nil {
		return err
	}
	return atomicfile.Write(out, data, 0o644)
}

// stage writes what is generated (the unit for the installed path, the
// completion, the manual pages) into dir and lists the package's files.
func stage(o Options, dir string) (files.Contents, error) {
	unit, err := os.ReadFile(filepath.Join(o.Repo, "dist", "xdplb.service"))
	if err != nil {
		return nil, err
	}
	unitPath := filepath.Join(dir, "xdplb.service")
	if err := os.WriteFile(unitPath, []byte(strings.ReplaceAll(string(unit), "/usr/local/sbin/xdplb", InstalledBinary)), 0o644); err != nil {
		return nil, err
	}
	completion, err := exec.Command(o.Binary, "completion", "bash").Output()
	if err != nil {
		return nil, fmt.Errorf("%s completion bash: %w", o.Binary, err)
	}
	completionPath := filepath.Join(dir, "xdplb.bash")
	if err := os.WriteFile(completionPath, completion, 0o644); err != nil {
		return nil, err
	}
	manDir := filepath.Join(dir, "man1")
	if out, err := exec.Command(o.Binary, "man", manDir).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("%s man: %w: %s", o.Binary, err, out)
	}
	c := files.Contents{
		{Source: o.Binary, Destination: InstalledBinary, FileInfo: &files.ContentFileInfo{Mode: 0o755}},
		{Source: unitPath, Destination: "/lib/systemd/system/xdplb.service"},
		{Source: completionPath, Destination: "/usr/share/bash-completion/completions/xdplb"},
		{Source: filepath.Join(o.Repo, "dist", "xdplb.yaml.example"), Destination: "/usr/share/doc/xdplb/xdplb.yaml.example"},
		{Source: filepath.Join(manDir, "*.1"), Destination: "/usr/share/man/man1/"},
		{Source: filepath.Join(o.Repo, "docs", "*.md"), Destination: "/usr/share/doc/xdplb/"},
		{Source: filepath.Join(o.Repo, "README.md"), Destination: "/usr/share/doc/xdplb/README.md"},
	}
	return c, nil
}
