package agent

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
)

// JobVersion is the only job line version this agent understands.
const JobVersion = 1

// MaxGraceMs bounds a job's time between TERM and KILL.
const MaxGraceMs = 600_000

// Job is what the controller asks for: one program, its arguments and its environment; never a shell string.
type Job struct {
	Version int
	// Command is the absolute path of the program to run.
	Command string
	Args    []string
	// Argv0 is what the program sees as its own name (argv[0]); the command when empty.
	Argv0 string
	// Env is the instance's environment; the agent adds PATH, TEST_OUTPUTS_PATH and TEST_TEMP_PATH.
	Env map[string]string
	// GraceMs is the time between TERM and KILL when the app is stopped.
	GraceMs int
}

var jobFields = []string{"version", "command", "args", "env", "graceMs"}

// optionalJobFields may be left out.
var optionalJobFields = []string{"argv0"}

// ParseJob validates a job line strictly: every field present, no other field, each of its type.
func ParseJob(line []byte) (Job, error) {
	job, err := parseJob(line)
	if err != nil {
		return Job{}, &Error{Code: CodeJob, Message: "invalid job line: " + err.Error(), Err: err}
	}
	return job, nil
}

// parseJob is ParseJob with an error that names the field but not the line.
func parseJob(raw []byte) (Job, error) {
	var job Job
	fields, err := jobObject(raw)
	if err == nil {
		err = decodeJob(fields, &job)
	}
	return job, err
}

// The job line's fields, after checking that none is missing or unknown.
func jobObject(line []byte) (map[string]json.RawMessage, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(line, &fields); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) {
			return nil, fmt.Errorf("expected a JSON object, got %s", typeErr.Value)
		}
		return nil, err
	}
	if fields == nil {
		return nil, errors.New("expected a JSON object, got null")
	}
	var unknown []string
	for name := range fields {
		if !contains(jobFields, name) && !contains(optionalJobFields, name) {
			unknown = append(unknown, fmt.Sprintf("%q", name))
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return nil, fmt.Errorf("unknown field %s", strings.Join(unknown, ", "))
	}
	for _, name := range jobFields {
		if _, ok := fields[name]; !ok {
			return nil, fmt.Errorf("missing field %q", name)
		}
	}
	return fields, nil
}

// Decode the checked fields into `job`, the first failure naming its field.
func decodeJob(fields map[string]json.RawMessage, job *Job) error {
	version, err := integer(fields["version"], "version")
	if err != nil {
		return err
	}
	if version != JobVersion {
		return fmt.Errorf("version: expected %d, got %d", JobVersion, version)
	}
	job.Version = version
	if job.Command, err = str(fields["command"], "command"); err != nil {
		return err
	}
	if !strings.HasPrefix(job.Command, "/") {
		return fmt.Errorf("command: expected an absolute path, got %q", job.Command)
	}
	if job.Args, err = strs(fields["args"]); err != nil {
		return err
	}
	if raw, ok := fields["argv0"]; ok {
		if job.Argv0, err = str(raw, "argv0"); err != nil {
			return err
		}
	}
	if job.Env, err = env(fields["env"]); err != nil {
		return err
	}
	if job.GraceMs, err = integer(fields["graceMs"], "graceMs"); err != nil {
		return err
	}
	if job.GraceMs < 0 || job.GraceMs > MaxGraceMs {
		return fmt.Errorf("graceMs: expected an integer from 0 to %d, got %d", MaxGraceMs, job.GraceMs)
	}
	return nil
}

// A JSON string that is not null.
func str(raw json.RawMessage, where string) (string, error) {
	var s string
	if isNull(raw) || json.Unmarshal(raw, &s) != nil {
		return "", fmt.Errorf("%s: expected a string, got %s", where, excerpt(raw))
	}
	return s, nil
}

// A JSON array of strings.
func strs(raw json.RawMessage) ([]string, error) {
	var items []json.RawMessage
	if isNull(raw) || json.Unmarshal(raw, &items) != nil {
		return nil, fmt.Errorf("args: expected an array of strings, got %s", excerpt(raw))
	}
	out := make([]string, len(items))
	for i, item := range items {
		s, err := str(item, fmt.Sprintf("args[%d]", i))
		if err != nil {
			return nil, err
		}
		out[i] = s
	}
	return out, nil
}

// A JSON object of strings.
func env(raw json.RawMessage) (map[string]string, error) {
	var items map[string]json.RawMessage
	if isNull(raw) || json.Unmarshal(raw, &items) != nil {
		return nil, fmt.Errorf("env: expected an object of strings, got %s", excerpt(raw))
	}
	out := make(map[string]string, len(items))
	for name, item := range items {
		s, err := str(item, fmt.Sprintf("env[%q]", name))
		if err != nil {
			return nil, err
		}
		out[name] = s
	}
	return out, nil
}

// A JSON number that is a whole number (1.0 and 1e3 count, as they do in JavaScript).
func integer(raw json.RawMessage, where string) (int, error) {
	var f float64
	if isNull(raw) || json.Unmarshal(raw, &f) != nil || f != math.Trunc(f) || math.Abs(f) > 1<<53 {
		return 0, fmt.Errorf("%s: expected an integer, got %s", where, excerpt(raw))
	}
	return int(f), nil
}

func isNull(raw json.RawMessage) bool { return bytes.Equal(bytes.TrimSpace(raw), []byte("null")) }

// A value for a message: at most 60 bytes of it.
func excerpt(raw json.RawMessage) string {
	s := string(bytes.TrimSpace(raw))
	if len(s) > 60 {
		s = s[:57] + "..."
	}
	return s
}

func contains(list []string, s string) bool {
	for _, item := range list {
		if item == s {
			return true
		}
	}
	return false
}
