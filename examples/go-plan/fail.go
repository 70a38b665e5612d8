package main

import (
	"errors"

	"github.com/testground/sdk-go/run"
	"github.com/testground/sdk-go/runtime"
)

// fail returns an error, so the SDK records a failure event for the instance.
func fail(runenv *runtime.RunEnv, _ *run.InitContext) error {
	runenv.RecordMessage("failing on purpose")
	return errors.New("fail: this test case fails on purpose")
}
