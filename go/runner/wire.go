package runner

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"unicode/utf8"
)

// MaxFrame is the largest payload of a frame from the controller.
const MaxFrame = 1 << 20

// The frame kinds from the controller: [kind u8][length u32 BE][payload].
const (
	frameStdout byte = 1
	frameStderr byte = 2
	frameEvent  byte = 3
	frameHeader      = 5
)

// helloLine is the first line to the controller: who this instance is, its
// whole environment, and the job description or the app, as an absolute path.
type helloLine struct {
	Op      string            `json:"op"`
	Version int               `json:"version"`
	Pid     int               `json:"pid"`
	Env     map[string]string `json:"env"`
	Job     string            `json:"job,omitempty"`
	App     string            `json:"app,omitempty"`
}

// termLine asks the controller to stop the instance.
const termLine = `{"op":"term"}` + "\n"

// encodeLine is v as one JSON line, the way JSON.stringify writes it (no HTML escaping).
func encodeLine(v any) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		panic(err) // helloLine always encodes
	}
	return buf.Bytes()
}

// event is a frame of kind 3: how the instance goes on (`exec`) or ended (`exit`, `error`).
type event struct {
	Type    string  `json:"type"`
	Program *string `json:"program"`
	Argv0   *string `json:"argv0"`
	Status  *int    `json:"status"`
	Message *string `json:"message"`
}

// parseEvent reads an event's payload; anything but a complete exec, exit or error event is a protocol error.
func parseEvent(payload []byte) (event, error) {
	var ev event
	if err := json.Unmarshal(payload, &ev); err != nil {
		return ev, protocolError("an event that is not valid JSON of the wire (%s): %s", err, short(payload))
	}
	switch {
	case ev.Type == "exec" && (ev.Program == nil || *ev.Program == "" || ev.Argv0 == nil || *ev.Argv0 == ""):
		return ev, protocolError("an exec event without a program and an argv0: %s", short(payload))
	case ev.Type == "exit" && (ev.Status == nil || *ev.Status < 0 || *ev.Status > 255):
		return ev, protocolError("an exit event without a status from 0 to 255: %s", short(payload))
	case ev.Type == "error" && ev.Message == nil:
		return ev, protocolError("an error event without a message: %s", short(payload))
	case ev.Type != "exec" && ev.Type != "exit" && ev.Type != "error":
		return ev, protocolError("an event of unknown type: %s", short(payload))
	}
	return ev, nil
}

// readHeader reads a frame's header and checks its kind and length.
func readHeader(in *bufio.Reader) (kind byte, length int, err error) {
	header, err := in.Peek(frameHeader) // no copy: nothing is allocated per frame
	if err != nil {
		return 0, 0, err
	}
	kind, n := header[0], binary.BigEndian.Uint32(header[1:])
	if kind != frameStdout && kind != frameStderr && kind != frameEvent {
		return 0, 0, protocolError("a frame of kind %d (expected 1 stdout, 2 stderr or 3 event)", kind)
	}
	if n > MaxFrame {
		return 0, 0, protocolError("a frame of %d bytes (at most %d)", n, MaxFrame)
	}
	_, _ = in.Discard(frameHeader)
	return kind, int(n), nil
}

// protocolError is a message from the controller that is not in the wire protocol.
func protocolError(format string, args ...any) error {
	return &Error{Code: CodeProtocol, Message: "protocol error: the run's controller sent " + fmt.Sprintf(format, args...)}
}

// short is the start of a payload, quoted, for an error message.
func short(payload []byte) string {
	const limit = 120
	if len(payload) > limit {
		cut := limit
		for cut > 0 && !utf8.RuneStart(payload[cut]) {
			cut--
		}
		return fmt.Sprintf("%q…", payload[:cut])
	}
	return fmt.Sprintf("%q", payload)
}
