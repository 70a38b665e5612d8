package runner

import (
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestFindsTheSocketByTheUserAndTheHashOfTheRunID(t *testing.T) {
	// sha256("run-1") is 4e65d3fbe8ad6535681b021b30785b12b6c0e3f8878859a4148b3f58b8835db0.
	if got := SocketPath(1000, "run-1"); got != "/tmp/remote-runner-1000/4e65d3fbe8ad6535681b.sock" {
		t.Fatalf("socket %q", got)
	}
}

func TestStartsOneControllerForFiveInstancesThatStartAtOnce(t *testing.T) {
	t.Parallel()
	r := newRun(t)
	var clients []*client
	for i := 0; i < 5; i++ {
		clients = append(clients, r.start(r.env("RUNNER_TEST_MARK=from the instance"), "", "--job", "job.json", "--controller", r.controllerArg("serve")))
	}
	var servedBy []string
	for _, c := range clients {
		if code := c.wait(); code != 0 || !strings.HasPrefix(c.stdout.String(), "served by ") {
			t.Fatalf("exit %d, stdout %q, stderr %q", code, c.stdout.String(), c.stderr.String())
		}
		servedBy = append(servedBy, c.stdout.String())
	}
	started := r.controllers()
	if len(started) != 1 {
		t.Fatalf("%d controllers started: %+v", len(started), started)
	}
	s := started[0]
	if want := "served by " + itoa(s.Pid) + "\n"; slices.IndexFunc(servedBy, func(got string) bool { return got != want }) >= 0 {
		t.Fatalf("served by %q, controller %d", servedBy, s.Pid)
	}
	wantArgs := []string{testBin, fakeControllerArg, "serve", r.record, "--socket", r.socket}
	if !s.SessionLeader || !s.StdinDevNull || !slices.Equal(s.Args, wantArgs) || s.Mark != "from the instance" {
		t.Fatalf("controller %+v, want args %q", s, wantArgs)
	}
	log, err := os.ReadFile(r.socket + ".log")
	if err != nil || !strings.Contains(string(log), "fake controller "+itoa(s.Pid)+" in mode serve\n") || !strings.Contains(string(log), "listening on "+r.socket+"\n") {
		t.Fatalf("log %q, %v", log, err)
	}
	info, err := os.Stat(filepath.Dir(r.socket))
	if err != nil || info.Mode().Perm() != 0o700 {
		t.Fatalf("socket dir: %v, %v", info.Mode(), err)
	}
}

func TestUsesTheControllerThatAnswersWithoutStartingAnother(t *testing.T) {
	t.Parallel()
	r := newRun(t)
	f := r.listen()
	c := r.start(r.env(), "", "--job", "job.json", "--controller", r.controllerArg("serve"))
	p := f.accept()
	p.hello()
	p.event(`{"type":"exit","status":0}`)
	if code := c.wait(); code != 0 || len(r.controllers()) != 0 {
		t.Fatalf("exit %d, controllers started: %v", code, r.controllers())
	}
}

func TestReplacesTheSocketOfAControllerThatDied(t *testing.T) {
	t.Parallel()
	r := newRun(t)
	if err := privateDir(filepath.Dir(r.socket)); err != nil {
		t.Fatal(err)
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: r.socket, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close() // the socket file stays, and nobody listens on it
	c := r.start(r.env(), "", "--job", "job.json", "--controller", r.controllerArg("serve"))
	if code := c.wait(); code != 0 || !strings.HasPrefix(c.stdout.String(), "served by ") || len(r.controllers()) != 1 {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, c.stdout.String(), c.stderr.String())
	}
}

func TestNamesTheEndOfTheLogWhenTheControllerExitsWithoutListening(t *testing.T) {
	t.Parallel()
	r := newRun(t)
	if err := privateDir(filepath.Dir(r.socket)); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(r.socket+".log", []byte("an earlier controller's last words\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	c := r.start(r.env(), "", "--job", "job.json", "--controller", r.controllerArg("fail"))
	code := c.wait()
	pid := 0
	if s := r.controllers(); len(s) == 1 {
		pid = s[0].Pid
	}
	want := "remote-runner: the run's controller (" + r.controllerArg("fail") + ") exited before it listened on " + r.socket +
		"; the end of " + r.socket + ".log: fake controller " + itoa(pid) + " in mode fail | cannot start: no config (a test)\n"
	if code != 1 || c.stderr.String() != want {
		t.Fatalf("exit %d, stderr %q, want %q", code, c.stderr.String(), want)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("took %s", took)
	}
}

func TestSaysWhenTheControllerIsNotOnPath(t *testing.T) {
	t.Parallel()
	r := newRun(t)
	c := r.start(r.env(), "", "--job", "job.json")
	if code := c.wait(); code != 1 || c.stderr.String() != "remote-runner: cannot start the run's controller (remote-runner-controller): remote-runner-controller is not on PATH (--controller '<command line>' names another)\n" {
		t.Fatalf("exit %d, stderr %q", code, c.stderr.String())
	}
}

func TestGivesUpWithTheEndOfTheLogWhenTheControllerNeverListens(t *testing.T) {
	if testing.Short() {
		t.Skip("waits the whole bound of " + SpawnLimit.String())
	}
	t.Parallel()
	r := newRun(t)
	start := time.Now()
	c := r.start(r.env(), "", "--job", "job.json", "--controller", r.controllerArg("silent"))
	code := c.waitWithin(SpawnLimit + waitLimit)
	took := time.Since(start)
	stderr := c.stderr.String()
	want := "remote-runner: the run's controller (" + r.controllerArg("silent") + ") did not listen on " + r.socket + " within 30s; the end of " + r.socket + ".log: fake controller "
	if code != 1 || !strings.HasPrefix(stderr, want) || !strings.HasSuffix(stderr, " in mode silent | cannot listen yet (a test)\n") {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	if took < SpawnLimit || took > SpawnLimit+5*time.Second {
		t.Fatalf("gave up after %s", took)
	}
}

func TestEndsWithTheSignalsStatusWhenTerminatedWhileTheControllerStarts(t *testing.T) {
	t.Parallel()
	r := newRun(t)
	c := r.start(r.env(), "", "--job", "job.json", "--controller", r.controllerArg("silent"))
	deadline := time.Now().Add(waitLimit)
	for len(r.controllers()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the controller did not start")
		}
		time.Sleep(10 * time.Millisecond)
	}
	c.signal(syscall.SIGTERM)
	if code := c.waitWithin(2 * time.Second); code != 143 || c.stderr.String() != "" {
		t.Fatalf("exit %d, stderr %q", code, c.stderr.String())
	}
}

func TestMakesTheSocketDirPrivateAndRefusesOneThatOthersMayEnter(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "remote-runner-0")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	err := privateDir(dir)
	if err == nil || err.Error() != dir+" is not a directory of user "+itoa(os.Getuid())+" that only this user may enter (drwxr-xr-x); remove it" {
		t.Fatalf("%v", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := privateDir(dir); err != nil {
		t.Fatal(err)
	}
	made := filepath.Join(t.TempDir(), "new")
	if err := privateDir(made); err != nil {
		t.Fatal(err)
	}
	if info, err := os.Stat(made); err != nil || info.Mode() != os.ModeDir|0o700 {
		t.Fatalf("made %v, %v", info.Mode(), err)
	}
}
