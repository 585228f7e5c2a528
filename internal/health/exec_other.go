//go:build !unix

package health

import (
	"io/fs"
	"os/exec"
)

// setProcessGroup only kills the command itself where process groups do
// not exist.
func setProcessGroup(cmd *exec.Cmd) {}

// fileOwner is unknown where files have no uid.
func fileOwner(fs.FileInfo) (uint32, bool) { return 0, false }
