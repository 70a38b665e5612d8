// Command sync-load-go generates the load of benchmark B5': N WebSocket clients against one
// Testground sync service (ours or Go's, the same program for both), run phase by
// phase: connect, signal_entry, barrier, pub/sub. It prints one JSON object with
// each phase's wall time and the service's CPU time and memory at its end.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"syscall"
	"time"
)

func main() {
	cfg := config{}
	flag.StringVar(&cfg.url, "url", "", "the service's ws:// URL")
	flag.IntVar(&cfg.clients, "clients", 1000, "clients: each connects, signals entry and waits on the barrier")
	flag.IntVar(&cfg.publishers, "publishers", 0, "how many of the clients publish one message each (0: all of them); every client reads every message")
	flag.StringVar(&cfg.prefix, "prefix", "run:load:plan:bench:case:scale", "prefix of the state and topic names")
	flag.IntVar(&cfg.serverPid, "server-pid", 0, "pid of the service, for its CPU time and memory from /proc (0: not measured)")
	flag.IntVar(&cfg.dialParallel, "dial-parallel", 256, "most handshakes in flight at once")
	flag.DurationVar(&cfg.phaseTimeout, "phase-timeout", 2*time.Minute, "bound of each of connect, signal_entry and barrier; past it the run fails")
	flag.DurationVar(&cfg.pubsubTimeout, "pubsub-timeout", 10*time.Minute, "bound of pub/sub; past it the run stops and reports how far it got")
	flag.Parse()
	if err := cfg.validate(); err != nil {
		fmt.Fprintf(os.Stderr, "sync-load-go: %v\n", err)
		flag.Usage()
		os.Exit(2)
	}
	if err := raiseFileLimit(uint64(cfg.clients) + 64); err != nil {
		fmt.Fprintf(os.Stderr, "sync-load-go: %v\n", err)
		os.Exit(1)
	}
	result, err := run(cfg)
	if err != nil {
		fmt.Fprintf(os.Stderr, "sync-load-go: %v\n", err)
		os.Exit(1)
	}
	if err := json.NewEncoder(os.Stdout).Encode(result); err != nil {
		fmt.Fprintf(os.Stderr, "sync-load-go: %v\n", err)
		os.Exit(1)
	}
}

type config struct {
	url           string
	clients       int
	publishers    int
	prefix        string
	serverPid     int
	dialParallel  int
	phaseTimeout  time.Duration
	pubsubTimeout time.Duration
}

func (c *config) validate() error {
	if c.url == "" {
		return fmt.Errorf("-url is required")
	}
	if c.clients < 1 {
		return fmt.Errorf("-clients: expected at least 1, got %d", c.clients)
	}
	if c.publishers == 0 {
		c.publishers = c.clients
	}
	if c.publishers < 1 || c.publishers > c.clients {
		return fmt.Errorf("-publishers: expected 1..%d (the clients), got %d", c.clients, c.publishers)
	}
	if c.dialParallel < 1 {
		return fmt.Errorf("-dial-parallel: expected at least 1, got %d", c.dialParallel)
	}
	return nil
}

// Raise the soft RLIMIT_NOFILE to the hard limit; fail when even that is below `need`.
func raiseFileLimit(need uint64) error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("getrlimit: %w", err)
	}
	if lim.Max < need {
		return fmt.Errorf("RLIMIT_NOFILE: the hard limit is %d open files, the clients need %d (raise it with ulimit -Hn as root)", lim.Max, need)
	}
	if lim.Cur < lim.Max {
		lim.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			return fmt.Errorf("setrlimit: %w", err)
		}
	}
	return nil
}
