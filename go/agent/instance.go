package agent

import (
	"errors"
	"os"
	"os/exec"
	"sort"
	"sync"
	"syscall"
	"time"
)

// instance is the app running in its own process group, its output pumped into frames.
type instance struct {
	cmd     *exec.Cmd
	readers []*os.File
	// exited is closed once the app has been waited for; state (or waitErr) is then set.
	exited  chan struct{}
	state   *os.ProcessState
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
// /dev/null, stdout and stderr to pipes, in a new process group.
func startInstance(job Job, dir string, env []string) (*instance, error) {
	stdoutR, stdoutW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	stderrR, stderrW, err := os.Pipe()
	if err != nil {
		stdoutR.Close()
		stdoutW.Close()
		return nil, err
	}
	cmd := &exec.Cmd{
		Path:        job.Command,
		Args:        append([]string{argv0(job)}, job.Args...),
		Env:         env,
		Dir:         dir,
		Stdout:      stdoutW,
		Stderr:      stderrW,
		SysProcAttr: &syscall.SysProcAttr{Setpgid: true},
	}
	err = cmd.Start()
	stdoutW.Close()
	stderrW.Close()
	if err != nil {
		stdoutR.Close()
		stderrR.Close()
		return nil, err
	}
	in := &instance{cmd: cmd, readers: []*os.File{stdoutR, stderrR}, exited: make(chan struct{}), pumped: make(chan struct{})}
	go func() {
		in.waitErr = cmd.Wait()
		in.state = cmd.ProcessState
		close(in.exited)
	}()
	return in, nil
}

// pump copies the app's stdout and stderr into frames until they end, dropping
// what arrives once quiet says the controller is gone. Call it after the started event.
func (in *instance) pump(out *FrameWriter, quiet func() bool) {
	var pumps sync.WaitGroup
	pumps.Add(2)
	go pump(in.readers[0], FrameStdout, out, quiet, &pumps)
	go pump(in.readers[1], FrameStderr, out, quiet, &pumps)
	go func() {
		pumps.Wait()
		close(in.pumped)
	}()
}

// pid is the app's pid, which is also its process group's id.
func (in *instance) pid() int { return in.cmd.Process.Pid }

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

// pump copies r into frames of kind until r ends.
func pump(r *os.File, kind FrameKind, out *FrameWriter, quiet func() bool, done *sync.WaitGroup) {
	defer done.Done()
	buf := make([]byte, 64<<10)
	for {
		n, err := r.Read(buf)
		if n > 0 && !quiet() {
			_ = out.Send(kind, buf[:n]) // a failed write marks the run lost through the writer
		}
		if err != nil {
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
