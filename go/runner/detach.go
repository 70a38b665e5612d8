package runner

import (
	"fmt"
	"os"
	"syscall"
)

// DetachArg, as the first argument, makes remote-runner the middle process
// that starts the run's controller (see finder.start); no user types it.
const DetachArg = "--start-detached-controller"

// Detach is the middle process: it starts argv (the program's path, then its
// arguments) in a session of its own, with this process's stdin, stdout,
// stderr and environment, says `pid <n>` or `error <text>` on fd 3, and
// returns its exit code. Its exit makes the controller an orphan, which init
// (or the nearest subreaper) adopts.
func Detach(argv []string) int {
	report := os.NewFile(3, "report")
	syscall.CloseOnExec(3) // the controller must not hold the report pipe open
	if len(argv) == 0 {
		fmt.Fprintln(report, "error no command line")
		return 2
	}
	proc, err := os.StartProcess(argv[0], argv, &os.ProcAttr{
		Env:   os.Environ(),
		Files: []*os.File{os.Stdin, os.Stdout, os.Stderr},
		Sys:   &syscall.SysProcAttr{Setsid: true},
	})
	if err != nil {
		fmt.Fprintf(report, "error %v\n", err)
		return 1
	}
	fmt.Fprintf(report, "pid %d\n", proc.Pid)
	return 0
}
