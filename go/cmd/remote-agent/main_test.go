package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/remote-runner/remote-runner/go/agent"
)

// call runs the command line in-process and returns its exit code, stdout and stderr.
func call(args ...string) (int, string, string) {
	var stdout, stderr bytes.Buffer
	code := run(args, strings.NewReader(""), &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func TestPrintsUsageAndExits2ForAnythingButRunServePackOrVersion(t *testing.T) {
	for _, args := range [][]string{{}, {"start"}, {"run", "extra"}, {"serve", "extra"}, {"pack"}, {"version", "x"}} {
		code, stdout, stderr := call(args...)
		if code != 2 || stdout != "" || !strings.HasPrefix(stderr, "usage: remote-agent run") || !strings.Contains(stderr, "remote-agent serve") {
			t.Fatalf("%q: exit %d, stdout %q, stderr %q", args, code, stdout, stderr)
		}
	}
}

func TestPrintsTheVersion(t *testing.T) {
	if code, stdout, _ := call("version"); code != 0 || stdout != "remote-agent "+agent.Version+"\n" {
		t.Fatalf("exit %d, stdout %q", code, stdout)
	}
}

func TestPacksADirToStdout(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "a.txt"), []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := call("pack", dir)
	if code != 0 || stderr != "" || !strings.Contains(stdout, "a.txt") || !strings.Contains(stdout, "hello") || len(stdout)%512 != 0 {
		t.Fatalf("exit %d, %d bytes, stderr %q", code, len(stdout), stderr)
	}
}

func TestFailsWithOneLineNamingADirItCannotPack(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing")
	code, _, stderr := call("pack", missing)
	if code != 1 || stderr != "remote-agent: outputs: cannot list "+missing+": no such file or directory\n" {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
}
