//go:build unix

package trust

import (
	"io/fs"
	"syscall"
)

// FileOwner is the uid owning the file fi describes.
func FileOwner(fi fs.FileInfo) (uint32, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return st.Uid, true
}
