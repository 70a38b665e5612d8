package agent

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// muxFrame is one decoded frame of serve mode's stdout.
type muxFrame struct {
	id uint32
	frame
}

// served is one `remote-agent serve` process with its stdout decoded into frames, read per id.
type served struct {
	t      *testing.T
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stdout *os.File
	stderr lockedBuffer
	tmpdir string

	mu     sync.Mutex
	frames []muxFrame
	eof    bool
	more   chan struct{}
	// cursor is, per id, the index in frames from which its next frame is looked for.
	cursor map[uint32]int

	exited chan struct{}
}

// startServe runs `remote-agent serve` with TMPDIR set to a fresh dir and this process's PATH.
func startServe(t *testing.T) *served {
	t.Helper()
	s := &served{t: t, tmpdir: t.TempDir(), more: make(chan struct{}, 1), cursor: map[uint32]int{}, exited: make(chan struct{})}
	s.cmd = exec.Command(agentBin, "serve")
	s.cmd.Env = []string{"TMPDIR=" + s.tmpdir, "PATH=" + os.Getenv("PATH")}
	s.stdin, s.stdout = startPiped(t, s.cmd, &s.stderr, s.exited)
	go s.readFrames()
	t.Cleanup(s.stop)
	return s
}

// stop ends an agent a test left running, the way a controller that goes away would, and waits for it.
func (s *served) stop() {
	select {
	case <-s.exited:
		return
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(waitLimit):
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
}

// send writes one line to the agent's stdin.
func (s *served) send(line string) {
	s.t.Helper()
	if _, err := io.WriteString(s.stdin, line+"\n"); err != nil {
		s.t.Fatalf("cannot write to the agent: %v", err)
	}
}

// start sends a start message for id with a valid job running command.
func (s *served) start(id uint32, env map[string]string, graceMs int, command string, args ...string) {
	s.t.Helper()
	s.send(fmt.Sprintf(`{"op":"start","id":%d,"job":%s}`, id, jobLine(command, args, env, graceMs)))
}

// sh starts id on a job running script with /bin/sh and a grace of one second.
func (s *served) sh(id uint32, script string) {
	s.t.Helper()
	s.start(id, map[string]string{}, 1000, "/bin/sh", "-c", script)
}

// op sends a control message for id.
func (s *served) op(op string, id uint32) {
	s.t.Helper()
	s.send(fmt.Sprintf(`{"op":%q,"id":%d}`, op, id))
}

func (s *served) readFrames() {
	defer func() {
		s.mu.Lock()
		s.eof = true
		s.mu.Unlock()
		s.notify()
	}()
	header := make([]byte, muxHeader)
	for {
		if _, err := io.ReadFull(s.stdout, header); err != nil {
			return
		}
		payload := make([]byte, binary.BigEndian.Uint32(header[5:]))
		if _, err := io.ReadFull(s.stdout, payload); err != nil {
			return
		}
		s.mu.Lock()
		s.frames = append(s.frames, muxFrame{binary.BigEndian.Uint32(header[1:5]), frame{FrameKind(header[0]), payload}})
		s.mu.Unlock()
		s.notify()
	}
}

func (s *served) notify() {
	select {
	case s.more <- struct{}{}:
	default:
	}
}

// next returns id's next frame; false at the end of stdout. It fails the test after waitLimit.
func (s *served) next(id uint32) (frame, bool) {
	s.t.Helper()
	deadline := time.NewTimer(waitLimit)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		for i := s.cursor[id]; i < len(s.frames); i++ {
			if s.frames[i].id == id {
				s.cursor[id] = i + 1
				f := s.frames[i].frame
				s.mu.Unlock()
				return f, true
			}
		}
		s.cursor[id] = len(s.frames)
		eof := s.eof
		s.mu.Unlock()
		if eof {
			return frame{}, false
		}
		select {
		case <-s.more:
		case <-deadline.C:
			s.t.Fatalf("no frame for id %d within %v; stderr: %s", id, waitLimit, s.stderr.String())
		}
	}
}

