package runner

import (
	"bytes"
	"encoding/json"
	"math/rand"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestSendsAHelloWithTheWholeEnvironmentAndTheAbsoluteJobPath(t *testing.T) {
	t.Parallel()
	for _, flag := range []string{"job", "app"} {
		t.Run(flag, func(t *testing.T) {
			r := newRun(t)
			f := r.listen()
			dir := t.TempDir()
			env := r.env("EMPTY=", "WITH_EQUALS=a=b", "MULTI_LINE=one\ntwo", "UNICODE=grüße ✓", `QUOTES="<&>"`)
			c := r.start(env, dir, "--"+flag, "sub/thing.json")
			p := f.accept()
			hello := p.hello()
			p.event(`{"type":"exit","status":0}`)
			if code := c.wait(); code != 0 {
				t.Fatalf("exit %d, stderr %q", code, c.stderr.String())
			}
			want := map[string]any{}
			for _, entry := range env {
				name, value, _ := strings.Cut(entry, "=")
				want[name] = value
			}
			gotEnv, _ := json.Marshal(hello["env"])
			wantEnv, _ := json.Marshal(want)
			if !bytes.Equal(gotEnv, wantEnv) {
				t.Fatalf("env %s, want %s", gotEnv, wantEnv)
			}
			if hello[flag] != filepath.Join(dir, "sub/thing.json") || hello["version"] != 1.0 || hello["pid"] != float64(c.cmd.Process.Pid) || len(hello) != 5 {
				t.Fatalf("hello %v (pid %d)", hello, c.cmd.Process.Pid)
			}
		})
	}
}

func TestRelaysStdoutAndStderrFramesByteForByte(t *testing.T) {
	t.Parallel()
	r := newRun(t)
	f := r.listen()
	c := r.start(r.env(), "", "--job", "job.json")
	p := f.accept()
	p.hello()
	random := rand.New(rand.NewSource(1))
	var wantOut, wantErr []byte
	for _, size := range []int{0, 1, 5, 4096, 65535, 65536, 65537, 300_000, MaxFrame, 3, MaxFrame - 1, 0, 17} {
		payload := make([]byte, size)
		random.Read(payload)
		kind := frameStdout
		if random.Intn(2) == 0 {
			kind = frameStderr
			wantErr = append(wantErr, payload...)
		} else {
			wantOut = append(wantOut, payload...)
		}
		p.send(frameOf(kind, payload))
	}
	p.event(`{"type":"exit","status":0}`)
	if code := c.wait(); code != 0 {
		t.Fatalf("exit %d", code)
	}
	if got := c.stdout.Bytes(); !bytes.Equal(got, wantOut) {
		t.Fatalf("stdout: %d bytes, want %d", len(got), len(wantOut))
	}
	if got := c.stderr.Bytes(); !bytes.Equal(got, wantErr) {
		t.Fatalf("stderr: %d bytes, want %d", len(got), len(wantErr))
	}
}

func TestWritesAFrameOnBeforeTheNextOneComes(t *testing.T) {
	t.Parallel()
	r := newRun(t)
	f := r.listen()
	c := r.start(r.env(), "", "--job", "job.json")
	p := f.accept()
	p.hello()
	p.send(frameOf(frameStdout, []byte("first line\n")))
	deadline := time.Now().Add(waitLimit)
	for c.stdout.String() != "first line\n" {
		if time.Now().After(deadline) {
			t.Fatalf("stdout %q", c.stdout.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	p.event(`{"type":"exit","status":0}`)
	c.wait()
}

func TestExitsWithTheStatusTheControllerSends(t *testing.T) {
	t.Parallel()
	for _, status := range []int{0, 7, 143, 255} {
		r := newRun(t)
		f := r.listen()
		c := r.start(r.env(), "", "--job", "job.json")
		p := f.accept()
		p.hello()
		p.send(frameOf(frameStderr, []byte("the app's last words\n")))
		p.event(`{"type":"exit","status":` + itoa(status) + `}`)
		if code := c.wait(); code != status || c.stderr.String() != "the app's last words\n" {
			t.Fatalf("status %d: exit %d, stderr %q", status, code, c.stderr.String())
		}
	}
}

func TestPrintsTheControllersErrorAsOneLineAndExits1(t *testing.T) {
	t.Parallel()
	r := newRun(t)
	f := r.listen()
	c := r.start(r.env(), "", "--job", "job.json")
	p := f.accept()
	p.hello()
	p.event(`{"type":"error","message":"instance 1 on lab-h1, placing the app:\nnix copy exited 1"}`)
	if code := c.wait(); code != 1 || c.stderr.String() != "remote-runner: instance 1 on lab-h1, placing the app: nix copy exited 1\n" {
		t.Fatalf("exit %d, stderr %q", code, c.stderr.String())
	}
}

func TestReplacesItselfWithTheProgramOfAnExecUnderItsNameAndUnchangedEnvironment(t *testing.T) {
	t.Parallel()
	r := newRun(t)
	f := r.listen()
	env := r.env("RUNNER_TEST_MARK=kept", "TEST_INSTANCE_ROLE=a role with spaces")
	c := r.start(env, "", "--app", "/bin/the-plan")
	p := f.accept()
	p.hello()
	p.send(frameOf(frameStdout, []byte("placed here\n")))
	program, _ := json.Marshal(testBin)
	p.event(`{"type":"exec","program":` + string(program) + `,"argv0":"` + placedAppName + `"}`)
	code := c.wait()
	first, rest, _ := strings.Cut(c.stdout.String(), "\n")
	var app struct {
		Pid  int      `json:"pid"`
		Argv []string `json:"argv"`
		Env  []string `json:"env"`
	}
	if err := json.Unmarshal([]byte(rest), &app); err != nil || first != "placed here" {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, c.stdout.String(), c.stderr.String())
	}
	if code != 5 || app.Pid != c.cmd.Process.Pid || !slices.Equal(app.Argv, []string{placedAppName}) || !slices.Equal(app.Env, env) {
		t.Fatalf("exit %d, app %+v (runner pid %d)", code, app, c.cmd.Process.Pid)
	}
}

func TestTurnsSigtermIntoOneTermLineAndStillExitsWithTheControllersStatus(t *testing.T) {
	t.Parallel()
	r := newRun(t)
	f := r.listen()
	c := r.start(r.env(), "", "--job", "job.json")
	p := f.accept()
	p.hello()
	c.signal(syscall.SIGTERM)
	if term := p.line(); len(term) != 1 || term["op"] != "term" {
		t.Fatalf("after SIGTERM: %v", term)
	}
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP} {
		c.signal(sig)
	}
	if more, err := p.lineWithin(300 * time.Millisecond); err == nil {
		t.Fatalf("a second line after later signals: %v", more)
	}
	p.send(frameOf(frameStderr, []byte("pulled the outputs\n")))
	p.event(`{"type":"exit","status":143}`)
	if code := c.wait(); code != 143 || c.stderr.String() != "pulled the outputs\n" {
		t.Fatalf("exit %d, stderr %q", code, c.stderr.String())
	}
}

func TestSendsTermForSigintAndSighupToo(t *testing.T) {
	t.Parallel()
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGHUP} {
		r := newRun(t)
		f := r.listen()
		c := r.start(r.env(), "", "--job", "job.json")
		p := f.accept()
		p.hello()
		c.signal(sig)
		if term := p.line(); term["op"] != "term" {
			t.Fatalf("%v: %v", sig, term)
		}
		p.event(`{"type":"exit","status":130}`)
		if code := c.wait(); code != 130 {
			t.Fatalf("%v: exit %d", sig, code)
		}
	}
}

func TestDoesNotStartTheAppOfAnExecThatComesAfterATerm(t *testing.T) {
	t.Parallel()
	r := newRun(t)
	f := r.listen()
	c := r.start(r.env(), "", "--app", "/bin/the-plan")
	p := f.accept()
	p.hello()
	c.signal(syscall.SIGTERM)
	p.line()
	program, _ := json.Marshal(testBin)
	p.event(`{"type":"exec","program":` + string(program) + `,"argv0":"` + placedAppName + `"}`)
	if code := c.wait(); code != 143 || c.stdout.String() != "" {
		t.Fatalf("exit %d, stdout %q", code, c.stdout.String())
	}
}

func TestSaysTheControllerWentAwayWhenTheSocketClosesBeforeAnExit(t *testing.T) {
	t.Parallel()
	for name, last := range map[string][]byte{
		"between frames":   frameOf(frameStdout, []byte("partial output\n")),
		"inside a header":  {frameStdout, 0, 0},
		"inside a payload": frameOf(frameStdout, []byte("cut short"))[:8],
		"inside an event":  frameOf(frameEvent, []byte(`{"type":"exit","status":0}`))[:12],
	} {
		t.Run(name, func(t *testing.T) {
			r := newRun(t)
			f := r.listen()
			c := r.start(r.env(), "", "--job", "job.json")
			p := f.accept()
			p.hello()
			p.send(last)
			closed := time.Now()
			p.conn.Close()
			code := c.wait()
			if code != 1 || !strings.HasSuffix(c.stderr.String(), "remote-runner: the run's controller went away\n") || strings.Count(c.stderr.String(), "\n") != 1 {
				t.Fatalf("exit %d, stderr %q", code, c.stderr.String())
			}
			if took := time.Since(closed); took > 2*time.Second {
				t.Fatalf("took %s to notice", took)
			}
		})
	}
}

func TestRefusesFramesOutsideTheProtocolWithOneLine(t *testing.T) {
	t.Parallel()
	big := make([]byte, frameHeader)
	big[0] = frameStdout
	big[1], big[2], big[3], big[4] = 0, 0x10, 0, 1
	for _, tc := range []struct {
		send []byte
		want string
	}{
		{[]byte{9, 0, 0, 0, 0}, "a frame of kind 9 (expected 1 stdout, 2 stderr or 3 event)"},
		{[]byte{0, 0, 0, 0, 0}, "a frame of kind 0 (expected 1 stdout, 2 stderr or 3 event)"},
		{big, "a frame of 1048577 bytes (at most 1048576)"},
		{frameOf(frameEvent, []byte(`not json`)), "an event that is not valid JSON of the wire"},
		{frameOf(frameEvent, []byte(`{"type":"exit","status":"7"}`)), "an event that is not valid JSON of the wire"},
		{frameOf(frameEvent, []byte(`{"type":"exit","status":7.5}`)), "an event that is not valid JSON of the wire"},
		{frameOf(frameEvent, []byte(`{"type":"exit"}`)), `an exit event without a status from 0 to 255: "{\"type\":\"exit\"}"`},
		{frameOf(frameEvent, []byte(`{"type":"exit","status":256}`)), "an exit event without a status from 0 to 255"},
		{frameOf(frameEvent, []byte(`{"type":"exit","status":-1}`)), "an exit event without a status from 0 to 255"},
		{frameOf(frameEvent, []byte(`{"type":"exec","program":"/bin/true"}`)), "an exec event without a program and an argv0"},
		{frameOf(frameEvent, []byte(`{"type":"error"}`)), "an error event without a message"},
		{frameOf(frameEvent, []byte(`{"type":"started","pid":1}`)), `an event of unknown type: "{\"type\":\"started\",\"pid\":1}"`},
	} {
		r := newRun(t)
		f := r.listen()
		c := r.start(r.env(), "", "--job", "job.json")
		p := f.accept()
		p.hello()
		p.send(tc.send)
		code := c.wait()
		stderr := c.stderr.String()
		if code != 1 || !strings.HasPrefix(stderr, "remote-runner: protocol error: the run's controller sent "+tc.want) || strings.Count(stderr, "\n") != 1 {
			t.Fatalf("%q: exit %d, stderr %q", tc.send, code, stderr)
		}
	}
}

func TestFailsWithOneLineWhenTestRunIsMissing(t *testing.T) {
	t.Parallel()
	r := newRun(t)
	c := r.start([]string{"PATH=" + os.Getenv("PATH")}, "", "--job", "job.json")
	if code := c.wait(); code != 1 || c.stderr.String() != "remote-runner: TEST_RUN is not set: the instance's process finds its run's controller by the run's id\n" {
		t.Fatalf("exit %d, stderr %q", code, c.stderr.String())
	}
}

func TestRefusesAnEnvironmentValueThatIsNotUTF8BeforeLookingForTheController(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ entry, want string }{
		{"SECRET=ab\xffcd", "remote-runner: environment variable SECRET holds bytes that are not UTF-8 (byte 2 of its value); values reach the app as UTF-8 text only\n"},
		{"LATIN1=gr\xfc\xdfe", "remote-runner: environment variable LATIN1 holds bytes that are not UTF-8 (byte 2 of its value); values reach the app as UTF-8 text only\n"},
		{"CUT=\xe2\x9c", "remote-runner: environment variable CUT holds bytes that are not UTF-8 (byte 0 of its value); values reach the app as UTF-8 text only\n"},
		{"N\xffME=value", "remote-runner: environment variable N?ME has a name that is not UTF-8 (byte 1 of its name); names reach the app as UTF-8 text only\n"},
	} {
		r := newRun(t)
		c := r.start(r.env(tc.entry), "", "--job", "job.json", "--controller", r.controllerArg("serve"))
		if code := c.wait(); code != 1 || c.stderr.String() != tc.want {
			t.Fatalf("%q: exit %d, stderr %q", tc.entry, code, c.stderr.String())
		}
		if started := r.controllers(); len(started) != 0 {
			t.Fatalf("%q: a controller started: %v", tc.entry, started)
		}
	}
}

func TestKeepsRelayingAndExitsWithTheStatusWhenStdoutIsGone(t *testing.T) {
	t.Parallel()
	r := newRun(t)
	f := r.listen()
	c := r.command(r.env(), "--job", "job.json")
	out, in, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	c.cmd.Stdout = in
	c.cmd.Stderr = &c.stderr
	c.run()
	in.Close()
	out.Close() // nobody reads the runner's stdout: its writes fail with EPIPE
	p := f.accept()
	p.hello()
	for i := 0; i < 3; i++ {
		p.send(frameOf(frameStdout, []byte("lost output\n")))
		p.send(frameOf(frameStderr, []byte("still relayed "+itoa(i)+"\n")))
	}
	p.event(`{"type":"exit","status":7}`)
	if code := c.wait(); code != 7 || c.stderr.String() != "still relayed 0\nstill relayed 1\nstill relayed 2\n" {
		t.Fatalf("exit %d, stderr %q", code, c.stderr.String())
	}
}
