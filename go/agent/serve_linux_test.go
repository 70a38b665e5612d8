package agent

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// maxServeRSSKiB bounds the agent's resident memory with 200 instances running:
// about 12 MiB are measured, and two 64 KiB pipe buffers held per instance would exceed it.
const maxServeRSSKiB = 24 << 10

func TestServeRuns200InstancesAtOnceEachWithItsOwnOutputInBoundedMemory(t *testing.T) {
	t.Parallel()
	const n = 200
	s := startServe(t)
	for id := uint32(1); id <= n; id++ {
		s.start(id, map[string]string{"ID": fmt.Sprint(id)}, 1000, "/bin/sh", "-c", `echo $ID; sleep 1`)
	}
	for id := uint32(1); id <= n; id++ {
		s.event(id, "started")
	}
	rss := residentKiB(t, s.cmd.Process.Pid)
	t.Logf("agent RSS with %d instances started: %d KiB", n, rss)
	if rss > maxServeRSSKiB {
		t.Fatalf("agent RSS %d KiB with %d instances started, want at most %d KiB", rss, n, maxServeRSSKiB)
	}
	for id := uint32(1); id <= n; id++ {
		exit, output := s.event(id, "exit")
		if got, want := joined(output, FrameStdout), fmt.Sprintf("%d\n", id); got != want || exit["status"] != 0.0 {
			t.Fatalf("id %d: stdout %q, exit %v; want %q and status 0", id, got, exit, want)
		}
		s.outputs(id)
		s.op("done", id)
	}
	for id := uint32(1); id <= n; id++ {
		s.event(id, "cleaned")
	}
	if rss := residentKiB(t, s.cmd.Process.Pid); rss > maxServeRSSKiB {
		t.Fatalf("agent RSS %d KiB after %d instances ended, want at most %d KiB", rss, n, maxServeRSSKiB)
	}
	s.send(`{"op":"shutdown"}`)
	if code := s.wait(); code != 0 {
		t.Fatalf("agent exited %d, want 0", code)
	}
	s.empty()
}

func TestServeNeverTakesAnAppThatStartsDuringASweepForAStray(t *testing.T) {
	t.Parallel()
	s := startServe(t)
	// Each quick app's end sweeps for strays while the next apps are being started.
	const n = 150
	for id := uint32(1); id <= 2*n; id += 2 {
		s.sh(id, `exit 0`)
		s.sh(id+1, `sleep 0.5`)
	}
	for id := uint32(1); id <= 2*n; id++ {
		if raw := s.rawEvent(id, "exit"); raw != `{"type":"exit","status":0,"code":0,"signal":null}` {
			t.Fatalf("id %d: exit event %s", id, raw)
		}
	}
}

func TestServeKillsFiveInstancesAndAHelperOfOneWithinFiveSecondsOfStdinEnding(t *testing.T) {
	t.Parallel()
	s := startServe(t)
	s.sh(1, helperScript(`exec sleep 60`))
	s.start(2, map[string]string{}, 60_000, "/bin/sh", "-c", `trap '' TERM; echo ready; while :; do sleep 0.05; done`)
	for id := uint32(3); id <= 5; id++ {
		s.sh(id, `echo ready; exec sleep 60`)
	}
	var pids []int
	var workdirs []string
	for id := uint32(1); id <= 5; id++ {
		started, _ := s.event(id, "started")
		pids = append(pids, pidOf(started))
		workdirs = append(workdirs, started["workdir"].(string))
	}
	helper := servedHelperPid(t, s, 1)
	for id := uint32(2); id <= 5; id++ {
		s.next(id) // the ready line
	}
	closed := time.Now()
	s.stdin.Close()
	if code := s.wait(); code != 1 {
		t.Fatalf("agent exited %d, want 1", code)
	}
	if took := time.Since(closed); took > 5*time.Second {
		t.Fatalf("agent exited %v after stdin ended, want at most 5 s", took)
	}
	for i, pid := range pids {
		gone(t, pid, fmt.Sprintf("the app of id %d", i+1))
		missing(t, workdirs[i])
	}
	gone(t, helper, "the setsid helper of id 1")
	s.empty()
}

func TestServeKillsAHelperLeftByAnInstanceWhenItEndsAndLeavesAnotherInstancesHelperAlone(t *testing.T) {
	t.Parallel()
	s := startServe(t)
	agent := s.cmd.Process.Pid
	// B's helper leaves B's session and is orphaned at once, so it is the agent's
	// child like A's will be: only its marks (environment, pipe) say it is B's.
	s.sh(2, `(setsid sh -c 'echo $$ > "$TEST_TEMP_PATH/helper.pid"; exec sleep 60' &)
while [ ! -s "$TEST_TEMP_PATH/helper.pid" ]; do sleep 0.01; done
pid=$(cat "$TEST_TEMP_PATH/helper.pid")
echo "helper $pid $(cut -d' ' -f6 /proc/$pid/stat)"
exec sleep 60`)
	b, _ := s.event(2, "started")
	bHelper := servedHelperPid(t, s, 2)
	waitParent(t, bHelper, agent)

	s.sh(1, helperScript(`exit 0`))
	s.event(1, "started")
	aHelper := servedHelperPid(t, s, 1)
	printed := time.Now()
	if raw := s.rawEvent(1, "exit"); raw != `{"type":"exit","status":0,"code":0,"signal":null}` {
		t.Fatalf("exit event of A %s", raw)
	}
	if took := time.Since(printed); took > 4*time.Second {
		t.Fatalf("A's exit event came %v after it exited", took)
	}
	if alive(aHelper) {
		t.Fatalf("A's helper %d still runs when A's exit event arrives", aHelper)
	}
	s.outputs(1)
	s.op("done", 1)
	s.event(1, "cleaned")
	if !alive(bHelper) || !alive(pidOf(b)) {
		t.Fatalf("after A ended: B's app alive %v, B's helper alive %v", alive(pidOf(b)), alive(bHelper))
	}
	if got := shape(framesOf(s.all(), 2)); got != "started output" {
		t.Fatalf("frames of B: %s", got)
	}

	s.op("term", 2)
	if raw := s.rawEvent(2, "exit"); raw != `{"type":"exit","status":143,"code":null,"signal":"SIGTERM"}` {
		t.Fatalf("exit event of B %s", raw)
	}
	if alive(bHelper) {
		t.Fatalf("B's helper %d still runs when B's exit event arrives", bHelper)
	}
}

