// Package buildinfo says which xdplb this is: the version, the commit and
// the build time, for `xdplb version` and the xdplb_build_info metric.
package buildinfo

import "runtime/debug"

// Version is the release version. A release build sets it with
// -ldflags "-X github.com/xdplb/xdplb/internal/buildinfo.Version=v1.2.3";
// when it is empty, the main module's version from the build is used.
var Version string

// Info is what the build recorded.
type Info struct {
	Version string // "unknown" when neither the flag nor the module says
	Commit  string // the VCS revision, "+dirty" when it had changes; "" if unknown
	Date    string // the commit's time, RFC 3339; "" if unknown
}

// Read returns what the build recorded.
func Read() Info {
	info := Info{Version: Version}
	bi, ok := debug.ReadBuildInfo()
	if info.Version == "" && ok && bi.Main.Version != "" {
		info.Version = bi.Main.Version
	}
	if info.Version == "" {
		info.Version = "unknown"
	}
	if !ok {
		return info
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			info.Commit = s.Value + info.Commit
		case "vcs.modified":
			if s.Value == "true" {
				info.Commit += "+dirty"
			}
		case "vcs.time":
			info.Date = s.Value
		}
	}
	return info
}
