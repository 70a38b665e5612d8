// Command go-plan is an example Testground plan: it shows where each instance ran.
package main

import (
	"github.com/remote-runner/remote-runner/go/place"
	"github.com/testground/sdk-go/run"
)

// testcases maps the manifest's test case names to their functions.
var testcases = map[string]interface{}{
	"placement": run.InitializedTestCaseFn(placement),
	"fail":      run.InitializedTestCaseFn(fail),
	"sleep":     run.InitializedTestCaseFn(sleep),
}

func main() {
	// Under Testground's local:exec, go to the host remote-runners names.
	place.Elsewhere()
	run.InvokeMap(testcases)
}