func TestTellsWhoseAStrayIsByItsSessionItsEnvironmentAndThePipesItHolds(t *testing.T) {
	t.Parallel()
	// The test process stands in for the agent: the strays are its children.
	self := os.Getpid()
	pipeR, pipeW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pipeR.Close()
	spawn := func(env []string, stdout *os.File) int {
		t.Helper()
		cmd := exec.Command("/bin/sh", "-c", "exec sleep 60")
		cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, env...)
		cmd.Stdout = stdout
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		})
		return cmd.Process.Pid
	}
	workdirs := t.TempDir() + "/remote-runner-"
	byEnv := spawn([]string{"TEST_OUTPUTS_PATH=" + workdirs + "A/outputs"}, nil)
	byPipe := spawn(nil, pipeW)
	pipeW.Close()
	leader := spawn(nil, nil)
	ofGone := spawn([]string{"TEST_OUTPUTS_PATH=" + workdirs + "gone/outputs"}, nil)
	unmarked := spawn(nil, nil)
	for _, pid := range []int{byEnv, byPipe, leader, ofGone, unmarked} {
		waitExec(t, pid, "sleep")
	}
	snapshot := func(running ...uint32) *owners {
		o := &owners{
			apps:     map[int]bool{},
			groups:   map[int]uint32{leader: 3},
			outputs:  map[string]uint32{workdirs + "A/outputs": 1},
			pipes:    map[uint64]uint32{inode(pipeR): 2},
			running:  map[uint32]bool{},
			workdirs: workdirs,
		}
		for _, id := range running {
			o.running[id] = true
		}
		return o
	}
	cases := []struct {
		running []uint32
		killed  []int
	}{
		{[]uint32{2}, []int{byEnv, leader, ofGone}},
		{[]uint32{1, 3}, []int{byPipe, ofGone}},
		{[]uint32{4}, []int{byEnv, byPipe, leader, ofGone}},
		{nil, []int{byEnv, byPipe, leader, ofGone, unmarked}},
	}
	names := map[int]string{byEnv: "byEnv", byPipe: "byPipe", leader: "leader", ofGone: "ofGone", unmarked: "unmarked"}
	for _, c := range cases {
		var got []string
		running := c.running
		for _, pid := range strays(self, func() *owners { return snapshot(running...) }) {
			if name, ok := names[pid]; ok {
				got = append(got, name)
			}
		}
		var want []string
		for _, pid := range c.killed {
			want = append(want, names[pid])
		}
		if strings.Join(sorted(got), " ") != strings.Join(sorted(want), " ") {
			t.Errorf("with instances %v running: strays %v, want %v", c.running, sorted(got), sorted(want))
		}
	}
}

// servedHelperPid reads id's `helper <pid> <sid>` line and checks that the helper leads its own session.
func servedHelperPid(t *testing.T, s *served, id uint32) int {
	t.Helper()
	var out string
	for !strings.Contains(out, "\n") {
		f, ok := s.next(id)
		if !ok {
			t.Fatalf("stdout ended before the helper line of id %d", id)
		}
		if f.kind == FrameStdout {
			out += string(f.payload)
		}
	}
	var pid, sid int
	if _, err := fmt.Sscanf(out, "helper %d %d", &pid, &sid); err != nil || sid != pid {
		t.Fatalf("id %d printed %q, want `helper <pid> <pid>`", id, out)
	}
	return pid
}

// alive says whether pid runs: it exists and is no zombie.
func alive(pid int) bool {
	p, ok := readStat(pid)
	return ok && p.state != 'Z'
}

// waitParent waits until pid's parent is parent.
func waitParent(t *testing.T, pid, parent int) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		if p, ok := readStat(pid); ok && p.ppid == parent {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("process %d is not a child of %d after %v", pid, parent, waitLimit)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitExec waits until pid runs the program named comm, so its environment and fds are the final ones.
func waitExec(t *testing.T, pid int, comm string) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		data, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
		if strings.TrimSpace(string(data)) == comm {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("process %d runs %q, not %q, after %v", pid, data, comm, waitLimit)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// residentKiB is pid's resident set size (VmRSS) in KiB.
func residentKiB(t *testing.T, pid int) int {
	t.Helper()
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	lines := bufio.NewScanner(f)
	for lines.Scan() {
		if fields := strings.Fields(lines.Text()); len(fields) == 3 && fields[0] == "VmRSS:" {
			kib, err := strconv.Atoi(fields[1])
			if err != nil {
				t.Fatal(err)
			}
			return kib
		}
	}
	t.Fatalf("no VmRSS in /proc/%d/status", pid)
	return 0
}

// sorted is names in order.
func sorted(names []string) []string {
	out := append([]string(nil), names...)
	sort.Strings(out)
	return out
}
