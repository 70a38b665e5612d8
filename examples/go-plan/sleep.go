package main

import (
	"fmt"
	"time"

	"github.com/testground/sdk-go/run"
	"github.com/testground/sdk-go/runtime"
)

// sleep writes started.txt to its outputs, sleeps sleep_secs (default 5) and succeeds.
func sleep(runenv *runtime.RunEnv, _ *run.InitContext) error {
	secs := intParam(runenv, "sleep_secs", 5)
	started := fmt.Sprintf("started at %s\n", time.Now().UTC().Format(time.RFC3339))
	if err := writeOutput(runenv, "started.txt", []byte(started)); err != nil {
		return err
	}
	runenv.RecordMessage("sleeping for %d s", secs)
	time.Sleep(time.Duration(secs) * time.Second)
	return nil
}
