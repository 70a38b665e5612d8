// Package runner is the process Testground's local:exec starts for every
// instance: it finds the run's controller on this machine through a Unix socket
// (starting it when no instance has yet), sends it one hello line, relays the
// stdout and stderr frames it sends back, and ends the way the controller says:
// with the instance's exit status, by replacing itself with the app (`exec`),
// or with one line of error. It holds no state of the run itself, so it stays
// small in memory. The wire is described in docs/controller.md.
package runner
