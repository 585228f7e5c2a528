//go:build !unix

package health

import "os/exec"

// setProcessGroup only kills the command itself where process groups do
// not exist.
func setProcessGroup(cmd *exec.Cmd) {}
