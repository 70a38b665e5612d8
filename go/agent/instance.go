package agent

import (
	"errors"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// instance is the app running in its own process group, its output pumped into frames.
type instance struct {
	appPid  int
	readers []*os.File
	// exited is closed once the app has been waited for; status (or waitErr) is then set.
	exited  chan struct{}
	status  syscall.WaitStatus
	waitErr error
	// pumped is closed once both output pipes are read to their end (or given up).
	pumped chan struct{}
}

// appEnv is exactly job.Env with PATH (the agent's own), TEST_OUTPUTS_PATH and TEST_TEMP_PATH set.
func appEnv(job Job, outputs, temp string) []string {
	vars := make(map[string]string, len(job.Env)+3)
	for k, v := range job.Env {
		vars[k] = v
	}
	path, ok := os.LookupEnv("PATH")
	if !ok {
		path = "/usr/bin:/bin"
	}
	vars["PATH"] = path
	vars["TEST_OUTPUTS_PATH"] = outputs
	vars["TEST_TEMP_PATH"] = temp
	env := make([]string, 0, len(vars))
	for k, v := range vars {
		env = append(env, k+"="+v)
	}
	sort.Strings(env)
	return env
}

// startInstance starts the job's command (no shell) in dir with env, stdin from
// /dev/null, stdout and stderr to pipes, in a new process group (and a new
// session too when ownSession is set). Nothing waits for it: the caller arranges
// that, with wait or a reaper that calls setExited.
func startInstance(job Job, dir string, env []string, ownSession bool) (*instance, error) {
	devNull, err := os.Open(os.DevNull)
	if err != nil {
		return nil, err
	}
	defer devNull.Close()
	stdoutR, stdoutW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer stdoutW.Close()
	stderrR, stderrW, err := os.Pipe()
	if err != nil {
		stdoutR.Close()
		return nil, err
	}
	defer stderrW.Close()
	sys := &syscall.SysProcAttr{Setpgid: !ownSession, Setsid: ownSession}
	attr := &syscall.ProcAttr{Dir: dir, Env: env, Files: []uintptr{devNull.Fd(), stdoutW.Fd(), stderrW.Fd()}, Sys: sys}
	pid, err := syscall.ForkExec(job.Command, append([]string{argv0(job)}, job.Args...), attr)
	if err != nil {
		stdoutR.Close()
		stderrR.Close()
		return nil, err
	}
	return &instance{appPid: pid, readers: []*os.File{stdoutR, stderrR}, exited: make(chan struct{}), pumped: make(chan struct{})}, nil
}

// wait reaps the app in the background, for run mode, where nothing else waits for it.
func (in *instance) wait() {
	go func() {
		var ws syscall.WaitStatus
		_, err := syscall.Wait4(in.appPid, &ws, 0, nil)
		for err == syscall.EINTR {
			_, err = syscall.Wait4(in.appPid, &ws, 0, nil)
		}
		in.waitErr = err
		in.setExited(ws)
	}()
}

// setExited records the app's wait status; call it once.
func (in *instance) setExited(ws syscall.WaitStatus) {
	in.status = ws
	close(in.exited)
}

// pump copies the app's stdout and stderr into frames until they end, dropping
// what arrives once quiet says the controller is gone. Call it after the started event.
func (in *instance) pump(out sender, quiet func() bool) {
	left := int32(2)
	finished := func() {
		if atomic.AddInt32(&left, -1) == 0 {
			close(in.pumped)
		}
	}
	go pump(in.readers[0], FrameStdout, out, quiet, finished)
	go pump(in.readers[1], FrameStderr, out, quiet, finished)
}

// pid is the app's pid, which is also its process group's id.
func (in *instance) pid() int { return in.appPid }

// hasExited says whether the app has been waited for.
func (in *instance) hasExited() bool {
	select {
	case <-in.exited:
		return true
	default:
		return false
	}
}

// drain waits up to limit for the pipes to reach their end; a pipe that something
// outside the agent's reach keeps open is then given up. It returns once the
// pumps have stopped, or as soon as the controller is gone.
func (in *instance) drain(limit time.Duration, lost <-chan struct{}) {
	timer := time.NewTimer(limit)
	defer timer.Stop()
	select {
	case <-in.pumped:
		return
	case <-lost:
		return
	case <-timer.C:
	}
	for _, r := range in.readers {
		if r.SetReadDeadline(time.Now()) != nil {
			r.Close()
		}
	}
	select {
	case <-in.pumped:
	case <-lost:
	}
}

// close closes the read ends of the pipes.
func (in *instance) close() {
	for _, r := range in.readers {
		r.Close()
	}
}

// startFailure is the reason a command did not start, without Go's `fork/exec <path>:` prefix.
func startFailure(err error) string {
	var pathErr *os.PathError
	if errors.As(err, &pathErr) {
		return pathErr.Err.Error()
	}
	return err.Error()
}

// pumpBuffer is the most one read of an output pipe takes: a Linux pipe's default capacity.
const pumpBuffer = 64 << 10

// pumpBuffers lends read buffers to the pumps only while a pipe has data, so an
// idle instance holds none: hundreds of them share a few.
var pumpBuffers = sync.Pool{New: func() any {
	buf := make([]byte, pumpBuffer)
	return &buf
}}

// pump copies r into frames of kind until r ends.
func pump(r *os.File, kind FrameKind, out sender, quiet func() bool, finished func()) {
	defer finished()
	conn, err := r.SyscallConn()
	if err != nil {
		return
	}
	for {
		var buf *[]byte
		var n int
		var readErr error
		err := conn.Read(func(fd uintptr) bool {
			buf = pumpBuffers.Get().(*[]byte)
			n, readErr = syscall.Read(int(fd), *buf)
			for readErr == syscall.EINTR {
				n, readErr = syscall.Read(int(fd), *buf)
			}
			if readErr == syscall.EAGAIN {
				pumpBuffers.Put(buf)
				buf = nil
				return false // wait until the pipe is readable
			}
			return true
		})
		if n > 0 && !quiet() {
			_ = out.Send(kind, (*buf)[:n]) // a failed write marks the controller lost through the writer
		}
		if buf != nil {
			pumpBuffers.Put(buf)
		}
		if err != nil || readErr != nil || n <= 0 {
			return
		}
	}
}

// The name the program is started under: the job's argv0, else its command.
func argv0(job Job) string {
	if job.Argv0 != "" {
		return job.Argv0
	}
	return job.Command
}
