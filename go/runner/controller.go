package runner

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const (
	// SpawnLimit bounds the wait for a controller this process started to listen.
	SpawnLimit = 30 * time.Second
	// lockLimit bounds the wait for the lock while another instance starts the controller.
	lockLimit = SpawnLimit + 5*time.Second
	// dialLimit bounds one connect (a full accept queue makes it wait).
	dialLimit = 2 * time.Second
	// reportLimit bounds the wait for the middle process to say the controller started.
	reportLimit = 10 * time.Second
	// pollEvery is the pause between two tries of the socket or the lock.
	pollEvery = 20 * time.Millisecond
	// tailBytes and tailLines bound the end of the controller's log that an error shows.
	tailBytes = 4096
	tailLines = 8
)

// DefaultController is the controller's command line when --controller gives none.
var DefaultController = []string{"remote-runner-controller"}

// SocketPath is where the controller of the run testRun listens for the instances of user uid:
// /tmp/remote-runner-<uid>/<first 20 hex digits of sha256(testRun)>.sock.
func SocketPath(uid int, testRun string) string {
	sum := sha256.Sum256([]byte(testRun))
	return filepath.Join("/tmp", "remote-runner-"+strconv.Itoa(uid), hex.EncodeToString(sum[:])[:20]+".sock")
}

// finder connects to the run's controller, starting it when none answers.
type finder struct {
	socket  string
	command []string
	environ []string
	// interrupt is the termination signals; one ends the search with that signal.
	interrupt <-chan os.Signal
}

// connect returns a connection to the controller, or the signal that came first.
func (f *finder) connect() (net.Conn, os.Signal, error) {
	if err := privateDir(filepath.Dir(f.socket)); err != nil {
		return nil, nil, err
	}
	var lock *os.File
	defer func() {
		if lock != nil {
			lock.Close() // releases the flock
		}
	}()
	deadline := time.Now().Add(lockLimit)
	for {
		conn, err := dial(f.socket)
		switch {
		case err == nil:
			return conn, nil, nil
		case busy(err):
		case !absent(err):
			return nil, nil, f.cannotConnect(err)
		default:
			if lock == nil {
				if lock, err = os.OpenFile(f.socket+".lock", os.O_RDWR|os.O_CREATE, 0o600); err != nil {
					return nil, nil, &Error{Code: CodeController, Message: "cannot open the lock of the run's controller: " + err.Error(), Err: err}
				}
			}
			locked, err := tryLock(lock)
			if err != nil {
				return nil, nil, &Error{Code: CodeController, Message: fmt.Sprintf("cannot lock %s: %v", lock.Name(), err), Err: err}
			}
			if locked {
				return f.startAndWait()
			}
		}
		if time.Now().After(deadline) {
			return nil, nil, &Error{Code: CodeController, Message: fmt.Sprintf("another instance has been starting the run's controller for %s and it does not answer on %s; %s", lockLimit, f.socket, logTail(f.socket+".log", 0))}
		}
		if sig := f.pause(); sig != nil {
			return nil, sig, nil
		}
	}
}

// startAndWait runs under the lock: it tries the socket once more, starts the
// controller if it is still absent, and waits for it to listen.
func (f *finder) startAndWait() (net.Conn, os.Signal, error) {
	conn, err := dial(f.socket)
	if err == nil {
		return conn, nil, nil
	}
	pid := 0
	logFrom := int64(0)
	if absent(err) {
		if errors.Is(err, syscall.ECONNREFUSED) {
			_ = os.Remove(f.socket) // a controller that died left it; the new one must bind the path
		}
		if info, err := os.Stat(f.socket + ".log"); err == nil {
			logFrom = info.Size()
		}
		pruneStale(filepath.Dir(f.socket), f.socket, time.Now())
		if pid, err = f.start(); err != nil {
			return nil, nil, err
		}
	}
	deadline := time.Now().Add(SpawnLimit)
	for {
		conn, err := dial(f.socket)
		switch {
		case err == nil:
			return conn, nil, nil
		case !absent(err) && !busy(err):
			return nil, nil, f.cannotConnect(err)
		case pid != 0 && gone(pid):
			return nil, nil, &Error{Code: CodeController, Message: fmt.Sprintf("the run's controller (%s) exited before it listened on %s; %s", strings.Join(f.command, " "), f.socket, logTail(f.socket+".log", logFrom))}
		case time.Now().After(deadline):
			return nil, nil, &Error{Code: CodeController, Message: fmt.Sprintf("the run's controller (%s) did not listen on %s within %s; %s", strings.Join(f.command, " "), f.socket, SpawnLimit, logTail(f.socket+".log", logFrom))}
		}
		if sig := f.pause(); sig != nil {
			return nil, sig, nil
		}
	}
}

