package place

import (
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
)

func found(string) (string, error) { return "/usr/local/bin/remote-runner", nil }
func missing(string) (string, error) {
	return "", &os.PathError{Op: "lookpath", Path: "remote-runner", Err: errors.New("not found")}
}
func self() (string, error) { return "/work/exec-go--plan", nil }

func TestRunsTheCasesHereWhenNoHostIsAskedFor(t *testing.T) {
	for _, params := range []string{"", "timeout_secs=30", `remote-runners=[{"name":"localhost"}]|x=1`} {
		args, err := decide([]string{"plan"}, params, found, self)
		if err != nil || args != nil {
			t.Fatalf("params %q: got %v, %v; want to run here", params, args, err)
		}
	}
}

func TestHandsTheInstanceToTheRunnerForAnotherHost(t *testing.T) {
	params := `timeout_secs=30|remote-runners=[{"name":"localhost"},{"name":"lab-h1","arch":"x86_64-linux"}]`
	args, err := decide([]string{"plan"}, params, found, self)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"/usr/local/bin/remote-runner", "--app", "/work/exec-go--plan"}
	if !reflect.DeepEqual(args, want) {
		t.Fatalf("got %v, want %v", args, want)
	}
}

func TestRunsTheCasesInAPlacedInstanceUnderItsOwnName(t *testing.T) {
	params := `remote-runners=[{"name":"lab-h1","arch":"x86_64-linux"}]`
	given := []string{PlacedPrefix + "/nix/store/x-plan/bin/plan", "x"}
	args, err := decide(given, params, found, self)
	if err != nil || args != nil {
		t.Fatalf("got %v, %v; want to run here", args, err)
	}
	if !reflect.DeepEqual(given, []string{"/nix/store/x-plan/bin/plan", "x"}) {
		t.Fatalf("args are %v, want the prefix removed", given)
	}
}

func TestSaysWhatIsMissingWhenTheRunnerIsNotOnThePath(t *testing.T) {
	_, err := decide([]string{"plan"}, `remote-runners=[{"name":"lab-h1","arch":"x86_64-linux"}]`, missing, self)
	if err == nil || !strings.Contains(err.Error(), "remote-runner is not on the PATH") {
		t.Fatalf("got %v", err)
	}
}

func TestLeavesAListItCannotReadToTheRunner(t *testing.T) {
	args, err := decide([]string{"plan"}, `remote-runners=[oops`, found, self)
	if err != nil || len(args) != 3 {
		t.Fatalf("got %v, %v; want the runner", args, err)
	}
}
