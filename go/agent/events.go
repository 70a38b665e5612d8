package agent

import (
	"bytes"
	"encoding/json"
)

// readyEvent is serve mode's first frame (id 0): the agent's version and pid.
type readyEvent struct {
	Type    string `json:"type"`
	Version string `json:"version"`
	Pid     int    `json:"pid"`
}

// startedEvent says the app runs: its work dir and pid.
type startedEvent struct {
	Type    string `json:"type"`
	Workdir string `json:"workdir"`
	Pid     int    `json:"pid"`
}

// exitEvent says how the app ended: status is the code, or 128 + the signal's number.
type exitEvent struct {
	Type   string  `json:"type"`
	Status int     `json:"status"`
	Code   *int    `json:"code"`
	Signal *string `json:"signal"`
}

// errorEvent reports a failure the controller should show.
type errorEvent struct {
	Type    string `json:"type"`
	Message string `json:"message"`
}

// cleanedEvent says the work dir is gone.
type cleanedEvent struct {
	Type    string `json:"type"`
	Workdir string `json:"workdir"`
}

// encodeEvent is an event's JSON the way JSON.stringify writes it (no HTML escaping, no newline).
func encodeEvent(event any) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(event); err != nil {
		panic(err) // the event types above always encode
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}
