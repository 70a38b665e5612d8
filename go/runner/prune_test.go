package runner

import (
	"net"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func TestPrunesOtherRunsFilesOnlyOnceTheyAreStaleAndNoControllerListens(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	old := now.Add(-staleAfter - time.Hour)
	touch := func(name string, at time.Time) {
		path := filepath.Join(dir, name)
		if _, err := os.Stat(path); err != nil {
			if err := os.WriteFile(path, nil, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.Chtimes(path, at, at); err != nil {
			t.Fatal(err)
		}
	}
	listen := func(name string) net.Listener {
		l, err := net.Listen("unix", filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	// A dead controller's socket: bound, then closed without removing the path.
	dead := listen("dead.sock")
	dead.(*net.UnixListener).SetUnlinkOnClose(false)
	dead.Close()
	live := listen("live.sock")
	defer live.Close()
	for _, name := range []string{"old.sock.lock", "old.sock.log", "dead.sock", "live.sock", "ours.sock.lock", "ours.sock.log", "other-file"} {
		touch(name, old)
	}
	touch("new.sock.lock", now)
	touch("new.sock.log", now)

	pruneStale(dir, filepath.Join(dir, "ours.sock"), now)

	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, e := range entries {
		left = append(left, e.Name())
	}
	want := []string{"live.sock", "new.sock.lock", "new.sock.log", "other-file", "ours.sock.lock", "ours.sock.log"}
	if !slices.Equal(left, want) {
		t.Fatalf("left %v, want %v", left, want)
	}
}
