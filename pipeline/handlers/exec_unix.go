//go:build unix

package handlers

import (
	"os/exec"
	"syscall"
)

// killGroup runs the command in its own process group and makes
// cancellation kill the whole group, so that a shell script's children do
// not outlive a timeout.
func killGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
}
