package agent

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// tree makes files (name → contents) under a fresh dir; a name ending in / is a dir, contents `-> x` a symlink to x.
func tree(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for name, contents := range files {
		abs := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(abs), 0o755); err != nil {
			t.Fatal(err)
		}
		var err error
		switch {
		case strings.HasSuffix(name, "/"):
			err = os.MkdirAll(abs, 0o755)
		case strings.HasPrefix(contents, "-> "):
			err = os.Symlink(strings.TrimPrefix(contents, "-> "), abs)
		default:
			err = os.WriteFile(abs, []byte(contents), 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// packed is Pack's stream of dir, failing the test on an error.
func packed(t *testing.T, dir string) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := Pack(&buf, dir); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestPackNamesEntriesRelativeSortedPerDirectoryAndDepthFirst(t *testing.T) {
	dir := tree(t, map[string]string{"b.txt": "b", "a/z.txt": "z", "a/y/x.txt": "x", "c": "-> b.txt", "a/empty/": ""})
	got := tarEntries(t, packed(t, dir))
	want := []string{"dir a/", "dir a/empty/", "dir a/y/", "file a/y/x.txt 644 x", "file a/z.txt 644 z", "file b.txt 644 b", "symlink c -> b.txt"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("entries:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestPackKeepsALinkToAnOutsideDirectoryAsALinkAndNeverItsFiles(t *testing.T) {
	outside := tree(t, map[string]string{"secret.txt": "secret"})
	dir := tree(t, map[string]string{"real.txt": "real", "link": "-> " + outside})
	data := packed(t, dir)
	if got := tarEntries(t, data); strings.Join(got, "\n") != "symlink link -> "+outside+"\nfile real.txt 644 real" {
		t.Fatalf("entries: %v", got)
	}
	if bytes.Contains(data, []byte("secret")) {
		t.Fatal("the archive holds a file behind the link")
	}
}

func TestPackLeavesOutFifosAndSockets(t *testing.T) {
	dir := tree(t, map[string]string{"a.txt": "a"})
	if err := syscall.Mkfifo(filepath.Join(dir, "pipe"), 0o644); err != nil {
		t.Fatal(err)
	}
	listener, err := net.Listen("unix", filepath.Join(dir, "sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer listener.Close()
	if got := tarEntries(t, packed(t, dir)); strings.Join(got, "\n") != "file a.txt 644 a" {
		t.Fatalf("entries: %v", got)
	}
}

func TestPackKeepsPermissionBitsAndTheMtimeInSeconds(t *testing.T) {
	dir := tree(t, map[string]string{"run.sh": "#!/bin/sh\n", "d/": ""})
	mtime := time.Date(2021, 3, 4, 5, 6, 7, 0, time.UTC)
	for name, mode := range map[string]os.FileMode{"run.sh": 0o750 | os.ModeSetuid, "d": 0o700 | os.ModeSticky} {
		if err := os.Chmod(filepath.Join(dir, name), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(filepath.Join(dir, name), mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	tr := tar.NewReader(bytes.NewReader(packed(t, dir)))
	want := map[string]int64{"d/": 0o1700, "run.sh": 0o4750}
	for h, err := tr.Next(); err != io.EOF; h, err = tr.Next() {
		if err != nil {
			t.Fatal(err)
		}
		if h.Mode != want[h.Name] || !h.ModTime.Equal(mtime) {
			t.Fatalf("%s: mode %o mtime %v, want %o %v", h.Name, h.Mode, h.ModTime, want[h.Name], mtime)
		}
	}
}

func TestPackWritesLongAndUnicodeNamesThatReadBackWhole(t *testing.T) {
	long := strings.Repeat("deep/", 60) + "end.txt"
	dir := tree(t, map[string]string{long: "long", "ünïcødé 名前 🚀.txt": "unicode", "l": "-> " + strings.Repeat("x", 200)})
	got := strings.Join(tarEntries(t, packed(t, dir)), "\n")
	for _, want := range []string{"file " + long + " 644 long", "file ünïcødé 名前 🚀.txt 644 unicode", "symlink l -> " + strings.Repeat("x", 200)} {
		if !strings.Contains(got, want) {
			t.Fatalf("entries lack %q:\n%s", want, got)
		}
	}
}

func TestPackFailsNamingADirectoryThatDoesNotExist(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing")
	err := Pack(io.Discard, missing)
	var agentErr *Error
	if !errors.As(err, &agentErr) || agentErr.Code != CodeOutputs || !strings.Contains(err.Error(), missing) {
		t.Fatalf("error %v, want E_OUTPUTS naming %s", err, missing)
	}
}

func TestPackFailsNamingAFileThatShrinksWhileItIsPacked(t *testing.T) {
	dir := tree(t, map[string]string{})
	file := filepath.Join(dir, "growing.log")
	if err := os.WriteFile(file, make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	// The file's header is the first write; the file shrinks right after it.
	w := &hook{on: func() { _ = os.Truncate(file, 1000) }}
	err := Pack(w, dir)
	want := "outputs: " + file + " shrank from 1048576 to 1000 bytes while being packed"
	if err == nil || err.Error() != want {
		t.Fatalf("error %v, want %q", err, want)
	}
}

func TestPackReturnsTheWritersErrorAsItIs(t *testing.T) {
	dir := tree(t, map[string]string{"a.txt": "a"})
	if err := Pack(failing{}, dir); !errors.Is(err, errLost) {
		t.Fatalf("error %v, want %v", err, errLost)
	}
}

// hook is a writer that calls on before its first write.
type hook struct {
	on     func()
	called bool
}

func (h *hook) Write(p []byte) (int, error) {
	if !h.called {
		h.called = true
		h.on()
	}
	return len(p), nil
}

// failing is a writer that always fails.
type failing struct{}

func (failing) Write(p []byte) (int, error) { return 0, errLost }
