package datapath

import (
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// ensureBPFFS makes sure path is a directory on a BPF filesystem, mounting
// one on its parent if that is the usual /sys/fs/bpf and nothing is there.
func ensureBPFFS(path string) error {
	parent := filepath.Dir(path)
	var st unix.Statfs_t
	if err := unix.Statfs(parent, &st); err != nil {
		return fmt.Errorf("pin path %s: %w", path, err)
	}
	if st.Type != unix.BPF_FS_MAGIC {
		if parent != "/sys/fs/bpf" {
			return fmt.Errorf("pin path %s: %s is not a BPF filesystem (mount -t bpf bpf %s)", path, parent, parent)
		}
		if err := unix.Mount("bpf", parent, "bpf", 0, "mode=0700"); err != nil {
			return fmt.Errorf("mount BPF filesystem on %s: %w", parent, err)
		}
	}
	if err := os.MkdirAll(path, 0o700); err != nil {
		return fmt.Errorf("pin path %s: %w", path, err)
	}
	return nil
}
