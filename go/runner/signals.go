package runner

import (
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// termSignals are the signals that stop an instance.
var termSignals = []os.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP}

// termWriteLimit bounds the write of the term line (the controller reads its socket all the time).
const termWriteLimit = 5 * time.Second

// terms catches SIGTERM, SIGINT and SIGHUP: before the hello line, the caller
// watches them itself; after it, the first becomes one term line and the
// others are ignored. A signal that was ignored when the process started stays
// ignored (as under nohup), so an app this process execs inherits it that way.
type terms struct {
	caught []os.Signal
	ch     chan os.Signal
	exec   chan chan os.Signal
}

// catchTerms starts catching the termination signals, and SIGPIPE: a reader of
// stdout that went away is then EPIPE on a write, which the relay ignores.
// Notify, not signal.Ignore: an ignored signal would stay ignored in an exec'd app.
func catchTerms() *terms {
	t := &terms{ch: make(chan os.Signal, 4), exec: make(chan chan os.Signal)}
	for _, sig := range termSignals {
		if !signal.Ignored(sig) {
			t.caught = append(t.caught, sig)
		}
	}
	if len(t.caught) > 0 {
		signal.Notify(t.ch, t.caught...)
	}
	if !signal.Ignored(syscall.SIGPIPE) {
		signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)
	}
	return t
}

// forward sends one term line on conn for the first signal (and, from then on,
// for none), until beforeExec is called.
func (t *terms) forward(conn net.Conn) {
	go func() {
		var first os.Signal
		for {
			select {
			case sig := <-t.ch:
				if first == nil {
					first = sig
					_ = conn.SetWriteDeadline(time.Now().Add(termWriteLimit))
					_, _ = conn.Write([]byte(termLine)) // a failed write: the socket's end tells the relay
				}
			case reply := <-t.exec:
				if len(t.caught) > 0 {
					signal.Reset(t.caught...)
				}
				for first == nil && len(t.ch) > 0 {
					first = <-t.ch
				}
				reply <- first
				return
			}
		}
	}()
}

// beforeExec gives the signals back their default action and returns the
// first one caught, if any: a signal from now on ends the process as it would
// end the app, and one that came before means the instance is to stop, not start.
func (t *terms) beforeExec() os.Signal {
	reply := make(chan os.Signal)
	t.exec <- reply
	return <-reply
}

// statusOf is the exit status of a process a signal ended: 128 + its number.
func statusOf(sig os.Signal) int {
	if s, ok := sig.(syscall.Signal); ok {
		return 128 + int(s)
	}
	return 128
}
