package runner

import (
	"io"
	"os"
	"strconv"
	"strings"
	"testing"
)

// rssLimit is what the runner may hold at its peak while it relays; it needs a few MiB.
const rssLimit = 12 << 20

func TestStaysSmallInMemoryWhileItRelays(t *testing.T) {
	t.Parallel()
	r := newRun(t)
	f := r.listen()
	c := r.command(r.env(), "--job", "job.json")
	stdout, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	c.cmd.Stdout = w
	c.cmd.Stderr = io.Discard
	c.run()
	w.Close()
	relayed := make(chan int64, 1)
	go func() {
		n, _ := io.Copy(io.Discard, stdout)
		stdout.Close()
		relayed <- n
	}()
	p := f.accept()
	p.hello()
	idle := statusKiB(t, c.cmd.Process.Pid, "VmRSS")
	big := frameOf(frameStdout, make([]byte, MaxFrame))
	small := frameOf(frameStderr, []byte(strings.Repeat("a line of progress\n", 3)))
	var sent int64
	var rss []int
	for i := 0; i < 256; i++ {
		p.send(big)
		sent += MaxFrame
		for j := 0; j < 64; j++ {
			p.send(small)
		}
		if i%32 == 31 {
			rss = append(rss, statusKiB(t, c.cmd.Process.Pid, "VmRSS"))
		}
	}
	peak := statusKiB(t, c.cmd.Process.Pid, "VmHWM")
	anon, file := statusKiB(t, c.cmd.Process.Pid, "RssAnon"), statusKiB(t, c.cmd.Process.Pid, "RssFile")
	p.event(`{"type":"exit","status":0}`)
	if code := c.wait(); code != 0 {
		t.Fatalf("exit %d", code)
	}
	if n := <-relayed; n != sent {
		t.Fatalf("relayed %d bytes of %d", n, sent)
	}
	t.Logf("VmRSS %d KiB after the hello; relaying %d MiB in 1 MiB frames and 16384 small ones: VmRSS %v KiB (at the end %d KiB anonymous, %d KiB of the binary), VmHWM %d KiB", idle, sent>>20, rss, anon, file, peak)
	if peak<<10 > rssLimit {
		t.Fatalf("peak RSS %d KiB, more than %d KiB", peak, rssLimit>>10)
	}
}

// statusKiB reads one field (in kB) of /proc/<pid>/status.
func statusKiB(t *testing.T, pid int, field string) int {
	t.Helper()
	status, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if value, ok := strings.CutPrefix(line, field+":"); ok {
			kib, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(value), " kB"))
			if err != nil {
				t.Fatal(err)
			}
			return kib
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}
