package agent

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestFramesTheAppsOutputThenItsExitThenItsOutputsThenCleanedAfterDone(t *testing.T) {
	t.Parallel()
	s := sh(t, `printf 'one\n'; printf 'err\n' >&2; printf 'two\n'; exit 3`)
	started, before := s.event("started")
	if len(before) != 0 {
		t.Fatalf("frames before the started event: %s", describe(before))
	}
	workdir := started["workdir"].(string)
	if filepath.Dir(workdir) != s.tmpdir || !strings.HasPrefix(filepath.Base(workdir), "remote-runner-") {
		t.Fatalf("workdir %q is not $TMPDIR/remote-runner-*", workdir)
	}
	output := s.before("exit")
	if got := joined(output, FrameStdout); got != "one\ntwo\n" {
		t.Fatalf("stdout %q, want %q", got, "one\ntwo\n")
	}
	if got := joined(output, FrameStderr); got != "err\n" {
		t.Fatalf("stderr %q, want %q", got, "err\n")
	}
	if raw := s.last(); raw != `{"type":"exit","status":3,"code":3,"signal":null}` {
		t.Fatalf("exit event %s", raw)
	}
	var tarBytes []byte
	for {
		f, ok := s.next()
		if !ok {
			t.Fatal("stdout ended before the tarEnd frame")
		}
		if f.kind == FrameTarEnd {
			if len(f.payload) != 0 {
				t.Fatalf("tarEnd frame with %d bytes", len(f.payload))
			}
			break
		}
		if f.kind != FrameTar {
			t.Fatalf("a frame of kind %d among the tar frames", f.kind)
		}
		tarBytes = append(tarBytes, f.payload...)
	}
	if entries := tarEntries(t, tarBytes); len(entries) != 0 {
		t.Fatalf("outputs of an app that wrote none: %v", entries)
	}
	if _, err := os.Stat(workdir); err != nil {
		t.Fatalf("the work dir is gone before done: %v", err)
	}
	s.send(`{"op":"done"}`)
	if raw := s.rawEvent("cleaned"); raw != fmt.Sprintf(`{"type":"cleaned","workdir":%q}`, workdir) {
		t.Fatalf("cleaned event %s", raw)
	}
	if rest := s.rest(); len(rest) != 0 {
		t.Fatalf("frames after cleaned: %s", describe(rest))
	}
	if code := s.wait(); code != 0 {
		t.Fatalf("agent exited %d, want 0", code)
	}
	missing(t, workdir)
}

func TestReportsAnAppKilledByASignalAs128PlusItsNumberWithTheSignalsName(t *testing.T) {
	t.Parallel()
	s := sh(t, `kill -USR1 $$`)
	want := fmt.Sprintf(`{"type":"exit","status":%d,"code":null,"signal":"SIGUSR1"}`, 128+int(syscall.SIGUSR1))
	if raw := s.rawEvent("exit"); raw != want {
		t.Fatalf("exit event %s, want %s", raw, want)
	}
}

func TestLeavesSigpipeToTheAppAsUsualThoughTheAgentCatchesIt(t *testing.T) {
	t.Parallel()
	s := sh(t, `kill -PIPE $$; echo survived`)
	want := fmt.Sprintf(`{"type":"exit","status":%d,"code":null,"signal":"SIGPIPE"}`, 128+int(syscall.SIGPIPE))
	if raw := s.rawEvent("exit"); raw != want {
		t.Fatalf("exit event %s, want %s", raw, want)
	}
}

func TestTermSendsSigtermToTheAppsProcessGroup(t *testing.T) {
	t.Parallel()
	s := sh(t, `sleep 60 & echo $!; wait`)
	s.event("started")
	child := firstPid(t, s)
	s.send(`{"op":"term"}`)
	if raw := s.rawEvent("exit"); raw != `{"type":"exit","status":143,"code":null,"signal":"SIGTERM"}` {
		t.Fatalf("exit event %s", raw)
	}
	gone(t, child, "the app's child in its group")
}

func TestTermKillsAnAppThatIgnoresItAfterTheGracePeriod(t *testing.T) {
	t.Parallel()
	s := startJob(t, map[string]string{}, 500, "/bin/sh", "-c", `trap '' TERM; echo ready; while :; do sleep 0.05; done`)
	s.event("started")
	firstLine(t, s)
	sent := time.Now()
	s.send(`{"op":"term"}`)
	raw := s.rawEvent("exit")
	took := time.Since(sent)
	if raw != `{"type":"exit","status":137,"code":null,"signal":"SIGKILL"}` {
		t.Fatalf("exit event %s", raw)
	}
	if took < 450*time.Millisecond || took > 5*time.Second {
		t.Fatalf("killed %v after term, want about the 500 ms grace", took)
	}
}

