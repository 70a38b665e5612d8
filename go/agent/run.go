package agent

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

const (
	// lostGrace is the time between TERM and KILL once the controller is gone.
	lostGrace = 2 * time.Second
	// drainLimit bounds the wait for the output pipes after the app and everything below it are killed.
	drainLimit = 2 * time.Second
	// killLimit bounds the wait for a killed process to be gone (one in uninterruptible sleep never is).
	killLimit = 3 * time.Second
)

// Run is `remote-agent run`: it reads the job line from stdin, runs the app in a
// fresh work dir, streams its output, exit status and outputs tar to stdout as
// frames, and removes the work dir; control lines on stdin stop the app (`term`)
// or end the run (`done`). Stdin ending before `done`, a failed write to stdout, or
// SIGTERM, SIGINT or SIGHUP mean the controller is gone: the app is stopped and
// the work dir removed all the same. It returns the agent's exit code: 0, or 1
// when the controller went away or the work dir could not be removed; an error
// only for a job line that never came or is invalid, or a work dir that cannot be made.
func Run(stdin io.Reader, stdout io.Writer) (int, error) {
	// A dropped connection is then EPIPE on a write, which the run handles, not a
	// silent death. Notify, not signal.Ignore: an ignored signal stays ignored in the
	// app after exec, and the app must get SIGPIPE as usual.
	pipes := make(chan os.Signal, 1)
	signal.Notify(pipes, syscall.SIGPIPE)
	defer signal.Stop(pipes)
	_ = becomeSubreaper() // best effort: without it only the app's group is stopped
	lines := newLineReader(stdin)
	line, err := lines.next()
	switch {
	case errors.Is(err, io.EOF):
		return 1, &Error{Code: CodeJob, Message: "stdin ended before the job line", Err: err}
	case errors.Is(err, errLineTooLong):
		return 1, &Error{Code: CodeJob, Message: "invalid job line: " + err.Error(), Err: err}
	case err != nil:
		return 1, &Error{Code: CodeJob, Message: "cannot read the job line: " + err.Error(), Err: err}
	}
	job, err := ParseJob(line)
	if err != nil {
		return 1, err
	}
	r := &run{job: job, lost: make(chan struct{}), done: make(chan struct{}), stop: &stopper{}}
	r.out = NewFrameWriter(stdout, func(error) { r.markLost() })
	return r.run(lines)
}

// run is one job's run: what the goroutines of the run share.
type run struct {
	job      Job
	out      *FrameWriter
	stop     *stopper
	lost     chan struct{}
	lostOnce sync.Once
	done     chan struct{}
}

// markLost records that the controller is gone.
func (r *run) markLost() { r.lostOnce.Do(func() { close(r.lost) }) }

// isLost says whether the controller is gone.
func (r *run) isLost() bool {
	select {
	case <-r.lost:
		return true
	default:
		return false
	}
}

// The run from the work dir on: setup, run and outputs, then the cleanup, which
// always happens and decides the exit code.
func (r *run) run(lines *lineReader) (code int, err error) {
	defer r.lostOnSignals()()
	workdir, err := makeWorkdir()
	if err != nil {
		return 1, err
	}
	var app *instance
	defer func() { code = r.cleanup(app, workdir) }()
	app = r.execute(workdir, lines)
	return 0, nil
}

// lostOnSignals treats SIGTERM, SIGINT and SIGHUP as the controller being gone, until the returned func is called.
func (r *run) lostOnSignals() (stop func()) { return onHangup(r.markLost) }

// onHangup calls lost on SIGTERM, SIGINT or SIGHUP, until the returned func is called.
func onHangup(lost func()) (stop func()) {
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	finished := make(chan struct{})
	go func() {
		select {
		case <-signals:
			lost()
		case <-finished:
		}
	}()
	return func() {
		signal.Stop(signals)
		close(finished)
	}
}

// execute runs the app and sends its events and outputs; it returns, with the app
// (nil if it never started), once the controller said `done` or is gone.
func (r *run) execute(workdir string, lines *lineReader) *instance {
	outputs, temp := filepath.Join(workdir, "outputs"), filepath.Join(workdir, "temp")
	app, err := startInstance(r.job, temp, appEnv(r.job, outputs, temp), false)
	if err == nil {
		app.wait()
		r.stop.pgid = app.pid()
	}
	go r.control(lines)
	if err != nil {
		_ = r.out.event(errorEvent{Type: "error", Message: fmt.Sprintf("cannot start %s: %s", r.job.Command, startFailure(err))})
		_ = r.out.event(cannotStart())
	} else {
		_ = r.out.event(startedEvent{Type: "started", Workdir: workdir, Pid: app.pid()})
		app.pump(r.out, r.isLost)
		stopReaping := reapOrphans(app.pid())
		r.wait(app)
		stopReaping()
		r.stop.end()
		killDescendants(r.keep(app), killLimit)
		app.drain(drainLimit, r.lost)
		r.sendExit(app)
	}
	if !r.isLost() {
		r.sendOutputs(outputs)
	}
	select {
	case <-r.done:
	case <-r.lost:
	}
	return app
}

