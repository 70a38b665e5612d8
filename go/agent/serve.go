package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// maxPacking bounds the outputs tars packed at once: they all go out through one
// stdout, and each holds half a mebibyte of buffers while it is packed.
const maxPacking = 4

// Serve is `remote-agent serve`: one agent for every instance the controller
// places on this host. It sends a ready event, then starts, stops and cleans up
// instances as the control lines on stdin say, each in its own work dir and
// session, and sends their frames, tagged with their ids, on stdout (see
// PROTOCOL.md). It returns the agent's exit code: 0 after a shutdown that removed
// every work dir, 1 when the controller went away (stdin ended before shutdown, a
// write to stdout failed, or SIGTERM, SIGINT or SIGHUP came) or a work dir could
// not be removed.
func Serve(stdin io.Reader, stdout io.Writer) int {
	// As in Run: EPIPE on a write, not a silent death, and SIGPIPE as usual in the apps.
	pipes := make(chan os.Signal, 1)
	signal.Notify(pipes, syscall.SIGPIPE)
	defer signal.Stop(pipes)
	_ = becomeSubreaper() // best effort: without it only the apps' sessions are stopped
	s := &server{
		slots:    map[uint32]*slot{},
		apps:     map[int]*slot{},
		shutdown: make(chan struct{}),
		lost:     make(chan struct{}),
		packing:  make(chan struct{}, maxPacking),
	}
	s.out = NewMuxWriter(stdout, func(error) { s.markLost() })
	s.sweeps.pass = func() { killStrays(s.owners, killLimit) }
	defer s.reapChildren()()
	defer onHangup(s.markLost)()
	if s.out.Send(FrameEvent, encodeEvent(readyEvent{Type: "ready", Version: Version, Pid: os.Getpid()})) != nil {
		return s.abandon()
	}
	go s.control(newLineReader(stdin))
	select {
	case <-s.shutdown:
		return s.finish()
	case <-s.lost:
		return s.abandon()
	}
}

// server is what the goroutines of serve mode share.
type server struct {
	out *FrameWriter

	// mu guards the maps and closing; the reaper holds it while it collects exit statuses.
	mu sync.Mutex
	// slots are the ids in use, from start until cleaned.
	slots map[uint32]*slot
	// apps maps the pid of each app not yet reaped to its slot.
	apps map[int]*slot
	// closing is set by shutdown or once the controller is gone: nothing starts after it.
	closing bool

	shutdown chan struct{}
	lost     chan struct{}
	lostOnce sync.Once
	// active counts the goroutines that still owe the controller frames.
	active       sync.WaitGroup
	packing      chan struct{}
	sweeps       sweeper
	removeFailed atomic.Bool
}

// slot is one instance id in use: the app (when it started) and what its goroutine needs.
type slot struct {
	id      uint32
	out     stream
	command string
	grace   time.Duration
	// workdir is "" when none was made; refusal then says why.
	workdir string
	refusal string
	// app is nil when it did not start; startErr then says why.
	app      *instance
	startErr error
	// pipes are the inodes of the app's stdout and stderr pipes, which mark its strays.
	pipes [2]uint64
	stop  *stopper
	// done is closed by the `done` control message.
	done       chan struct{}
	doneOnce   sync.Once
	removeOnce sync.Once
	removeErr  error
}

// markLost records that the controller is gone.
func (s *server) markLost() { s.lostOnce.Do(func() { close(s.lost) }) }

// isLost says whether the controller is gone.
func (s *server) isLost() bool { return closed(s.lost) }

// closed says whether ch is closed.
func closed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// control reads the control lines until stdin ends, and ignores them after a
// shutdown; stdin ending before a shutdown means the controller is gone. It never
// writes to stdout, so a controller that does not read cannot keep it from seeing stdin end.
func (s *server) control(lines *lineReader) {
	for {
		line, err := lines.next()
		if errors.Is(err, errLineTooLong) {
			continue
		}
		if err != nil {
			if !closed(s.shutdown) {
				s.markLost()
			}
			return
		}
		msg, ok := parseMessage(line)
		if !ok || closed(s.shutdown) {
			continue
		}
		switch msg.op {
		case ControlStart:
			s.start(msg.id, msg.job)
		case ControlTerm:
			if sl := s.slot(msg.id); sl != nil && sl.app != nil {
				sl.stop.stop(sl.grace)
			}
		case ControlDone:
			if sl := s.slot(msg.id); sl != nil {
				sl.doneOnce.Do(func() { close(sl.done) })
			}
		case ControlShutdown:
			s.mu.Lock()
			lost := s.closing
			s.closing = true
			s.mu.Unlock()
			if !lost {
				close(s.shutdown)
			}
		}
	}
}

