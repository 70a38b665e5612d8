package runner

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// runnerBin is the remote-runner binary that TestMain builds; testBin is this test binary,
// which is also the app of exec events and the controller the runner starts.
var runnerBin, testBin string

// The names under which this test binary plays another program (see TestMain).
const (
	placedAppName     = "placed-app"
	fakeControllerArg = "fake-controller"
)

func TestMain(m *testing.M) {
	switch {
	case filepath.Base(os.Args[0]) == placedAppName:
		os.Exit(placedApp())
	case len(os.Args) > 1 && os.Args[1] == fakeControllerArg:
		os.Exit(fakeController(os.Args[2:]))
	}
	dir, err := os.MkdirTemp("", "remote-runner-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	runnerBin = filepath.Join(dir, "remote-runner")
	// Built as scripts/build and nix/runner-client.nix build it, so the memory test measures what ships.
	build := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", runnerBin, "../cmd/remote-runner")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "cannot build remote-runner: %v\n%s", err, out)
		os.Exit(1)
	}
	if testBin, err = os.Executable(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// waitLimit bounds every wait of a test, so a hang fails it.
const waitLimit = 15 * time.Second

// placedApp is the app of an exec event: it prints its pid, argv and environment as JSON and exits 5.
func placedApp() int {
	_ = json.NewEncoder(os.Stdout).Encode(map[string]any{"pid": os.Getpid(), "argv": os.Args, "env": os.Environ()})
	return 5
}

// started is what a fake controller process records about itself when it starts.
type started struct {
	Pid           int      `json:"pid"`
	SessionLeader bool     `json:"sessionLeader"`
	StdinDevNull  bool     `json:"stdinDevNull"`
	Args          []string `json:"args"`
	Mark          string   `json:"mark"`
}

// fakeController is the controller a runner starts: `fake-controller <mode> <record file> --socket <path>`.
// It appends a `started` line to the record file, then in mode serve answers
// every hello with a stdout frame naming its pid and exit 0 (and ends after 5 s
// without an instance); in mode silent it never listens; in mode fail it exits 3.
func fakeController(args []string) int {
	if len(args) != 4 || args[2] != "--socket" {
		fmt.Fprintf(os.Stderr, "fake-controller: unexpected arguments %q\n", args)
		return 2
	}
	mode, record, socket := args[0], args[1], args[3]
	sid, _, _ := syscall.RawSyscall(syscall.SYS_GETSID, 0, 0, 0)
	stdin, _ := os.Stdin.Stat()
	null, _ := os.Stat(os.DevNull)
	line, _ := json.Marshal(started{Pid: os.Getpid(), SessionLeader: int(sid) == os.Getpid(), StdinDevNull: stdin != nil && null != nil && os.SameFile(stdin, null), Args: os.Args, Mark: os.Getenv("RUNNER_TEST_MARK")})
	file, err := os.OpenFile(record, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	_, _ = file.Write(append(line, '\n'))
	file.Close()
	fmt.Println("fake controller", os.Getpid(), "in mode", mode)
	switch mode {
	case "fail":
		fmt.Fprintln(os.Stderr, "cannot start: no config (a test)")
		return 3
	case "silent":
		fmt.Fprintln(os.Stderr, "cannot listen yet (a test)")
		time.Sleep(time.Minute)
		return 1
	}
	ln, err := net.Listen("unix", socket)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Fprintln(os.Stderr, "listening on", socket)
	for {
		_ = ln.(*net.UnixListener).SetDeadline(time.Now().Add(5 * time.Second))
		conn, err := ln.Accept()
		if err != nil {
			ln.Close()
			return 0
		}
		go func() {
			defer conn.Close()
			if _, err := bufio.NewReader(conn).ReadBytes('\n'); err != nil {
				return
			}
			_, _ = conn.Write(frameOf(frameStdout, []byte(fmt.Sprintf("served by %d\n", os.Getpid()))))
			_, _ = conn.Write(frameOf(frameEvent, []byte(`{"type":"exit","status":0}`)))
		}()
	}
}

// frameOf is one frame of the controller's wire.
func frameOf(kind byte, payload []byte) []byte {
	frame := make([]byte, frameHeader, frameHeader+len(payload))
	frame[0] = kind
	binary.BigEndian.PutUint32(frame[1:], uint32(len(payload)))
	return append(frame, payload...)
}

// testRun is one run id with its own socket path, removed at the end of the test.
type testRun struct {
	t      *testing.T
	id     string
	socket string
	// record is the file fake controller processes append their `started` lines to.
	record string
}

// newRun makes a run id no other test uses.
func newRun(t *testing.T) *testRun {
	t.Helper()
	id := fmt.Sprintf("%s-%d-%d", t.Name(), os.Getpid(), time.Now().UnixNano())
	r := &testRun{t: t, id: id, socket: SocketPath(os.Getuid(), id), record: filepath.Join(t.TempDir(), "started")}
	t.Cleanup(func() {
		for _, s := range r.controllers() {
			_ = syscall.Kill(s.Pid, syscall.SIGKILL)
		}
		for _, suffix := range []string{"", ".lock", ".log"} {
			_ = os.Remove(r.socket + suffix)
		}
	})
	return r
}

// controllers are the fake controller processes started for the run so far.
func (r *testRun) controllers() []started {
	data, _ := os.ReadFile(r.record)
	var all []started
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var s started
		if json.Unmarshal([]byte(line), &s) == nil {
			all = append(all, s)
		}
	}
	return all
}

// controllerArg is a --controller command line that starts this test binary as a fake controller in mode.
func (r *testRun) controllerArg(mode string) string {
	return strings.Join([]string{testBin, fakeControllerArg, mode, r.record}, " ")
}

// env is the environment a runner of the run starts with, plus extra entries.
func (r *testRun) env(extra ...string) []string {
	return append([]string{"TEST_RUN=" + r.id, "PATH=" + os.Getenv("PATH"), "TEST_PLAN=runner-test"}, extra...)
}

// client is one remote-runner process.
type client struct {
	t      *testing.T
	cmd    *exec.Cmd
	stdout lockedBuffer
	stderr lockedBuffer
	exited chan struct{}
}

// start runs remote-runner with env and args in dir (this dir when empty), its stdout and stderr kept by the client.
func (r *testRun) start(env []string, dir string, args ...string) *client {
	r.t.Helper()
	c := r.command(env, args...)
	c.cmd.Dir = dir
	c.cmd.Stdout = &c.stdout
	c.cmd.Stderr = &c.stderr
	c.run()
	return c
}

// command prepares remote-runner with env and args, for a test that sets its stdout and stderr itself.
func (r *testRun) command(env []string, args ...string) *client {
	c := &client{t: r.t, exited: make(chan struct{})}
	c.cmd = exec.Command(runnerBin, args...)
	c.cmd.Env = env
	c.cmd.WaitDelay = waitLimit
	return c
}

// run starts the prepared runner; it is killed at the end of the test if it still runs.
func (c *client) run() {
	c.t.Helper()
	if err := c.cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	go func() {
		_ = c.cmd.Wait()
		close(c.exited)
	}()
	c.t.Cleanup(func() {
		_ = c.cmd.Process.Kill()
		<-c.exited
	})
}

// wait returns the runner's exit code (-1 when a signal ended it), within waitLimit.
func (c *client) wait() int {
	c.t.Helper()
	return c.waitWithin(waitLimit)
}

// waitWithin is wait with another bound.
func (c *client) waitWithin(limit time.Duration) int {
	c.t.Helper()
	select {
	case <-c.exited:
		return c.cmd.ProcessState.ExitCode()
	case <-time.After(limit):
		_ = c.cmd.Process.Kill()
		<-c.exited
		c.t.Fatalf("remote-runner did not exit within %s; stdout %q, stderr %q", limit, c.stdout.String(), c.stderr.String())
		return 0
	}
}

// signal sends sig to the runner.
func (c *client) signal(sig syscall.Signal) {
	c.t.Helper()
	if err := c.cmd.Process.Signal(sig); err != nil {
		c.t.Fatal(err)
	}
}

// fake is a controller served by the test itself, on the run's socket.
type fake struct {
	t     *testing.T
	ln    *net.UnixListener
	conns chan net.Conn
}

// listen serves the run's socket from the test.
func (r *testRun) listen() *fake {
	r.t.Helper()
	if err := privateDir(filepath.Dir(r.socket)); err != nil {
		r.t.Fatal(err)
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: r.socket, Net: "unix"})
	if err != nil {
		r.t.Fatal(err)
	}
	f := &fake{t: r.t, ln: ln, conns: make(chan net.Conn, 16)}
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			f.conns <- conn
		}
	}()
	r.t.Cleanup(func() { ln.Close() })
	return f
}

