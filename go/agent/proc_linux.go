package agent

import (
	"bytes"
	"os"
	"strconv"
	"syscall"
	"time"
)

// prSetChildSubreaper is PR_SET_CHILD_SUBREAPER from <linux/prctl.h>.
const prSetChildSubreaper = 36

// systemSignalNames are the Linux-only signal names.
var systemSignalNames = map[syscall.Signal]string{syscall.SIGSTKFLT: "SIGSTKFLT", syscall.SIGPWR: "SIGPWR"}

// becomeSubreaper makes the agent the parent of every orphaned descendant, so a
// helper that leaves the app's group and session with setsid is still found.
func becomeSubreaper() error {
	if _, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, prSetChildSubreaper, 1, 0); errno != 0 {
		return errno
	}
	return nil
}

// killDescendants SIGKILLs every process below the agent and reaps its zombie
// children, except `keep` (the app, while its own wait has not returned). It
// returns when none is left or after `limit`.
func killDescendants(keep int, limit time.Duration) {
	self := os.Getpid()
	deadline := time.Now().Add(limit)
	for {
		left := 0
		for _, p := range descendants(self) {
			switch {
			case p.state != 'Z':
				_ = syscall.Kill(p.pid, syscall.SIGKILL)
				left++
			case p.pid == keep:
			case p.ppid == self:
				reap(p.pid)
			default:
				left++ // a zombie whose dying parent will hand it to us
			}
		}
		if left == 0 || time.Now().After(deadline) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// reapOrphans reaps the zombie children the agent inherits as a subreaper, on
// every SIGCHLD until stop is called, so a long run does not collect them; never
// `keep` (the app, which its own wait reaps).
func reapOrphans(keep int) (stop func()) {
	return onChildSignal(func() { reapZombies(keep) })
}

// reapZombies reaps the agent's zombie children but `keep`.
func reapZombies(keep int) {
	self := os.Getpid()
	for _, p := range descendants(self) {
		if p.ppid == self && p.state == 'Z' && p.pid != keep {
			reap(p.pid)
		}
	}
}

// reap collects the exit status of the agent's zombie child pid.
func reap(pid int) {
	var ws syscall.WaitStatus
	_, _ = syscall.Wait4(pid, &ws, syscall.WNOHANG, nil)
}

// proc is one process as /proc/<pid>/stat shows it.
type proc struct {
	pid, ppid, pgid, sid int
	state                byte
}

// descendants lists the processes below `root`, from the parent pids in /proc.
func descendants(root int) []proc { return below(processTree(), root) }

// processTree is every process in /proc, by parent pid.
func processTree() map[int][]proc {
	dir, err := os.Open("/proc")
	if err != nil {
		return nil
	}
	names, _ := dir.Readdirnames(-1)
	dir.Close()
	children := map[int][]proc{}
	for _, name := range names {
		pid, err := strconv.Atoi(name)
		if err != nil {
			continue
		}
		if p, ok := readStat(pid); ok {
			children[p.ppid] = append(children[p.ppid], p)
		}
	}
	return children
}

// below lists the processes of tree under root, breadth first.
func below(tree map[int][]proc, root int) []proc {
	var found []proc
	for queue := tree[root]; len(queue) > 0; queue = queue[1:] {
		found = append(found, queue[0])
		queue = append(queue, tree[queue[0].pid]...)
	}
	return found
}

// readStat parses the state, parent pid, group and session of /proc/<pid>/stat; the command name may hold spaces and parens.
func readStat(pid int) (proc, bool) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return proc{}, false
	}
	end := bytes.LastIndexByte(data, ')')
	if end < 0 {
		return proc{}, false
	}
	fields := bytes.Fields(data[end+1:])
	if len(fields) < 4 || len(fields[0]) != 1 {
		return proc{}, false
	}
	var ids [3]int
	for i := range ids {
		if ids[i], err = strconv.Atoi(string(fields[i+1])); err != nil {
			return proc{}, false
		}
	}
	return proc{pid: pid, ppid: ids[0], pgid: ids[1], sid: ids[2], state: fields[0][0]}, true
}