// event reads id's frames up to its next event of type typ, returning the event and the frames before it.
func (s *served) event(id uint32, typ string) (map[string]any, []frame) {
	s.t.Helper()
	var before []frame
	for {
		f, ok := s.next(id)
		if !ok {
			s.t.Fatalf("stdout ended before a %q event for id %d; its frames: %s; stderr: %s", typ, id, describe(before), s.stderr.String())
		}
		if f.kind == FrameEvent {
			var event map[string]any
			if err := json.Unmarshal(f.payload, &event); err != nil {
				s.t.Fatalf("event frame is not JSON: %q", f.payload)
			}
			if event["type"] == typ {
				return event, before
			}
		}
		before = append(before, f)
	}
}

// rawEvent reads id's frames up to its next event of type typ and returns its payload.
func (s *served) rawEvent(id uint32, typ string) string {
	s.t.Helper()
	s.event(id, typ)
	s.mu.Lock()
	defer s.mu.Unlock()
	return string(s.frames[s.cursor[id]-1].payload)
}

// outputs reads id's tar frames up to its tarEnd and returns the tar stream; it fails on any other frame.
func (s *served) outputs(id uint32) []byte {
	s.t.Helper()
	var tarBytes []byte
	for {
		f, ok := s.next(id)
		switch {
		case !ok:
			s.t.Fatalf("stdout ended before the tarEnd frame of id %d", id)
		case f.kind == FrameTarEnd:
			return tarBytes
		case f.kind != FrameTar:
			s.t.Fatalf("a frame of kind %d (%q) among the tar frames of id %d", f.kind, f.payload, id)
		}
		tarBytes = append(tarBytes, f.payload...)
	}
}

// rest reads id's frames left until stdout ends.
func (s *served) rest(id uint32) []frame {
	s.t.Helper()
	var frames []frame
	for f, ok := s.next(id); ok; f, ok = s.next(id) {
		frames = append(frames, f)
	}
	return frames
}

// all is every frame so far, in the order they came.
func (s *served) all() []muxFrame {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]muxFrame(nil), s.frames...)
}

// wait returns the agent's exit code once it exits; it fails the test if it was killed by a signal.
func (s *served) wait() int {
	s.t.Helper()
	select {
	case <-s.exited:
	case <-time.After(waitLimit):
		s.t.Fatalf("the agent did not exit within %v", waitLimit)
	}
	if ws := s.cmd.ProcessState.Sys().(syscall.WaitStatus); ws.Signaled() {
		s.t.Fatalf("the agent was killed by %v", ws.Signal())
	}
	return s.cmd.ProcessState.ExitCode()
}

// empty fails the test if the agent's TMPDIR holds anything.
func (s *served) empty() {
	s.t.Helper()
	if entries, _ := os.ReadDir(s.tmpdir); len(entries) != 0 {
		s.t.Fatalf("left in TMPDIR: %v", entries)
	}
}

// shape names an id's frames in order, a run of output (stdout and stderr, whose
// order the pipes do not keep) or tar frames once: `started output exit tar tarEnd cleaned`.
func shape(frames []frame) string {
	var names []string
	for _, f := range frames {
		var name string
		switch f.kind {
		case FrameStdout, FrameStderr:
			name = "output"
		case FrameTar:
			name = "tar"
		case FrameTarEnd:
			name = "tarEnd"
		case FrameEvent:
			var event struct{ Type string }
			_ = json.Unmarshal(f.payload, &event)
			name = event.Type
		default:
			name = fmt.Sprintf("kind%d", f.kind)
		}
		if len(names) > 0 && names[len(names)-1] == name && (name == "output" || name == "tar") {
			continue
		}
		names = append(names, name)
	}
	return strings.Join(names, " ")
}

// framesOf is the frames of id among frames.
func framesOf(frames []muxFrame, id uint32) []frame {
	var out []frame
	for _, f := range frames {
		if f.id == id {
			out = append(out, f.frame)
		}
	}
	return out
}