// cleanup kills the app's group and everything below the agent, removes the work
// dir, and says `cleaned` when the controller is there to hear it; it returns the exit code.
func (r *run) cleanup(app *instance, workdir string) int {
	r.stop.end()
	if app != nil {
		killDescendants(r.keep(app), killLimit)
		app.close()
	}
	removeErr := removeWorkdir(workdir)
	switch {
	case r.isLost():
		return 1
	case removeErr != nil:
		_ = r.out.event(errorEvent{Type: "error", Message: removeErr.Error()})
		return 1
	case r.out.event(cleanedEvent{Type: "cleaned", Workdir: workdir}) != nil:
		return 1
	}
	return 0
}

// control reads the control lines: `term` stops the app, `done` ends the run,
// and stdin ending first means the controller is gone. Other lines are ignored.
func (r *run) control(lines *lineReader) {
	for {
		line, err := lines.next()
		if errors.Is(err, errLineTooLong) {
			continue
		}
		if err != nil {
			r.markLost()
			return
		}
		switch op, _ := parseControl(line); op {
		case ControlTerm:
			r.stop.stop(r.grace())
		case ControlDone:
			close(r.done)
			return
		}
	}
}

// wait returns once the app has exited, stopping it first when the controller says
// `done` early (with the job's grace) or is gone (with lostGrace, then waiting at most killLimit more).
func (r *run) wait(app *instance) {
	done := r.done
	for {
		select {
		case <-app.exited:
			return
		case <-done:
			done = nil
			r.stop.stop(r.grace())
		case <-r.lost:
			r.stop.stop(lostGrace)
			timer := time.NewTimer(lostGrace + killLimit)
			defer timer.Stop()
			select {
			case <-app.exited:
			case <-timer.C:
			}
			return
		}
	}
}

// The job's grace period.
func (r *run) grace() time.Duration { return time.Duration(r.job.GraceMs) * time.Millisecond }

// The pid the descendant sweep must not reap: the app's, until its own wait has returned.
func (r *run) keep(app *instance) int {
	if app.hasExited() {
		return 0
	}
	return app.pid()
}

// sendExit sends the app's exit event, unless the controller is gone; if waiting
// for the app failed, an error event and the exit of an app that never ran.
func (r *run) sendExit(app *instance) {
	switch {
	case r.isLost():
	case app.waitErr != nil:
		_ = r.out.event(errorEvent{Type: "error", Message: fmt.Sprintf("cannot wait for %s: %v", r.job.Command, app.waitErr)})
		_ = r.out.event(cannotStart())
	default:
		_ = r.out.event(exitOf(app.status))
	}
}

func (r *run) sendOutputs(outputs string) { sendOutputs(r.out, outputs, r.isLost) }

// sendOutputs sends the outputs dir as tar frames and one empty tarEnd frame. An
// outputs failure is reported in an error event before the tarEnd, and the
// controller sees an archive without its end; nothing more is sent once lost says the controller is gone.
func sendOutputs(out sender, outputs string, lost func() bool) {
	frames := &tarFrames{out: out, stop: lost}
	err := Pack(frames, outputs)
	if err == nil {
		err = frames.Flush()
	}
	var packErr *Error
	if errors.As(err, &packErr) {
		_ = frames.Flush()
	}
	if lost() {
		return
	}
	if err != nil {
		_ = out.Send(FrameEvent, encodeEvent(errorEvent{Type: "error", Message: err.Error()}))
	}
	_ = out.Send(FrameTarEnd, nil)
}

// makeWorkdir makes $TMPDIR/remote-runner-XXXXXX with outputs/ and temp/ in it.
func makeWorkdir() (string, error) {
	dir, err := os.MkdirTemp(os.TempDir(), "remote-runner-")
	if err == nil {
		err = os.Mkdir(filepath.Join(dir, "outputs"), 0o777)
		if err == nil {
			err = os.Mkdir(filepath.Join(dir, "temp"), 0o777)
		}
		if err != nil {
			_ = os.RemoveAll(dir)
		}
	}
	if err != nil {
		return "", &Error{Code: CodeWorkdir, Message: "cannot make the work dir: " + err.Error(), Err: err}
	}
	return dir, nil
}
