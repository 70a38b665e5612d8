// Package place lets a Testground plan built with exec:go place itself on a
// remote host through remote-runner, under Testground's own local:exec runner:
//
//	func main() {
//		place.Elsewhere()
//		run.InvokeMap(testcases)
//	}
//
// When the instance's remote-runners param names a host other than localhost,
// Elsewhere replaces the process with `remote-runner --app <this binary>`
// (remote-runner must be on the PATH of the Testground daemon). The runner
// chooses the host, copies this binary (and its agent) there, and runs it with
// the instance's environment, under a name (argv[0]) that starts with
// PlacedPrefix; in that process, and whenever no placement is asked for,
// Elsewhere returns and the test cases run. The runner starts every app it
// places under such a name, so a plan placed by tg-run never places itself again.
package place

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
)

// PlacedPrefix starts the name (argv[0]) the runner gives every app it runs.
const PlacedPrefix = "remote-runner-placed:"

// Param is the instance param that lists the hosts.
const Param = "remote-runners"

// Runner is the program Elsewhere hands the instance to.
const Runner = "remote-runner"

// Elsewhere returns in the process that should run the test cases, and hands
// the instance to remote-runner otherwise. It exits with a message if the
// handover cannot happen.
func Elsewhere() {
	args, err := decide(os.Args, os.Getenv("TEST_INSTANCE_PARAMS"), exec.LookPath, os.Executable)
	if err == nil && args != nil {
		err = syscall.Exec(args[0], args, os.Environ())
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "place: %v\n", err)
		os.Exit(1)
	}
}

// decide returns nil when the test cases run in this process (restoring the
// program's own name in args), or the command line of the runner when the
// params ask for a host other than localhost.
func decide(args []string, params string, lookPath func(string) (string, error), self func() (string, error)) ([]string, error) {
	if len(args) > 0 && strings.HasPrefix(args[0], PlacedPrefix) {
		args[0] = strings.TrimPrefix(args[0], PlacedPrefix)
		return nil, nil
	}
	hosts, ok := param(params, Param)
	if !ok || onlyLocalhost(hosts) {
		return nil, nil
	}
	runner, err := lookPath(Runner)
	if err != nil {
		return nil, fmt.Errorf("param %s asks to place this instance on other hosts, but %s is not on the PATH (%v); install it where the Testground daemon runs and put it on the daemon's PATH", Param, Runner, errors.Unwrap(err))
	}
	program, err := self()
	if err != nil {
		return nil, fmt.Errorf("cannot find this program's own path for %s: %w", Runner, err)
	}
	return []string{runner, "--app", program}, nil
}

// param reads one param of TEST_INSTANCE_PARAMS (`k=v|k=v`, split on the first `=`).
func param(params, name string) (string, bool) {
	for _, pair := range strings.Split(params, "|") {
		if key, value, found := strings.Cut(pair, "="); found && key == name {
			return value, true
		}
	}
	return "", false
}

// onlyLocalhost is true for a host list that names localhost alone; a list it
// cannot read goes to the runner, which says what is wrong with it.
func onlyLocalhost(hosts string) bool {
	var runners []struct {
		Name string `json:"name"`
	}
	if json.Unmarshal([]byte(hosts), &runners) != nil || len(runners) == 0 {
		return false
	}
	for _, r := range runners {
		if r.Name != "localhost" {
			return false
		}
	}
	return true
}
