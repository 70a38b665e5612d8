package agent

import (
	"bytes"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// killStrays SIGKILLs, until none is left or limit has passed, every stray
// below the agent that only ended instances can own (see strays); it looks
// again after each round, so a stray that forks meanwhile is caught too.
func killStrays(owners func() *owners, limit time.Duration) {
	self := os.Getpid()
	deadline := time.Now().Add(limit)
	for {
		targets := strays(self, owners)
		if len(targets) == 0 || time.Now().After(deadline) {
			return
		}
		for _, pid := range targets {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// strays lists the live processes to kill now. A stray family is a child of the
// agent that is not an app (an orphan it adopted as subreaper) with everything
// below it. The family's marks name the instances it belongs to: a member in an
// app's session or group, whose TEST_OUTPUTS_PATH is an instance's, or that holds
// an app's stdout or stderr pipe. The family is killed when it has marks and all
// of them name instances whose app has ended (or work dirs of instances that are
// gone), or when it has none and no app is running at all.
//
// The snapshot of the instances is taken after the scan: an app is forked and
// registered under the lock owners takes, so every app in the scan is known to
// it, and a new one is never mistaken for a stray of an instance that is gone.
func strays(self int, owners func() *owners) []int {
	tree := processTree()
	o := owners()
	var targets []int
	for _, root := range tree[self] {
		if o.apps[root.pid] {
			continue // an app's own tree is its instance's, by parentage
		}
		family := append([]proc{root}, below(tree, root.pid)...)
		if !o.ended(family) {
			continue
		}
		for _, p := range family {
			if p.state != 'Z' {
				targets = append(targets, p.pid)
			}
		}
	}
	return targets
}

// ended says whether a family belongs only to instances whose app has ended.
func (o *owners) ended(family []proc) bool {
	marked := false
	for _, p := range family {
		if p.state == 'Z' {
			continue
		}
		for _, id := range o.marks(p) {
			if o.running[id] {
				return false
			}
			marked = true
		}
	}
	return marked || len(o.running) == 0
}

// marks are the instances process p shows it belongs to; 0 stands for an instance that is gone.
func (o *owners) marks(p proc) []uint32 {
	var ids []uint32
	for _, leader := range []int{p.sid, p.pgid} {
		if id, ok := o.groups[leader]; ok {
			ids = append(ids, id)
		}
	}
	if path, ok := outputsPathOf(p.pid); ok {
		if id, ok := o.outputs[path]; ok {
			ids = append(ids, id)
		} else if strings.HasPrefix(path, o.workdirs) && strings.HasSuffix(path, "/outputs") {
			ids = append(ids, 0)
		}
	}
	for _, inode := range pipesOf(p.pid) {
		if id, ok := o.pipes[inode]; ok {
			ids = append(ids, id)
		}
	}
	return ids
}

// outputsPathOf is TEST_OUTPUTS_PATH in the environment pid started with.
func outputsPathOf(pid int) (string, bool) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
	if err != nil {
		return "", false
	}
	const name = "TEST_OUTPUTS_PATH="
	for _, entry := range bytes.Split(data, []byte{0}) {
		if bytes.HasPrefix(entry, []byte(name)) {
			return string(entry[len(name):]), true
		}
	}
	return "", false
}

// pipesOf lists the inodes of the pipes pid has open.
func pipesOf(pid int) []uint64 {
	dir := "/proc/" + strconv.Itoa(pid) + "/fd/"
	f, err := os.Open(dir)
	if err != nil {
		return nil
	}
	names, _ := f.Readdirnames(-1)
	f.Close()
	var inodes []uint64
	for _, name := range names {
		target, err := os.Readlink(dir + name)
		if err != nil || !strings.HasPrefix(target, "pipe:[") || !strings.HasSuffix(target, "]") {
			continue
		}
		if inode, err := strconv.ParseUint(target[len("pipe:["):len(target)-1], 10, 64); err == nil {
			inodes = append(inodes, inode)
		}
	}
	return inodes
}
