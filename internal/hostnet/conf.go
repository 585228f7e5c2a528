package hostnet

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// ConfDirs lists the directories of net.ipv4.conf in the calling thread's
// network namespace: "all", "default" and one per interface. A setting's
// value for an interface is that interface's own; for most settings the
// kernel applies the larger of it and all's.
func ConfDirs() ([]string, error) {
	dir := filepath.Join(procSys, "ipv4", "conf")
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", dir, err)
	}
	dirs := make([]string, 0, len(entries))
	for _, e := range entries {
		if e.IsDir() {
			dirs = append(dirs, e.Name())
		}
	}
	return dirs, nil
}

// ConfName is the sysctl name of setting in dir, as sysctl(8) writes it:
// net.ipv4.conf.eth0.rp_filter; a dot in an interface name (a VLAN,
// eth0.100) becomes a slash there.
func ConfName(dir, setting string) string {
	return confName("ipv4", dir, setting)
}

// confName is ConfName for either family, "ipv4" or "ipv6".
func confName(family, dir, setting string) string {
	return "net." + family + ".conf." + strings.ReplaceAll(dir, ".", "/") + "." + setting
}

// Conf reads the integer setting net.ipv4.conf.<dir>.<setting>. A missing
// interface gives an error that wraps os.ErrNotExist.
func Conf(dir, setting string) (int, error) {
	s, err := readSetting("ipv4", dir, setting)
	if err != nil {
		return 0, err
	}
	v, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("read %s: %q is not a number", ConfName(dir, setting), s)
	}
	return v, nil
}

// SetConf writes the integer setting net.ipv4.conf.<dir>.<setting>.
func SetConf(dir, setting string, v int) error {
	return writeSetting("ipv4", dir, setting, strconv.Itoa(v))
}
