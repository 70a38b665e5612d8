package main

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	"github.com/remote-runner/remote-runner/go/runner"
)

// call runs the command line in-process and returns its exit code, stdout and stderr.
func call(args ...string) (int, string, string) {
	var stdout, stderr bytes.Buffer
	code := run(args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func TestExits2WithOneLineForAWrongCommandLine(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "give exactly one of --job <job.json> and --app <program>"},
		{[]string{"--controller", "ctl"}, "give exactly one of --job <job.json> and --app <program>"},
		{[]string{"--job", "j.json", "--app", "./plan"}, "give exactly one of --job <job.json> and --app <program>"},
		{[]string{"--job", ""}, "give exactly one of --job <job.json> and --app <program>"},
		{[]string{"--job"}, "flag needs an argument: -job"},
		{[]string{"--jobs", "j.json"}, "flag provided but not defined: -jobs"},
		{[]string{"--job", "j.json", "extra"}, `unexpected argument "extra"`},
		{[]string{"--job", "j.json", "--controller", "  "}, "--controller needs a command line"},
	} {
		code, stdout, stderr := call(tc.args...)
		if code != 2 || stdout != "" || stderr != "remote-runner: "+tc.want+" (see remote-runner --help)\n" {
			t.Fatalf("%q: exit %d, stdout %q, stderr %q", tc.args, code, stdout, stderr)
		}
	}
}

func TestPrintsTheUsageForHelp(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"-h"}, {"--job", "j.json", "--help"}} {
		code, stdout, stderr := call(args...)
		if code != 0 || stderr != "" || !strings.HasPrefix(stdout, "usage: remote-runner --job <job.json>") || !strings.Contains(stdout, "remote-runner --app <program>") {
			t.Fatalf("%q: exit %d, stdout %q, stderr %q", args, code, stdout, stderr)
		}
	}
}

func TestTakesTheLaterOfTwoJobFlagsAndSplitsTheControllerOnSpaces(t *testing.T) {
	opts, help, err := parse([]string{"--job", "/nix/store/x/share/job.json", "--job=other.json", "--controller", "node  /opt/controller.mjs --idle 10s"})
	want := []string{"node", "/opt/controller.mjs", "--idle", "10s"}
	if err != nil || help || opts.Job != "other.json" || opts.App != "" || !slices.Equal(opts.Controller, want) {
		t.Fatalf("%+v, %v, %v", opts, help, err)
	}
	opts, _, err = parse([]string{"--app", "./plan"})
	if err != nil || !slices.Equal(opts.Controller, runner.DefaultController) {
		t.Fatalf("%+v, %v", opts, err)
	}
}