// slot is the slot of id, nil when the id is not in use.
func (s *server) slot(id uint32) *slot {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.slots[id]
}

// start takes id into use and starts its app, or refuses it. The app is
// started and registered under the lock the reaper takes, so its exit status
// can never come before the agent knows its pid.
func (s *server) start(id uint32, raw json.RawMessage) {
	job, jobErr := parseJob(raw)
	if raw == nil {
		jobErr = errors.New(`missing field "job"`)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := stream{out: s.out, id: id}
	switch {
	case s.closing:
		return
	case s.slots[id] != nil:
		// No slot: the frames go to the id's running instance, whose own are untouched.
		s.active.Add(1)
		go func() {
			defer s.active.Done()
			refuse(out, fmt.Sprintf("id %d is in use", id))
		}()
		return
	}
	sl := &slot{id: id, out: out, command: job.Command, grace: time.Duration(job.GraceMs) * time.Millisecond, done: make(chan struct{})}
	if jobErr != nil {
		sl.refusal = "invalid job: " + jobErr.Error()
	} else if workdir, err := makeWorkdir(); err != nil {
		sl.refusal = err.Error()
	} else {
		sl.workdir = workdir
		outputs, temp := filepath.Join(workdir, "outputs"), filepath.Join(workdir, "temp")
		sl.app, sl.startErr = startInstance(job, temp, appEnv(job, outputs, temp), true)
		if sl.app != nil {
			s.apps[sl.app.pid()] = sl
			sl.stop = &stopper{pgid: sl.app.pid()}
			for i, r := range sl.app.readers {
				sl.pipes[i] = inode(r)
			}
		}
	}
	s.slots[id] = sl
	s.active.Add(1)
	go s.serve(sl)
}

// inode is the inode number of an open file, 0 when it cannot be read.
func inode(f *os.File) uint64 {
	fi, err := f.Stat()
	if err != nil {
		return 0
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Ino)
	}
	return 0
}

// refuse sends what a start that runs nothing owes: an error, exit status 127 and an empty tarEnd.
func refuse(out stream, message string) {
	_ = out.event(errorEvent{Type: "error", Message: message})
	_ = out.event(cannotStart())
	_ = out.Send(FrameTarEnd, nil)
}

// serve is one slot's life: its app's output and exit, its outputs, and its
// cleanup once the controller says `done` or shuts the agent down. Once the
// controller is gone it stops at once: abandon cleans up.
func (s *server) serve(sl *slot) {
	defer s.active.Done()
	switch {
	case sl.refusal != "":
		refuse(sl.out, sl.refusal)
	case sl.app == nil:
		_ = sl.out.event(errorEvent{Type: "error", Message: fmt.Sprintf("cannot start %s: %s", sl.command, startFailure(sl.startErr))})
		_ = sl.out.event(cannotStart())
		s.sendOutputs(sl)
	default:
		_ = sl.out.event(startedEvent{Type: "started", Workdir: sl.workdir, Pid: sl.app.pid()})
		sl.app.pump(sl.out, s.isLost)
		outputs := s.await(sl)
		if s.isLost() {
			return
		}
		sl.stop.end()
		s.sweeps.sweep()
		sl.app.drain(drainLimit, s.lost)
		if s.isLost() {
			return
		}
		_ = sl.out.event(exitOf(sl.app.status))
		if outputs {
			s.sendOutputs(sl)
		}
	}
	select {
	case <-sl.done:
	case <-s.shutdown:
	case <-s.lost:
		return
	}
	s.clean(sl)
}

