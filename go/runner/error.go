package runner

// Code says what kind of failure an Error is; callers branch on it.
type Code string

// The codes of the runner's errors.
const (
	// CodeEnv: the environment holds a value that is not UTF-8, or no TEST_RUN.
	CodeEnv Code = "E_RUNENV"
	// CodeController: the run's controller cannot be found or started.
	CodeController Code = "E_CONTROLLER"
	// CodeGone: the socket closed before the controller said how the instance ended.
	CodeGone Code = "E_GONE"
	// CodeProtocol: the controller sent something that is not in the wire protocol.
	CodeProtocol Code = "E_PROTOCOL"
	// CodeInstance: the controller could not run the instance (its `error` event).
	CodeInstance Code = "E_INSTANCE"
	// CodeExec: the program of an `exec` event cannot be run.
	CodeExec Code = "E_EXEC"
)

// Error is the runner's one error type: a stable code, a one-line message that
// names the path or value, and the underlying error.
type Error struct {
	Code    Code
	Message string
	Err     error
}

// Error returns the message, which already carries the cause's text.
func (e *Error) Error() string { return e.Message }

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }
