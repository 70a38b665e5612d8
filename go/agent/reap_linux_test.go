package agent

import (
	"fmt"
	"os"
	"syscall"
	"testing"
	"time"
)

// helperScript starts a helper that leaves the app's group and session with setsid
// and keeps the app's stdout open, prints `helper <pid> <its session id>`, then runs rest.
func helperScript(rest string) string {
	return `setsid sh -c 'echo $$ > "$TEST_TEMP_PATH/helper.pid"; exec sleep 60' &
while [ ! -s "$TEST_TEMP_PATH/helper.pid" ]; do sleep 0.01; done
pid=$(cat "$TEST_TEMP_PATH/helper.pid")
echo "helper $pid $(cut -d' ' -f6 /proc/$pid/stat)"
` + rest
}

// helperPid reads the helper's line and checks that the helper leads its own session.
func helperPid(t *testing.T, s *session) int {
	t.Helper()
	line := firstLine(t, s)
	var pid, sid int
	if _, err := fmt.Sscanf(line, "helper %d %d", &pid, &sid); err != nil {
		t.Fatalf("first line %q is not `helper <pid> <sid>`", line)
	}
	if sid != pid {
		t.Fatalf("helper %d is in session %d, not its own", pid, sid)
	}
	return pid
}

func TestRunsTheAppInItsOwnProcessGroup(t *testing.T) {
	t.Parallel()
	s := sh(t, `cut -d' ' -f5 /proc/$$/stat`)
	started, _ := s.event("started")
	_, output := s.event("exit")
	if got, want := joined(output, FrameStdout), fmt.Sprintf("%d\n", pidOf(started)); got != want {
		t.Fatalf("the app's process group is %q, want its pid %q", got, want)
	}
}

func TestASetsidHelperHoldingStdoutDoesNotHoldTheRunAndIsKilled(t *testing.T) {
	t.Parallel()
	s := sh(t, helperScript(`exit 0`))
	s.event("started")
	helper := helperPid(t, s)
	printed := time.Now()
	if raw := s.rawEvent("exit"); raw != `{"type":"exit","status":0,"code":0,"signal":null}` {
		t.Fatalf("exit event %s", raw)
	}
	if took := time.Since(printed); took > 4*time.Second {
		t.Fatalf("the exit event came %v after the app exited", took)
	}
	if err := syscall.Kill(helper, 0); err == nil {
		t.Fatalf("helper %d still exists when the exit event arrives", helper)
	}
	for f, ok := s.next(); f.kind != FrameTarEnd; f, ok = s.next() {
		if !ok {
			t.Fatal("stdout ended before the tarEnd frame")
		}
	}
	s.send(`{"op":"done"}`)
	s.event("cleaned")
	if code := s.wait(); code != 0 {
		t.Fatalf("agent exited %d, want 0", code)
	}
}

func TestKillsASetsidHelperWhenStdinEnds(t *testing.T) {
	t.Parallel()
	s := sh(t, helperScript(`exec sleep 60`))
	started, _ := s.event("started")
	helper := helperPid(t, s)
	s.stdin.Close()
	if code := s.wait(); code != 1 {
		t.Fatalf("agent exited %d, want 1", code)
	}
	gone(t, pidOf(started), "the app")
	gone(t, helper, "the setsid helper")
	missing(t, started["workdir"].(string))
}

func TestKillsASetsidHelperWhenTheAppIsStopped(t *testing.T) {
	t.Parallel()
	s := sh(t, helperScript(`exec sleep 60`))
	s.event("started")
	helper := helperPid(t, s)
	s.send(`{"op":"term"}`)
	if raw := s.rawEvent("exit"); raw != `{"type":"exit","status":143,"code":null,"signal":"SIGTERM"}` {
		t.Fatalf("exit event %s", raw)
	}
	if err := syscall.Kill(helper, 0); err == nil {
		t.Fatalf("helper %d still exists when the exit event arrives", helper)
	}
}

func TestReapsOrphansItInheritsWhileTheAppRuns(t *testing.T) {
	t.Parallel()
	// Each subshell leaves a short sleep behind, which the agent inherits; the app then counts the agent's zombie children.
	s := sh(t, `for i in 1 2 3 4 5 6 7 8 9 10; do (sleep 0.05 &); done; sleep 1
zombies=0
for stat in /proc/[0-9]*/stat; do
  set -- $(cat "$stat" 2>/dev/null) x x x x
  [ "$3" = Z ] && [ "$4" = "$PPID" ] && zombies=$((zombies + 1))
done
echo "zombies $zombies"`)
	_, output := s.event("exit")
	if got := joined(output, FrameStdout); got != "zombies 0\n" {
		t.Fatalf("the app saw %q, want %q", got, "zombies 0\n")
	}
}

func TestStopsWaitingForOutputPipesTwoSecondsAfterTheAppExited(t *testing.T) {
	t.Parallel()
	// The test process is no subreaper and kills nothing: the group's sleep keeps stdout open.
	app, err := startInstance(Job{Command: "/bin/sh", Args: []string{"-c", "sleep 60 & exit 0"}}, t.TempDir(), []string{"PATH=" + os.Getenv("PATH")}, false)
	if err != nil {
		t.Fatal(err)
	}
	app.wait()
	defer signalGroup(app.pid(), syscall.SIGKILL)
	app.pump(NewFrameWriter(discard{}, nil), func() bool { return false })
	select {
	case <-app.exited:
	case <-time.After(waitLimit):
		t.Fatal("the app did not exit")
	}
	began := time.Now()
	app.drain(drainLimit, make(chan struct{}))
	if took := time.Since(began); took < drainLimit-100*time.Millisecond || took > drainLimit+2*time.Second {
		t.Fatalf("drain took %v, want about %v", took, drainLimit)
	}
	app.close()
}

// discard is a writer that keeps nothing.
type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