// await returns once the app has exited, stopping it first (with the job's
// grace) when `done` or a shutdown comes before, or at once when the controller
// is gone. It says whether the outputs are owed: not when a shutdown found the app running.
func (s *server) await(sl *slot) (outputs bool) {
	done, shutdown := sl.done, s.shutdown
	outputs = true
	for {
		select {
		case <-sl.app.exited:
			return outputs
		case <-done:
			done = nil
			sl.stop.stop(sl.grace)
		case <-shutdown:
			shutdown = nil
			if sl.app.hasExited() {
				return true
			}
			outputs = false
			sl.stop.stop(sl.grace)
		case <-s.lost:
			return false
		}
	}
}

// sendOutputs sends the slot's outputs tar and tarEnd, a few slots at a time.
func (s *server) sendOutputs(sl *slot) {
	select {
	case s.packing <- struct{}{}:
	case <-s.lost:
		return
	}
	defer func() { <-s.packing }()
	sendOutputs(sl.out, filepath.Join(sl.workdir, "outputs"), s.isLost)
}

// clean kills what is left of the slot's app, removes its work dir, frees its id
// and says `cleaned` (after an error event when the dir could not be removed).
func (s *server) clean(sl *slot) {
	if sl.app != nil {
		sl.stop.end()
		s.sweeps.sweep()
		sl.app.close()
	}
	err := s.removeWorkdir(sl)
	s.mu.Lock()
	delete(s.slots, sl.id)
	s.mu.Unlock()
	if err != nil {
		_ = sl.out.event(errorEvent{Type: "error", Message: err.Error()})
	}
	_ = sl.out.event(cleanedEvent{Type: "cleaned", Workdir: sl.workdir})
}

// removeWorkdir removes the slot's work dir once, whoever asks first.
func (s *server) removeWorkdir(sl *slot) error {
	sl.removeOnce.Do(func() {
		if sl.workdir != "" {
			sl.removeErr = removeWorkdir(sl.workdir)
		}
		if sl.removeErr != nil {
			s.removeFailed.Store(true)
		}
	})
	return sl.removeErr
}

// finish ends a shutdown: it waits until every slot is cleaned and kills what
// is left below the agent; it returns 0, or 1 when a work dir stayed or the controller went away meanwhile.
func (s *server) finish() int {
	all := make(chan struct{})
	go func() {
		s.active.Wait()
		close(all)
	}()
	select {
	case <-all:
	case <-s.lost:
		return s.abandon()
	}
	s.sweeps.sweep()
	if s.isLost() || s.removeFailed.Load() {
		return 1
	}
	return 0
}

// abandon cleans up after the controller is gone, without sending anything and
// without waiting for goroutines that may be stuck writing: TERM to every app,
// KILL after lostGrace, then every process below the agent, then every work dir. It returns 1.
func (s *server) abandon() int {
	s.markLost()
	s.mu.Lock()
	s.closing = true
	slots := make([]*slot, 0, len(s.slots))
	for _, sl := range s.slots {
		slots = append(slots, sl)
	}
	s.mu.Unlock()
	for _, sl := range slots {
		if sl.app != nil {
			sl.stop.stop(lostGrace)
		}
	}
	deadline := time.NewTimer(lostGrace + killLimit)
	defer deadline.Stop()
wait:
	for _, sl := range slots {
		if sl.app == nil {
			continue
		}
		select {
		case <-sl.app.exited:
		case <-deadline.C:
			break wait
		}
	}
	for _, sl := range slots {
		if sl.app != nil {
			sl.stop.end()
		}
	}
	killDescendants(0, killLimit)
	for _, sl := range slots {
		if sl.app != nil {
			sl.app.close()
		}
		_ = s.removeWorkdir(sl)
	}
	return 1
}

// reapChildren collects the exit status of every child of the agent on SIGCHLD,
// in one goroutine for all instances: an app's goes to its slot, an adopted
// orphan's is dropped. Nothing else in serve mode may wait for a child.
func (s *server) reapChildren() (stop func()) {
	return onChildSignal(s.reap)
}

// reap collects every child that has exited.
func (s *server) reap() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if err == syscall.EINTR {
			continue
		}
		if err != nil || pid <= 0 {
			return
		}
		if sl, ok := s.apps[pid]; ok {
			delete(s.apps, pid)
			sl.app.setExited(ws)
		}
	}
}
