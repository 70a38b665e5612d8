// Command remote-runner is the process Testground's local:exec starts for every
// instance: it hands the instance to the run's controller on this machine and
// relays its output and exit status; see package runner.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/remote-runner/remote-runner/go/runner"
)

const usage = `usage: remote-runner --job <job.json> [--controller '<command line>']   run the instance as the job description says
       remote-runner --app <program>  [--controller '<command line>']   run this program where remote-runners says (a plan that places itself)
  Both hand the instance to the run's controller on this machine (found by TEST_RUN,
  started if none runs yet: --controller, split on spaces, default remote-runner-controller
  from PATH, with --socket <path> appended) and end as it says.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run maps the command line to the library and its outcome to an exit code.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == runner.DetachArg {
		return runner.Detach(args[1:])
	}
	opts, help, err := parse(args)
	if help {
		fmt.Fprint(stdout, usage)
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "remote-runner: %s (see remote-runner --help)\n", err)
		return 2
	}
	code, err := runner.Run(opts, stdout, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "remote-runner: %s\n", err)
	}
	return code
}

// parse reads the flags: exactly one of --job and --app (a later one of the
// same flag wins), --controller, --help.
func parse(args []string) (runner.Options, bool, error) {
	var opts runner.Options
	var controller string
	var help bool
	flags := flag.NewFlagSet("remote-runner", flag.ContinueOnError)
	flags.SetOutput(io.Discard)
	flags.StringVar(&opts.Job, "job", "", "")
	flags.StringVar(&opts.App, "app", "", "")
	flags.StringVar(&controller, "controller", strings.Join(runner.DefaultController, " "), "")
	flags.BoolVar(&help, "help", false, "")
	if err := flags.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return opts, true, nil
		}
		return opts, false, err
	}
	if help {
		return opts, true, nil
	}
	switch {
	case flags.NArg() > 0:
		return opts, false, fmt.Errorf("unexpected argument %q", flags.Arg(0))
	case (opts.Job == "") == (opts.App == ""):
		return opts, false, errors.New("give exactly one of --job <job.json> and --app <program>")
	}
	opts.Controller = strings.Fields(controller)
	if len(opts.Controller) == 0 {
		return opts, false, errors.New("--controller needs a command line")
	}
	return opts, false, nil
}
