// Command remote-agent runs test-plan instances on the host the runner reached
// over SSH and streams them back on stdout: one per process (run), or every
// instance of a run on this host (serve); see package agent.
package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/remote-runner/remote-runner/go/agent"
)

const usage = `usage: remote-agent run          run the job read as one JSON line on stdin
       remote-agent serve        run every instance that control lines on stdin start, each under its id
       remote-agent pack <dir>   write <dir> to stdout as a tar stream
       remote-agent version      print the version
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run maps the command line to the library and its outcome to an exit code.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	switch {
	case len(args) == 1 && args[0] == "run":
		code, err := agent.Run(stdin, stdout)
		if err != nil {
			return fail(stderr, err)
		}
		return code
	case len(args) == 1 && args[0] == "serve":
		return agent.Serve(stdin, stdout)
	case len(args) == 2 && args[0] == "pack":
		out := bufio.NewWriterSize(stdout, 256<<10)
		err := agent.Pack(out, args[1])
		if err == nil {
			err = out.Flush()
		}
		if err != nil {
			return fail(stderr, err)
		}
		return 0
	case len(args) == 1 && args[0] == "version":
		fmt.Fprintln(stdout, "remote-agent", agent.Version)
		return 0
	}
	fmt.Fprint(stderr, usage)
	return 2
}

// fail prints err as one line and returns the exit code of a failure.
func fail(stderr io.Writer, err error) int {
	fmt.Fprintf(stderr, "remote-agent: %s\n", strings.ReplaceAll(err.Error(), "\n", " "))
	return 1
}
