// Package agent is the remote half of the runner. It runs test-plan instances
// on the host it was started on and streams each app's output, its exit status
// and its outputs directory back as frames on stdout, the one SSH channel it has.
//
// Run (`remote-agent run`) runs one instance per agent process. Serve
// (`remote-agent serve`) runs every instance the controller places on the host
// during a run, in one agent, each under an id that its control messages and
// frames carry. PROTOCOL.md next to this file describes both byte for byte.
// It also gives the rule by which serve mode tells which instance a helper
// that an app left behind belongs to.
package agent
