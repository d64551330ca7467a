//go:build windows

package exec

import (
	"fmt"
	osexec "os/exec"
	"unsafe"

	"golang.org/x/sys/windows"
)

// tree is the program with every process it starts, held in a job object
// so that one call ends vendor tools that start helpers too.
type tree struct {
	cmd *osexec.Cmd
	job windows.Handle
}

func newTree(cmd *osexec.Cmd) (*tree, error) {
	job, err := windows.CreateJobObject(nil, nil)
	if err != nil {
		return nil, fmt.Errorf("create job object: %w", err)
	}
	info := windows.JOBOBJECT_EXTENDED_LIMIT_INFORMATION{
		BasicLimitInformation: windows.JOBOBJECT_BASIC_LIMIT_INFORMATION{
			// Closing our handle then ends every process still in the job.
			LimitFlags: windows.JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE,
		},
	}
	if _, err := windows.SetInformationJobObject(job, windows.JobObjectExtendedLimitInformation,
		uintptr(unsafe.Pointer(&info)), uint32(unsafe.Sizeof(info))); err != nil {
		windows.CloseHandle(job)
		return nil, fmt.Errorf("configure job object: %w", err)
	}
	t := &tree{cmd: cmd, job: job}
	cmd.Cancel = t.kill
	return t, nil
}

// started puts the program into the job. A helper it starts in the instant
// before that escapes the job; the program itself is still killed directly.
func (t *tree) started(cmd *osexec.Cmd) {
	h, err := windows.OpenProcess(windows.PROCESS_SET_QUOTA|windows.PROCESS_TERMINATE, false, uint32(cmd.Process.Pid))
	if err != nil {
		return
	}
	defer windows.CloseHandle(h)
	_ = windows.AssignProcessToJobObject(t.job, h)
}

func (t *tree) kill() error {
	_ = windows.TerminateJobObject(t.job, 1)
	return t.cmd.Process.Kill()
}

func (t *tree) close() {
	windows.CloseHandle(t.job)
}
