package agent

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestServeSaysReadyWithItsVersionAndPidBeforeReadingStdin(t *testing.T) {
	t.Parallel()
	s := startServe(t)
	want := fmt.Sprintf(`{"type":"ready","version":%q,"pid":%d}`, Version, s.cmd.Process.Pid)
	if raw := s.rawEvent(0, "ready"); raw != want {
		t.Fatalf("ready event %s, want %s", raw, want)
	}
	if first := s.all()[0]; first.id != 0 || first.kind != FrameEvent {
		t.Fatalf("first frame: id %d, kind %d", first.id, first.kind)
	}
	s.stdin.Close()
	if code := s.wait(); code != 1 {
		t.Fatalf("agent exited %d, want 1", code)
	}
}

func TestServeInterleavesTwoInstancesAndKeepsEachOnesFramesInOrder(t *testing.T) {
	t.Parallel()
	s := startServe(t)
	// The test lets each app print its next line only once it has the other's last one.
	gates := t.TempDir()
	waitFor := func(name string) string {
		return fmt.Sprintf(`while [ ! -e %q ]; do sleep 0.01; done; `, filepath.Join(gates, name))
	}
	open := func(name string) {
		if err := os.WriteFile(filepath.Join(gates, name), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s.sh(1, `echo a1; `+waitFor("a2")+`echo a2; echo a-err >&2; echo a-out > "$TEST_OUTPUTS_PATH/a.txt"; exit 1`)
	s.sh(2, waitFor("b1")+`echo b1; `+waitFor("b2")+`echo b2; echo b-out > "$TEST_OUTPUTS_PATH/b.txt"; exit 2`)
	line := func(id uint32, want string) {
		t.Helper()
		for {
			f, ok := s.next(id)
			if !ok {
				t.Fatalf("stdout ended before %q of id %d", want, id)
			}
			if f.kind == FrameStdout {
				if string(f.payload) != want+"\n" {
					t.Fatalf("id %d printed %q, want %q", id, f.payload, want+"\n")
				}
				return
			}
		}
	}
	line(1, "a1")
	open("b1")
	line(2, "b1")
	open("a2")
	line(1, "a2")
	open("b2")
	line(2, "b2")

	if raw := s.rawEvent(1, "exit"); raw != `{"type":"exit","status":1,"code":1,"signal":null}` {
		t.Fatalf("exit event of id 1: %s", raw)
	}
	if raw := s.rawEvent(2, "exit"); raw != `{"type":"exit","status":2,"code":2,"signal":null}` {
		t.Fatalf("exit event of id 2: %s", raw)
	}
	for id, want := range map[uint32]string{1: "file a.txt 644 a-out\n", 2: "file b.txt 644 b-out\n"} {
		if got := strings.Join(tarEntries(t, s.outputs(id)), "\n"); got != want {
			t.Fatalf("outputs of id %d: %q, want %q", id, got, want)
		}
	}
	s.op("done", 1)
	s.op("done", 2)
	s.event(1, "cleaned")
	s.event(2, "cleaned")

	var printed []string
	for _, f := range s.all() {
		if f.kind == FrameStdout {
			printed = append(printed, fmt.Sprintf("%d:%s", f.id, bytes.TrimSpace(f.payload)))
		}
	}
	if got, want := strings.Join(printed, " "), "1:a1 2:b1 1:a2 2:b2"; got != want {
		t.Fatalf("stdout frames in the order %s, want %s", got, want)
	}
	all := s.all()
	if got := joined(framesOf(all, 1), FrameStderr); got != "a-err\n" {
		t.Fatalf("stderr of id 1: %q", got)
	}
	if got, want := shape(framesOf(all, 1)), "started output exit tar tarEnd cleaned"; got != want {
		t.Fatalf("frames of id 1: %s, want %s", got, want)
	}
	if got, want := shape(framesOf(all, 2)), "started output exit tar tarEnd cleaned"; got != want {
		t.Fatalf("frames of id 2: %s, want %s", got, want)
	}
	s.send(`{"op":"shutdown"}`)
	if code := s.wait(); code != 0 {
		t.Fatalf("agent exited %d, want 0", code)
	}
	s.empty()
}

func TestServeTermStopsOnlyThatInstance(t *testing.T) {
	t.Parallel()
	s := startServe(t)
	s.sh(1, `echo ready; exec sleep 60`)
	s.sh(2, `echo ready; exec sleep 60`)
	first, _ := s.event(1, "started")
	s.next(1)
	second, _ := s.event(2, "started")
	s.next(2)
	s.op("term", 99) // no such id: ignored
	s.op("term", 1)
	if raw := s.rawEvent(1, "exit"); raw != `{"type":"exit","status":143,"code":null,"signal":"SIGTERM"}` {
		t.Fatalf("exit event of id 1: %s", raw)
	}
	s.outputs(1)
	gone(t, pidOf(first), "the stopped app")
	if err := syscall.Kill(pidOf(second), 0); err != nil {
		t.Fatalf("the other app is gone: %v", err)
	}
	if got := shape(framesOf(s.all(), 2)); got != "started output" {
		t.Fatalf("frames of the other instance: %s", got)
	}
	s.op("term", 2)
	if raw := s.rawEvent(2, "exit"); raw != `{"type":"exit","status":143,"code":null,"signal":"SIGTERM"}` {
		t.Fatalf("exit event of id 2: %s", raw)
	}
}

func TestServeDoneBeforeExitStopsTheAppThenCleans(t *testing.T) {
	t.Parallel()
	s := startServe(t)
	s.sh(7, `echo ready; exec sleep 60`)
	started, _ := s.event(7, "started")
	if f, _ := s.next(7); f.kind != FrameStdout {
		t.Fatalf("frame of kind %d, want the app's ready line", f.kind)
	}
	s.op("done", 7)
	if raw := s.rawEvent(7, "exit"); raw != `{"type":"exit","status":143,"code":null,"signal":"SIGTERM"}` {
		t.Fatalf("exit event %s", raw)
	}
	s.outputs(7)
	workdir := started["workdir"].(string)
	if raw := s.rawEvent(7, "cleaned"); raw != fmt.Sprintf(`{"type":"cleaned","workdir":%q}`, workdir) {
		t.Fatalf("cleaned event %s", raw)
	}
	gone(t, pidOf(started), "the app")
	missing(t, workdir)
}

func TestServeRefusesADuplicateIdAndAnInvalidJobWithAnErrorExit127AndTarEnd(t *testing.T) {
	t.Parallel()
	s := startServe(t)
	s.sh(1, `echo ready; exec sleep 60`)
	started, _ := s.event(1, "started")
	s.next(1) // the ready line
	s.sh(1, `echo second`)
	if failed, _ := s.event(1, "error"); failed["message"] != "id 1 is in use" {
		t.Fatalf("error %q", failed["message"])
	}
	if raw := s.rawEvent(1, "exit"); raw != `{"type":"exit","status":127,"code":127,"signal":null}` {
		t.Fatalf("exit event %s", raw)
	}
	if f, _ := s.next(1); f.kind != FrameTarEnd || len(f.payload) != 0 {
		t.Fatalf("frame of kind %d after the exit event, want an empty tarEnd", f.kind)
	}
	if err := syscall.Kill(pidOf(started), 0); err != nil {
		t.Fatalf("the running instance 1 is gone after a duplicate start: %v", err)
	}

	cases := []struct {
		line, want string
	}{
		{`{"op":"start","id":2}`, `invalid job: missing field "job"`},
		{`{"op":"start","id":3,"job":null}`, "invalid job: expected a JSON object, got null"},
		{`{"op":"start","id":4,"job":{"version":1,"command":"bin/true","args":[],"env":{},"graceMs":0}}`, `invalid job: command: expected an absolute path, got "bin/true"`},
		{`{"op":"start","id":5,"job":{"version":1,"command":"/bin/true","args":[],"env":{},"graceMs":0,"x":1}}`, `invalid job: unknown field "x"`},
		{`{"op":"start","id":6,"job":{"version":1,"command":"/bin/true","args":[],"env":{"A":1},"graceMs":0}}`, `invalid job: env["A"]: expected a string, got 1`},
	}
	for i, c := range cases {
		id := uint32(i + 2)
		s.send(c.line)
		failed, before := s.event(id, "error")
		if len(before) != 0 || failed["message"] != c.want {
			t.Fatalf("%s: error %q after %s, want %q", c.line, failed["message"], describe(before), c.want)
		}
		if raw := s.rawEvent(id, "exit"); raw != `{"type":"exit","status":127,"code":127,"signal":null}` {
			t.Fatalf("%s: exit event %s", c.line, raw)
		}
		if f, _ := s.next(id); f.kind != FrameTarEnd || len(f.payload) != 0 {
			t.Fatalf("%s: frame of kind %d after the exit event, want an empty tarEnd", c.line, f.kind)
		}
		s.op("done", id)
		if raw := s.rawEvent(id, "cleaned"); raw != `{"type":"cleaned","workdir":""}` {
			t.Fatalf("%s: cleaned event %s", c.line, raw)
		}
	}

	s.op("term", 1)
	if raw := s.rawEvent(1, "exit"); raw != `{"type":"exit","status":143,"code":null,"signal":"SIGTERM"}` {
		t.Fatalf("exit event of the running instance %s", raw)
	}
	s.outputs(1)
	s.op("done", 1)
	s.event(1, "cleaned")
	s.send(`{"op":"shutdown"}`)
	if code := s.wait(); code != 0 {
		t.Fatalf("agent exited %d, want 0", code)
	}
	s.empty()
}

func TestServeIgnoresLinesItCannotReadAndOverlongOnes(t *testing.T) {
	t.Parallel()
	s := startServe(t)
	s.rawEvent(0, "ready")
	for _, line := range []string{
		`not json`, `[]`, `null`, ``, `{"op":"stop","id":1}`, `{"op":1}`,
		`{"op":"start","id":0,"job":{}}`, `{"op":"start","id":4294967296,"job":{}}`, `{"op":"start","id":-1,"job":{}}`,
		`{"op":"start","id":"1","job":{}}`, `{"op":"start","id":1.5,"job":{}}`, `{"op":"start","job":{}}`,
		`{"op":"term","id":99}`, `{"op":"done","id":99}`,
		`{"op":"start","id":1,"job":{"env":{"A":"` + strings.Repeat("x", maxLine) + `"}}}`,
	} {
		s.send(line)
	}
	s.sh(4294967295, `echo last`)
	s.event(4294967295, "exit")
	for _, f := range s.all() {
		if f.id != 0 && f.id != 4294967295 {
			t.Fatalf("a frame for id %d: %q", f.id, f.payload)
		}
	}
}

func TestServeShutdownStopsRunningInstancesWithoutTheirOutputsCleansEveryDirAndExits0(t *testing.T) {
	t.Parallel()
	s := startServe(t)
	s.sh(1, `echo finished > "$TEST_OUTPUTS_PATH/f"`)
	s.start(2, map[string]string{}, 300, "/bin/sh", "-c", `trap '' TERM; echo ready > "$TEST_OUTPUTS_PATH/r"; echo ready; while :; do sleep 0.05; done`)
	s.event(1, "exit")
	s.outputs(1)
	running, _ := s.event(2, "started")
	s.next(2) // the ready line
	s.send(`{"op":"shutdown"}`)
	s.stdin.Close() // stdin ending after a shutdown changes nothing
	if raw := s.rawEvent(2, "exit"); raw != `{"type":"exit","status":137,"code":null,"signal":"SIGKILL"}` {
		t.Fatalf("exit event of the running instance %s", raw)
	}
	if raw := s.rawEvent(2, "cleaned"); raw != fmt.Sprintf(`{"type":"cleaned","workdir":%q}`, running["workdir"]) {
		t.Fatalf("cleaned event %s", raw)
	}
	s.event(1, "cleaned")
	if code := s.wait(); code != 0 {
		t.Fatalf("agent exited %d, want 0; stderr: %s", code, s.stderr.String())
	}
	all := s.all()
	if got, want := shape(framesOf(all, 2)), "started output exit cleaned"; got != want {
		t.Fatalf("frames of the running instance: %s, want %s", got, want)
	}
	if got, want := shape(framesOf(all, 1)), "started exit tar tarEnd cleaned"; got != want {
		t.Fatalf("frames of the finished instance: %s, want %s", got, want)
	}
	gone(t, pidOf(running), "the running app")
	s.empty()
}

func TestServeCleansUpAndExits1WhenItsStdoutIsClosed(t *testing.T) {
	t.Parallel()
	s := startServe(t)
	s.sh(1, `while :; do echo tick; sleep 0.02; done`)
	s.sh(2, `echo ready; exec sleep 60`)
	first, _ := s.event(1, "started")
	second, _ := s.event(2, "started")
	s.stdout.Close()
	if code := s.wait(); code != 1 {
		t.Fatalf("agent exited %d, want 1; stderr: %s", code, s.stderr.String())
	}
	gone(t, pidOf(first), "the ticking app")
	gone(t, pidOf(second), "the sleeping app")
	s.empty()
}
