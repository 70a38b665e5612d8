//go:build !linux

package agent

import (
	"syscall"
	"time"
)

// systemSignalNames are the signal names this system has beyond the common ones.
var systemSignalNames = map[syscall.Signal]string{}

// becomeSubreaper does nothing here: only Linux has child subreapers, so only the app's group is stopped.
func becomeSubreaper() error { return nil }

// killDescendants does nothing here: without a subreaper the agent cannot find a helper that left the group.
func killDescendants(keep int, limit time.Duration) {}

// reapOrphans does nothing here: without a subreaper the agent inherits no orphans.
func reapOrphans(keep int) (stop func()) { return func() {} }

// killStrays does nothing here: without /proc the agent cannot tell whose a stray is, so only each app's session is stopped.
func killStrays(owners func() *owners, limit time.Duration) {}
