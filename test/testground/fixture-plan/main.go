// Command greeter is a small Testground plan for the daemon test: every instance claims a
// sequence number from the sync service, records a message, writes a file to its outputs
// and waits at a barrier until all instances have written theirs.
package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/testground/sdk-go/run"
	"github.com/testground/sdk-go/runtime"
)

func main() {
	run.InvokeMap(map[string]interface{}{
		"greet": run.InitializedTestCaseFn(greet),
	})
}

func greet(runenv *runtime.RunEnv, initCtx *run.InitContext) error {
	text := fmt.Sprintf("hello from instance %d of %d", initCtx.GlobalSeq, runenv.TestInstanceCount)
	runenv.RecordMessage(text)
	file := filepath.Join(runenv.TestOutputsPath, "greeting.txt")
	if err := os.WriteFile(file, []byte(text+"\n"), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", file, err)
	}
	initCtx.SyncClient.MustSignalAndWait(context.Background(), "greeted", runenv.TestInstanceCount)
	return nil
}
