package runner

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// staleAfter is how long the files of a run's controller stay in the socket
// directory after their last change: its lock, its log, and a socket that no
// controller listens on any more. Every run leaves its lock and log, so a
// machine that runs many would otherwise gather them without end.
const staleAfter = 24 * time.Hour

// pruneStale removes, from the directory of the sockets, the files of other
// runs' controllers that have not changed since before now-staleAfter; a socket
// only when connecting to it is refused (a live controller keeps its own).
// Errors are ignored: another instance may prune the same files at once.
func pruneStale(dir, keep string, now time.Time) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, entry := range entries {
		name := entry.Name()
		path := filepath.Join(dir, name)
		if strings.HasPrefix(path, keep) || !strings.Contains(name, ".sock") {
			continue
		}
		info, err := entry.Info()
		if err != nil || !info.ModTime().Before(now.Add(-staleAfter)) {
			continue
		}
		switch {
		case strings.HasSuffix(name, ".sock.lock"), strings.HasSuffix(name, ".sock.log"):
			_ = os.Remove(path)
		case strings.HasSuffix(name, ".sock"):
			if conn, err := dial(path); err == nil {
				conn.Close()
			} else if errors.Is(err, syscall.ECONNREFUSED) {
				_ = os.Remove(path)
			}
		}
	}
}