func TestStopsTheAppWithItsGracePeriodWhenDoneComesBeforeItExited(t *testing.T) {
	t.Parallel()
	s := sh(t, `echo ready; exec sleep 60`)
	started, _ := s.event("started")
	firstLine(t, s)
	s.send(`{"op":"done"}`)
	if raw := s.rawEvent("exit"); raw != `{"type":"exit","status":143,"code":null,"signal":"SIGTERM"}` {
		t.Fatalf("exit event %s", raw)
	}
	s.event("cleaned")
	if code := s.wait(); code != 0 {
		t.Fatalf("agent exited %d, want 0", code)
	}
	missing(t, started["workdir"].(string))
}

func TestStopsTheAppAndRemovesTheWorkDirWhenStdinEndsBeforeDone(t *testing.T) {
	t.Parallel()
	s := sh(t, `echo ready; exec sleep 60`)
	started, _ := s.event("started")
	firstLine(t, s)
	s.stdin.Close()
	if code := s.wait(); code != 1 {
		t.Fatalf("agent exited %d, want 1", code)
	}
	gone(t, pidOf(started), "the app")
	missing(t, started["workdir"].(string))
	for _, f := range s.rest() {
		if f.kind == FrameEvent && strings.Contains(string(f.payload), `"cleaned"`) {
			t.Fatal("cleaned was sent without done")
		}
	}
}

func TestKillsAnAppThatIgnoresTermTwoSecondsAfterStdinEnded(t *testing.T) {
	t.Parallel()
	s := sh(t, `trap '' TERM; echo ready; while :; do sleep 0.05; done`)
	started, _ := s.event("started")
	firstLine(t, s)
	closed := time.Now()
	s.stdin.Close()
	code := s.wait()
	took := time.Since(closed)
	if code != 1 {
		t.Fatalf("agent exited %d, want 1", code)
	}
	if took < 1900*time.Millisecond || took > 8*time.Second {
		t.Fatalf("agent exited %v after stdin ended, want about 2 s", took)
	}
	gone(t, pidOf(started), "the app")
	missing(t, started["workdir"].(string))
}

func TestStopsTheAppAndRemovesTheWorkDirWhenTheAgentGetsSigterm(t *testing.T) {
	t.Parallel()
	s := sh(t, `echo ready; exec sleep 60`)
	started, _ := s.event("started")
	firstLine(t, s)
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	if code := s.wait(); code != 1 {
		t.Fatalf("agent exited %d, want 1", code)
	}
	gone(t, pidOf(started), "the app")
	missing(t, started["workdir"].(string))
}

func TestReportsACommandThatCannotStartWithStatus127AndStillEndsTheRun(t *testing.T) {
	t.Parallel()
	s := startJob(t, map[string]string{}, 1000, "/nonexistent/app")
	failed, before := s.event("error")
	if len(before) != 0 {
		t.Fatalf("frames before the error event: %s", describe(before))
	}
	if msg := failed["message"]; msg != "cannot start /nonexistent/app: no such file or directory" {
		t.Fatalf("error message %q", msg)
	}
	if raw := s.rawEvent("exit"); raw != `{"type":"exit","status":127,"code":127,"signal":null}` {
		t.Fatalf("exit event %s", raw)
	}
	f, _ := s.next()
	for f.kind == FrameTar {
		f, _ = s.next()
	}
	if f.kind != FrameTarEnd {
		t.Fatalf("frame of kind %d after the exit event, want tar frames then tarEnd", f.kind)
	}
	s.send(`{"op":"done"}`)
	s.event("cleaned")
	if code := s.wait(); code != 0 {
		t.Fatalf("agent exited %d, want 0", code)
	}
	if entries, _ := os.ReadDir(s.tmpdir); len(entries) != 0 {
		t.Fatalf("left in TMPDIR: %v", entries)
	}
}

