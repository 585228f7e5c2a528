//go:build unix

package health

import (
	"os/exec"
	"syscall"
)

// setProcessGroup makes cmd the leader of a new process group and makes
// cancellation kill the whole group.
func setProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		// The group's id is the leader's pid. Cancel runs when the
		// context ends, normally while the leader still runs (and so
		// holds the id); exiting at that very moment and having the id
		// reused for a new group within microseconds is not a risk
		// worth more code.
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
}
