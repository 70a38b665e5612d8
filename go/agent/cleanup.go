package agent

import (
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// stopper stops the app's process group: TERM now, KILL after a grace period.
// Of several stops the earliest KILL wins; after end it does nothing.
type stopper struct {
	mu     sync.Mutex
	pgid   int
	killAt time.Time
	timer  *time.Timer
	ended  bool
}

// stop sends TERM to the group and KILL after grace (or sooner, if an earlier stop said so).
func (s *stopper) stop(grace time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return
	}
	signalGroup(s.pgid, syscall.SIGTERM)
	at := time.Now().Add(grace)
	if s.timer != nil {
		if !at.Before(s.killAt) {
			return
		}
		s.timer.Stop()
	}
	s.killAt = at
	s.timer = time.AfterFunc(grace, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if !s.ended {
			signalGroup(s.pgid, syscall.SIGKILL)
		}
	})
}

// end kills what is left of the group, once, and disarms the KILL timer.
func (s *stopper) end() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return
	}
	s.ended = true
	if s.timer != nil {
		s.timer.Stop()
	}
	signalGroup(s.pgid, syscall.SIGKILL)
}

// signalGroup signals process group pgid; a group that is gone is no error.
func signalGroup(pgid int, sig syscall.Signal) {
	if pgid <= 1 {
		return // kill(-0) and kill(-1) would reach the agent's own group or every process
	}
	_ = syscall.Kill(-pgid, sig)
}

// removeWorkdir removes the work dir; when the app left directories without write
// or search permission, it grants them to itself and tries again.
func removeWorkdir(dir string) error {
	if err := os.RemoveAll(dir); err == nil {
		return nil
	}
	_ = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if d != nil && d.IsDir() {
			_ = os.Chmod(path, 0o700)
		}
		return nil
	})
	if err := os.RemoveAll(dir); err != nil {
		return &Error{Code: CodeWorkdir, Message: "cannot remove the work dir " + dir + ": " + reason(err), Err: err}
	}
	return nil
}
