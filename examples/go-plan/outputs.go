package main

import (
	"encoding/json"
	"os"
	"path/filepath"

	"github.com/testground/sdk-go/runtime"
)

// writeOutput writes data to name in the instance's outputs dir, which the
// runner collects when the run ends.
func writeOutput(runenv *runtime.RunEnv, name string, data []byte) error {
	return os.WriteFile(filepath.Join(runenv.TestOutputsPath, name), data, 0o644)
}

// writeJSON writes v, indented, to name in the instance's outputs dir.
func writeJSON(runenv *runtime.RunEnv, name string, v interface{}) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return writeOutput(runenv, name, append(data, '\n'))
}
