//go:build unix

package exec

import (
	osexec "os/exec"
	"syscall"
)

// tree is the program with every process it starts: they share a process
// group, so one signal ends vendor tools that fork helpers too.
type tree struct{ cmd *osexec.Cmd }

func newTree(cmd *osexec.Cmd) (*tree, error) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	t := &tree{cmd: cmd}
	cmd.Cancel = t.kill
	return t, nil
}

func (t *tree) started(*osexec.Cmd) {}

func (t *tree) kill() error {
	// The group id is the leader's pid; Setpgid made the program the leader.
	return syscall.Kill(-t.cmd.Process.Pid, syscall.SIGKILL)
}

// close ends whatever the program left behind: an operation owns its
// processes from start to answer.
func (t *tree) close() {
	if t.cmd.Process != nil {
		_ = t.kill() // ESRCH, nothing left, is the usual outcome
	}
}