func TestGivesTheAppExactlyTheJobsEnvironmentWithPathAndItsTwoDirs(t *testing.T) {
	t.Parallel()
	for _, path := range []string{"/custom/bin:/usr/bin:/bin", ""} {
		s := startAgent(t, path)
		env := map[string]string{"A": "1", "SPACED": "x y 'z' $(echo no)", "UNICODE": "ünï 名前", "PATH": "/from/the/job", "TEST_TEMP_PATH": "/from/the/job"}
		s.send(jobLine("/usr/bin/env", nil, env, 0))
		started, _ := s.event("started")
		_, output := s.event("exit")
		workdir := started["workdir"].(string)
		wantPath := path
		if path == "" {
			wantPath = "/usr/bin:/bin"
		}
		want := []string{
			"A=1", "PATH=" + wantPath, "SPACED=x y 'z' $(echo no)",
			"TEST_OUTPUTS_PATH=" + filepath.Join(workdir, "outputs"), "TEST_TEMP_PATH=" + filepath.Join(workdir, "temp"), "UNICODE=ünï 名前",
		}
		got := strings.Split(strings.TrimSuffix(joined(output, FrameStdout), "\n"), "\n")
		sort.Strings(got)
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Fatalf("app environment with agent PATH %q (%s):\n%s\nwant:\n%s", path, describe(output), strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}
}

func TestRunsTheAppInItsTempDirWithStdinFromDevNull(t *testing.T) {
	t.Parallel()
	s := sh(t, `pwd; cat; echo "after cat"`)
	started, _ := s.event("started")
	_, output := s.event("exit")
	want := filepath.Join(started["workdir"].(string), "temp") + "\nafter cat\n"
	if got := joined(output, FrameStdout); got != want {
		t.Fatalf("stdout %q, want %q", got, want)
	}
}

func TestRefusesAnInvalidJobLineWithOneLineOnStderr(t *testing.T) {
	t.Parallel()
	cases := []struct{ line, want string }{
		{`not json`, "invalid character"},
		{``, "unexpected end of JSON input"},
		{`[1]`, "expected a JSON object, got array"},
		{`null`, "expected a JSON object, got null"},
		{`{"version":1,"command":"/bin/true","args":[],"env":{},"graceMs":0,"extra":1}`, `unknown field "extra"`},
		{`{"version":2,"command":"/bin/true","args":[],"env":{},"graceMs":0}`, "version: expected 1, got 2"},
		{`{"version":1,"command":"bin/true","args":[],"env":{},"graceMs":0}`, `command: expected an absolute path, got "bin/true"`},
		{`{"version":1,"command":"/bin/true","env":{},"graceMs":0}`, `missing field "args"`},
		{`{"version":1,"command":"/bin/true","args":[1],"env":{},"graceMs":0}`, "args[0]: expected a string, got 1"},
		{`{"version":1,"command":"/bin/true","args":[],"env":{"A":null},"graceMs":0}`, `env["A"]: expected a string, got null`},
		{`{"version":1,"command":"/bin/true","args":[],"env":{},"graceMs":1.5}`, "graceMs: expected an integer, got 1.5"},
		{`{"version":1,"command":"/bin/true","args":[],"env":{},"graceMs":600001}`, "graceMs: expected an integer from 0 to 600000, got 600001"},
	}
	for _, c := range cases {
		s := startAgent(t, "")
		s.send(c.line)
		if code := s.wait(); code == 0 {
			t.Fatalf("job line %q: agent exited 0", c.line)
		}
		stderr := s.stderr.String()
		if !strings.HasPrefix(stderr, "remote-agent: invalid job line: ") || !strings.Contains(stderr, c.want) || strings.Count(stderr, "\n") != 1 || !strings.HasSuffix(stderr, "\n") {
			t.Fatalf("job line %q: stderr %q, want one line with %q", c.line, stderr, c.want)
		}
		if rest := s.rest(); len(rest) != 0 {
			t.Fatalf("job line %q: frames %s", c.line, describe(rest))
		}
		if entries, _ := os.ReadDir(s.tmpdir); len(entries) != 0 {
			t.Fatalf("job line %q: left in TMPDIR: %v", c.line, entries)
		}
	}
}

func TestSaysWhenStdinEndsBeforeTheJobLine(t *testing.T) {
	t.Parallel()
	s := startAgent(t, "")
	s.stdin.Close()
	if code := s.wait(); code != 1 {
		t.Fatalf("agent exited %d, want 1", code)
	}
	if got := s.stderr.String(); got != "remote-agent: stdin ended before the job line\n" {
		t.Fatalf("stderr %q", got)
	}
}

func TestIgnoresControlLinesItDoesNotKnow(t *testing.T) {
	t.Parallel()
	s := sh(t, `echo ready; read -r never </dev/null; sleep 0.5; exit 4`)
	s.event("started")
	for _, line := range []string{`not json`, `{"op":"stop"}`, `[]`, `null`, `{"op":1}`, ``} {
		s.send(line)
	}
	if raw := s.rawEvent("exit"); raw != `{"type":"exit","status":4,"code":4,"signal":null}` {
		t.Fatalf("exit event %s", raw)
	}
}

func TestPacksFilesDirsAndSymlinksButNotFifosIntoTheOutputsTar(t *testing.T) {
	t.Parallel()
	s := sh(t, `cd "$TEST_OUTPUTS_PATH" && printf a > a.txt && chmod 750 a.txt && mkdir sub && printf bb > sub/b.txt &&
ln -s a.txt link && ln -s /etc/passwd abs-link && mkfifo pipe && mkfifo sub/pipe`)
	s.event("exit")
	var tarBytes []byte
	for f, _ := s.next(); f.kind == FrameTar; f, _ = s.next() {
		tarBytes = append(tarBytes, f.payload...)
	}
	got := tarEntries(t, tarBytes)
	want := []string{"file a.txt 750 a", "symlink abs-link -> /etc/passwd", "symlink link -> a.txt", "dir sub/", "file sub/b.txt 644 bb"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("outputs tar:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestCleansUpAndExits1WhenItsStdoutIsClosed(t *testing.T) {
	t.Parallel()
	s := sh(t, `while :; do echo tick; sleep 0.02; done`)
	started, _ := s.event("started")
	s.stdout.Close()
	if code := s.wait(); code != 1 {
		t.Fatalf("agent exited %d, want 1; stderr: %s", code, s.stderr.String())
	}
	gone(t, pidOf(started), "the app")
	missing(t, started["workdir"].(string))
}

// tarEntries lists a tar stream's entries as `kind name [mode contents | -> target]`.
func tarEntries(t *testing.T, data []byte) []string {
	t.Helper()
	var entries []string
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return entries
		}
		if err != nil {
			t.Fatalf("bad tar stream: %v", err)
		}
		switch h.Typeflag {
		case tar.TypeReg:
			body, _ := io.ReadAll(tr)
			entries = append(entries, fmt.Sprintf("file %s %o %s", h.Name, h.Mode, body))
		case tar.TypeDir:
			entries = append(entries, "dir "+h.Name)
		case tar.TypeSymlink:
			entries = append(entries, fmt.Sprintf("symlink %s -> %s", h.Name, h.Linkname))
		default:
			entries = append(entries, fmt.Sprintf("type %c %s", h.Typeflag, h.Name))
		}
	}
}

// firstLine reads stdout frames until the app printed its first line, and returns it.
func firstLine(t *testing.T, s *session) string {
	t.Helper()
	var out string
	for !strings.Contains(out, "\n") {
		f, ok := s.next()
		if !ok {
			t.Fatalf("stdout ended before the app's first line")
		}
		if f.kind == FrameStdout {
			out += string(f.payload)
		}
	}
	return strings.SplitN(out, "\n", 2)[0]
}

// firstPid reads the app's first line as a pid.
func firstPid(t *testing.T, s *session) int {
	t.Helper()
	line := firstLine(t, s)
	var pid int
	if _, err := fmt.Sscanf(line, "%d", &pid); err != nil {
		t.Fatalf("first line %q is not a pid", line)
	}
	return pid
}

func TestRemovesAWorkDirTheAppLeftUnreadableAndReportsWhatItCouldNotPack(t *testing.T) {
	t.Parallel()
	// Root reads and removes anything: the agent runs as nobody then.
	var cred *syscall.Credential
	if os.Getuid() == 0 {
		cred = &syscall.Credential{Uid: 65534, Gid: 65534}
	}
	s := startAgentAs(t, os.Getenv("PATH"), cred)
	s.send(jobLine("/bin/sh", []string{"-c", `cd "$TEST_OUTPUTS_PATH" && mkdir -p ro/sub && echo x > ro/sub/f && chmod 000 ro/sub && chmod 555 ro`}, map[string]string{}, 0))
	started, _ := s.event("started")
	workdir := started["workdir"].(string)
	failed, _ := s.event("error")
	if want := "outputs: cannot list " + filepath.Join(workdir, "outputs", "ro", "sub") + ": permission denied"; failed["message"] != want {
		t.Fatalf("error %q, want %q", failed["message"], want)
	}
	if f, _ := s.next(); f.kind != FrameTarEnd {
		t.Fatalf("frame of kind %d after the error event, want tarEnd", f.kind)
	}
	s.send(`{"op":"done"}`)
	s.event("cleaned")
	if code := s.wait(); code != 0 {
		t.Fatalf("agent exited %d, want 0", code)
	}
	missing(t, workdir)
}

func TestStartsTheAppUnderTheJobsArgv0(t *testing.T) {
	t.Parallel()
	s := startAgent(t, "")
	s.send(`{"version":1,"command":"/bin/sh","args":["-c","echo \"$0\""],"argv0":"remote-runner-placed:/bin/sh","env":{},"graceMs":0}` + "\n")
	_, output := s.event("exit")
	if got := joined(output, FrameStdout); got != "remote-runner-placed:/bin/sh\n" {
		t.Fatalf("argv[0] %q", got)
	}
}