// start starts the controller through a middle process that exits at once, so
// the controller is no child of this process (nor of an app it execs): it runs
// in a session of its own, stdin from /dev/null, stdout and stderr appended to
// <socket>.log, with the instance's environment. It returns the controller's pid.
func (f *finder) start() (int, error) {
	fail := func(err error) (int, error) {
		return 0, &Error{Code: CodeController, Message: fmt.Sprintf("cannot start the run's controller (%s): %v", strings.Join(f.command, " "), err), Err: err}
	}
	program, err := exec.LookPath(f.command[0])
	if err != nil {
		if errors.Is(err, exec.ErrNotFound) && !strings.Contains(f.command[0], "/") {
			return fail(fmt.Errorf("%s is not on PATH (--controller '<command line>' names another)", f.command[0]))
		}
		return fail(err)
	}
	self, err := os.Executable()
	if err != nil {
		return fail(err)
	}
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return fail(err)
	}
	defer devnull.Close()
	log, err := os.OpenFile(f.socket+".log", os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fail(err)
	}
	defer log.Close()
	report, reportW, err := os.Pipe()
	if err != nil {
		return fail(err)
	}
	defer report.Close()
	argv := append([]string{self, DetachArg, program}, f.command[1:]...)
	argv = append(argv, "--socket", f.socket)
	middle, err := os.StartProcess(self, argv, &os.ProcAttr{Env: f.environ, Files: []*os.File{devnull, log, log, reportW}})
	reportW.Close()
	if err != nil {
		return fail(err)
	}
	_ = report.SetReadDeadline(time.Now().Add(reportLimit))
	said, err := io.ReadAll(io.LimitReader(report, 4096))
	if err != nil {
		_ = middle.Kill()
	}
	_, _ = middle.Wait()
	if err != nil {
		return fail(fmt.Errorf("the process that starts it did not report: %w", err))
	}
	return parseReport(string(said), fail)
}

// parseReport reads what the middle process said: `pid <n>` or `error <text>`.
func parseReport(said string, fail func(error) (int, error)) (int, error) {
	word, rest, _ := strings.Cut(strings.TrimSpace(said), " ")
	if word == "pid" {
		if pid, err := strconv.Atoi(rest); err == nil && pid > 0 {
			return pid, nil
		}
	}
	if word == "error" {
		return fail(errors.New(rest))
	}
	return fail(fmt.Errorf("the process that starts it said %q", said))
}

// pause waits pollEvery, or returns the termination signal that comes first.
func (f *finder) pause() os.Signal {
	timer := time.NewTimer(pollEvery)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case sig := <-f.interrupt:
		return sig
	}
}

// cannotConnect is an error to connect that waiting would not cure.
func (f *finder) cannotConnect(err error) error {
	return &Error{Code: CodeController, Message: fmt.Sprintf("cannot connect to the run's controller on %s: %v", f.socket, err), Err: err}
}

// dial connects to the socket once.
func dial(socket string) (net.Conn, error) {
	return net.DialTimeout("unix", socket, dialLimit)
}

// absent says that no controller listens: no socket, or one that nobody serves.
func absent(err error) bool {
	return errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED)
}

// busy says that a controller listens but has not accepted yet (its accept queue is full).
func busy(err error) bool {
	var netErr net.Error
	return errors.Is(err, syscall.EAGAIN) || (errors.As(err, &netErr) && netErr.Timeout())
}

// tryLock takes the flock of lock if no other process holds it.
func tryLock(lock *os.File) (bool, error) {
	err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	if errors.Is(err, syscall.EWOULDBLOCK) || errors.Is(err, syscall.EINTR) {
		return false, nil
	}
	return err == nil, err
}

// gone says that the process pid has exited (a zombie whose parent does not reap it counts as exited).
func gone(pid int) bool {
	if errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) {
		return true
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false // no /proc here: only kill can tell
	}
	// The state follows the command name, which is in parentheses and may hold any byte.
	after := strings.LastIndexByte(string(stat), ')')
	return after >= 0 && strings.HasPrefix(string(stat[after+1:]), " Z")
}

// privateDir makes the socket's directory (0700), or checks that the one
// there is a directory of this user that nobody else may enter.
func privateDir(dir string) error {
	uid := os.Getuid()
	err := os.Mkdir(dir, 0o700)
	if err == nil {
		err = os.Chmod(dir, 0o700) // whatever the umask left
	}
	if err != nil && !errors.Is(err, fs.ErrExist) {
		return &Error{Code: CodeController, Message: fmt.Sprintf("cannot make %s: %v", dir, err), Err: err}
	}
	info, err := os.Lstat(dir)
	if err != nil {
		return &Error{Code: CodeController, Message: fmt.Sprintf("cannot read %s: %v", dir, err), Err: err}
	}
	st, ok := info.Sys().(*syscall.Stat_t)
	if !info.IsDir() || !ok || int(st.Uid) != uid || info.Mode().Perm()&0o077 != 0 {
		return &Error{Code: CodeController, Message: fmt.Sprintf("%s is not a directory of user %d that only this user may enter (%s); remove it", dir, uid, info.Mode())}
	}
	return nil
}

// logTail is the end of what was appended to the controller's log from offset
// from on, its last lines joined into one line.
func logTail(path string, from int64) string {
	file, err := os.Open(path)
	if err != nil {
		return fmt.Sprintf("it wrote no %s (%v)", path, err)
	}
	defer file.Close()
	info, err := file.Stat()
	if err != nil {
		return fmt.Sprintf("cannot read %s: %v", path, err)
	}
	if start := info.Size() - tailBytes; start > from {
		from = start
	}
	buf := make([]byte, tailBytes)
	n, _ := file.ReadAt(buf, from)
	var lines []string
	for _, line := range strings.Split(string(buf[:n]), "\n") {
		if line = strings.TrimSpace(line); line != "" {
			lines = append(lines, strings.Map(visible, line))
		}
	}
	if len(lines) == 0 {
		return fmt.Sprintf("it wrote nothing to %s", path)
	}
	if len(lines) > tailLines {
		lines = lines[len(lines)-tailLines:]
	}
	return fmt.Sprintf("the end of %s: %s", path, strings.Join(lines, " | "))
}

// visible keeps a rune unless it is a control character, which would break the error's one line.
func visible(r rune) rune {
	if r < 0x20 || r == 0x7f {
		return ' '
	}
	return r
}
