package agent

import (
	"os"
	"os/signal"
	"strconv"
	"syscall"
)

// signalNames are the names Node gives signals, which the controller expects in exit events.
var signalNames = map[syscall.Signal]string{
	syscall.SIGABRT: "SIGABRT", syscall.SIGALRM: "SIGALRM", syscall.SIGBUS: "SIGBUS", syscall.SIGCHLD: "SIGCHLD",
	syscall.SIGCONT: "SIGCONT", syscall.SIGFPE: "SIGFPE", syscall.SIGHUP: "SIGHUP", syscall.SIGILL: "SIGILL",
	syscall.SIGINT: "SIGINT", syscall.SIGIO: "SIGIO", syscall.SIGKILL: "SIGKILL", syscall.SIGPIPE: "SIGPIPE",
	syscall.SIGPROF: "SIGPROF", syscall.SIGQUIT: "SIGQUIT", syscall.SIGSEGV: "SIGSEGV", syscall.SIGSTOP: "SIGSTOP",
	syscall.SIGSYS: "SIGSYS", syscall.SIGTERM: "SIGTERM", syscall.SIGTRAP: "SIGTRAP", syscall.SIGTSTP: "SIGTSTP",
	syscall.SIGTTIN: "SIGTTIN", syscall.SIGTTOU: "SIGTTOU", syscall.SIGURG: "SIGURG", syscall.SIGUSR1: "SIGUSR1",
	syscall.SIGUSR2: "SIGUSR2", syscall.SIGVTALRM: "SIGVTALRM", syscall.SIGWINCH: "SIGWINCH", syscall.SIGXCPU: "SIGXCPU",
	syscall.SIGXFSZ: "SIGXFSZ",
}

// signalName is a signal's name, `SIG` and its number when it has none (real-time signals).
func signalName(sig syscall.Signal) string {
	if name, ok := signalNames[sig]; ok {
		return name
	}
	if name, ok := systemSignalNames[sig]; ok {
		return name
	}
	return "SIG" + strconv.Itoa(int(sig))
}

// exitOf is the exit event of an ended process: status is its code, or 128 + the signal's number.
func exitOf(ws syscall.WaitStatus) exitEvent {
	if ws.Signaled() {
		name := signalName(ws.Signal())
		return exitEvent{Type: "exit", Status: 128 + int(ws.Signal()), Signal: &name}
	}
	code := ws.ExitStatus()
	return exitEvent{Type: "exit", Status: code, Code: &code}
}

// cannotStart is the exit event of an app that never ran, the way a shell reports it.
func cannotStart() exitEvent {
	code := 127
	return exitEvent{Type: "exit", Status: code, Code: &code}
}

// onChildSignal calls fn, in one goroutine, on every SIGCHLD until stop is called.
func onChildSignal(fn func()) (stop func()) {
	children := make(chan os.Signal, 1)
	signal.Notify(children, syscall.SIGCHLD)
	finished := make(chan struct{})
	go func() {
		for {
			select {
			case <-children:
				fn()
			case <-finished:
				return
			}
		}
	}()
	return func() {
		signal.Stop(children)
		close(finished)
	}
}
