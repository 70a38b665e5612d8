package runner

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

const (
	// helloWriteLimit bounds the write of the hello line (a controller that accepts but never reads).
	helloWriteLimit = 30 * time.Second
	// relayChunk is the most of a frame this process holds at once: it writes a
	// stdout or stderr frame on as it arrives, in pieces of this size.
	relayChunk = 64 << 10
)

// Options are what the command line says; main has checked them.
type Options struct {
	// Job is the job description's path, App the program of a plan that places itself; exactly one is set.
	Job, App string
	// Controller is the controller's command line (program and arguments); `--socket <path>` is appended.
	Controller []string
}

// Run runs one instance through the run's controller: it refuses an
// environment that is not UTF-8, connects to the controller (starting it if
// need be), says hello, relays stdout and stderr frames to stdout and stderr,
// and returns the instance's exit status, or replaces this process with the app
// (`exec`). An error comes with the exit code to end with (1, or 127 for a
// program that cannot be exec'd); its message is one line.
func Run(opts Options, stdout, stderr io.Writer) (int, error) {
	environ := os.Environ()
	if err := CheckEnvironment(environ); err != nil {
		return 1, err
	}
	env := envObject(environ)
	testRun := env["TEST_RUN"]
	if testRun == "" {
		return 1, &Error{Code: CodeEnv, Message: "TEST_RUN is not set: the instance's process finds its run's controller by the run's id"}
	}
	hello := helloLine{Op: "hello", Version: 1, Pid: os.Getpid(), Env: env}
	var err error
	if opts.Job != "" {
		hello.Job, err = filepath.Abs(opts.Job)
	} else {
		hello.App, err = filepath.Abs(opts.App)
	}
	if err != nil {
		return 1, &Error{Code: CodeEnv, Message: "cannot make the path absolute: " + err.Error(), Err: err}
	}
	controller := opts.Controller
	if len(controller) == 0 {
		controller = DefaultController
	}

	terms := catchTerms()
	f := &finder{socket: SocketPath(os.Getuid(), testRun), command: controller, environ: controllerEnviron(environ), interrupt: terms.ch}
	conn, sig, err := f.connect()
	if err != nil {
		return 1, err
	}
	if sig != nil {
		return statusOf(sig), nil // no instance was started: nothing to wait for
	}
	defer conn.Close()
	_ = conn.SetWriteDeadline(time.Now().Add(helloWriteLimit))
	if _, err := conn.Write(encodeLine(hello)); err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return 1, &Error{Code: CodeGone, Message: fmt.Sprintf("the run's controller did not read the hello line within %s", helloWriteLimit), Err: err}
		}
		return 1, wentAway(err)
	}
	terms.forward(conn)
	return relay(conn, stdout, stderr, terms, environ)
}

// relay writes the controller's stdout and stderr frames on until an event
// says how the instance ended, and returns its exit status.
func relay(conn net.Conn, stdout, stderr io.Writer, terms *terms, environ []string) (int, error) {
	in := bufio.NewReaderSize(conn, relayChunk)
	buf := make([]byte, relayChunk)
	for {
		kind, length, err := readHeader(in)
		if err != nil {
			return 1, readError(err)
		}
		switch kind {
		case frameStdout:
			err = copyFrame(stdout, in, buf, length)
		case frameStderr:
			err = copyFrame(stderr, in, buf, length)
		case frameEvent:
			payload := make([]byte, length)
			if _, err := io.ReadFull(in, payload); err != nil {
				return 1, readError(err)
			}
			ev, err := parseEvent(payload)
			if err != nil {
				return 1, err
			}
			return end(ev, conn, terms, environ)
		}
		if err != nil {
			return 1, readError(err)
		}
	}
}

// end acts on the event that ends the relay: exit with the instance's
// status, fail with the controller's message, or become the app.
func end(ev event, conn net.Conn, terms *terms, environ []string) (int, error) {
	switch ev.Type {
	case "exit":
		return *ev.Status, nil
	case "error":
		return 1, &Error{Code: CodeInstance, Message: oneLine(*ev.Message)}
	}
	if sig := terms.beforeExec(); sig != nil {
		return statusOf(sig), nil // told to stop before the app started: it never runs
	}
	conn.Close()
	err := syscall.Exec(*ev.Program, []string{*ev.Argv0}, environ)
	return 127, &Error{Code: CodeExec, Message: fmt.Sprintf("cannot run %s: %v", *ev.Program, err), Err: err}
}

// copyFrame writes length bytes of in to w as they arrive; a failed write
// does not stop the relay (the other stream, and the exit status, still matter).
func copyFrame(w io.Writer, in io.Reader, buf []byte, length int) error {
	for length > 0 {
		n, err := in.Read(buf[:min(length, len(buf))])
		if n > 0 {
			_, _ = w.Write(buf[:n])
			length -= n
		}
		if err != nil && length > 0 {
			if errors.Is(err, io.EOF) {
				return io.ErrUnexpectedEOF
			}
			return err
		}
	}
	return nil
}

// readError is the error for a failed read of the socket: a protocol error
// as it is, anything else means the controller went away.
func readError(err error) error {
	var e *Error
	if errors.As(err, &e) {
		return err
	}
	return wentAway(err)
}

// wentAway is the error of a socket that ended before an exit or exec event.
func wentAway(err error) error {
	return &Error{Code: CodeGone, Message: "the run's controller went away", Err: err}
}

// oneLine is text with its line breaks turned into spaces.
func oneLine(text string) string {
	return strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ").Replace(text)
}
