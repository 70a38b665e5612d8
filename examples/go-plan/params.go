package main

import (
	"context"
	"time"

	"github.com/testground/sdk-go/runtime"
)

// intParam reads an int param, or def when the run did not set it.
// Testground passes every declared param with its default; the default here
// matters only when the plan is started by hand.
func intParam(runenv *runtime.RunEnv, name string, def int) int {
	if !runenv.IsParamSet(name) {
		return def
	}
	return runenv.IntParam(name)
}

// withTimeout bounds a test case's waits by the timeout_secs param (default 60).
func withTimeout(runenv *runtime.RunEnv) (context.Context, context.CancelFunc) {
	secs := intParam(runenv, "timeout_secs", 60)
	return context.WithTimeout(context.Background(), time.Duration(secs)*time.Second)
}