// peer is one runner connected to the fake controller.
type peer struct {
	t     *testing.T
	conn  net.Conn
	lines *bufio.Reader
}

// accept waits for the next runner to connect.
func (f *fake) accept() *peer {
	f.t.Helper()
	select {
	case conn := <-f.conns:
		f.t.Cleanup(func() { conn.Close() })
		return &peer{t: f.t, conn: conn, lines: bufio.NewReader(conn)}
	case <-time.After(waitLimit):
		f.t.Fatal("no runner connected")
		return nil
	}
}

// line reads the next JSON line from the runner, within limit.
func (p *peer) lineWithin(limit time.Duration) (map[string]any, error) {
	_ = p.conn.SetReadDeadline(time.Now().Add(limit))
	raw, err := p.lines.ReadBytes('\n')
	if err != nil {
		return nil, err
	}
	var msg map[string]any
	if err := json.Unmarshal(raw, &msg); err != nil {
		return nil, fmt.Errorf("%w: %q", err, raw)
	}
	return msg, nil
}

// line reads the next JSON line from the runner.
func (p *peer) line() map[string]any {
	p.t.Helper()
	msg, err := p.lineWithin(waitLimit)
	if err != nil {
		p.t.Fatal(err)
	}
	return msg
}

// hello reads the hello line.
func (p *peer) hello() map[string]any {
	p.t.Helper()
	msg := p.line()
	if msg["op"] != "hello" {
		p.t.Fatalf("first line: %v", msg)
	}
	return msg
}

// send writes raw bytes to the runner.
func (p *peer) send(raw []byte) {
	p.t.Helper()
	_ = p.conn.SetWriteDeadline(time.Now().Add(waitLimit))
	if _, err := p.conn.Write(raw); err != nil {
		p.t.Fatal(err)
	}
}

// event sends an event frame.
func (p *peer) event(ev string) { p.send(frameOf(frameEvent, []byte(ev))) }

// lockedBuffer is a bytes.Buffer that a process's output copier and the test may use at once.
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

// Bytes is a copy of what was written.
func (b *lockedBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Clone(b.buf.Bytes())
}

// itoa is strconv.Itoa, short.
func itoa(n int) string { return strconv.Itoa(n) }
