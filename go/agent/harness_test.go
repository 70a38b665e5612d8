package agent

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// agentBin is the remote-agent binary that TestMain builds for the tests that run it.
var agentBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "remote-agent-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	agentBin = filepath.Join(dir, "remote-agent")
	// Readable by all: a test runs the agent as an unprivileged user.
	if err := os.Chmod(dir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	build := exec.Command("go", "build", "-o", agentBin, "../cmd/remote-agent")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "cannot build remote-agent: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// waitLimit bounds every wait of a test, so a hang fails it.
const waitLimit = 15 * time.Second

// frame is one decoded frame of the agent's stdout.
type frame struct {
	kind    FrameKind
	payload []byte
}

// session is one `remote-agent run` process with its stdout decoded into frames.
type session struct {
	t      *testing.T
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stdout *os.File
	stderr lockedBuffer
	tmpdir string

	mu     sync.Mutex
	frames []frame
	eof    bool
	more   chan struct{}
	read   int

	exited chan struct{}
}

// startAgent runs the agent with TMPDIR set to a fresh dir and PATH as given (unset when empty).
func startAgent(t *testing.T, path string) *session {
	t.Helper()
	return startAgentAs(t, path, nil)
}

// startAgentAs is startAgent with the agent running as the user cred names (nil: this process's user).
func startAgentAs(t *testing.T, path string, cred *syscall.Credential) *session {
	t.Helper()
	s := &session{t: t, tmpdir: t.TempDir(), more: make(chan struct{}, 1), exited: make(chan struct{})}
	s.cmd = exec.Command(agentBin, "run")
	if cred != nil {
		s.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		for _, dir := range []string{filepath.Dir(s.tmpdir), s.tmpdir} {
			if err := os.Chmod(dir, 0o777); err != nil {
				t.Fatal(err)
			}
		}
	}
	s.cmd.Env = []string{"TMPDIR=" + s.tmpdir}
	if path != "" {
		s.cmd.Env = append(s.cmd.Env, "PATH="+path)
	}
	s.stdin, s.stdout = startPiped(t, s.cmd, &s.stderr, s.exited)
	go s.readFrames()
	t.Cleanup(s.stop)
	return s
}

// startJob starts the agent and sends it a job running command with args, env and grace.
func startJob(t *testing.T, env map[string]string, graceMs int, command string, args ...string) *session {
	t.Helper()
	s := startAgent(t, os.Getenv("PATH"))
	s.send(jobLine(command, args, env, graceMs))
	return s
}

// sh starts the agent on a job running script with /bin/sh.
func sh(t *testing.T, script string) *session {
	t.Helper()
	return startJob(t, map[string]string{}, 1000, "/bin/sh", "-c", script)
}

// jobLine is a valid job line.
func jobLine(command string, args []string, env map[string]string, graceMs int) string {
	if args == nil {
		args = []string{}
	}
	line, _ := json.Marshal(map[string]any{"version": 1, "command": command, "args": args, "env": env, "graceMs": graceMs})
	return string(line)
}

// stop ends an agent a test left running, the way a controller that goes away would, and waits for it.
func (s *session) stop() {
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
func (s *session) send(line string) {
	s.t.Helper()
	if _, err := io.WriteString(s.stdin, line+"\n"); err != nil {
		s.t.Fatalf("cannot write to the agent: %v", err)
	}
}

func (s *session) readFrames() {
	defer func() {
		s.mu.Lock()
		s.eof = true
		s.mu.Unlock()
		s.notify()
	}()
	header := make([]byte, frameHeader)
	for {
		if _, err := io.ReadFull(s.stdout, header); err != nil {
			return
		}
		payload := make([]byte, binary.BigEndian.Uint32(header[1:]))
		if _, err := io.ReadFull(s.stdout, payload); err != nil {
			return
		}
		s.mu.Lock()
		s.frames = append(s.frames, frame{FrameKind(header[0]), payload})
		s.mu.Unlock()
		s.notify()
	}
}

func (s *session) notify() {
	select {
	case s.more <- struct{}{}:
	default:
	}
}

// next returns the next frame; false at the end of stdout. It fails the test after waitLimit.
func (s *session) next() (frame, bool) {
	s.t.Helper()
	deadline := time.NewTimer(waitLimit)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		if s.read < len(s.frames) {
			f := s.frames[s.read]
			s.read++
			s.mu.Unlock()
			return f, true
		}
		eof := s.eof
		s.mu.Unlock()
		if eof {
			return frame{}, false
		}
		select {
		case <-s.more:
		case <-deadline.C:
			s.t.Fatalf("no frame within %v; stderr: %s", waitLimit, s.stderr.String())
		}
	}
}

// event reads frames up to the next event of type typ, returning it and the frames before it.
func (s *session) event(typ string) (map[string]any, []frame) {
	s.t.Helper()
	var before []frame
	for {
		f, ok := s.next()
		if !ok {
			s.t.Fatalf("stdout ended before a %q event; frames: %v; stderr: %s", typ, describe(before), s.stderr.String())
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

// rawEvent reads frames up to the next event of type typ and returns its payload.
func (s *session) rawEvent(typ string) string {
	s.t.Helper()
	s.event(typ)
	return s.last()
}

// before reads frames up to the next event of type typ and returns the frames before it.
func (s *session) before(typ string) []frame {
	s.t.Helper()
	_, frames := s.event(typ)
	return frames
}

// last is the payload of the frame read last.
func (s *session) last() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return string(s.frames[s.read-1].payload)
}

// rest reads the frames left until stdout ends.
func (s *session) rest() []frame {
	s.t.Helper()
	var frames []frame
	for f, ok := s.next(); ok; f, ok = s.next() {
		frames = append(frames, f)
	}
	return frames
}

// wait returns the agent's exit code once it exits; it fails the test if it was killed by a signal.
func (s *session) wait() int {
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

// describe lists frames as kind and payload, for messages.
func describe(frames []frame) string {
	var b bytes.Buffer
	for _, f := range frames {
		payload := f.payload
		if f.kind == FrameTar {
			payload = []byte(fmt.Sprintf("%d bytes", len(f.payload)))
		}
		fmt.Fprintf(&b, "[%d %q] ", f.kind, payload)
	}
	return b.String()
}

// joined is the payloads of the frames of kind, concatenated.
func joined(frames []frame, kind FrameKind) string {
	var b bytes.Buffer
	for _, f := range frames {
		if f.kind == kind {
			b.Write(f.payload)
		}
	}
	return b.String()
}

// gone waits until pid no longer exists (reaped, not a zombie) and fails the test if it still does after waitLimit.
func gone(t *testing.T, pid int, what string) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		err := syscall.Kill(pid, 0)
		if errors.Is(err, syscall.ESRCH) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s (pid %d) still exists after %v", what, pid, waitLimit)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// missing fails the test if path exists.
func missing(t *testing.T, path string) {
	t.Helper()
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("%s still exists (lstat: %v)", path, err)
	}
}

// pidOf is an event's pid field.
func pidOf(event map[string]any) int { return int(event["pid"].(float64)) }

// startPiped starts an agent's cmd with its stdin and stdout piped and its stderr
// into stderr; exited is closed once the process has been waited for.
func startPiped(t *testing.T, cmd *exec.Cmd, stderr io.Writer, exited chan struct{}) (io.WriteCloser, *os.File) {
	t.Helper()
	cmd.Stderr = stderr
	cmd.WaitDelay = waitLimit
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = w
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	return stdin, r
}

// lockedBuffer is a bytes.Buffer that the process's stderr copier and the test may use at once.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
