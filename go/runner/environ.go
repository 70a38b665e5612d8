package runner

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// CheckEnvironment refuses an environment entry (NAME=value, as os.Environ
// gives it: bytes, not decoded text) whose name or value is not UTF-8: the
// controller is a Node process, which would replace such bytes, so the app
// would get an altered value.
func CheckEnvironment(environ []string) error {
	for _, entry := range environ {
		if utf8.ValidString(entry) {
			continue
		}
		name, value, _ := strings.Cut(entry, "=")
		if at := invalidAt(name); at >= 0 {
			return &Error{Code: CodeEnv, Message: fmt.Sprintf("environment variable %s has a name that is not UTF-8 (byte %d of its name); names reach the app as UTF-8 text only", printable(name), at)}
		}
		return &Error{Code: CodeEnv, Message: fmt.Sprintf("environment variable %s holds bytes that are not UTF-8 (byte %d of its value); values reach the app as UTF-8 text only", printable(name), invalidAt(value))}
	}
	return nil
}

// invalidAt is the offset of the first byte of s that does not start valid UTF-8, or -1.
func invalidAt(s string) int {
	for i, r := range s {
		if r == utf8.RuneError {
			if _, size := utf8.DecodeRuneInString(s[i:]); size == 1 {
				return i
			}
		}
	}
	return -1
}

// printable is s with every byte outside printable ASCII shown as `?`, as the
// Node side names such a variable.
func printable(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c < 0x20 || c > 0x7e {
			b[i] = '?'
		}
	}
	return string(b)
}

// envObject is the environment as the hello line carries it: the first value
// of each name, as getenv sees it; an entry without `=` names no variable.
func envObject(environ []string) map[string]string {
	env := make(map[string]string, len(environ))
	for _, entry := range environ {
		name, value, ok := strings.Cut(entry, "=")
		if _, seen := env[name]; ok && !seen {
			env[name] = value
		}
	}
	return env
}

// controllerEnviron is the environment the run's controller starts with: this
// process's, without the instance's own variables (the run environment
// contract), which the controller learns from each hello instead. So nothing
// that carries an instance's TEST_RUN outlives the instances of the run.
func controllerEnviron(environ []string) []string {
	kept := make([]string, 0, len(environ))
	for _, entry := range environ {
		name, _, _ := strings.Cut(entry, "=")
		if strings.HasPrefix(name, "TEST_") || strings.HasPrefix(name, "SYNC_SERVICE_") || name == "INFLUXDB_URL" || name == "REDIS_HOST" {
			continue
		}
		kept = append(kept, entry)
	}
	return kept
}
