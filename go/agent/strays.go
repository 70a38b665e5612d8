package agent

import (
	"os"
	"path/filepath"
	"sync"
)

// owners is what the stray sweep knows of the instances, to tell whose a stray is.
type owners struct {
	// apps are the pids of the apps not yet reaped: their trees are theirs.
	apps map[int]bool
	// groups maps each app's pid, also its session's and group's id, to its instance.
	groups map[int]uint32
	// outputs maps each instance's TEST_OUTPUTS_PATH to it.
	outputs map[string]uint32
	// pipes maps the inodes of each app's stdout and stderr pipes to its instance.
	pipes map[uint64]uint32
	// running are the instances whose app has not been reaped.
	running map[uint32]bool
	// workdirs is the prefix of every work dir's path.
	workdirs string
}

// owners takes a snapshot of the instances for the stray sweep.
func (s *server) owners() *owners {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := &owners{
		apps:     make(map[int]bool, len(s.apps)),
		groups:   make(map[int]uint32, len(s.slots)),
		outputs:  make(map[string]uint32, len(s.slots)),
		pipes:    make(map[uint64]uint32, 2*len(s.slots)),
		running:  make(map[uint32]bool, len(s.apps)),
		workdirs: filepath.Join(os.TempDir(), "remote-runner-"),
	}
	for id, sl := range s.slots {
		if sl.app == nil {
			continue
		}
		o.groups[sl.app.pid()] = id
		o.outputs[filepath.Join(sl.workdir, "outputs")] = id
		for _, inode := range sl.pipes {
			if inode != 0 {
				o.pipes[inode] = id
			}
		}
	}
	// Last, so that a running app wins the pid of an ended one that was reused.
	for pid, sl := range s.apps {
		o.apps[pid] = true
		o.groups[pid] = sl.id
		o.running[sl.id] = true
	}
	return o
}

// sweeper runs the stray sweep for whoever asks; asks that come while a pass
// runs share the next one, so a hundred apps ending at once cost a few passes.
type sweeper struct {
	pass    func()
	mu      sync.Mutex
	waiting []chan struct{}
	busy    bool
}

// sweep returns after a whole pass that began after the call.
func (w *sweeper) sweep() {
	swept := make(chan struct{})
	w.mu.Lock()
	w.waiting = append(w.waiting, swept)
	if !w.busy {
		w.busy = true
		go w.run()
	}
	w.mu.Unlock()
	<-swept
}

func (w *sweeper) run() {
	for {
		w.mu.Lock()
		batch := w.waiting
		w.waiting = nil
		if len(batch) == 0 {
			w.busy = false
			w.mu.Unlock()
			return
		}
		w.mu.Unlock()
		w.pass()
		for _, swept := range batch {
			close(swept)
		}
	}
}
