package agent

// Code says what kind of failure an Error is; callers branch on it.
type Code string

// The codes of the agent's errors.
const (
	// CodeJob: the job line is missing or invalid.
	CodeJob Code = "E_JOB"
	// CodeWorkdir: the work dir cannot be made or removed.
	CodeWorkdir Code = "E_WORKDIR"
	// CodeOutputs: a path under the outputs dir cannot be packed.
	CodeOutputs Code = "E_OUTPUTS"
)

// Error is the agent's one error type: a stable code, a message that names the
// path or value, and the underlying error.
type Error struct {
	Code    Code
	Message string
	Err     error
}

// Error returns the message, which already carries the cause's text.
func (e *Error) Error() string { return e.Message }

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }
