// Package agent is the remote half of the runner: it runs one test-plan instance
// on the host it was started on and streams the app's output, its exit status and
// its outputs directory back as frames on stdout, the one SSH channel it has.
package agent
