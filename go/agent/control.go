package agent

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
)

// maxLine bounds one line on stdin; the job line carries the whole environment.
const maxLine = 16 << 20

// Control is a message on stdin after the job line.
type Control string

// The control messages; any other line is ignored.
const (
	// ControlTerm asks to stop the app: TERM to its group, KILL after the grace period.
	ControlTerm Control = "term"
	// ControlDone says the controller has everything: clean up and exit.
	ControlDone Control = "done"
)

// parseControl reads a control line; ok is false for anything that is not one (it is then ignored).
func parseControl(line []byte) (op Control, ok bool) {
	var msg struct {
		Op *string `json:"op"`
	}
	if json.Unmarshal(line, &msg) != nil || msg.Op == nil {
		return "", false
	}
	switch Control(*msg.Op) {
	case ControlTerm, ControlDone:
		return Control(*msg.Op), true
	}
	return "", false
}

// The control messages only serve mode knows.
const (
	// ControlStart starts an instance under a new id.
	ControlStart Control = "start"
	// ControlShutdown stops every instance, removes every work dir and ends the agent.
	ControlShutdown Control = "shutdown"
)

// message is one control line of serve mode.
type message struct {
	op  Control
	id  uint32
	job json.RawMessage // start only; nil when the line has none
}

// parseMessage reads a serve mode control line; ok is false for anything that is
// not one, an id out of 1..2^32-1 included (it is then ignored).
func parseMessage(line []byte) (msg message, ok bool) {
	var fields struct {
		Op  *string         `json:"op"`
		ID  json.RawMessage `json:"id"`
		Job json.RawMessage `json:"job"`
	}
	if json.Unmarshal(line, &fields) != nil || fields.Op == nil {
		return message{}, false
	}
	switch op := Control(*fields.Op); op {
	case ControlShutdown:
		return message{op: op}, true
	case ControlStart, ControlTerm, ControlDone:
		id, err := integer(fields.ID, "id")
		if err != nil || id < 1 || id > math.MaxUint32 {
			return message{}, false
		}
		msg = message{op: op, id: uint32(id)}
		if op == ControlStart {
			msg.job = fields.Job
		}
		return msg, true
	}
	return message{}, false
}

// lineReader reads the lines of stdin, each at most maxLine bytes.
type lineReader struct {
	r *bufio.Reader
}

func newLineReader(r io.Reader) *lineReader { return &lineReader{r: bufio.NewReaderSize(r, 64<<10)} }

// errLineTooLong is returned for a line over maxLine; the line is consumed.
var errLineTooLong = fmt.Errorf("line longer than %d bytes", maxLine)

// next returns the next line without its end; a last line without a newline counts; io.EOF when none is left.
func (l *lineReader) next() ([]byte, error) {
	var line []byte
	long := false
	for {
		chunk, err := l.r.ReadSlice('\n')
		if !long && len(line)+len(chunk) > maxLine+1 {
			long, line = true, nil
		}
		if !long {
			line = append(line, chunk...)
		}
		switch {
		case err == bufio.ErrBufferFull:
			continue
		case err == io.EOF && (len(line) > 0 || long):
		case err != nil:
			return nil, err
		}
		if long {
			return nil, errLineTooLong
		}
		return bytes.TrimSuffix(bytes.TrimSuffix(line, []byte("\n")), []byte("\r")), nil
	}
}
